//! ACI's group and container events (`instanceView.events`) as Kubernetes events on the pod.
//!
//! ACI keeps a short list of events per group and per container and updates an entry in place
//! when it repeats (`count` and `lastTimestamp` grow), so an entry is new when its name,
//! `lastTimestamp` and `count` were not in the list last seen for the same group or container.
//! The events come with the GETs the poller makes anyway: passing them on costs no request.
//!
//! Across a restart of vk nothing is remembered: an entry whose `lastTimestamp` (else
//! `firstTimestamp`) is before the provider started was passed on by the previous vk, or
//! happened while none ran, and is not repeated; entries without either time are passed on.

use std::collections::HashSet;

use vk_abi::{EventType, PodEvent, k8s_openapi::jiff::Timestamp};

use crate::{
    group::{TAG_NAMESPACE, TAG_POD, TAG_UID},
    model::{ContainerGroup, Event},
};

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Group,
    Container(String),
    InitContainer(String),
}

impl Subject {
    fn field_path(&self) -> Option<String> {
        match self {
            Subject::Group => None,
            Subject::Container(name) => Some(format!("spec.containers{{{name}}}")),
            Subject::InitContainer(name) => Some(format!("spec.initContainers{{{name}}}")),
        }
    }
}

/// One occurrence of an event, as far as ACI lets it be told apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Occurrence {
    subject: Subject,
    name: Option<String>,
    last_timestamp: Option<String>,
    count: Option<i32>,
}

/// The events of one group as last listed by ACI, all of them passed on or deliberately not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen(HashSet<Occurrence>);

/// Every event of the group, with what it is about.
fn listed(group: &ContainerGroup) -> Vec<(Subject, &Event)> {
    let props = &group.properties;
    let group_events = (props.instance_view.iter())
        .flat_map(|view| &view.events)
        .map(|event| (Subject::Group, event));
    let containers = props.containers.iter().flat_map(|c| {
        (c.properties.instance_view.iter())
            .flat_map(|view| &view.events)
            .map(|event| (Subject::Container(c.name.clone()), event))
    });
    let init_containers = props.init_containers.iter().flat_map(|c| {
        (c.properties.instance_view.iter())
            .flat_map(|view| &view.events)
            .map(|event| (Subject::InitContainer(c.name.clone()), event))
    });
    group_events
        .chain(init_containers)
        .chain(containers)
        .collect()
}

fn when(event: &Event) -> Option<Timestamp> {
    event
        .last_timestamp
        .as_deref()
        .or(event.first_timestamp.as_deref())
        .and_then(|t| t.parse().ok())
}

/// The Kubernetes events for the entries of `group` that are not in `seen` and not older than
/// `since`, oldest first, and the entries to remember for the next look.
pub fn news(group: &ContainerGroup, seen: &Seen, since: Timestamp) -> (Vec<PodEvent>, Seen) {
    let tag = |key: &str| group.tags.get(key).cloned();
    let pod = tag(TAG_NAMESPACE).zip(tag(TAG_POD));
    let mut now_seen = Seen::default();
    let mut fresh = Vec::new();
    for (subject, event) in listed(group) {
        let occurrence = Occurrence {
            subject: subject.clone(),
            name: event.name.clone(),
            last_timestamp: event.last_timestamp.clone(),
            count: event.count,
        };
        let new = !seen.0.contains(&occurrence) && when(event).is_none_or(|t| t >= since);
        now_seen.0.insert(occurrence);
        // A nameless entry has no reason to give; a group not tagged with its pod has no pod.
        let (Some((namespace, name)), Some(reason), true) = (&pod, &event.name, new) else {
            continue;
        };
        let warning = (event.kind.as_deref()).is_some_and(|k| k.eq_ignore_ascii_case("Warning"));
        fresh.push((
            when(event),
            PodEvent {
                namespace: namespace.clone(),
                name: name.clone(),
                uid: tag(TAG_UID),
                type_: if warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: reason.clone(),
                message: event.message.clone().unwrap_or_default(),
                field_path: subject.field_path(),
            },
        ));
    }
    // Stable: entries of the same time keep ACI's order.
    fresh.sort_by_key(|(time, _)| *time);
    (
        fresh.into_iter().map(|(_, event)| event).collect(),
        now_seen,
    )
}

#[cfg(test)]
mod tests;
