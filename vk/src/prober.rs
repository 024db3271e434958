//! The kubelet's probes and hooks for every provider: startup, liveness and readiness probes
//! run by one [`worker`] per container and probe, their results laid over the provider's
//! status (`started`, `ready`, the ContainersReady and Ready conditions), postStart hooks run
//! when a container starts, and [`termination`] messages completed from the logs.
//!
//! Only pods that need it are followed: those with a probe, a hook or a message to take from
//! the logs. For them the provider's last status is kept, so that a probe result that changes
//! rewrites it. A provider whose backend probes by itself ([`Capabilities::runs_probes`])
//! gets no probe workers; its `started` and `ready` stand as it reports them.

mod termination;
mod worker;

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodCondition, PodStatus};
use parking_lot::Mutex;
use tokio::{sync::mpsc, task::JoinHandle};
use vk_abi::Capabilities;

use crate::{
    events::{EventType, Recorder},
    handler::Target,
    lifecycle::{self, Hook},
    provider::Provider,
    status::PodKey,
};
pub use termination::limit_messages;
use worker::Kind;

#[cfg(test)]
mod tests;

/// Runs probes and hooks; cheap to clone.
#[derive(Debug, Clone)]
pub struct Prober {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    provider: Provider,
    capabilities: Capabilities,
    recorder: Recorder,
    pods: Mutex<HashMap<PodKey, Followed>>,
    /// Pods whose status must be written again: a result or a message changed.
    changed: mpsc::UnboundedSender<PodKey>,
    /// When vk started: workers that start within one period of it spread their first probe.
    started: Instant,
    /// vk's runtime: statuses arrive on the provider's threads, where none is current.
    runtime: tokio::runtime::Handle,
}

/// A pod the prober follows.
#[derive(Debug)]
struct Followed {
    uid: String,
    pod: Arc<Pod>,
    /// The provider's last status, before the prober's changes.
    reported: Option<PodStatus>,
    containers: HashMap<String, Probed>,
    /// The pod is being deleted: liveness and startup stop, readiness goes on.
    terminating: bool,
    workers: Vec<JoinHandle<()>>,
    /// Messages taken from the logs, by container ID.
    messages: HashMap<String, String>,
}

impl Drop for Followed {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.abort();
        }
    }
}

/// What the prober knows of one container.
#[derive(Debug, Clone)]
struct Probed {
    spec: Arc<Container>,
    field_path: String,
    /// The running instance (its container ID), if one runs.
    instance: Option<String>,
    started_at: Option<k8s_openapi::jiff::Timestamp>,
    /// The startup probe's result for this instance: `None` while unknown.
    startup: Option<bool>,
    /// The readiness probe's result for this instance.
    ready: bool,
}

impl Probed {
    fn started(&self) -> bool {
        self.instance.is_some() && (self.spec.startup_probe.is_none() || self.startup == Some(true))
    }
}

/// What a worker sees of its container at one tick.
#[derive(Debug, Clone)]
struct View {
    container: Probed,
    terminating: bool,
    target: Target,
    pod: Arc<Pod>,
}

impl Prober {
    /// A prober, and the pods whose status must be written again when their results change.
    /// Made within vk's runtime, where its tasks run.
    pub fn new(
        provider: Provider,
        capabilities: Capabilities,
        recorder: Recorder,
    ) -> (Self, mpsc::UnboundedReceiver<PodKey>) {
        let (changed, changes) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            provider,
            capabilities,
            recorder,
            pods: Mutex::default(),
            changed,
            started: Instant::now(),
            runtime: tokio::runtime::Handle::current(),
        });
        (Prober { shared }, changes)
    }

    /// Takes the provider's `status` of the pod into account and lays the probe results and
    /// messages over it. New containers get their workers and postStart hooks. `follows`
    /// is what [`Prober::follows`] said of the pod; `pod` gives the pod without its status,
    /// decoded only when it is read: for a pod the prober follows, or a message to cut.
    pub fn observe(
        &self,
        key: &PodKey,
        follows: bool,
        pod: impl FnOnce() -> Pod,
        status: &mut PodStatus,
    ) {
        if !follows && !termination::has_messages(status) {
            return;
        }
        let pod = Arc::new(pod());
        limit_messages(&pod, status);
        if !follows {
            return;
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let started = {
            let mut pods = self.shared.pods.lock();
            let followed = pods
                .entry(key.clone())
                .or_insert_with(|| Followed::new(uid.clone(), pod.clone()));
            if followed.uid != uid {
                *followed = Followed::new(uid.clone(), pod.clone());
            }
            followed.reported = Some(status.clone());
            let started = followed.track_instances(status);
            if followed.workers.is_empty() && !self.shared.capabilities.runs_probes {
                followed.workers = self.spawn_workers(key, &uid, followed);
            }
            self.overlay(followed, status);
            started
        };
        for name in started {
            self.post_start(key, &pod, &name);
        }
        self.complete_messages(key, &pod, status);
    }

    /// The provider's last status of a followed pod with the results laid over it, to be
    /// written again after a result changed.
    pub fn latest(&self, key: &PodKey) -> Option<(String, Arc<Pod>, PodStatus)> {
        let pods = self.shared.pods.lock();
        let followed = pods.get(key)?;
        let mut status = followed.reported.clone()?;
        self.overlay(followed, &mut status);
        Some((followed.uid.clone(), followed.pod.clone(), status))
    }

    /// The pod is being deleted: its liveness and startup probes stop; then its preStop hooks
    /// run, in parallel within `grace` seconds. The grace left for stopping its containers.
    pub async fn terminate(&self, key: &PodKey, grace: i64) -> i64 {
        let (pod, targets): (_, Vec<_>) = {
            let mut pods = self.shared.pods.lock();
            let Some(followed) = pods.get_mut(key) else {
                return grace;
            };
            followed.terminating = true;
            let pod_ip = pod_ip(followed.reported.as_ref());
            let targets = followed
                .containers
                .values()
                .filter(|c| c.instance.is_some())
                .map(|c| (self.target(key, c, pod_ip), Some(c.field_path.clone())))
                .collect();
            (followed.pod.clone(), targets)
        };
        lifecycle::pre_stop_all(&targets, &pod, grace, &self.shared.recorder).await
    }

    /// Stops following the pod: its workers end.
    pub fn forget(&self, key: &PodKey) {
        self.shared.pods.lock().remove(key);
    }

    /// Whether the pod needs the prober: a probe, a hook, or a message to take from the logs.
    pub fn follows(&self, pod: &Pod) -> bool {
        containers(pod).any(|(container, _)| {
            container.lifecycle.is_some()
                || termination::falls_back_to_logs(container)
                || (!self.shared.capabilities.runs_probes
                    && (container.startup_probe.is_some()
                        || container.liveness_probe.is_some()
                        || container.readiness_probe.is_some()))
        })
    }

    fn spawn_workers(&self, key: &PodKey, uid: &str, followed: &Followed) -> Vec<JoinHandle<()>> {
        let mut workers = Vec::new();
        for (name, container) in &followed.containers {
            for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
                if let Some(probe) = kind.probe(&container.spec) {
                    let worker = worker::Worker::new(
                        self.clone(),
                        key.clone(),
                        uid.to_string(),
                        name.clone(),
                        kind,
                        probe.clone(),
                    );
                    workers.push(self.shared.runtime.spawn(worker.run()));
                }
            }
        }
        workers
    }

    /// `status` with the results of the followed pod laid over it.
    fn overlay(&self, followed: &Followed, status: &mut PodStatus) {
        termination::fill_in(&followed.messages, status);
        if !self.shared.capabilities.runs_probes {
            lay_over(&followed.containers, status);
        }
    }

    fn target(&self, key: &PodKey, container: &Probed, pod_ip: Option<IpAddr>) -> Target {
        Target {
            provider: self.shared.provider.clone(),
            namespace: key.namespace.clone(),
            pod: key.name.clone(),
            container: container.spec.clone(),
            pod_ip,
            pod_ip_reachable: self.shared.capabilities.pod_ips_reachable,
        }
    }

    /// What the worker of `container` sees now; `None` once the pod is no longer followed.
    fn view(&self, key: &PodKey, uid: &str, container: &str) -> Option<View> {
        let pods = self.shared.pods.lock();
        let followed = pods.get(key).filter(|f| f.uid == uid)?;
        let probed = followed.containers.get(container)?.clone();
        let target = self.target(key, &probed, pod_ip(followed.reported.as_ref()));
        Some(View {
            container: probed,
            terminating: followed.terminating,
            target,
            pod: followed.pod.clone(),
        })
    }

    /// Records a startup or readiness result for `instance` of the container; the pod's
    /// status is written again if it changed.
    fn publish(&self, key: &PodKey, container: &str, instance: &str, kind: Kind, success: bool) {
        let changed = {
            let mut pods = self.shared.pods.lock();
            let probed = pods
                .get_mut(key)
                .and_then(|f| f.containers.get_mut(container))
                .filter(|c| c.instance.as_deref() == Some(instance));
            match (probed, kind) {
                (Some(probed), Kind::Startup) => {
                    let changed = probed.startup != Some(success);
                    probed.startup = Some(success);
                    changed
                }
                (Some(probed), Kind::Readiness) => {
                    let changed = probed.ready != success;
                    probed.ready = success;
                    changed
                }
                _ => false,
            }
        };
        if changed {
            let _ = self.shared.changed.send(key.clone());
        }
    }

    /// Runs the postStart hook of a container that just started; if it fails, the container
    /// is killed, to be restarted as its policy says.
    fn post_start(&self, key: &PodKey, pod: &Arc<Pod>, container: &str) {
        let Some(view) = self.view(
            key,
            pod.metadata.uid.as_deref().unwrap_or_default(),
            container,
        ) else {
            return;
        };
        if !lifecycle::has(&view.target, Hook::PostStart) {
            return;
        }
        let this = self.clone();
        let pod = pod.clone();
        self.shared.runtime.spawn(async move {
            let field_path = Some(view.container.field_path.clone());
            let recorder = &this.shared.recorder;
            let succeeded = lifecycle::run(
                &view.target,
                &pod,
                Hook::PostStart,
                None,
                recorder,
                field_path,
            )
            .await;
            if !succeeded {
                let grace = pod_grace(&pod);
                this.kill(&view, "FailedPostStartHook".into(), grace).await;
            }
        });
    }

    /// Kills the container of `view` with `message` as the `Killing` event: its preStop hook
    /// first, then the provider's restart, within `grace` seconds.
    async fn kill(&self, view: &View, message: String, grace: i64) {
        let shared = &self.shared;
        let field_path = Some(view.container.field_path.clone());
        shared.recorder.pod(
            &view.pod,
            EventType::Normal,
            "Killing",
            &message,
            field_path.clone(),
        );
        let limit = Duration::from_secs(grace.max(0).unsigned_abs());
        let started = Instant::now();
        lifecycle::run(
            &view.target,
            &view.pod,
            Hook::PreStop,
            Some(limit),
            &shared.recorder,
            field_path.clone(),
        )
        .await;
        let used = i64::try_from(started.elapsed().as_secs()).unwrap_or(i64::MAX);
        let grace = (grace - used).max(lifecycle::MIN_STOP_GRACE);
        let (pod, name) = (view.pod.clone(), view.container.spec.name.clone());
        let restarted = shared
            .provider
            .call("restart_container", move |p| {
                p.restart_container(&pod, &name, grace)
            })
            .await;
        if let Err(error) = restarted {
            let message = if error.kind == vk_abi::ErrorKind::Unsupported {
                format!(
                    "Container {} cannot be restarted: {}",
                    view.container.spec.name, error.message
                )
            } else {
                format!(
                    "cannot restart container {}: {}",
                    view.container.spec.name, error.message
                )
            };
            let reason = if error.kind == vk_abi::ErrorKind::Unsupported {
                "ProbeUnsupported"
            } else {
                "FailedKillContainer"
            };
            shared
                .recorder
                .pod(&view.pod, EventType::Warning, reason, &message, field_path);
        }
    }
}

impl Followed {
    fn new(uid: String, pod: Arc<Pod>) -> Self {
        let containers = containers(&pod)
            .map(|(container, field_path)| {
                let probed = Probed {
                    spec: Arc::new(container.clone()),
                    field_path,
                    instance: None,
                    started_at: None,
                    startup: None,
                    ready: false,
                };
                (container.name.clone(), probed)
            })
            .collect();
        Followed {
            uid,
            pod,
            reported: None,
            containers,
            terminating: false,
            workers: Vec::new(),
            messages: HashMap::new(),
        }
    }

    /// Notes which instance of each container runs; a new one starts with the kubelet's
    /// initial results (not ready, startup unknown). The containers that just started.
    fn track_instances(&mut self, status: &PodStatus) -> Vec<String> {
        let mut started = Vec::new();
        for container_status in all_statuses(status) {
            let Some(probed) = self.containers.get_mut(&container_status.name) else {
                continue;
            };
            let running = container_status
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref());
            let instance = running.map(|_| instance_of(container_status));
            if instance != probed.instance {
                probed.startup = None;
                probed.ready = false;
                if instance.is_some() {
                    started.push(container_status.name.clone());
                }
            }
            probed.instance = instance;
            probed.started_at = running.and_then(|r| r.started_at.as_ref()).map(|t| t.0);
        }
        started
    }
}

/// `started` and `ready` of each probed container of `status` as its probes say, and the
/// ready conditions false while one is not ready.
fn lay_over(containers: &HashMap<String, Probed>, status: &mut PodStatus) {
    let mut probed = false;
    let statuses = status
        .container_statuses
        .iter_mut()
        .flatten()
        .chain(status.init_container_statuses.iter_mut().flatten());
    for container_status in statuses {
        let Some(container) = containers.get(&container_status.name) else {
            continue;
        };
        let spec = &container.spec;
        if spec.startup_probe.is_some() {
            container_status.started = Some(container.started());
            probed = true;
        }
        if spec.readiness_probe.is_some() {
            container_status.ready = container.started() && container.ready;
            probed = true;
        } else if spec.startup_probe.is_some() {
            container_status.ready &= container.started();
        }
    }
    if probed {
        set_ready_conditions(status, containers);
    }
}

/// The containers of `pod` that probes and hooks apply to (app containers and sidecars), with
/// their field paths.
fn containers(pod: &Pod) -> impl Iterator<Item = (&Container, String)> {
    let spec = pod.spec.as_ref();
    let apps = spec
        .into_iter()
        .flat_map(|s| &s.containers)
        .map(|c| (c, format!("spec.containers{{{}}}", c.name)));
    let sidecars = spec
        .into_iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| (c, format!("spec.initContainers{{{}}}", c.name)));
    apps.chain(sidecars)
}

fn all_statuses(status: &PodStatus) -> impl Iterator<Item = &ContainerStatus> {
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
}

/// Identifies one run of a container: its ID, or where a provider gives none, its start.
fn instance_of(status: &ContainerStatus) -> String {
    match &status.container_id {
        Some(id) if !id.is_empty() => format!("{id}#{}", status.restart_count),
        _ => format!("{}#{}", status.name, status.restart_count),
    }
}

fn pod_ip(status: Option<&PodStatus>) -> Option<IpAddr> {
    status?.pod_ip.as_deref()?.parse().ok()
}

/// The pod's grace period: `terminationGracePeriodSeconds`, 30 by default.
fn pod_grace(pod: &Pod) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30)
}

/// ContainersReady and Ready false, naming the containers not ready, while one of
/// `containers` (the app containers and sidecars) is not.
fn set_ready_conditions(status: &mut PodStatus, containers: &HashMap<String, Probed>) {
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return;
    }
    let unready: Vec<_> = all_statuses(status)
        .filter(|s| containers.contains_key(&s.name) && !s.ready)
        .map(|s| s.name.clone())
        .collect();
    if unready.is_empty() {
        return;
    }
    let message = format!("containers with unready status: [{}]", unready.join(" "));
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    for kind in ["ContainersReady", "Ready"] {
        let not_ready = PodCondition {
            type_: kind.into(),
            status: "False".into(),
            reason: Some("ContainersNotReady".into()),
            message: Some(message.clone()),
            last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            )),
            ..PodCondition::default()
        };
        match conditions.iter_mut().find(|c| c.type_ == kind) {
            Some(condition) if condition.status == "False" => {
                condition.reason = not_ready.reason;
                condition.message = not_ready.message;
            }
            Some(condition) => *condition = not_ready,
            None => conditions.push(not_ready),
        }
    }
}
