//! A pod as engine objects: the infra container that holds the pod's network namespace, one
//! container per pod container joined to it, and a labelled volume per emptyDir. Every object
//! carries labels naming its pod, so that listing and adoption need no other record.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, PortBinding};
use vk_abi::{
    ResolvedPod,
    k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ResourceRequirements},
    quantity::Amount,
};

use crate::config::Infra;

/// The node the object belongs to.
pub const NODE_LABEL: &str = "io.virtual-kubelet.node";
/// The pod's namespace, name and UID, and the container's name: the dockershim's label names.
pub const NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const POD_LABEL: &str = "io.kubernetes.pod.name";
pub const UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_LABEL: &str = "io.kubernetes.container.name";
/// `infra`, `init` or `app`.
pub const ROLE_LABEL: &str = "io.virtual-kubelet.role";
/// An init container's position, from 0.
pub const INDEX_LABEL: &str = "io.virtual-kubelet.index";
/// The pod's `restartPolicy`, on every container.
pub const RESTART_POLICY_LABEL: &str = "io.virtual-kubelet.restart-policy";

/// The name the infra container answers to in status and labels.
pub const INFRA_NAME: &str = "POD";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("pod has no {0}")]
    Missing(&'static str),
    #[error("container {container}: {problem}")]
    Container { container: String, problem: String },
    #[error("volume {volume:?}: {problem}")]
    Volume { volume: String, problem: String },
}

/// A container's part in its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Infra,
    Init,
    /// An init container with `restartPolicy: Always` (KEP-753): it starts in the init
    /// containers' order, runs beside the app containers, restarts whenever it exits, and stops
    /// after them.
    Sidecar,
    App,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Infra => "infra",
            Role::Init => "init",
            Role::Sidecar => "sidecar",
            Role::App => "app",
        }
    }

    pub fn from_label(label: &str) -> Option<Role> {
        match label {
            "infra" => Some(Role::Infra),
            "init" => Some(Role::Init),
            "sidecar" => Some(Role::Sidecar),
            "app" => Some(Role::App),
            _ => None,
        }
    }

    /// Whether the container is listed among the pod's `initContainers`.
    pub fn is_init(self) -> bool {
        matches!(self, Role::Init | Role::Sidecar)
    }
}

/// Who a pod is: enough to name and label its objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodIdentity {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl PodIdentity {
    pub fn of(pod: &Pod) -> Result<PodIdentity, SpecError> {
        let metadata = &pod.metadata;
        Ok(PodIdentity {
            namespace: metadata
                .namespace
                .clone()
                .ok_or(SpecError::Missing("namespace"))?,
            name: metadata.name.clone().ok_or(SpecError::Missing("name"))?,
            uid: metadata.uid.clone().ok_or(SpecError::Missing("uid"))?,
        })
    }

    /// `k8s_<container>_<pod>_<namespace>_<uid>_0`, as the dockershim named them.
    pub fn container_name(&self, container: &str) -> String {
        format!(
            "k8s_{container}_{}_{}_{}_0",
            self.name, self.namespace, self.uid
        )
    }

    /// The engine volume behind an emptyDir.
    pub fn volume_name(&self, volume: &str) -> String {
        format!("k8s_{volume}_{}_{}_{}", self.name, self.namespace, self.uid)
    }

    /// The labels of every object of this pod.
    pub fn labels(&self, node: &str) -> HashMap<String, String> {
        HashMap::from([
            (NODE_LABEL.to_string(), node.to_string()),
            (NAMESPACE_LABEL.to_string(), self.namespace.clone()),
            (POD_LABEL.to_string(), self.name.clone()),
            (UID_LABEL.to_string(), self.uid.clone()),
        ])
    }
}

/// One container to create, in start order.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    pub name: String,
    pub role: Role,
    pub image: String,
    pub pull_policy: PullPolicy,
    pub body: ContainerCreateBody,
    /// Files to write into the container before it starts, by absolute path.
    pub files: BTreeMap<String, vk_abi::VolumeFile>,
}

/// `imagePullPolicy`, defaulted the API server's way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    fn of(container: &Container, image: &str) -> PullPolicy {
        match container.image_pull_policy.as_deref() {
            Some("Always") => PullPolicy::Always,
            Some("Never") => PullPolicy::Never,
            Some(_) => PullPolicy::IfNotPresent,
            None if image_tag(image).is_none_or(|tag| tag == "latest") => PullPolicy::Always,
            None => PullPolicy::IfNotPresent,
        }
    }
}

/// The tag of `repository[:tag][@digest]`; a digest counts as a tag.
fn image_tag(image: &str) -> Option<&str> {
    if let Some((_, digest)) = image.split_once('@') {
        return Some(digest);
    }
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    last_segment.split_once(':').map(|(_, tag)| tag)
}

/// The node's namespaces a pod shares: `hostNetwork`, `hostPID`, `hostIPC`. The engine's
/// `host` modes give them, on the engine's host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostNamespaces {
    pub network: bool,
    pub pid: bool,
    pub ipc: bool,
}

impl HostNamespaces {
    fn of(spec: &PodSpec) -> Self {
        HostNamespaces {
            network: spec.host_network == Some(true),
            pid: spec.host_pid == Some(true),
            ipc: spec.host_ipc == Some(true),
        }
    }

    /// How a container of the pod joins the network, IPC, UTS and PID namespaces, given the
    /// infra container that holds the pod's own; UTS is shared only where the engine can
    /// (Podman).
    pub fn join(&self, host: &mut HostConfig, infra: &str, share_uts: bool) {
        let mode = |on_host: bool| {
            if on_host {
                "host".to_string()
            } else {
                format!("container:{infra}")
            }
        };
        host.network_mode = Some(mode(self.network));
        host.ipc_mode = Some(mode(self.ipc));
        if self.network || share_uts {
            host.uts_mode = Some(mode(self.network));
        }
        if self.pid {
            host.pid_mode = Some("host".into());
        }
    }
}

/// What a pod becomes on the engine.
#[derive(Debug, Clone)]
pub struct PodPlan {
    pub identity: PodIdentity,
    pub host: HostNamespaces,
    pub labels: HashMap<String, String>,
    /// Engine volumes to create, one per emptyDir.
    pub volumes: Vec<String>,
    pub infra: ContainerPlan,
    /// Init containers, then app containers, in the pod's order.
    pub containers: Vec<ContainerPlan>,
}

/// Plans `resolved` for `node`. The infra container's body is complete; the others get
/// `NetworkMode`/`IpcMode` naming it once it exists.
pub fn plan(
    resolved: &ResolvedPod,
    node: &str,
    infra: &Infra,
    network: Option<&str>,
) -> Result<PodPlan, SpecError> {
    let pod = &resolved.pod;
    let identity = PodIdentity::of(pod)?;
    let spec = pod.spec.as_ref().ok_or(SpecError::Missing("spec"))?;
    let labels = identity.labels(node);
    let restart_policy = spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into());
    let volumes = Volumes::of(spec, resolved, &identity)?;
    let host = HostNamespaces::of(spec);
    let hostname = spec
        .hostname
        .clone()
        .unwrap_or_else(|| identity.name.chars().take(63).collect());
    let init = spec.init_containers.iter().flatten().map(|c| {
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        (if sidecar { Role::Sidecar } else { Role::Init }, c)
    });
    let app = spec.containers.iter().map(|c| (Role::App, c));
    let containers = init
        .chain(app)
        .enumerate()
        .map(|(index, (role, container))| {
            let mut labels = labels.clone();
            labels.insert(ROLE_LABEL.into(), role.label().into());
            labels.insert(INDEX_LABEL.into(), index.to_string());
            labels.insert(CONTAINER_LABEL.into(), container.name.clone());
            labels.insert(RESTART_POLICY_LABEL.into(), restart_policy.clone());
            let hostname = (!host.network).then_some(hostname.as_str());
            container_plan(container, role, labels, &volumes, hostname)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let engine_volumes = volumes.engine_volumes();
    Ok(PodPlan {
        infra: infra_plan(spec, &hostname, &labels, infra, network, &restart_policy),
        identity,
        host,
        labels,
        volumes: engine_volumes,
        containers,
    })
}

fn infra_plan(
    spec: &PodSpec,
    hostname: &str,
    labels: &HashMap<String, String>,
    infra: &Infra,
    network: Option<&str>,
    restart_policy: &str,
) -> ContainerPlan {
    let mut labels = labels.clone();
    labels.insert(ROLE_LABEL.into(), Role::Infra.label().into());
    labels.insert(CONTAINER_LABEL.into(), INFRA_NAME.into());
    labels.insert(RESTART_POLICY_LABEL.into(), restart_policy.into());
    let host = HostNamespaces::of(spec);
    // On the host's network a container's ports are the host's: nothing to publish, and the
    // host's name is the pod's.
    let ports: Vec<_> = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|_| !host.network)
        .collect();
    let port_key = |port: &vk_abi::k8s_openapi::api::core::v1::ContainerPort| {
        format!(
            "{}/{}",
            port.container_port,
            port.protocol.as_deref().unwrap_or("TCP").to_lowercase()
        )
    };
    let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = ports
        .iter()
        .filter_map(|port| {
            let host_port = port.host_port.filter(|p| *p > 0)?;
            Some((
                port_key(port),
                Some(vec![PortBinding {
                    host_ip: port.host_ip.clone(),
                    host_port: Some(host_port.to_string()),
                }]),
            ))
        })
        .collect();
    let dns = spec.dns_config.as_ref();
    let extra_hosts: Vec<String> = spec
        .host_aliases
        .iter()
        .flatten()
        .flat_map(|alias| {
            alias
                .hostnames
                .iter()
                .flatten()
                .map(move |host| format!("{host}:{}", alias.ip))
        })
        .collect();
    ContainerPlan {
        name: INFRA_NAME.into(),
        role: Role::Infra,
        image: infra.image.clone(),
        pull_policy: PullPolicy::IfNotPresent,
        body: ContainerCreateBody {
            image: Some(infra.image.clone()),
            cmd: infra.command.clone(),
            hostname: (!host.network).then(|| hostname.to_string()),
            labels: Some(labels),
            exposed_ports: (!ports.is_empty()).then(|| ports.iter().map(|p| port_key(p)).collect()),
            host_config: Some(HostConfig {
                network_mode: if host.network {
                    Some("host".into())
                } else {
                    network.map(str::to_string)
                },
                ipc_mode: Some(if host.ipc { "host" } else { "shareable" }.into()),
                uts_mode: host.network.then(|| "host".into()),
                pid_mode: host.pid.then(|| "host".into()),
                port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
                dns: dns.and_then(|d| d.nameservers.clone()),
                dns_search: dns.and_then(|d| d.searches.clone()),
                dns_options: dns.and_then(|d| d.options.as_ref()).map(|options| {
                    options
                        .iter()
                        .filter_map(|o| {
                            let name = o.name.as_ref()?;
                            Some(match &o.value {
                                Some(value) => format!("{name}:{value}"),
                                None => name.clone(),
                            })
                        })
                        .collect()
                }),
                extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        },
        files: BTreeMap::new(),
    }
}

fn container_plan(
    container: &Container,
    role: Role,
    labels: HashMap<String, String>,
    volumes: &Volumes<'_>,
    hostname: Option<&str>,
) -> Result<ContainerPlan, SpecError> {
    let problem = |problem: String| SpecError::Container {
        container: container.name.clone(),
        problem,
    };
    let image = container
        .image
        .clone()
        .filter(|image| !image.is_empty())
        .ok_or_else(|| problem("no image".into()))?;
    let variables = container.env.iter().flatten();
    let mut env: Vec<String> = variables
        .clone()
        .map(|var| format!("{}={}", var.name, var.value.as_deref().unwrap_or_default()))
        .collect();
    // Engines that cannot share the infra container's hostname still show it in $HOSTNAME
    // (a pod on the host's network has the host's).
    if let Some(hostname) = hostname
        && !variables.clone().any(|var| var.name == "HOSTNAME")
    {
        env.push(format!("HOSTNAME={hostname}"));
    }
    let (mounts, files) = volumes.for_container(container)?;
    let resources = Resources::of(container.resources.as_ref()).map_err(problem)?;
    let security = container.security_context.as_ref();
    let user = security.and_then(|s| s.run_as_user).map(|uid| {
        match security.and_then(|s| s.run_as_group) {
            Some(gid) => format!("{uid}:{gid}"),
            None => uid.to_string(),
        }
    });
    Ok(ContainerPlan {
        name: container.name.clone(),
        role,
        pull_policy: PullPolicy::of(container, &image),
        image: image.clone(),
        body: ContainerCreateBody {
            image: Some(image),
            // Kubernetes' command replaces the image's entrypoint (and then its cmd too); args
            // replace its cmd. Unset stays unset: [] would clear the image's.
            entrypoint: container.command.clone(),
            cmd: container.args.clone(),
            env: Some(env),
            working_dir: container.working_dir.clone(),
            user,
            labels: Some(labels),
            tty: container.tty,
            open_stdin: container.stdin,
            stdin_once: container.stdin_once,
            attach_stdin: container.stdin,
            host_config: Some(HostConfig {
                mounts: (!mounts.is_empty()).then_some(mounts),
                nano_cpus: resources.nano_cpus,
                cpu_shares: resources.cpu_shares,
                memory: resources.memory,
                memory_reservation: resources.memory_reservation,
                privileged: security.and_then(|s| s.privileged),
                readonly_rootfs: security.and_then(|s| s.read_only_root_filesystem),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        },
        files,
    })
}

/// The engine's resource settings of a container.
#[derive(Debug, Default, PartialEq, Eq)]
struct Resources {
    nano_cpus: Option<i64>,
    cpu_shares: Option<i64>,
    memory: Option<i64>,
    memory_reservation: Option<i64>,
}

impl Resources {
    fn of(requirements: Option<&ResourceRequirements>) -> Result<Resources, String> {
        let get = |map: Option<
            &BTreeMap<String, vk_abi::k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >,
                   resource: &str| {
            map.and_then(|map| map.get(resource))
                .map(|quantity| {
                    Amount::parse(&quantity.0).map_err(|error| format!("resources: {error}"))
                })
                .transpose()
        };
        let limits = requirements.and_then(|r| r.limits.as_ref());
        let requests = requirements.and_then(|r| r.requests.as_ref());
        Ok(Resources {
            nano_cpus: get(limits, "cpu")?.map(|cpu| cpu.ceil_milli().saturating_mul(1_000_000)),
            // The kubelet's shares: 1024 per CPU, at least 2.
            cpu_shares: get(requests, "cpu")?.map(|cpu| (cpu.ceil_milli() * 1024 / 1000).max(2)),
            memory: get(limits, "memory")?.map(Amount::ceil_units),
            memory_reservation: get(requests, "memory")?.map(Amount::ceil_units),
        })
    }
}

/// The pod's volumes by name, and how each reaches a container.
struct Volumes<'p> {
    identity: &'p PodIdentity,
    kinds: BTreeMap<&'p str, VolumeKind<'p>>,
}

enum VolumeKind<'p> {
    /// An engine volume, shared by the pod's containers.
    EmptyDir,
    /// A directory of the engine's host.
    HostPath(&'p str),
    /// Files resolved by vk, written into each container that mounts them.
    Files(&'p vk_abi::VolumeFiles),
}

impl<'p> Volumes<'p> {
    fn of(
        spec: &'p PodSpec,
        resolved: &'p ResolvedPod,
        identity: &'p PodIdentity,
    ) -> Result<Self, SpecError> {
        let mut kinds = BTreeMap::new();
        for volume in spec.volumes.iter().flatten() {
            let kind = if let Some(files) = resolved.volumes.get(&volume.name) {
                VolumeKind::Files(files)
            } else if volume.empty_dir.is_some() {
                VolumeKind::EmptyDir
            } else if let Some(host_path) = &volume.host_path {
                VolumeKind::HostPath(&host_path.path)
            } else {
                return Err(SpecError::Volume {
                    volume: volume.name.clone(),
                    problem: "only emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes are supported by this provider".into(),
                });
            };
            kinds.insert(volume.name.as_str(), kind);
        }
        Ok(Volumes { identity, kinds })
    }

    fn engine_volumes(&self) -> Vec<String> {
        self.kinds
            .iter()
            .filter(|(_, kind)| matches!(kind, VolumeKind::EmptyDir))
            .map(|(name, _)| self.identity.volume_name(name))
            .collect()
    }

    /// The mounts of `container`, and the files to write into it.
    #[allow(clippy::type_complexity)]
    fn for_container(
        &self,
        container: &Container,
    ) -> Result<(Vec<Mount>, BTreeMap<String, vk_abi::VolumeFile>), SpecError> {
        let mut mounts = Vec::new();
        let mut files = BTreeMap::new();
        for mount in container.volume_mounts.iter().flatten() {
            let kind = self
                .kinds
                .get(mount.name.as_str())
                .ok_or_else(|| SpecError::Container {
                    container: container.name.clone(),
                    problem: format!("volume mount {:?} names no volume of the pod", mount.name),
                })?;
            let sub_path = mount.sub_path.as_deref().filter(|p| !p.is_empty());
            let target = mount.mount_path.trim_end_matches('/').to_string();
            let read_only = mount.read_only;
            match kind {
                VolumeKind::EmptyDir | VolumeKind::HostPath(_) if sub_path.is_some() => {
                    return Err(SpecError::Container {
                        container: container.name.clone(),
                        problem: format!(
                            "subPath of volume {:?} is not supported by this provider",
                            mount.name
                        ),
                    });
                }
                VolumeKind::EmptyDir => mounts.push(Mount {
                    target: Some(target),
                    source: Some(self.identity.volume_name(&mount.name)),
                    typ: Some(MountType::VOLUME),
                    read_only,
                    ..Mount::default()
                }),
                VolumeKind::HostPath(path) => mounts.push(Mount {
                    target: Some(target),
                    source: Some(path.to_string()),
                    typ: Some(MountType::BIND),
                    read_only,
                    ..Mount::default()
                }),
                VolumeKind::Files(volume) => {
                    for (path, file) in &volume.files {
                        let destination = match sub_path {
                            None => Some(format!("{target}/{path}")),
                            Some(sub_path) if path == sub_path => Some(target.clone()),
                            Some(sub_path) => path
                                .strip_prefix(sub_path)
                                .and_then(|rest| rest.strip_prefix('/'))
                                .map(|rest| format!("{target}/{rest}")),
                        };
                        if let Some(destination) = destination {
                            files.insert(destination, file.clone());
                        }
                    }
                }
            }
        }
        Ok((mounts, files))
    }
}
