//! A container group's instance view as Kubernetes pod status: phase, conditions, container
//! states (current and previous, exit codes, restart counts, start times) and the pod IP. The
//! latest ACI event also explains a waiting container or a pending pod, as the kubelet's waiting
//! messages do (every event becomes a Kubernetes event too, see [`crate::events`]).

use vk_abi::k8s_openapi::{
    api::core::v1::{
        Container as PodContainer, ContainerState as PodContainerState, ContainerStateRunning,
        ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod, PodCondition, PodIP,
        PodSpec, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    jiff::Timestamp,
};

use crate::{
    group::{TAG_CREATED, TAG_NAMESPACE, TAG_NODE, TAG_POD, TAG_UID},
    model::{ContainerGroup, ContainerInstanceView, ContainerState, Event},
};

/// The pod's phase for a group state (`provisioningState`, or the instance view's state once
/// provisioning succeeded).
pub fn phase(state: &str) -> &'static str {
    match state {
        "Running" => "Running",
        "Succeeded" => "Succeeded",
        "Failed" | "Canceled" | "Stopped" => "Failed",
        "Creating" | "Repairing" | "Pending" | "Accepted" | "Updating" | "" => "Pending",
        _ => "Unknown",
    }
}

/// The group's state as upstream's provider reads it.
pub fn group_state(group: &ContainerGroup) -> String {
    let provisioning = group
        .properties
        .provisioning_state
        .clone()
        .unwrap_or_default();
    let instance = group
        .properties
        .instance_view
        .as_ref()
        .and_then(|v| v.state.clone());
    match instance {
        Some(state) if provisioning == "Succeeded" || provisioning.is_empty() => state,
        _ => provisioning,
    }
}

fn time(text: &Option<String>) -> Option<Time> {
    text.as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map(Time)
}

fn latest(events: &[Event]) -> Option<&Event> {
    events.iter().max_by_key(|e| {
        e.last_timestamp
            .as_deref()
            .or(e.first_timestamp.as_deref())
            .and_then(|t| t.parse::<Timestamp>().ok())
    })
}

fn describe(event: &Event) -> String {
    match (&event.name, &event.message) {
        (Some(name), Some(message)) => format!("{name}: {message}"),
        (Some(text), None) | (None, Some(text)) => text.clone(),
        (None, None) => String::new(),
    }
}

/// A container's state; `events` explain a waiting one when ACI gives no detail.
fn container_state(state: &ContainerState, events: &[Event]) -> PodContainerState {
    let name = state.state.as_deref().unwrap_or("");
    match name {
        "Running" => PodContainerState {
            running: Some(ContainerStateRunning {
                started_at: time(&state.start_time),
            }),
            ..Default::default()
        },
        "Terminated" | "Succeeded" | "Failed" | "Canceled" => {
            let exit_code = state
                .exit_code
                .unwrap_or(if matches!(name, "Failed" | "Canceled") {
                    1
                } else {
                    0
                });
            let reason = match (exit_code, name) {
                (0, _) => "Completed",
                (_, "Canceled") => "Canceled",
                _ => "Error",
            };
            PodContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code,
                    reason: Some(reason.into()),
                    message: state.detail_status.clone().filter(|d| !d.is_empty()),
                    started_at: time(&state.start_time),
                    finished_at: time(&state.finish_time),
                    ..Default::default()
                }),
                ..Default::default()
            }
        }
        _ => PodContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(if name.is_empty() || name == "Pending" {
                    "ContainerCreating".into()
                } else {
                    name.into()
                }),
                message: state
                    .detail_status
                    .clone()
                    .filter(|d| !d.is_empty())
                    .or_else(|| latest(events).map(describe)),
            }),
            ..Default::default()
        },
    }
}

fn container_status(
    name: &str,
    image: &str,
    group_id: &str,
    view: Option<&ContainerInstanceView>,
) -> ContainerStatus {
    let view = view.cloned().unwrap_or_default();
    let state = container_state(
        &view.current_state.clone().unwrap_or_default(),
        &view.events,
    );
    let running = state.running.is_some();
    ContainerStatus {
        name: name.into(),
        image: image.into(),
        image_id: String::new(),
        container_id: Some(format!(
            "aci://{}/containers/{name}",
            group_id.to_lowercase()
        )),
        ready: running,
        started: Some(running),
        restart_count: view.restart_count.unwrap_or(0),
        state: Some(state),
        last_state: view
            .previous_state
            .as_ref()
            .filter(|s| s.state.is_some())
            .map(|s| container_state(s, &[])),
        ..Default::default()
    }
}

fn condition(kind: &str, status: bool, time: Option<Time>) -> PodCondition {
    PodCondition {
        type_: kind.into(),
        status: if status { "True" } else { "False" }.into(),
        last_transition_time: time,
        ..Default::default()
    }
}

/// The status of the pod that `group` runs; `host_ip` is the node's.
pub fn pod_status(group: &ContainerGroup, host_ip: &str, created: Option<Time>) -> PodStatus {
    let props = &group.properties;
    let state = group_state(group);
    let phase = phase(&state);
    let group_id = group.id.as_deref().unwrap_or_default();
    let containers: Vec<ContainerStatus> = props
        .containers
        .iter()
        .map(|c| {
            container_status(
                &c.name,
                &c.properties.image,
                group_id,
                c.properties.instance_view.as_ref(),
            )
        })
        .collect();
    let init_containers: Vec<ContainerStatus> = props
        .init_containers
        .iter()
        .map(|c| {
            container_status(
                &c.name,
                &c.properties.image,
                group_id,
                c.properties.instance_view.as_ref(),
            )
        })
        .collect();
    let started = containers
        .iter()
        .filter_map(|c| c.state.as_ref()?.running.as_ref()?.started_at.clone())
        .max_by_key(|t| t.0);
    let start_time = containers
        .iter()
        .filter_map(|c| {
            let state = c.state.as_ref()?;
            state
                .running
                .as_ref()
                .and_then(|r| r.started_at.clone())
                .or_else(|| state.terminated.as_ref()?.started_at.clone())
        })
        .min_by_key(|t| t.0)
        .or_else(|| created.clone());
    let all_ready = !containers.is_empty() && containers.iter().all(|c| c.ready);
    let active = matches!(phase, "Running" | "Succeeded");
    let conditions = vec![
        condition("PodScheduled", true, created.clone()),
        condition("Initialized", active, created.clone()),
        condition(
            "ContainersReady",
            all_ready,
            started.clone().or(created.clone()),
        ),
        condition("Ready", all_ready, started.or(created)),
    ];
    let pod_ip = (props.os_type != "Windows")
        .then(|| props.ip_address.as_ref()?.ip.clone())
        .flatten();
    let message = (phase == "Pending")
        .then(|| latest(&props.instance_view.clone().unwrap_or_default().events).map(describe))
        .flatten();
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(host_ip.into()),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time,
        message,
        container_statuses: Some(containers),
        init_container_statuses: (!init_containers.is_empty()).then_some(init_containers),
        ..Default::default()
    }
}

/// The pod a group runs, rebuilt from its tags and containers (after a restart vk knows no
/// better), with its status.
pub fn pod_from_group(group: &ContainerGroup, host_ip: &str) -> Option<Pod> {
    let tag = |key: &str| group.tags.get(key).cloned();
    let created = tag(TAG_CREATED)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map(Time);
    let to_spec = |name: &str, image: &str, command: &[String]| PodContainer {
        name: name.into(),
        image: Some(image.into()),
        command: (!command.is_empty()).then(|| command.to_vec()),
        ..Default::default()
    };
    let props = &group.properties;
    let (Some(name), Some(namespace)) = (tag(TAG_POD), tag(TAG_NAMESPACE)) else {
        return None;
    };
    Some(Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            uid: tag(TAG_UID),
            creation_timestamp: created.clone(),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: tag(TAG_NODE),
            restart_policy: props.restart_policy.clone(),
            containers: props
                .containers
                .iter()
                .map(|c| to_spec(&c.name, &c.properties.image, &c.properties.command))
                .collect(),
            init_containers: (!props.init_containers.is_empty()).then(|| {
                props
                    .init_containers
                    .iter()
                    .map(|c| to_spec(&c.name, &c.properties.image, &c.properties.command))
                    .collect()
            }),
            ..Default::default()
        }),
        status: Some(pod_status(group, host_ip, created)),
    })
}

#[cfg(test)]
mod tests;
