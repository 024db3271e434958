use serde_json::{Value, json};

use super::*;

fn event(name: &str, last: &str, count: i32, kind: &str) -> Value {
    json!({ "count": count, "firstTimestamp": "2026-01-02T03:04:00Z", "lastTimestamp": last,
            "name": name, "message": format!("{name} happened"), "type": kind })
}

/// A group of pod ns/web with these events on itself, its init container and its container.
fn group(on_group: Vec<Value>, on_init: Vec<Value>, on_app: Vec<Value>) -> ContainerGroup {
    serde_json::from_value(json!({
        "name": "ns-web",
        "tags": { "NodeName": "vk-1", "Namespace": "ns", "PodName": "web", "UID": "u-1" },
        "properties": {
            "osType": "Linux",
            "initContainers": [{ "name": "setup", "properties": {
                "image": "busybox", "instanceView": { "events": on_init } } }],
            "containers": [{ "name": "app", "properties": {
                "image": "nginx",
                "resources": { "requests": { "cpu": 1.0, "memoryInGB": 1.5 } },
                "instanceView": { "events": on_app } } }],
            "instanceView": { "state": "Running", "events": on_group }
        }
    }))
    .unwrap()
}

fn since() -> Timestamp {
    "2026-01-02T03:00:00Z".parse().unwrap()
}

fn reasons(events: &[PodEvent]) -> Vec<(&str, &str, Option<&str>)> {
    events
        .iter()
        .map(|e| (e.reason.as_str(), e.type_.as_str(), e.field_path.as_deref()))
        .collect()
}

#[test]
fn events_name_their_pod_container_and_kind_oldest_first() {
    let group = group(
        vec![event("Deploying", "2026-01-02T03:04:01Z", 1, "Normal")],
        vec![event("Started", "2026-01-02T03:04:03Z", 1, "Normal")],
        vec![
            event("Pulled", "2026-01-02T03:04:05Z", 1, "Normal"),
            event("BackOff", "2026-01-02T03:04:09Z", 1, "Warning"),
            event("Pulling", "2026-01-02T03:04:02Z", 1, "Normal"),
        ],
    );
    let (events, _) = news(&group, &Seen::default(), since());
    assert_eq!(
        reasons(&events),
        [
            ("Deploying", "Normal", None),
            ("Pulling", "Normal", Some("spec.containers{app}")),
            ("Started", "Normal", Some("spec.initContainers{setup}")),
            ("Pulled", "Normal", Some("spec.containers{app}")),
            ("BackOff", "Warning", Some("spec.containers{app}")),
        ]
    );
    let pulled = &events[3];
    assert_eq!(
        (&*pulled.namespace, &*pulled.name, pulled.uid.as_deref()),
        ("ns", "web", Some("u-1"))
    );
    assert_eq!(pulled.message, "Pulled happened");
}

#[test]
fn each_occurrence_is_passed_on_once() {
    let first = group(
        vec![],
        vec![],
        vec![event("Started", "2026-01-02T03:04:05Z", 1, "Normal")],
    );
    let (events, seen) = news(&first, &Seen::default(), since());
    assert_eq!(events.len(), 1);
    let (again, seen) = news(&first, &seen, since());
    assert!(again.is_empty(), "{again:?}");
    // A repeat updates the entry in place: a new occurrence.
    let repeated = group(
        vec![],
        vec![],
        vec![event("Started", "2026-01-02T03:05:00Z", 2, "Normal")],
    );
    let (events, seen) = news(&repeated, &seen, since());
    assert_eq!(
        reasons(&events),
        [("Started", "Normal", Some("spec.containers{app}"))]
    );
    assert!(news(&repeated, &seen, since()).0.is_empty());
}

#[test]
fn the_same_entry_on_another_container_is_another_event() {
    let entry = || vec![event("Pulled", "2026-01-02T03:04:05Z", 1, "Normal")];
    let (_, seen) = news(&group(vec![], vec![], entry()), &Seen::default(), since());
    let (events, _) = news(&group(vec![], entry(), entry()), &seen, since());
    assert_eq!(
        reasons(&events),
        [("Pulled", "Normal", Some("spec.initContainers{setup}"))]
    );
}

#[test]
fn entries_older_than_the_provider_are_not_repeated() {
    let group = group(
        vec![],
        vec![],
        vec![
            event("Pulled", "2026-01-02T02:59:59Z", 1, "Normal"),
            event("BackOff", "2026-01-02T03:00:01Z", 7, "Warning"),
            json!({ "name": "Untimed", "message": "no time" }),
        ],
    );
    let (events, seen) = news(&group, &Seen::default(), since());
    assert_eq!(
        reasons(&events),
        [
            ("Untimed", "Normal", Some("spec.containers{app}")),
            ("BackOff", "Warning", Some("spec.containers{app}")),
        ]
    );
    assert_eq!(seen.0.len(), 3, "the old entry is remembered too");
}

#[test]
fn nameless_entries_and_untagged_groups_give_no_event() {
    let nameless = group(vec![json!({ "message": "what?" })], vec![], vec![]);
    assert!(news(&nameless, &Seen::default(), since()).0.is_empty());
    let mut untagged = group(
        vec![event("Started", "2026-01-02T03:04:05Z", 1, "Normal")],
        vec![],
        vec![],
    );
    untagged.tags.remove(TAG_POD);
    assert!(news(&untagged, &Seen::default(), since()).0.is_empty());
}
