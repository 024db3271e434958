//! The pod controller: runs the pods bound to this node on the provider and keeps their status
//! in the API true.
//!
//! Pods are watched with `spec.nodeName=<node>` (all a node identity may watch) into a
//! reflector. Each change queues the pod's key; workers sync one pod at a time per key, so the
//! provider never sees two calls for one pod at once. Provider notifications (or polling, for
//! providers that cannot notify) become status patches through the [`StatusWriter`].

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::{
    api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
        PodStatus,
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{DeleteParams, Preconditions},
    runtime::{
        WatchStreamExt,
        reflector::{self, Store},
        watcher,
    },
};
use tokio::sync::watch;
use vk_abi::{ErrorKind, PodEvent, ProviderError, error_chain};

use crate::{
    backoff::WatchBackoff,
    events::{EventType, Recorder},
    metrics::METRICS,
    objects::ApiObjects,
    provider::Provider,
    queue::WorkQueue,
    resolve::{self, NodeFacts},
    status::{PodKey, StatusWriter},
};

/// How often providers that cannot notify are asked for their pods' statuses.
const POLL_PERIOD: Duration = Duration::from_secs(5);
/// How often a terminating pod's containers are checked while the provider stops them.
const TERMINATION_CHECK: Duration = Duration::from_secs(1);
/// The longest wait between two start-up attempts to list the provider's pods.
const LIST_RETRY_MAX: Duration = Duration::from_secs(30);
/// Retries sooner than this are logged at debug level only.
const QUIET_RETRIES: Duration = Duration::from_secs(2);

/// What vk knows of a pod it has handed to the provider.
#[derive(Debug, Clone)]
struct Tracked {
    uid: String,
    /// Fingerprint of what the provider was given; `None` for pods adopted at start-up.
    fingerprint: Option<u64>,
    /// The provider was told to delete the pod.
    deleting: bool,
    /// Environment that uses the pod IP is resolved again once the provider reports one.
    waits_for_pod_ip: bool,
    /// The pod as last seen, for deleting it from the provider after the API forgot it.
    last_seen: Arc<Pod>,
    /// Status reports received from the provider: a status read from the provider is written
    /// only if no report came while it was being read, since a report is at least as new.
    reports: u64,
    /// The resync round in which the provider's status of the pod was last compared with the
    /// API's (0: never, as for a pod adopted at start-up).
    status_round: u64,
}

/// Settings of the pod controller.
#[derive(Debug, Clone)]
pub struct PodSettings {
    pub node_name: String,
    pub workers: usize,
    pub resync_period: Duration,
    pub node: NodeFacts,
}

/// The pod controller; cheap to clone.
#[derive(Debug, Clone)]
pub struct PodController {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: PodSettings,
    /// Pods in every namespace (a handle to the client).
    pods: Api<Pod>,
    provider: Provider,
    store: Store<Pod>,
    queue: WorkQueue<PodKey>,
    status: StatusWriter,
    recorder: Recorder,
    objects: ApiObjects,
    tracked: Mutex<HashMap<PodKey, Tracked>>,
    /// The current resync round, counted from 1: each pod's status is read from the provider
    /// once per round (see [`PodController::check_status`]).
    round: AtomicU64,
}

/// Why one sync of a pod did not finish; the key is retried with back-off.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("provider call failed")]
    Provider(#[from] ProviderError),
    #[error("cannot resolve the pod")]
    Resolve(#[from] resolve::ResolveError),
    #[error("kubernetes API call failed")]
    Api(#[from] kube::Error),
}

/// What a sync asks for besides success.
enum Next {
    Done,
    /// Check again after this delay (a terminating pod, a token to renew).
    After(Duration),
}

/// Fingerprint of what the provider was given, ignoring what changes without meaning
/// (resource version, managed fields, status).
fn fingerprint(resolved: &vk_abi::ResolvedPod) -> u64 {
    let pod = &resolved.pod;
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(&pod.spec)
        .unwrap_or_default()
        .hash(&mut hasher);
    pod.metadata.labels.hash(&mut hasher);
    pod.metadata.annotations.hash(&mut hasher);
    serde_json::to_string(&resolved.volumes)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Whether the provider's pod has every container of the API's (by name): a provider lists a
/// pod with the containers it made, so a pod missing some was cut short while being created.
fn has_every_container(provided: &Pod, in_api: &Pod) -> bool {
    let names = |pod: &Pod| -> Vec<String> {
        pod.spec
            .iter()
            .flat_map(|spec| &spec.containers)
            .map(|c| c.name.clone())
            .collect()
    };
    let provided = names(provided);
    names(in_api).iter().all(|name| provided.contains(name))
}

/// Every container of `status` has terminated (or the provider knows none).
fn all_terminated(status: Option<&PodStatus>) -> bool {
    let Some(status) = status else { return true };
    status
        .container_statuses
        .iter()
        .flatten()
        .all(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some()))
}

impl PodController {
    pub fn new(
        settings: PodSettings,
        client: Client,
        provider: Provider,
        recorder: Recorder,
        store: Store<Pod>,
    ) -> Self {
        let objects = ApiObjects::new(client.clone());
        let status = StatusWriter::new(client.clone(), store.clone());
        PodController {
            inner: Arc::new(Inner {
                settings,
                pods: Api::all(client),
                provider,
                store,
                queue: WorkQueue::new(),
                status,
                recorder,
                objects,
                tracked: Mutex::default(),
                round: AtomicU64::new(1),
            }),
        }
    }

    /// Runs until `shutdown` resolves: watches pods, reconciles with the provider once the watch
    /// has synced (then sets `synced`), and syncs pods with `workers` workers.
    pub async fn run(
        self,
        writer: reflector::store::Writer<Pod>,
        synced: watch::Sender<bool>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ProviderError> {
        let inner = &self.inner;
        let api = inner.pods.clone();
        let selector = format!("spec.nodeName={}", inner.settings.node_name);
        let events = watcher(api, watcher::Config::default().fields(&selector))
            .backoff(WatchBackoff::default())
            .modify(|pod| pod.metadata.managed_fields = None)
            .reflect(writer);
        let watching = tokio::spawn({
            let queue = inner.queue.clone();
            async move {
                let mut events = std::pin::pin!(events);
                while let Some(event) = events.next().await {
                    match event {
                        Ok(
                            watcher::Event::Apply(pod)
                            | watcher::Event::Delete(pod)
                            | watcher::Event::InitApply(pod),
                        ) => {
                            if let Some(key) = PodKey::of(&pod) {
                                queue.add(key);
                            }
                        }
                        Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                        Err(error) => log::warn!("pod watch failed, retrying: {error}"),
                    }
                }
            }
        });
        inner
            .store
            .wait_until_ready()
            .await
            .map_err(|_| ProviderError::other("the pod watch stopped"))?;
        self.reconcile_provider_pods().await;
        self.listen_to_provider().await;
        let _ = synced.send(true);
        log::info!(
            "pod controller synced: {} pods bound to this node",
            inner.store.len()
        );

        // As many status writers as sync workers: each sync may end in one status write.
        let status_writer = tokio::spawn(inner.status.clone().run(inner.settings.workers));
        let workers: Vec<_> = (0..inner.settings.workers)
            .map(|_| tokio::spawn(self.clone().work()))
            .collect();
        let resync = tokio::spawn(self.clone().resync());
        shutdown.await;
        inner.queue.close();
        inner.status.close();
        resync.abort();
        watching.abort();
        futures::future::join_all(workers).await;
        let _ = status_writer.await;
        Ok(())
    }

    /// At start-up: adopts the provider's pods that the API still has, and removes the ones it
    /// does not, now that the watch has seen every pod bound to this node. Until the provider
    /// can list its pods, nothing can be started safely: the list is asked again, backing off.
    async fn reconcile_provider_pods(&self) {
        let inner = &self.inner;
        let mut delay = Duration::from_secs(1);
        let running = loop {
            match inner.provider.call("list_pods", |p| p.list_pods()).await {
                Ok(running) => break running,
                Err(error) => {
                    log::warn!(
                        "cannot list the provider's pods, asking again in {}s: {error}",
                        delay.as_secs()
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(LIST_RETRY_MAX);
                }
            }
        };
        let (mut adopted, mut removed, mut partial) = (0, 0, 0);
        for pod in running {
            let Some(key) = PodKey::of(&pod) else {
                continue;
            };
            let in_api = inner.store.get(&key.object_ref());
            let same = in_api.as_ref().filter(|api_pod| {
                pod.metadata.uid.is_none() || api_pod.metadata.uid == pod.metadata.uid
            });
            match same {
                Some(api_pod) if !has_every_container(&pod, api_pod) => {
                    // vk stopped while the provider created it: the sync creates it again,
                    // and the provider finishes or redoes it.
                    partial += 1;
                    log::info!("{key} was only partly created before vk stopped: creating it");
                }
                Some(api_pod) => {
                    adopted += 1;
                    let tracked = Tracked {
                        uid: api_pod.metadata.uid.clone().unwrap_or_default(),
                        fingerprint: None,
                        deleting: false,
                        waits_for_pod_ip: false,
                        last_seen: api_pod.clone(),
                        reports: 0,
                        status_round: 0,
                    };
                    self.track(&key, tracked);
                }
                None => {
                    removed += 1;
                    log::info!("removing {key} from the provider: the API no longer has it");
                    if let Err(error) = inner
                        .provider
                        .call("delete_pod", move |p| p.delete_pod(&pod, 0))
                        .await
                    {
                        log::warn!("cannot remove {key} from the provider: {error}");
                    }
                }
            }
        }
        log::info!(
            "adopted {adopted} running pods, removed {removed} the API no longer has, \
             {partial} partly created"
        );
    }

    /// Registers for provider notifications, or polls providers that cannot notify.
    async fn listen_to_provider(&self) {
        let (this, that) = (self.clone(), self.clone());
        let notifies = self
            .inner
            .provider
            .call("notify_pods", move |p| {
                p.notify_pods(
                    move |pod| this.provider_reported(&pod),
                    move |event| that.provider_event(event),
                )
            })
            .await;
        match notifies {
            Ok(true) => log::debug!("the provider notifies pod status changes"),
            Ok(false) => {
                log::info!(
                    "the provider cannot notify; polling pod statuses every {}s",
                    POLL_PERIOD.as_secs()
                );
                tokio::spawn(self.clone().poll());
            }
            Err(error) => {
                log::warn!("cannot register for pod notifications ({error}); polling instead");
                tokio::spawn(self.clone().poll());
            }
        }
    }

    /// A pod status from the provider: written to the API, and wakes the pod's sync when it
    /// matters (a pod IP to resolve, a deletion to finish).
    /// Records the provider's event on its pod, if the API still has that pod.
    fn provider_event(&self, event: PodEvent) {
        let key = PodKey {
            namespace: event.namespace,
            name: event.name,
        };
        let Some(pod) = self.inner.store.get(&key.object_ref()) else {
            return;
        };
        if event.uid.is_some() && event.uid != pod.metadata.uid {
            return;
        }
        let kind = match event.type_.as_str() {
            "Warning" => EventType::Warning,
            _ => EventType::Normal,
        };
        self.inner
            .recorder
            .pod(&pod, kind, &event.reason, &event.message, event.field_path);
    }

    fn provider_reported(&self, pod: &Pod) {
        let (Some(key), Some(status)) = (PodKey::of(pod), pod.status.clone()) else {
            return;
        };
        let tracked = {
            let mut all = self.inner.tracked.lock().expect("tracked lock");
            let Some(tracked) = all.get_mut(&key) else {
                return;
            };
            if pod
                .metadata
                .uid
                .as_ref()
                .is_some_and(|uid| *uid != tracked.uid)
            {
                return;
            }
            tracked.reports += 1;
            tracked.clone()
        };
        if tracked.deleting {
            // The pod is about to leave the API: finish its deletion rather than write a status
            // that would land on a deleted pod.
            self.inner.queue.add(key);
            return;
        }
        let wake = tracked.waits_for_pod_ip && status.pod_ip.is_some();
        self.inner.status.submit(key.clone(), tracked.uid, status);
        if wake {
            self.inner.queue.add(key);
        }
    }

    async fn poll(self) {
        let mut ticks = tokio::time::interval(POLL_PERIOD);
        loop {
            ticks.tick().await;
            let keys: Vec<_> = self
                .inner
                .tracked
                .lock()
                .expect("tracked lock")
                .keys()
                .cloned()
                .collect();
            for key in keys {
                let (namespace, name) = (key.namespace.clone(), key.name.clone());
                match self
                    .inner
                    .provider
                    .call("get_pod_status", move |p| {
                        p.get_pod_status(&namespace, &name)
                    })
                    .await
                {
                    Ok(Some(status)) => {
                        let pod = Pod {
                            metadata: kube::api::ObjectMeta {
                                namespace: Some(key.namespace.clone()),
                                name: Some(key.name.clone()),
                                ..Default::default()
                            },
                            status: Some(status),
                            ..Pod::default()
                        };
                        self.provider_reported(&pod);
                    }
                    Ok(None) => {}
                    Err(error) => log::debug!("cannot poll the status of {key}: {error}"),
                }
            }
        }
    }

    /// Queues every pod again now and then, in a new round, so that drift (changed ConfigMaps,
    /// tokens to renew, lost status reports) is repaired.
    async fn resync(self) {
        let mut ticks = tokio::time::interval(self.inner.settings.resync_period);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            self.inner.round.fetch_add(1, Ordering::Relaxed);
            for pod in self.inner.store.state() {
                if let Some(key) = PodKey::of(&pod) {
                    self.inner.queue.add(key);
                }
            }
            let tracked: Vec<_> = self
                .inner
                .tracked
                .lock()
                .expect("tracked lock")
                .keys()
                .cloned()
                .collect();
            tracked
                .into_iter()
                .for_each(|key| self.inner.queue.add(key));
        }
    }

    async fn work(self) {
        let queue = &self.inner.queue;
        while let Some(key) = queue.next().await {
            METRICS.queue_depth.set(queue.len() as i64);
            METRICS
                .status_backlog
                .set(self.inner.status.backlog() as i64);
            match self.sync(&key).await {
                Ok(Next::Done) => queue.succeeded(&key),
                Ok(Next::After(delay)) => {
                    queue.succeeded(&key);
                    queue.add_after(key.clone(), delay);
                }
                Err(error) => {
                    let delay = queue.retry(key.clone());
                    // The first failures are often races that a retry mends (the API server's
                    // node authorizer learns of a freshly bound pod a moment after it is bound).
                    let level = if delay < QUIET_RETRIES {
                        log::Level::Debug
                    } else {
                        log::Level::Warn
                    };
                    log::log!(
                        level,
                        "sync of {key} failed, retrying in {delay:?}: {}",
                        error_chain(&error)
                    );
                }
            }
            queue.done(&key);
        }
    }

    async fn sync(&self, key: &PodKey) -> Result<Next, SyncError> {
        let pod = self.inner.store.get(&key.object_ref());
        let tracked = self
            .inner
            .tracked
            .lock()
            .expect("tracked lock")
            .get(key)
            .cloned();
        match (pod, tracked) {
            (None, None) => Ok(Next::Done),
            (None, Some(tracked)) => self.forget(key, tracked).await,
            (Some(pod), Some(tracked))
                if pod.metadata.uid.as_deref() != Some(tracked.uid.as_str()) =>
            {
                // A new pod took the old one's name: the old one goes first.
                self.forget(key, tracked).await?;
                self.sync_pod(key, pod, None).await
            }
            (Some(pod), tracked) => self.sync_pod(key, pod, tracked).await,
        }
    }

    async fn sync_pod(
        &self,
        key: &PodKey,
        pod: Arc<Pod>,
        tracked: Option<Tracked>,
    ) -> Result<Next, SyncError> {
        if pod.metadata.deletion_timestamp.is_some() {
            return self.terminate(key, pod, tracked).await;
        }
        if is_terminal(&pod) {
            return Ok(Next::Done);
        }
        let deadline = active_deadline(&pod);
        if deadline.is_some_and(|d| d <= Timestamp::now()) {
            return self.exceed_deadline(key, &pod, tracked).await;
        }
        let next = self.ensure_running(key, pod, tracked).await?;
        // Back at the deadline, if it comes before the next planned sync.
        Ok(match (next, deadline.map(until)) {
            (Next::Done, Some(left)) => Next::After(left),
            (Next::After(delay), Some(left)) => Next::After(delay.min(left)),
            (next, None) => next,
        })
    }

    /// The pod was active longer than its `activeDeadlineSeconds`: as the kubelet does, a
    /// `DeadlineExceeded` event, its containers stopped, and the pod Failed for that reason.
    async fn exceed_deadline(
        &self,
        key: &PodKey,
        pod: &Arc<Pod>,
        tracked: Option<Tracked>,
    ) -> Result<Next, SyncError> {
        let inner = &self.inner;
        if let Some(mut tracked) = tracked.filter(|t| !t.deleting) {
            inner.recorder.pod(
                pod,
                EventType::Normal,
                DEADLINE_EXCEEDED,
                DEADLINE_MESSAGE,
                None,
            );
            // Marked first: the provider's reports of the stopping pod must not overwrite
            // the Failed status.
            tracked.deleting = true;
            self.track(key, tracked.clone());
            let grace = pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(30);
            let doomed = pod.clone();
            match inner
                .provider
                .call("delete_pod", move |p| p.delete_pod(&doomed, grace))
                .await
            {
                Ok(()) => {}
                Err(error) if error.kind == ErrorKind::NotFound => {}
                Err(error) => {
                    tracked.deleting = false;
                    self.track(key, tracked);
                    return Err(error.into());
                }
            }
        }
        inner.status.submit(
            key.clone(),
            pod.metadata.uid.clone().unwrap_or_default(),
            deadline_exceeded(pod.status.clone().unwrap_or_default()),
        );
        Ok(Next::Done)
    }

    /// Creates or updates the pod in the provider when what it should run changed.
    async fn ensure_running(
        &self,
        key: &PodKey,
        pod: Arc<Pod>,
        tracked: Option<Tracked>,
    ) -> Result<Next, SyncError> {
        let inner = &self.inner;
        let resolution = match resolve::resolve(&pod, &inner.settings.node, &inner.objects).await {
            Ok(resolution) => resolution,
            Err(error) => {
                if tracked.is_none() {
                    self.report_config_error(key, &pod, &error);
                }
                return Err(error.into());
            }
        };
        let fingerprint = fingerprint(&resolution.pod);
        let next = match resolution.refresh_at {
            Some(at) => Next::After(until(at)),
            None => Next::Done,
        };
        let current = Tracked {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            fingerprint: Some(fingerprint),
            deleting: false,
            waits_for_pod_ip: resolution.waits_for_pod_ip,
            last_seen: pod.clone(),
            reports: 0,
            // A pod created now is reported by the provider as it starts.
            status_round: tracked
                .as_ref()
                .map_or_else(|| inner.round.load(Ordering::Relaxed), |t| t.status_round),
        };
        let update = match &tracked {
            None => false,
            Some(t) if t.fingerprint.is_none_or(|f| f == fingerprint) => {
                self.track(key, current);
                self.check_status(key).await?;
                return Ok(next);
            }
            Some(_) => true,
        };
        for event in &resolution.events {
            let field_path = event.field_path.clone();
            inner
                .recorder
                .pod(&pod, event.type_, event.reason, &event.message, field_path);
        }
        // Tracked before the call: a provider may report the pod's status before it returns.
        self.track(key, current);
        let resolved = resolution.pod;
        let result = if update {
            inner
                .provider
                .call("update_pod", move |p| p.update_pod(&resolved))
                .await
        } else {
            inner
                .provider
                .call("create_pod", move |p| p.create_pod(&resolved))
                .await
        };
        let (success, message, failure) = if update {
            (
                "ProviderUpdateSuccess",
                "Update pod in provider successfully",
                "ProviderUpdateFailed",
            )
        } else {
            (
                "ProviderCreateSuccess",
                "Create pod in provider successfully",
                "ProviderCreateFailed",
            )
        };
        match result {
            Ok(()) => {
                inner
                    .recorder
                    .pod(&pod, EventType::Normal, success, message, None);
                Ok(next)
            }
            Err(error) => {
                match tracked {
                    Some(previous) => self.track(key, previous),
                    None => self.untrack(key),
                }
                self.report_provider_error(key, &pod, failure, &error);
                Err(error.into())
            }
        }
    }

    /// Reads the pod's status from the provider and writes it where the API disagrees: once
    /// for a pod adopted at start-up, then once per resync round. No provider is trusted to
    /// report again what it reported before vk stopped, nor every report to have been written.
    async fn check_status(&self, key: &PodKey) -> Result<(), SyncError> {
        let round = self.inner.round.load(Ordering::Relaxed);
        let reports = {
            let all = self.inner.tracked.lock().expect("tracked lock");
            match all.get(key) {
                Some(t) if !t.deleting && t.status_round < round => t.reports,
                _ => return Ok(()),
            }
        };
        let (namespace, name) = (key.namespace.clone(), key.name.clone());
        let status = self
            .inner
            .provider
            .call("get_pod_status", move |p| {
                p.get_pod_status(&namespace, &name)
            })
            .await?;
        let mut all = self.inner.tracked.lock().expect("tracked lock");
        let Some(tracked) = all.get_mut(key) else {
            return Ok(());
        };
        tracked.status_round = round;
        // Submitted under the lock, so that a report counted after this check is also
        // submitted after this status, and wins.
        match status {
            Some(status) if tracked.reports == reports && !tracked.deleting => {
                self.inner
                    .status
                    .submit(key.clone(), tracked.uid.clone(), status);
            }
            Some(_) => {}
            None => log::debug!("{key}: the provider has no status for the pod"),
        }
        Ok(())
    }

    /// Records what vk knows of the pod; the count of the provider's reports goes on.
    fn track(&self, key: &PodKey, mut tracked: Tracked) {
        let mut all = self.inner.tracked.lock().expect("tracked lock");
        if let Some(previous) = all.get(key).filter(|p| p.uid == tracked.uid) {
            tracked.reports = previous.reports;
        }
        all.insert(key.clone(), tracked);
    }

    /// Forgets the pod, and the tokens issued for it.
    fn untrack(&self, key: &PodKey) {
        let removed = self.inner.tracked.lock().expect("tracked lock").remove(key);
        if let Some(tracked) = removed {
            self.inner.objects.forget_pod(&tracked.uid);
        }
    }

    /// A pod with a deletion timestamp: the provider stops it, then the API object goes, once
    /// every container has terminated or the grace period is over.
    async fn terminate(
        &self,
        key: &PodKey,
        pod: Arc<Pod>,
        tracked: Option<Tracked>,
    ) -> Result<Next, SyncError> {
        let inner = &self.inner;
        let Some(mut tracked) = tracked else {
            // Never started: nothing to stop.
            return self.delete_from_api(key, &pod).await;
        };
        if !tracked.deleting {
            // Marked before the call: the provider may report the stopped pod before it
            // returns, and that report must not become a status write on a pod being deleted.
            tracked.deleting = true;
            self.track(key, tracked.clone());
            let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30);
            let doomed = pod.clone();
            match inner
                .provider
                .call("delete_pod", move |p| p.delete_pod(&doomed, grace))
                .await
            {
                Ok(()) => inner.recorder.pod(
                    &pod,
                    EventType::Normal,
                    "ProviderDeleteSuccess",
                    "Delete pod in provider successfully",
                    None,
                ),
                Err(error) if error.kind == ErrorKind::NotFound => {}
                Err(error) => {
                    tracked.deleting = false;
                    self.track(key, tracked);
                    inner.recorder.pod(
                        &pod,
                        EventType::Warning,
                        "ProviderDeleteFailed",
                        &error.message,
                        None,
                    );
                    return Err(error.into());
                }
            }
        }
        let (namespace, name) = (key.namespace.clone(), key.name.clone());
        let status = inner
            .provider
            .call("get_pod_status", move |p| {
                p.get_pod_status(&namespace, &name)
            })
            .await?;
        let deadline = pod.metadata.deletion_timestamp.as_ref().map(|t| t.0);
        if all_terminated(status.as_ref()) || deadline.is_some_and(|d| d <= Timestamp::now()) {
            return self.delete_from_api(key, &pod).await;
        }
        Ok(Next::After(TERMINATION_CHECK))
    }

    /// Removes the pod from the API with grace 0, only if it is still the same pod.
    async fn delete_from_api(&self, key: &PodKey, pod: &Pod) -> Result<Next, SyncError> {
        let api: Api<Pod> = Api::namespaced(self.inner.pods.clone().into_client(), &key.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let deleted = api.delete(&key.name, &params).await;
        METRICS.api_request("pod_delete", &deleted);
        match deleted {
            Ok(_) => {}
            // NodeRestriction answers 404 for a pod that its informer has not seen yet (under
            // load it lags the watch): while the watch still shows the pod, ask again.
            Err(kube::Error::Api(response))
                if response.code == 404 && self.still_watched(key, pod) =>
            {
                log::debug!(
                    "{key}: the API server does not see the pod to delete yet; asking again"
                );
                return Ok(Next::After(TERMINATION_CHECK));
            }
            // Already gone, or a new pod took the name.
            Err(kube::Error::Api(response)) if matches!(response.code, 404 | 409) => {}
            Err(error) => return Err(error.into()),
        }
        self.untrack(key);
        Ok(Next::Done)
    }

    /// Whether the watch still shows `pod` (the same UID) under `key`.
    fn still_watched(&self, key: &PodKey, pod: &Pod) -> bool {
        self.inner
            .store
            .get(&key.object_ref())
            .is_some_and(|watched| watched.metadata.uid == pod.metadata.uid)
    }

    /// The API no longer has the pod (force-deleted, or replaced): the provider drops it too.
    async fn forget(&self, key: &PodKey, tracked: Tracked) -> Result<Next, SyncError> {
        if !tracked.deleting {
            let pod = tracked.last_seen.clone();
            match self
                .inner
                .provider
                .call("delete_pod", move |p| p.delete_pod(&pod, 0))
                .await
            {
                Ok(()) => {}
                Err(error) if error.kind == ErrorKind::NotFound => {}
                Err(error) => return Err(error.into()),
            }
        }
        self.untrack(key);
        Ok(Next::Done)
    }

    /// The provider refused the pod: `ProviderFailed` on the pod, and a Warning event.
    fn report_provider_error(&self, key: &PodKey, pod: &Pod, reason: &str, error: &ProviderError) {
        self.inner
            .recorder
            .pod(pod, EventType::Warning, reason, &error.message, None);
        let never_restarts =
            pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("Never");
        let mut status = pod.status.clone().unwrap_or_default();
        status.phase = Some(if never_restarts { "Failed" } else { "Pending" }.into());
        status.reason = Some("ProviderFailed".into());
        status.message = Some(error.message.clone());
        self.inner.status.submit(
            key.clone(),
            pod.metadata.uid.clone().unwrap_or_default(),
            status,
        );
    }

    /// The pod's configuration cannot be resolved (a missing mandatory ConfigMap or Secret):
    /// containers wait with `CreateContainerConfigError`, or, when a volume cannot be mounted,
    /// with `ContainerCreating` (the error is in the `FailedMount` event), as the kubelet shows it.
    fn report_config_error(&self, key: &PodKey, pod: &Pod, error: &resolve::ResolveError) {
        let message = error.to_string();
        self.inner
            .recorder
            .pod(pod, EventType::Warning, error.reason(), &message, None);
        let (reason, detail) = match error.scope() {
            Some(resolve::Scope::Volume(_)) => ("ContainerCreating", None),
            _ => ("CreateContainerConfigError", Some(message.clone())),
        };
        let waiting = |name: &String, image: &Option<String>| ContainerStatus {
            name: name.clone(),
            image: image.clone().unwrap_or_default(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: detail.clone(),
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        };
        let containers = pod.spec.iter().flat_map(|s| &s.containers);
        let mut status = pod.status.clone().unwrap_or_default();
        status.phase = Some("Pending".into());
        status.container_statuses = Some(containers.map(|c| waiting(&c.name, &c.image)).collect());
        self.inner.status.submit(
            key.clone(),
            pod.metadata.uid.clone().unwrap_or_default(),
            status,
        );
    }
}

const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// When the pod's `activeDeadlineSeconds` runs out, counted from its start time (or, before
/// the pod has one, its creation). The deadline may be lowered on a running pod, so it is
/// read anew at every sync.
fn active_deadline(pod: &Pod) -> Option<Timestamp> {
    let seconds = pod.spec.as_ref()?.active_deadline_seconds?;
    let start = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .or(pod.metadata.creation_timestamp.as_ref())?;
    start
        .0
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(seconds))
        .ok()
}

/// `status` of a pod stopped for its deadline: Failed, its containers terminated (by the
/// kubelet's SIGKILL code) unless they had already, and not ready.
fn deadline_exceeded(mut status: PodStatus) -> PodStatus {
    status.phase = Some("Failed".into());
    status.reason = Some(DEADLINE_EXCEEDED.into());
    status.message = Some(DEADLINE_MESSAGE.into());
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now());
    for container in status.container_statuses.iter_mut().flatten() {
        container.ready = false;
        container.started = Some(false);
        let terminated = container
            .state
            .as_ref()
            .is_some_and(|s| s.terminated.is_some());
        if !terminated {
            let started_at = container
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.clone());
            container.state = Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 137,
                    reason: Some("Error".into()),
                    started_at,
                    finished_at: Some(now.clone()),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            });
        }
    }
    for condition in status.conditions.iter_mut().flatten() {
        if matches!(condition.type_.as_str(), "Ready" | "ContainersReady") {
            condition.status = "False".into();
            condition.reason = Some("PodFailed".into());
        }
    }
    status
}

fn until(at: Timestamp) -> Duration {
    let left = at.duration_since(Timestamp::now());
    Duration::try_from(left).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests;
