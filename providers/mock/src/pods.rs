//! The in-memory pod table: a compact record per pod, turned into a `Pod` only when asked, so
//! that 100,000 pods stay cheap.

use std::{sync::Arc, time::Duration};

use vk_abi::{
    ResolvedPod,
    k8s_openapi::{
        api::core::v1::{
            Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
            ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodSpec,
            PodStatus, ResourceRequirements,
        },
        apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
        jiff::Timestamp,
    },
};

use crate::contents::SharedContents;

/// One container as the mock runs it.
#[derive(Debug, Clone)]
pub struct MockContainer {
    pub name: String,
    pub image: String,
    pub env: Vec<(String, String)>,
    /// Mount path and volume name of each volume mount.
    pub mounts: Vec<(String, String)>,
    /// An init container with `restartPolicy: Always`: a sidecar, which runs beside the app
    /// containers instead of completing before them.
    pub sidecar: bool,
    /// Requests and limits as last applied (at creation or by a resize).
    pub resources: ResourceRequirements,
    /// Restarts after a kill (`restart_container`).
    pub restarts: i32,
    /// When the current instance started (or starts, after a back-off); `None`: with the pod.
    pub started_at: Option<Timestamp>,
    /// The instance before the last kill; boxed, as most containers never have one.
    pub last_terminated: Option<Box<ContainerStateTerminated>>,
    /// Killed for good (the restart policy is Never).
    pub exited: bool,
}

impl MockContainer {
    fn from_spec(container: &Container) -> Self {
        MockContainer {
            sidecar: container.restart_policy.as_deref() == Some("Always"),
            resources: container.resources.clone().unwrap_or_default(),
            restarts: 0,
            started_at: None,
            last_terminated: None,
            exited: false,
            name: container.name.clone(),
            image: container.image.clone().unwrap_or_default(),
            env: container
                .env
                .iter()
                .flatten()
                .map(|var| (var.name.clone(), var.value.clone().unwrap_or_default()))
                .collect(),
            mounts: container
                .volume_mounts
                .iter()
                .flatten()
                .map(|mount| (mount.mount_path.clone(), mount.name.clone()))
                .collect(),
        }
    }
}

/// A volume's file: its path in the volume and its contents.
pub type MockFile = (String, Arc<[u8]>);

/// One pod as the mock runs it.
#[derive(Debug, Clone)]
pub struct MockPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub init_containers: Vec<MockContainer>,
    pub containers: Vec<MockContainer>,
    /// The contents of each volume's files by path, as lists: a pod has a few, and a map's
    /// first node is over 500 bytes (two maps per pod with a token volume, 10 MiB at 10,000
    /// pods). Contents are shared between pods (see [`SharedContents`]).
    pub volumes: Vec<(String, Vec<MockFile>)>,
    pub started: Timestamp,
    pub pod_ip: String,
    pub terminated: bool,
    pub restart_policy: String,
}

/// The crash-loop back-off before the `restarts`-th restart: none for the first, then 10 s
/// doubling up to 300 s, as the kubelet's.
pub fn back_off(restarts: i32) -> Duration {
    match restarts {
        ..=0 => Duration::ZERO,
        n => Duration::from_secs((10u64 << (n - 1).min(5)).min(300)),
    }
}

impl MockPod {
    pub fn new(resolved: ResolvedPod, pod_ip: String, contents: &SharedContents) -> Self {
        let metadata = resolved.pod.metadata;
        let spec = resolved.pod.spec.unwrap_or_default();
        MockPod {
            namespace: metadata.namespace.unwrap_or_default(),
            name: metadata.name.unwrap_or_default(),
            uid: metadata.uid.unwrap_or_default(),
            init_containers: spec
                .init_containers
                .iter()
                .flatten()
                .map(MockContainer::from_spec)
                .collect(),
            containers: spec
                .containers
                .iter()
                .map(MockContainer::from_spec)
                .collect(),
            volumes: resolved
                .volumes
                .into_iter()
                .map(|(name, volume)| {
                    let files = volume.files.into_iter();
                    let files = files.map(|(path, file)| (path, contents.share(file.data.0)));
                    (name, files.collect())
                })
                .collect(),
            started: Timestamp::now(),
            pod_ip,
            terminated: false,
            restart_policy: spec.restart_policy.unwrap_or_else(|| "Always".into()),
        }
    }

    /// The contents of the pod's files, to be released as the pod goes.
    pub fn into_contents(self) -> impl Iterator<Item = Arc<[u8]>> {
        let files = self.volumes.into_iter().flat_map(|(_, files)| files);
        files.map(|(_, content)| content)
    }

    /// Kills `name` as a failed liveness probe does: it exits with 137 and, unless the restart
    /// policy is Never, runs again after its back-off. The back-off, if any.
    pub fn kill(&mut self, name: &str) -> Option<Duration> {
        let (uid, pod_started) = (self.uid.clone(), self.started);
        let restarts = self.restart_policy != "Never";
        let container = self
            .containers
            .iter_mut()
            .chain(&mut self.init_containers)
            .find(|c| c.name == name)?;
        let now = Timestamp::now();
        container.last_terminated = Some(Box::new(ContainerStateTerminated {
            exit_code: 137,
            reason: Some("Error".into()),
            started_at: Some(Time(container.started_at.unwrap_or(pod_started))),
            finished_at: Some(Time(now)),
            container_id: Some(container_id(&uid, container)),
            ..ContainerStateTerminated::default()
        }));
        if !restarts && !container.sidecar {
            container.exited = true;
            return None;
        }
        let delay = back_off(container.restarts);
        container.restarts += 1;
        container.started_at = Some(now + delay);
        Some(delay)
    }

    pub fn container(&self, name: &str) -> Option<&MockContainer> {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .find(|c| c.name == name)
    }

    /// Applies the resources of `spec`'s containers to the containers of the same name, as
    /// an in-place resize does.
    pub fn resize(&mut self, spec: &PodSpec) {
        let wanted = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten());
        for container in wanted {
            let running = self.containers.iter_mut().chain(&mut self.init_containers);
            if let Some(running) = running.into_iter().find(|c| c.name == container.name) {
                running.resources = container.resources.clone().unwrap_or_default();
            }
        }
    }

    /// The pod as Kubernetes would show it.
    pub fn to_pod(&self, host_ip: &str) -> Pod {
        let as_spec = |c: &MockContainer| Container {
            name: c.name.clone(),
            image: Some(c.image.clone()),
            ..Container::default()
        };
        let mut pod = self.report(host_ip);
        pod.metadata.creation_timestamp = Some(Time(self.started));
        pod.spec = Some(PodSpec {
            containers: self.containers.iter().map(as_spec).collect(),
            init_containers: Some(self.init_containers.iter().map(as_spec).collect())
                .filter(|c: &Vec<_>| !c.is_empty()),
            ..PodSpec::default()
        });
        pod
    }

    /// The pod as a status report carries it: its identity and status, without the spec,
    /// which the host does not read from a report.
    pub fn report(&self, host_ip: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(self.namespace.clone()),
                name: Some(self.name.clone()),
                uid: Some(self.uid.clone()),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(self.status(host_ip)),
        }
    }

    pub fn status(&self, host_ip: &str) -> PodStatus {
        let since = Time(self.started);
        let condition = |kind: &str| PodCondition {
            type_: kind.to_string(),
            status: "True".to_string(),
            last_transition_time: Some(since.clone()),
            ..PodCondition::default()
        };
        let completed = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 0,
                reason: Some("Completed".into()),
                started_at: Some(since.clone()),
                finished_at: Some(since.clone()),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        };
        let app_state = if self.terminated {
            completed.clone()
        } else {
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(since.clone()),
                }),
                ..ContainerState::default()
            }
        };
        let now = Timestamp::now();
        let container_status = |c: &MockContainer, state: &ContainerState, ready: bool| {
            let backing_off = c.started_at.is_some_and(|at| at > now);
            let state = match (&c.last_terminated, c.exited, backing_off) {
                (Some(last), true, _) => ContainerState {
                    terminated: Some(ContainerStateTerminated::clone(last)),
                    ..ContainerState::default()
                },
                (_, _, true) => ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("CrashLoopBackOff".into()),
                        message: Some(format!(
                            "back-off {}s restarting failed container={} pod={}_{}({})",
                            back_off(c.restarts).as_secs(),
                            c.name,
                            self.name,
                            self.namespace,
                            self.uid
                        )),
                    }),
                    ..ContainerState::default()
                },
                _ => match (&state.running, c.started_at) {
                    (Some(_), Some(at)) => ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: Some(Time(at)),
                        }),
                        ..ContainerState::default()
                    },
                    _ => state.clone(),
                },
            };
            let running = state.running.is_some();
            ContainerStatus {
                name: c.name.clone(),
                image: c.image.clone(),
                image_id: format!("mock://{}", c.image),
                container_id: Some(container_id(&self.uid, c)),
                ready: ready && running,
                started: Some(running),
                restart_count: c.restarts,
                state: Some(state),
                last_state: c.last_terminated.clone().map(|terminated| ContainerState {
                    terminated: Some(*terminated),
                    ..ContainerState::default()
                }),
                // Always present, even empty: it tells the API server that this node resizes.
                resources: Some(c.resources.clone()),
                ..ContainerStatus::default()
            }
        };
        // Killed for good, the pod fails (the restart policy is Never).
        let failed = !self.terminated && self.containers.iter().all(|c| c.exited);
        PodStatus {
            phase: Some(
                if self.terminated {
                    "Succeeded"
                } else if failed {
                    "Failed"
                } else {
                    "Running"
                }
                .into(),
            ),
            conditions: Some(
                ["PodScheduled", "Initialized", "ContainersReady", "Ready"]
                    .map(condition)
                    .into_iter()
                    .map(|mut c| {
                        if self.terminated && c.type_.ends_with("Ready") {
                            c.status = "False".into();
                            c.reason = Some("PodCompleted".into());
                        }
                        c
                    })
                    .collect(),
            ),
            host_ip: Some(host_ip.to_string()),
            host_ips: Some(vec![HostIP {
                ip: host_ip.to_string(),
            }]),
            pod_ip: Some(self.pod_ip.clone()),
            pod_ips: Some(vec![PodIP {
                ip: self.pod_ip.clone(),
            }]),
            start_time: Some(since.clone()),
            init_container_statuses: Some(
                self.init_containers
                    .iter()
                    .map(|c| {
                        if c.sidecar {
                            container_status(c, &app_state, !self.terminated)
                        } else {
                            container_status(c, &completed, false)
                        }
                    })
                    .collect(),
            )
            .filter(|s: &Vec<_>| !s.is_empty()),
            container_statuses: Some(
                self.containers
                    .iter()
                    .map(|c| container_status(c, &app_state, !self.terminated))
                    .collect(),
            ),
            ..PodStatus::default()
        }
    }
}

/// The ID of the container's current instance.
fn container_id(uid: &str, container: &MockContainer) -> String {
    match container.restarts {
        0 => format!("mock://{uid}/{}", container.name),
        n => format!("mock://{uid}/{}/{n}", container.name),
    }
}

/// The n-th pod IP of the mock's 10.0.0.0/8 pod range (skipping network and low addresses).
pub fn pod_ip(n: u32) -> String {
    let n = n % 0x00ff_ff00 + 0x100;
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}
