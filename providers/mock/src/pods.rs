//! The in-memory pod table: a compact record per pod, turned into a `Pod` only when asked, so
//! that 100,000 pods stay cheap.

use std::collections::BTreeMap;

use vk_abi::{
    ResolvedPod, VolumeFiles,
    k8s_openapi::{
        api::core::v1::{
            Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
            ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodSpec, PodStatus,
        },
        apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
        jiff::Timestamp,
    },
};

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
}

impl MockContainer {
    fn from_spec(container: &Container) -> Self {
        MockContainer {
            sidecar: container.restart_policy.as_deref() == Some("Always"),
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

/// One pod as the mock runs it.
#[derive(Debug, Clone)]
pub struct MockPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub init_containers: Vec<MockContainer>,
    pub containers: Vec<MockContainer>,
    pub volumes: BTreeMap<String, VolumeFiles>,
    pub started: Timestamp,
    pub pod_ip: String,
    pub terminated: bool,
}

impl MockPod {
    pub fn new(resolved: ResolvedPod, pod_ip: String) -> Self {
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
            volumes: resolved.volumes,
            started: Timestamp::now(),
            pod_ip,
            terminated: false,
        }
    }

    pub fn container(&self, name: &str) -> Option<&MockContainer> {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .find(|c| c.name == name)
    }

    /// The pod as Kubernetes would show it.
    pub fn to_pod(&self, host_ip: &str) -> Pod {
        let as_spec = |c: &MockContainer| Container {
            name: c.name.clone(),
            image: Some(c.image.clone()),
            ..Container::default()
        };
        Pod {
            metadata: ObjectMeta {
                namespace: Some(self.namespace.clone()),
                name: Some(self.name.clone()),
                uid: Some(self.uid.clone()),
                creation_timestamp: Some(Time(self.started)),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: self.containers.iter().map(as_spec).collect(),
                init_containers: Some(self.init_containers.iter().map(as_spec).collect())
                    .filter(|c: &Vec<_>| !c.is_empty()),
                ..PodSpec::default()
            }),
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
        let container_status =
            |c: &MockContainer, state: &ContainerState, ready: bool| ContainerStatus {
                name: c.name.clone(),
                image: c.image.clone(),
                image_id: format!("mock://{}", c.image),
                container_id: Some(format!("mock://{}/{}", self.uid, c.name)),
                ready,
                started: Some(state.running.is_some()),
                restart_count: 0,
                state: Some(state.clone()),
                ..ContainerStatus::default()
            };
        PodStatus {
            phase: Some(
                if self.terminated {
                    "Succeeded"
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

/// The n-th pod IP of the mock's 10.0.0.0/8 pod range (skipping network and low addresses).
pub fn pod_ip(n: u32) -> String {
    let n = n % 0x00ff_ff00 + 0x100;
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}
