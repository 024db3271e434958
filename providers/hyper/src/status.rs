//! A pod's status from its containers' inspections and what the provider remembers of them
//! (restarts it made, terminations it saw, back-offs it waits out).

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};
use vk_abi::k8s_openapi::{
    api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::Time,
};

use crate::{
    inventory::{ContainerView, PodView},
    spec::Role,
};

/// What the provider remembers of one pod's containers, by container name.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    pub restarts: HashMap<String, i32>,
    pub last_terminated: HashMap<String, ContainerStateTerminated>,
    /// Why a container is not running yet (`CrashLoopBackOff`, `RunContainerError`, ...).
    pub waiting: HashMap<String, ContainerStateWaiting>,
    /// This process is starting the pod's containers (see `Backend::resume`).
    pub starting: bool,
}

impl Memory {
    pub fn is_empty(&self) -> bool {
        self.restarts.is_empty()
            && self.last_terminated.is_empty()
            && self.waiting.is_empty()
            && !self.starting
    }
}

/// The Kubernetes status of `view`.
pub fn pod_status(view: &PodView, memory: &Memory, host_ip: &str) -> PodStatus {
    let statuses = |role: Role| -> Vec<ContainerStatus> {
        view.containers
            .iter()
            .filter(|c| c.role == role)
            .map(|c| container_status(c, memory))
            .collect()
    };
    let init: Vec<ContainerStatus> = view
        .containers
        .iter()
        .filter(|c| c.role.is_init())
        .map(|c| container_status(c, memory))
        .collect();
    let sidecars: Vec<&ContainerStatus> = view
        .containers
        .iter()
        .filter(|c| c.role.is_init())
        .zip(&init)
        .filter(|(c, _)| c.role == Role::Sidecar)
        .map(|(_, status)| status)
        .collect();
    let regular_init = || {
        view.containers
            .iter()
            .filter(|c| c.role.is_init())
            .zip(&init)
            .filter(|(c, _)| c.role == Role::Init)
            .map(|(_, status)| status)
    };
    let app = statuses(Role::App);
    let never = view.restart_policy == "Never";
    // Regular init containers succeeded, and sidecars started (KEP-753).
    let initialized = regular_init().all(|s| exit_code(s) == Some(0))
        && sidecars
            .iter()
            .all(|s| s.started == Some(true) || s.restart_count > 0);
    let init_failed = never && regular_init().any(|s| exit_code(s).is_some_and(|code| code != 0));
    let all_app_terminated = !app.is_empty() && app.iter().all(|s| exit_code(s).is_some());
    let phase = if init_failed {
        "Failed"
    } else if !initialized || app.iter().all(is_created) {
        "Pending"
    } else if all_app_terminated && view.restart_policy != "Always" {
        if app.iter().all(|s| exit_code(s) == Some(0)) {
            "Succeeded"
        } else if never {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Running"
    };
    let sandbox_running = view
        .infra
        .as_ref()
        .is_some_and(|infra| is_running(&infra.inspect));
    // The phase is the main containers'; sidecars' readiness counts for the pod's.
    let ready = phase == "Running" && app.iter().chain(sidecars).all(|s| s.ready);
    let completed = matches!(phase, "Succeeded" | "Failed");
    let now = Time(jiff::Timestamp::now());
    let condition = |type_: &str, status: bool, reason: Option<&str>| PodCondition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        last_transition_time: Some(now.clone()),
        ..PodCondition::default()
    };
    let not_ready_reason = if completed {
        Some("PodCompleted")
    } else if ready {
        None
    } else {
        Some("ContainersNotReady")
    };
    // A pod on the host's network has the host's address.
    let pod_ip = view.infra.as_ref().and_then(|infra| {
        if on_host_network(&infra.inspect) {
            Some(host_ip.to_string())
        } else {
            ip_address(&infra.inspect)
        }
    });
    PodStatus {
        phase: Some(phase.to_string()),
        host_ip: Some(host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_string(),
        }]),
        pod_ips: pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        pod_ip,
        start_time: view
            .infra
            .as_ref()
            .and_then(|infra| time(infra.inspect.created.as_deref())),
        conditions: Some(vec![
            condition("PodReadyToStartContainers", sandbox_running, None),
            condition(
                "Initialized",
                initialized,
                (!initialized).then_some("ContainersNotInitialized"),
            ),
            condition("Ready", ready, not_ready_reason),
            condition("ContainersReady", ready, not_ready_reason),
            condition("PodScheduled", true, None),
        ]),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(app),
        ..PodStatus::default()
    }
}

fn container_status(container: &ContainerView, memory: &Memory) -> ContainerStatus {
    let inspect = &container.inspect;
    let state = inspect.state.clone().unwrap_or_default();
    let container_id = format!("docker://{}", container.id);
    let terminated = || ContainerStateTerminated {
        exit_code: state.exit_code.unwrap_or_default() as i32,
        reason: Some(
            if state.oom_killed == Some(true) {
                "OOMKilled"
            } else if state.exit_code == Some(0) {
                "Completed"
            } else {
                "Error"
            }
            .to_string(),
        ),
        message: state.error.clone().filter(|e| !e.is_empty()),
        started_at: time(state.started_at.as_deref()),
        finished_at: time(state.finished_at.as_deref()),
        container_id: Some(container_id.clone()),
        ..ContainerStateTerminated::default()
    };
    let waiting = memory.waiting.get(&container.name).cloned();
    let (current, last) = match state.status {
        Some(ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::RESTARTING) => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: time(state.started_at.as_deref()),
                }),
                ..ContainerState::default()
            },
            memory.last_terminated.get(&container.name).cloned(),
        ),
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => match waiting {
            // Exited and about to be restarted: the kubelet shows the wait, and the exit as
            // the last state.
            Some(waiting) => (
                ContainerState {
                    waiting: Some(waiting),
                    ..ContainerState::default()
                },
                Some(terminated()),
            ),
            None => (
                ContainerState {
                    terminated: Some(terminated()),
                    ..ContainerState::default()
                },
                memory.last_terminated.get(&container.name).cloned(),
            ),
        },
        _ => (
            ContainerState {
                waiting: Some(waiting.unwrap_or_else(|| {
                    ContainerStateWaiting {
                        reason: Some(
                            match container.role {
                                Role::App => "PodInitializing",
                                Role::Init | Role::Sidecar | Role::Infra => "ContainerCreating",
                            }
                            .to_string(),
                        ),
                        message: None,
                    }
                })),
                ..ContainerState::default()
            },
            memory.last_terminated.get(&container.name).cloned(),
        ),
    };
    let running = current.running.is_some();
    ContainerStatus {
        name: container.name.clone(),
        container_id: Some(container_id),
        image: inspect
            .config
            .as_ref()
            .and_then(|config| config.image.clone())
            .unwrap_or_default(),
        image_id: inspect.image.clone().unwrap_or_default(),
        ready: running && matches!(container.role, Role::App | Role::Sidecar),
        started: Some(running),
        restart_count: memory.restarts.get(&container.name).copied().unwrap_or(0),
        state: Some(current),
        last_state: last.map(|terminated| ContainerState {
            terminated: Some(terminated),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

fn exit_code(status: &ContainerStatus) -> Option<i32> {
    status
        .state
        .as_ref()
        .and_then(|state| state.terminated.as_ref())
        .map(|terminated| terminated.exit_code)
}

/// Never started: waiting, with no run behind it.
fn is_created(status: &ContainerStatus) -> bool {
    status
        .state
        .as_ref()
        .is_some_and(|state| state.waiting.is_some())
        && status.last_state.is_none()
}

/// The container was created and never started.
pub fn never_started(inspect: &ContainerInspectResponse) -> bool {
    inspect
        .state
        .as_ref()
        .is_some_and(|state| state.status == Some(ContainerStateStatusEnum::CREATED))
}

/// The container exited with code 0.
pub fn succeeded(inspect: &ContainerInspectResponse) -> bool {
    inspect.state.as_ref().is_some_and(|state| {
        state.status == Some(ContainerStateStatusEnum::EXITED) && state.exit_code == Some(0)
    })
}

pub fn is_running(inspect: &ContainerInspectResponse) -> bool {
    inspect
        .state
        .as_ref()
        .is_some_and(|state| state.running == Some(true))
}

fn on_host_network(inspect: &ContainerInspectResponse) -> bool {
    inspect
        .host_config
        .as_ref()
        .and_then(|host| host.network_mode.as_deref())
        == Some("host")
}

/// The infra container's address on its first network that has one.
pub fn ip_address(inspect: &ContainerInspectResponse) -> Option<String> {
    let networks = inspect.network_settings.as_ref()?.networks.as_ref()?;
    let mut networks: Vec<_> = networks.iter().collect();
    networks.sort_by_key(|(name, _)| *name);
    networks
        .into_iter()
        .find_map(|(_, endpoint)| endpoint.ip_address.clone().filter(|ip| !ip.is_empty()))
}

/// An engine time; the zero time (`0001-01-01T00:00:00Z`) means never.
pub fn time(text: Option<&str>) -> Option<Time> {
    let timestamp: jiff::Timestamp = text?.parse().ok()?;
    (timestamp.as_second() > 0).then_some(Time(timestamp))
}
