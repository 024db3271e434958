//! The provider's state and the pod lifecycle on the engine: creating a pod's objects, running
//! its init containers in order before its app containers, restarting exited containers per
//! the restart policy with the kubelet's back-off, and stopping and removing everything.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use bollard::{
    models::{ContainerCreateBody, HostConfig, VolumeCreateRequest},
    query_parameters::{
        CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
        UploadToContainerOptionsBuilder,
    },
};
use futures::StreamExt as _;
use parking_lot::{Mutex, RwLock};
use vk_abi::{
    EventType, PodEvent, PodNotifier, ResolvedPod, VolumeFile,
    k8s_openapi::api::core::v1::{
        Container, ContainerStateTerminated, ContainerStateWaiting, Pod, PodSpec, PodStatus,
    },
    k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

use crate::{
    config::Config,
    engine::Engine,
    images::{self, ImageError, Pull},
    inventory::{self, Listed, PodView},
    messages::MessageFiles,
    pod_locks::PodLocks,
    resize,
    spec::{self, ContainerPlan, PodIdentity, PodPlan, Resources, Role, SpecError},
    status::{self, Memory},
};

/// Kubernetes event types, short for the many calls below.
const NORMAL: EventType = EventType::Normal;
const WARNING: EventType = EventType::Warning;

/// The least time a container is given to stop, as the kubelet gives it.
const MIN_STOP_SECONDS: i32 = 2;

/// The kubelet's crash-loop back-off: 10 s, doubling, at most 5 minutes.
const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{what}: {source}")]
    Engine {
        what: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// `source` while doing `what`.
pub fn engine_error(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> PodError {
    let what = what.into();
    move |source| PodError::Engine { what, source }
}

/// Everything the provider's calls and background tasks share.
#[derive(Debug)]
pub struct Backend {
    pub engine: Engine,
    pub config: Config,
    pub node_name: String,
    pub host_ip: String,
    /// By pod UID; a pod with nothing to keep has no entry.
    pods: Mutex<HashMap<String, PodState>>,
    notifier: RwLock<Option<PodNotifier>>,
    /// Creates and deletes of one pod run one after the other (see `pod_locks`).
    pod_locks: PodLocks,
    /// The containers' termination message files; a remote engine has none.
    messages: Option<MessageFiles>,
}

/// What the backend keeps of one pod between calls, beyond what the engine records.
#[derive(Debug, Default)]
struct PodState {
    memory: Memory,
    /// The pod is being stopped: its exits are not restarts.
    deleting: bool,
    /// Its report waits for more events (see `events`).
    gathering: bool,
}

impl PodState {
    fn is_empty(&self) -> bool {
        !self.deleting && !self.gathering && self.memory.is_empty()
    }
}

impl Backend {
    pub fn new(engine: Engine, config: Config, node_name: String, host_ip: String) -> Backend {
        Backend {
            messages: engine
                .is_local()
                .then(|| MessageFiles::for_node(&node_name)),
            engine,
            config,
            node_name,
            host_ip,
            pods: Mutex::default(),
            notifier: RwLock::default(),
            pod_locks: PodLocks::default(),
        }
    }

    pub fn set_notifier(&self, notifier: PodNotifier) {
        *self.notifier.write() = Some(notifier);
    }

    fn memory(&self, uid: &str) -> Memory {
        self.pods
            .lock()
            .get(uid)
            .map(|pod| pod.memory.clone())
            .unwrap_or_default()
    }

    /// Changes what is kept of pod `uid`, dropping its entry once nothing is left.
    fn update_state(&self, uid: &str, change: impl FnOnce(&mut PodState)) {
        let mut pods = self.pods.lock();
        let pod = pods.entry(uid.to_string()).or_default();
        change(pod);
        if pod.is_empty() {
            pods.remove(uid);
        }
    }

    fn remember(&self, uid: &str, change: impl FnOnce(&mut Memory)) {
        self.update_state(uid, |pod| change(&mut pod.memory));
    }

    fn is_deleting(&self, uid: &str) -> bool {
        self.pods.lock().get(uid).is_some_and(|pod| pod.deleting)
    }

    /// The pod `namespace/name` as the engine runs it; `None` when it has none of it.
    pub async fn pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, PodError> {
        let view = inventory::inspect_pod(&self.engine, &self.node_name, namespace, name)
            .await
            .map_err(engine_error(format!(
                "cannot inspect pod {namespace}/{name}"
            )))?;
        Ok(view.map(|view| self.to_pod(&view)))
    }

    fn to_pod(&self, view: &PodView) -> Pod {
        let memory = self.memory(&view.identity.uid);
        let container = |c: &inventory::ContainerView| Container {
            name: c.name.clone(),
            image: c
                .inspect
                .config
                .as_ref()
                .and_then(|config| config.image.clone()),
            ..Container::default()
        };
        Pod {
            metadata: metadata(&view.identity),
            spec: Some(PodSpec {
                node_name: Some(self.node_name.clone()),
                restart_policy: Some(view.restart_policy.clone()),
                init_containers: Some(
                    view.containers
                        .iter()
                        .filter(|c| c.role.is_init())
                        .map(container)
                        .collect(),
                )
                .filter(|init: &Vec<_>| !init.is_empty()),
                containers: view
                    .containers
                    .iter()
                    .filter(|c| c.role == Role::App)
                    .map(container)
                    .collect(),
                ..PodSpec::default()
            }),
            status: Some(
                self.with_messages(view, status::pod_status(view, &memory, &self.host_ip)),
            ),
        }
    }

    /// `status` with the message each exited container wrote into its message file.
    fn with_messages(&self, view: &PodView, mut status: PodStatus) -> PodStatus {
        let Some(messages) = &self.messages else {
            return status;
        };
        let statuses = status
            .container_statuses
            .iter_mut()
            .flatten()
            .chain(status.init_container_statuses.iter_mut().flatten());
        for container in statuses {
            let terminated = container.state.as_mut().and_then(|s| s.terminated.as_mut());
            if let Some(terminated) = terminated.filter(|t| t.message.is_none()) {
                terminated.message = messages.read(&view.identity.uid, &container.name);
            }
        }
        status
    }

    /// Every pod of this node, from the labels of its containers.
    pub async fn list(self: &Arc<Self>) -> Result<Vec<Pod>, PodError> {
        let listed = inventory::list(&self.engine, &self.node_name, None)
            .await
            .map_err(engine_error("cannot list containers"))?;
        let pods = inventory::by_pod(listed);
        // What is listed here, vk adopts: a start cut short resumes now, even when the engine
        // made its last container only after this process first looked (`resync`).
        // Only a pod with an app container never started is inspected: a crash-looping one
        // is `container_exited`'s, and listing stays one engine call for the rest.
        let unstarted =
            |containers: &&Vec<Listed>| containers.iter().any(|c| c.role == Role::App && c.created);
        for containers in pods.values().filter(unstarted) {
            if let Ok(Some(view)) = inventory::view_of(&self.engine, containers.clone()).await {
                self.resume(view).await;
            }
        }
        Ok(pods
            .into_values()
            .map(|mut containers| {
                containers.sort_by_key(|c| c.index);
                let container = |c: &Listed| Container {
                    name: c.name.clone(),
                    image: Some(c.image.clone()),
                    ..Container::default()
                };
                let of_roles = |roles: &[Role]| -> Vec<Container> {
                    containers
                        .iter()
                        .filter(|c| roles.contains(&c.role))
                        .map(container)
                        .collect()
                };
                // A pod whose creation was cut short lacks containers here, and vk creates
                // it again (see `create`).
                Pod {
                    metadata: metadata(&containers[0].identity),
                    spec: Some(PodSpec {
                        node_name: Some(self.node_name.clone()),
                        init_containers: Some(of_roles(&[Role::Init, Role::Sidecar]))
                            .filter(|c| !c.is_empty()),
                        containers: of_roles(&[Role::App]),
                        ..PodSpec::default()
                    }),
                    status: None,
                }
            })
            .collect())
    }

    /// Starts gathering events of pod `uid` for one report; false if already gathering.
    pub fn gather(&self, uid: &str) -> bool {
        let mut started = false;
        self.update_state(uid, |pod| {
            started = !std::mem::replace(&mut pod.gathering, true)
        });
        started
    }

    pub fn gathered(&self, uid: &str) {
        self.update_state(uid, |pod| pod.gathering = false);
    }

    /// Tells vk the current status of `namespace/name`.
    pub async fn notify(&self, namespace: &str, name: &str) {
        let Some(notifier) = self.notifier.read().clone() else {
            return;
        };
        match self.pod(namespace, name).await {
            Ok(Some(pod)) => notifier.notify(&pod),
            Ok(None) => {}
            Err(error) => log::warn!("cannot report the status of {namespace}/{name}: {error}"),
        }
    }

    fn plan(&self, resolved: &ResolvedPod) -> Result<PodPlan, SpecError> {
        let network = self.config.network.as_deref();
        spec::plan(resolved, &self.node_name, &self.config.infra, network)
    }

    /// Creates the pod's objects and starts it; returns once its containers exist, while init
    /// and app containers start in the background.
    pub async fn create(self: &Arc<Self>, resolved: ResolvedPod) -> Result<(), PodError> {
        let plan = self.plan(&resolved)?;
        let identity = plan.identity.clone();
        let _pod_lock = self.pod_locks.lock(&identity.uid).await;
        self.engine
            .negotiate()
            .await
            .map_err(|error| PodError::Unavailable(error.to_string()))?;
        let existing = inventory::inspect_pod(
            &self.engine,
            &self.node_name,
            &identity.namespace,
            &identity.name,
        )
        .await
        .map_err(engine_error("cannot inspect the pod's containers"))?;
        match existing {
            // Created before: by this process (a retried call that timed out), whose start
            // goes on; or by a vk that died before starting it all, and whose last container
            // the engine made only after this process looked at start-up: that start resumes.
            Some(view) if view.identity.uid == identity.uid && view.covers(&plan) => {
                self.resume(view).await;
                return Ok(());
            }
            // A predecessor of the same name is still being removed, or vk stopped while it
            // created this pod: nothing of it ran yet, so it is made again from the start.
            Some(view) => self.remove_objects(&view.identity).await?,
            None => {}
        }
        for container in std::iter::once(&plan.infra).chain(&plan.containers) {
            let image = &container.image;
            let outcome = images::ensure(
                &self.engine,
                image,
                container.pull_policy,
                &resolved.registry_credentials,
            )
            .await;
            if container.role == Role::Infra {
                outcome?;
                continue;
            }
            let (kind, reason, message) = match &outcome {
                Ok(Pull::Present) => (
                    NORMAL,
                    "Pulled",
                    format!("Container image {image:?} already present on machine"),
                ),
                Ok(Pull::Pulled) => (
                    NORMAL,
                    "Pulled",
                    format!("Successfully pulled image {image:?}"),
                ),
                Err(error) => (WARNING, "Failed", error.to_string()),
            };
            self.event(
                &identity,
                container.role,
                &container.name,
                kind,
                reason,
                message,
            );
            outcome?;
        }
        let mut plan = plan;
        if let (Some(messages), Some(spec)) = (&self.messages, &resolved.pod.spec) {
            messages.prepare(&mut plan, spec).map_err(|error| {
                PodError::Unavailable(format!(
                    "cannot make the termination message files: {error}"
                ))
            })?;
        }
        let created = match self.create_objects(&plan).await {
            Ok(created) => created,
            Err(error) => {
                if let Err(cleanup) = self.remove_objects(&identity).await {
                    log::warn!(
                        "cannot clean up after a failed create of {}/{}: {cleanup}",
                        identity.namespace,
                        identity.name
                    );
                }
                return Err(error);
            }
        };
        let restart_policy = resolved
            .pod
            .spec
            .as_ref()
            .and_then(|spec| spec.restart_policy.clone())
            .unwrap_or_else(|| "Always".into());
        self.remember(&identity.uid, |memory| memory.starting = true);
        let this = self.clone();
        tokio::spawn(async move {
            this.start_containers(identity, restart_policy, created)
                .await
        });
        Ok(())
    }

    /// Goes on with a pod whose start was cut short (vk stopped after creating its containers
    /// and before starting them all): init containers that have not succeeded run in order,
    /// then app containers never started start. Nothing that runs or ran is touched: exits are
    /// `container_exited`'s.
    async fn resume(self: &Arc<Self>, view: PodView) {
        let memory = self.memory(&view.identity.uid);
        if memory.starting || self.is_deleting(&view.identity.uid) {
            return;
        }
        let unstarted_app = view
            .containers
            .iter()
            .any(|c| c.role == Role::App && status::never_started(&c.inspect));
        if !unstarted_app {
            return;
        }
        let identity = view.identity.clone();
        log::info!(
            "resuming the start of {}/{}, cut short when vk stopped",
            identity.namespace,
            identity.name
        );
        let steps = view
            .containers
            .iter()
            .filter(|c| match c.role {
                Role::Init => !status::succeeded(&c.inspect),
                _ => status::never_started(&c.inspect),
            })
            .map(|c| (c.role, c.name.clone(), c.id.clone()))
            .collect();
        self.remember(&identity.uid, |memory| memory.starting = true);
        let this = self.clone();
        tokio::spawn(async move {
            this.start_containers(identity, view.restart_policy, steps)
                .await
        });
    }

    /// Creates volumes, the infra container (started), and the pod's containers (not started),
    /// with their files written in; returns the containers' roles, names and IDs in order.
    async fn create_objects(
        &self,
        plan: &PodPlan,
    ) -> Result<Vec<(Role, String, String)>, PodError> {
        for volume in &plan.volumes {
            self.engine
                .docker
                .create_volume(VolumeCreateRequest {
                    name: Some(volume.clone()),
                    labels: Some(plan.labels.clone()),
                    ..VolumeCreateRequest::default()
                })
                .await
                .map_err(engine_error(format!("cannot create volume {volume}")))?;
        }
        let infra = self
            .create_container(&plan.identity, &plan.infra, plan.infra.body.clone())
            .await?;
        self.engine
            .docker
            .start_container(&infra, None)
            .await
            .map_err(engine_error("cannot start the pod's infra container"))?;
        let mut created = Vec::new();
        for container in &plan.containers {
            let mut body = container.body.clone();
            let host = body.host_config.get_or_insert_with(HostConfig::default);
            plan.host.join(host, &infra, self.engine.is_podman());
            let id = self
                .create_container(&plan.identity, container, body)
                .await?;
            let message = format!("Created container: {}", container.name);
            self.event(
                &plan.identity,
                container.role,
                &container.name,
                NORMAL,
                "Created",
                message,
            );
            self.write_files(&id, &container.files)
                .await
                .map_err(engine_error(format!(
                    "cannot write the volume files of container {}",
                    container.name
                )))?;
            created.push((container.role, container.name.clone(), id));
        }
        Ok(created)
    }

    async fn create_container(
        &self,
        identity: &PodIdentity,
        container: &ContainerPlan,
        body: ContainerCreateBody,
    ) -> Result<String, PodError> {
        let options = CreateContainerOptionsBuilder::new()
            .name(&identity.container_name(&container.name))
            .build();
        let created = self
            .engine
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(engine_error(format!(
                "cannot create container {}",
                container.name
            )))?;
        Ok(created.id)
    }

    /// Writes `files` (absolute path → contents) into container `id` as one tar at `/`.
    pub async fn write_files(
        &self,
        id: &str,
        files: &std::collections::BTreeMap<String, VolumeFile>,
    ) -> Result<(), bollard::errors::Error> {
        if files.is_empty() {
            return Ok(());
        }
        let archive = tar_of(files).map_err(bollard::errors::Error::from)?;
        let options = UploadToContainerOptionsBuilder::new().path("/").build();
        self.engine
            .docker
            .upload_to_container(id, Some(options), bollard::body_full(archive.into()))
            .await
    }

    /// Runs the init containers one after the other, each to success, then starts the app
    /// containers. An init container that fails is run again after a back-off, unless the
    /// restart policy is Never, which fails the pod.
    async fn start_containers(
        self: Arc<Self>,
        identity: PodIdentity,
        restart_policy: String,
        containers: Vec<(Role, String, String)>,
    ) {
        for (role, name, id) in &containers {
            if self.is_deleting(&identity.uid) {
                break;
            }
            match role {
                Role::Init => {
                    if !self
                        .run_to_completion(&identity, name, id, &restart_policy)
                        .await
                    {
                        break;
                    }
                }
                // The next container waits for a sidecar's start, not for its exit.
                Role::Sidecar => {
                    if !self.start(&identity, *role, name, id).await {
                        break;
                    }
                }
                Role::App | Role::Infra => {
                    self.start(&identity, *role, name, id).await;
                }
            }
        }
        self.remember(&identity.uid, |memory| memory.starting = false);
    }

    /// Runs init container `name` until it succeeds; false once the pod will not start.
    async fn run_to_completion(
        &self,
        identity: &PodIdentity,
        name: &str,
        id: &str,
        restart_policy: &str,
    ) -> bool {
        loop {
            if !self.start(identity, Role::Init, name, id).await {
                return false;
            }
            let exit_code = match self.engine.docker.wait_container(id, None).next().await {
                Some(Ok(exit)) => exit.status_code,
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
                Some(Err(error)) => {
                    log::warn!(
                        "cannot wait for init container {name} of {}/{}: {error}",
                        identity.namespace,
                        identity.name
                    );
                    return false;
                }
                None => return false,
            };
            // The exit itself is reported by the engine's event.
            if exit_code == 0 || self.is_deleting(&identity.uid) {
                return exit_code == 0;
            }
            if restart_policy == "Never" {
                return false;
            }
            let delay = self.back_off(identity, Role::Init, name, exit_code).await;
            tokio::time::sleep(delay).await;
            if self.is_deleting(&identity.uid) {
                return false;
            }
            self.remember(&identity.uid, |memory| {
                *memory.restarts.entry(name.to_string()).or_default() += 1;
                memory.waiting.remove(name);
            });
        }
    }

    /// Starts container `name` (its start is reported by the engine's event); a failure is
    /// remembered for its status and reported here.
    async fn start(&self, identity: &PodIdentity, role: Role, name: &str, id: &str) -> bool {
        let error = match self.engine.docker.start_container(id, None).await {
            Ok(()) => {
                let message = format!("Started container {name}");
                self.event(identity, role, name, NORMAL, "Started", message);
                return true;
            }
            // Already running (a start resumed after vk restarted): nothing to do.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => return true,
            Err(error) => error,
        };
        log::warn!(
            "cannot start container {name} of {}/{}: {error}",
            identity.namespace,
            identity.name
        );
        let message = error.to_string();
        self.event(
            identity,
            role,
            name,
            WARNING,
            "Failed",
            format!("Error: {message}"),
        );
        self.remember(&identity.uid, |memory| {
            memory.waiting.insert(
                name.to_string(),
                ContainerStateWaiting {
                    reason: Some("RunContainerError".into()),
                    message: Some(message),
                },
            );
        });
        // No engine event follows a failed start.
        self.notify(&identity.namespace, &identity.name).await;
        false
    }

    /// Has vk record an event on the pod, about container `name` unless it is the infra one.
    fn event(
        &self,
        identity: &PodIdentity,
        role: Role,
        name: &str,
        kind: EventType,
        reason: &str,
        message: String,
    ) {
        let Some(notifier) = self.notifier.read().clone() else {
            return;
        };
        let field_path = match role {
            Role::Infra => None,
            Role::Init | Role::Sidecar => Some(format!("spec.initContainers{{{name}}}")),
            Role::App => Some(format!("spec.containers{{{name}}}")),
        };
        notifier.event(&PodEvent {
            namespace: identity.namespace.clone(),
            name: identity.name.clone(),
            uid: Some(identity.uid.clone()),
            type_: kind,
            reason: reason.to_string(),
            message,
            field_path,
        });
    }

    /// Records the exit of `name` and the wait before its restart, tells vk, and returns the
    /// wait.
    async fn back_off(
        &self,
        identity: &PodIdentity,
        role: Role,
        name: &str,
        exit_code: i64,
    ) -> Duration {
        let restarts = self
            .memory(&identity.uid)
            .restarts
            .get(name)
            .copied()
            .unwrap_or(0);
        let delay = BACKOFF_INITIAL
            .saturating_mul(1 << restarts.clamp(0, 5))
            .min(BACKOFF_MAX);
        let message = format!(
            "back-off {}s restarting failed container={name} pod={}_{}({})",
            delay.as_secs(),
            identity.name,
            identity.namespace,
            identity.uid
        );
        log::info!(
            "container {name} of {}/{} exited with {exit_code}; {message}",
            identity.namespace,
            identity.name
        );
        let event = format!(
            "Back-off restarting failed container {name} in pod {}_{}({})",
            identity.name, identity.namespace, identity.uid
        );
        self.event(identity, role, name, WARNING, "BackOff", event);
        self.remember(&identity.uid, |memory| {
            memory.waiting.insert(
                name.to_string(),
                ContainerStateWaiting {
                    reason: Some("CrashLoopBackOff".into()),
                    message: Some(message),
                },
            );
        });
        self.notify(&identity.namespace, &identity.name).await;
        delay
    }

    /// An app container exited: restart it after a back-off if the restart policy says so.
    pub async fn container_exited(self: &Arc<Self>, identity: &PodIdentity, name: &str) {
        if self.is_deleting(&identity.uid) {
            return;
        }
        let view = match inventory::inspect_pod(
            &self.engine,
            &self.node_name,
            &identity.namespace,
            &identity.name,
        )
        .await
        {
            Ok(Some(view)) if view.identity.uid == identity.uid => view,
            _ => return,
        };
        let Some(container) = view
            .container(name)
            .filter(|c| matches!(c.role, Role::App | Role::Sidecar))
        else {
            return;
        };
        let role = container.role;
        // Never started is no exit: `resume` starts it.
        if status::is_running(&container.inspect) || status::never_started(&container.inspect) {
            return;
        }
        let state = container.inspect.state.clone().unwrap_or_default();
        let exit_code = state.exit_code.unwrap_or_default();
        let mains_done = mains_done(&view);
        // A sidecar restarts whatever the pod's policy, until the main containers are done for
        // good (a Job's pod completes).
        let restart = match (role, view.restart_policy.as_str()) {
            (Role::Sidecar, _) => !mains_done,
            (_, "Never") => false,
            (_, "OnFailure") => exit_code != 0,
            _ => true,
        };
        if !restart || self.memory(&identity.uid).waiting.contains_key(name) {
            self.notify(&identity.namespace, &identity.name).await;
            if role == Role::App && mains_done {
                self.stop_sidecars(&view).await;
            }
            return;
        }
        let terminated = ContainerStateTerminated {
            exit_code: exit_code as i32,
            reason: Some(if exit_code == 0 { "Completed" } else { "Error" }.into()),
            started_at: status::time(state.started_at.as_deref()),
            finished_at: status::time(state.finished_at.as_deref()),
            container_id: Some(format!("docker://{}", container.id)),
            message: self
                .messages
                .as_ref()
                .and_then(|messages| messages.read(&identity.uid, name)),
            ..ContainerStateTerminated::default()
        };
        self.remember(&identity.uid, |memory| {
            memory.last_terminated.insert(name.to_string(), terminated);
        });
        let delay = self.back_off(identity, role, name, exit_code).await;
        let (this, identity, name, id) = (
            self.clone(),
            identity.clone(),
            name.to_string(),
            container.id.clone(),
        );
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if this.is_deleting(&identity.uid) {
                return;
            }
            this.remember(&identity.uid, |memory| {
                *memory.restarts.entry(name.clone()).or_default() += 1;
                memory.waiting.remove(&name);
            });
            if let Some(messages) = &this.messages {
                messages.clear(&identity.uid, &name);
            }
            this.start(&identity, role, &name, &id).await;
        });
    }

    /// Stops the pod's running sidecars in reverse order, each after the later ones, as the
    /// kubelet does once the main containers of a pod that does not restart them are done.
    async fn stop_sidecars(&self, view: &PodView) {
        let running = view
            .containers
            .iter()
            .rev()
            .filter(|c| c.role == Role::Sidecar && status::is_running(&c.inspect));
        for sidecar in running {
            let message = format!("Stopping container {}", sidecar.name);
            self.event(
                &view.identity,
                Role::Sidecar,
                &sidecar.name,
                NORMAL,
                "Killing",
                message,
            );
            let options = StopContainerOptionsBuilder::new()
                .t(MIN_STOP_SECONDS)
                .build();
            if let Err(error) = self
                .engine
                .docker
                .stop_container(&sidecar.id, Some(options))
                .await
            {
                log::debug!("stopping sidecar {}: {error}", sidecar.name);
            }
        }
    }

    /// Rewrites the files of resolved volumes (a ConfigMap or Secret changed).
    pub async fn update(&self, resolved: ResolvedPod) -> Result<(), PodError> {
        let plan = self.plan(&resolved)?;
        let Some(view) = inventory::inspect_pod(
            &self.engine,
            &self.node_name,
            &plan.identity.namespace,
            &plan.identity.name,
        )
        .await
        .map_err(engine_error("cannot inspect the pod's containers"))?
        else {
            return Ok(());
        };
        for container in plan.containers.iter().filter(|c| !c.files.is_empty()) {
            if let Some(existing) = view.container(&container.name) {
                self.write_files(&existing.id, &container.files)
                    .await
                    .map_err(engine_error(format!(
                        "cannot write the volume files of container {}",
                        container.name
                    )))?;
            }
        }
        Ok(())
    }

    /// The containers of the pod named as `identity` (or of a predecessor of the same name).
    async fn inspect(&self, identity: &PodIdentity) -> Result<Option<PodView>, PodError> {
        inventory::inspect_pod(
            &self.engine,
            &self.node_name,
            &identity.namespace,
            &identity.name,
        )
        .await
        .map_err(engine_error("cannot inspect the pod's containers"))
    }

    /// Applies the resources of `pod`'s spec to its containers in place, without restarting
    /// them, and reports the pod.
    pub async fn resize(&self, pod: &Pod) -> Result<(), PodError> {
        let identity = PodIdentity::of(pod)?;
        let view = self.inspect(&identity).await?.ok_or_else(|| {
            PodError::Unavailable(format!(
                "pod {}/{} has no containers yet",
                identity.namespace, identity.name
            ))
        })?;
        let spec = pod.spec.iter();
        let wanted = spec.flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        });
        for container in wanted {
            let Some(existing) = view.container(&container.name) else {
                continue;
            };
            let problem = |problem: String| SpecError::Container {
                container: container.name.clone(),
                problem,
            };
            let resources = Resources::of(container.resources.as_ref()).map_err(problem)?;
            let current = self
                .memory(&identity.uid)
                .resized
                .get(&container.name)
                .cloned()
                .unwrap_or_else(|| resize::reported(existing.inspect.host_config.as_ref()));
            let before = Resources::of(Some(&current)).map_err(problem)?;
            if let Some(resource) = restart_asked(container, &before, &resources) {
                // The engine restarts a container with the resources it was created with: a
                // restart cannot apply them, so such a resize is refused rather than done in
                // place against the pod's policy.
                return Err(problem(format!(
                    "resizePolicy asks to restart the container for its {resource}, which the \
                     hyper provider cannot do: it resizes only in place (NotRequired)"
                ))
                .into());
            }
            resize::apply(&self.engine, &existing.id, &resources).await?;
            let applied = container.resources.clone().unwrap_or_default();
            self.remember(&identity.uid, |memory| {
                memory.resized.insert(container.name.clone(), applied);
            });
        }
        self.notify(&identity.namespace, &identity.name).await;
        Ok(())
    }

    /// Stops one running container within `grace` seconds, in the background; its exit is
    /// then handled as any other (`container_exited`): restarted as the policy says, after
    /// the crash-loop back-off.
    pub async fn kill_container(&self, pod: &Pod, name: &str, grace: i64) -> Result<(), PodError> {
        let identity = PodIdentity::of(pod)?;
        let view = self
            .inspect(&identity)
            .await?
            .filter(|view| view.identity.uid == identity.uid)
            .ok_or_else(|| {
                PodError::NotFound(format!("pod {}/{}", identity.namespace, identity.name))
            })?;
        let container = view
            .container(name)
            .filter(|c| matches!(c.role, Role::App | Role::Sidecar))
            .ok_or_else(|| {
                PodError::NotFound(format!(
                    "container {name} of pod {}/{}",
                    identity.namespace, identity.name
                ))
            })?;
        let seconds = i32::try_from(grace)
            .unwrap_or(i32::MAX)
            .max(MIN_STOP_SECONDS);
        let options = StopContainerOptionsBuilder::new().t(seconds).build();
        let (engine, id, name) = (self.engine.clone(), container.id.clone(), name.to_string());
        tokio::spawn(async move {
            if let Err(error) = engine.docker.stop_container(&id, Some(options)).await {
                log::warn!("cannot stop container {name} to restart it: {error}");
            }
        });
        Ok(())
    }

    /// Stops the pod's containers within `grace` seconds and removes them, in the background.
    pub async fn delete(self: &Arc<Self>, pod: &Pod, grace: i64) -> Result<(), PodError> {
        let identity = PodIdentity::of(pod)?;
        let pod_lock = self.pod_locks.lock(&identity.uid).await;
        let listed = self.containers_of(&identity).await?;
        if listed.is_empty() {
            self.update_state(&identity.uid, |pod| pod.memory = Memory::default());
            return Ok(());
        }
        self.update_state(&identity.uid, |pod| pod.deleting = true);
        let this = self.clone();
        tokio::spawn(async move {
            // Held until the pod's objects are gone.
            let _pod_lock = pod_lock;
            let deadline = Instant::now() + Duration::from_secs(grace.max(0).unsigned_abs());
            let stop = |c: Listed| {
                let message = format!("Stopping container {}", c.name);
                this.event(&identity, c.role, &c.name, NORMAL, "Killing", message);
                let left = deadline.saturating_duration_since(Instant::now()).as_secs();
                let seconds = i32::try_from(left)
                    .unwrap_or(i32::MAX)
                    .max(MIN_STOP_SECONDS);
                let options = StopContainerOptionsBuilder::new().t(seconds).build();
                let engine = this.engine.clone();
                async move { engine.docker.stop_container(&c.id, Some(options)).await }
            };
            // Main containers first; then sidecars in reverse order, each after the later
            // ones; all within the one grace period (KEP-753).
            let (mut sidecars, mains): (Vec<_>, Vec<_>) = listed
                .into_iter()
                .filter(|c| c.role != Role::Infra && c.running)
                .partition(|c| c.role == Role::Sidecar);
            sidecars.sort_by_key(|c| std::cmp::Reverse(c.index));
            let mut stopped = futures::future::join_all(mains.into_iter().map(stop)).await;
            for sidecar in sidecars {
                stopped.push(stop(sidecar).await);
            }
            for error in stopped.into_iter().filter_map(Result::err) {
                log::debug!(
                    "stopping a container of {}/{}: {error}",
                    identity.namespace,
                    identity.name
                );
            }
            // The exits of a pod being deleted are not handled as events (see `container_exited`).
            this.notify(&identity.namespace, &identity.name).await;
            if let Err(error) = this.remove_objects(&identity).await {
                log::warn!(
                    "cannot remove pod {}/{}: {error}",
                    identity.namespace,
                    identity.name
                );
            }
            // A report being gathered still ends with its own `gathered`.
            this.update_state(&identity.uid, |pod| {
                pod.memory = Memory::default();
                pod.deleting = false;
            });
        });
        Ok(())
    }

    /// The containers of exactly this pod (not of a predecessor of the same name).
    async fn containers_of(&self, identity: &PodIdentity) -> Result<Vec<Listed>, PodError> {
        let listed = inventory::list(
            &self.engine,
            &self.node_name,
            Some((&identity.namespace, &identity.name)),
        )
        .await
        .map_err(engine_error("cannot list the pod's containers"))?;
        Ok(listed
            .into_iter()
            .filter(|c| c.identity.uid == identity.uid)
            .collect())
    }

    /// Force-removes the pod's containers (the infra container last: the others use its
    /// namespaces) and volumes.
    async fn remove_objects(&self, identity: &PodIdentity) -> Result<(), PodError> {
        let (infra, others): (Vec<_>, Vec<_>) = self
            .containers_of(identity)
            .await?
            .into_iter()
            .partition(|c| c.role == Role::Infra);
        for group in [others, infra] {
            let removals = group.iter().map(|c| {
                let options = RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .v(true)
                    .build();
                self.engine.docker.remove_container(&c.id, Some(options))
            });
            for removed in futures::future::join_all(removals).await {
                match removed {
                    Ok(())
                    | Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => {}
                    Err(source) => return Err(engine_error("cannot remove a container")(source)),
                }
            }
        }
        let volumes = inventory::volumes(&self.engine, &self.node_name, &identity.uid)
            .await
            .map_err(engine_error("cannot list the pod's volumes"))?;
        for volume in volumes {
            self.engine
                .docker
                .remove_volume(
                    &volume,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await
                .map_err(engine_error(format!("cannot remove volume {volume}")))?;
        }
        if let Some(messages) = &self.messages {
            messages.remove(&identity.uid);
        }
        Ok(())
    }

    /// Reports every pod, resumes starts that were cut short, and restarts app containers that
    /// exited unseen (while vk was down or the event stream was broken).
    pub async fn resync(self: &Arc<Self>) {
        let listed = match inventory::list(&self.engine, &self.node_name, None).await {
            Ok(listed) => listed,
            Err(error) => {
                log::warn!("cannot list this node's containers: {error}");
                return;
            }
        };
        for containers in inventory::by_pod(listed).into_values() {
            let identity = containers[0].identity.clone();
            match inventory::view_of(&self.engine, containers.clone()).await {
                Ok(Some(view)) => self.resume(view).await,
                Ok(None) => {}
                Err(error) => log::warn!(
                    "cannot inspect pod {}/{}: {error}",
                    identity.namespace,
                    identity.name
                ),
            }
            for exited in containers
                .iter()
                .filter(|c| matches!(c.role, Role::App | Role::Sidecar) && !c.running)
            {
                self.container_exited(&identity, &exited.name).await;
            }
            self.notify(&identity.namespace, &identity.name).await;
        }
    }
}

/// The resource (`cpu` or `memory`) whose change `container`'s `resizePolicy` says needs a
/// restart, if the change from `before` to `after` has one.
fn restart_asked(container: &Container, before: &Resources, after: &Resources) -> Option<String> {
    let changed = |resource: &str| match resource {
        "cpu" => before.nano_cpus != after.nano_cpus || before.cpu_shares != after.cpu_shares,
        "memory" => {
            before.memory != after.memory || before.memory_reservation != after.memory_reservation
        }
        _ => false,
    };
    container
        .resize_policy
        .iter()
        .flatten()
        .find(|policy| {
            policy.restart_policy == "RestartContainer" && changed(&policy.resource_name)
        })
        .map(|policy| policy.resource_name.clone())
}

/// Whether the pod's main containers have exited for good: its restart policy restarts none
/// of them again.
fn mains_done(view: &PodView) -> bool {
    let mut mains = view.containers.iter().filter(|c| c.role == Role::App);
    let for_good = |c: &inventory::ContainerView| {
        let exited = !status::is_running(&c.inspect) && !status::never_started(&c.inspect);
        match view.restart_policy.as_str() {
            "Never" => exited,
            "OnFailure" => exited && status::succeeded(&c.inspect),
            _ => false,
        }
    };
    view.restart_policy != "Always" && mains.all(for_good)
}

fn metadata(identity: &PodIdentity) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(identity.namespace.clone()),
        name: Some(identity.name.clone()),
        uid: Some(identity.uid.clone()),
        ..ObjectMeta::default()
    }
}

/// A tar of `files` with their parent directories, paths relative to `/`.
fn tar_of(files: &std::collections::BTreeMap<String, VolumeFile>) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut directories = std::collections::BTreeSet::new();
    for (path, file) in files {
        let relative = path.trim_start_matches('/');
        let mut parent = std::path::Path::new(relative).parent();
        let mut missing = Vec::new();
        while let Some(directory) = parent.filter(|d| !d.as_os_str().is_empty()) {
            if directories.insert(directory.to_path_buf()) {
                missing.push(directory.to_path_buf());
            }
            parent = directory.parent();
        }
        for directory in missing.into_iter().rev() {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, &directory, std::io::empty())?;
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(u32::try_from(file.mode).unwrap_or(0o644));
        header.set_size(file.data.0.len() as u64);
        builder.append_data(&mut header, relative, &file.data.0[..])?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests;
