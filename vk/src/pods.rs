//! The pod controller: runs the pods bound to this node on the provider and keeps their status
//! in the API true.
//!
//! Pods are watched with `spec.nodeName=<node>` (all a node identity may watch) into a
//! reflector. Each change queues the pod's key; workers sync one pod at a time per key, so the
//! provider never sees two calls for one pod at once. Provider notifications (or polling, for
//! providers that cannot notify) become status patches through the [`StatusWriter`].
//!
//! This module is the controller's machinery (the watch, the workers, the resync and poll
//! loops); [`reconcile`] holds what one sync of a pod does, [`report`] what becomes of the
//! provider's reports and refusals, and [`tracked`] what vk knows of each pod it started.

mod reconcile;
mod report;
mod tracked;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, reflector, watcher},
};
use tokio::sync::watch;
use vk_abi::{ProviderError, error_chain};

use crate::{
    backoff::WatchBackoff,
    events::Recorder,
    metrics::METRICS,
    objects::ApiObjects,
    pod_writes::PodWrites,
    prober::Prober,
    provider::Provider,
    queue::WorkQueue,
    resolve::NodeFacts,
    status::{PodKey, StatusWriter},
    store::{PodStore, StoredPod},
};
use reconcile::Next;
use tracked::TrackedPods;

/// How often providers that cannot notify are asked for their pods' statuses.
const POLL_PERIOD: Duration = Duration::from_secs(5);
/// Retries sooner than this are logged at debug level only.
const QUIET_RETRIES: Duration = Duration::from_secs(2);

/// Settings of the pod controller.
#[derive(Debug, Clone)]
pub struct PodSettings {
    /// What the provider does itself (probes, or none).
    pub capabilities: vk_abi::Capabilities,
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
    /// Pods in every namespace (a handle to the client), for the watch.
    pods: Api<Pod>,
    writes: PodWrites,
    provider: Provider,
    store: PodStore,
    queue: WorkQueue<PodKey>,
    status: StatusWriter,
    recorder: Recorder,
    objects: ApiObjects,
    tracked: TrackedPods,
    prober: Prober,
    /// Pods whose probe results changed, taken by the task that writes their status again.
    probe_changes: parking_lot::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<PodKey>>>,
    /// The current resync round, counted from 1: each pod's status is read from the provider
    /// once per round (see [`PodController::check_status`]).
    round: AtomicU64,
}

impl PodController {
    pub fn new(
        settings: PodSettings,
        client: Client,
        provider: Provider,
        recorder: Recorder,
        store: PodStore,
    ) -> Self {
        let objects = ApiObjects::new(client.clone());
        let status = StatusWriter::new(client.clone(), store.clone());
        let (prober, probe_changes) = Prober::new(
            provider.clone(),
            settings.capabilities.clone(),
            recorder.clone(),
        );
        PodController {
            inner: Arc::new(Inner {
                settings,
                writes: PodWrites::new(client.clone()),
                pods: Api::all(client),
                provider,
                store,
                queue: WorkQueue::new(),
                status,
                recorder,
                objects,
                tracked: TrackedPods::default(),
                prober,
                probe_changes: parking_lot::Mutex::new(Some(probe_changes)),
                round: AtomicU64::new(1),
            }),
        }
    }

    /// Runs until `shutdown` resolves: watches pods, reconciles with the provider once the watch
    /// has synced (then sets `synced`), and syncs pods with `workers` workers.
    pub async fn run(
        self,
        writer: reflector::store::Writer<StoredPod>,
        synced: watch::Sender<bool>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ProviderError> {
        let inner = &self.inner;
        // Stored compact; managed fields are left out as each pod is decoded.
        let api: Api<StoredPod> = Api::all(inner.pods.clone().into_client());
        let selector = format!("spec.nodeName={}", inner.settings.node_name);
        let events = watcher(api, watcher::Config::default().fields(&selector))
            .backoff(WatchBackoff::default())
            .reflect(writer);
        let watching = tokio::spawn({
            let controller = self.clone();
            async move {
                let mut events = std::pin::pin!(events);
                while let Some(event) = events.next().await {
                    match event {
                        Ok(watcher::Event::Apply(pod)) => controller.changed(&pod),
                        Ok(watcher::Event::Delete(pod) | watcher::Event::InitApply(pod)) => {
                            if let Some(key) = pod.key() {
                                controller.inner.queue.add(key);
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
            inner.store.state().len()
        );

        // As many status writers as sync workers: each sync may end in one status write.
        let status_writer = tokio::spawn(inner.status.clone().run(inner.settings.workers));
        let workers: Vec<_> = (0..inner.settings.workers)
            .map(|_| tokio::spawn(self.clone().work()))
            .collect();
        let resync = tokio::spawn(self.clone().resync());
        let probe_changes = inner.probe_changes.lock().take();
        let rewrites = probe_changes.map(|changes| tokio::spawn(self.clone().rewrite(changes)));
        shutdown.await;
        inner.queue.close();
        inner.status.close();
        resync.abort();
        if let Some(rewrites) = rewrites {
            rewrites.abort();
        }
        watching.abort();
        futures::future::join_all(workers).await;
        let _ = status_writer.await;
        Ok(())
    }

    /// Queues a pod that the watch shows changed, unless its status alone changed and that
    /// needs no sync: a sync of each echo of vk's own status write decoded and resolved the pod
    /// again for nothing.
    fn changed(&self, pod: &StoredPod) {
        let Some(key) = pod.key() else {
            return;
        };
        let inner = &self.inner;
        // The watch puts each pod in the store before it shows it here.
        let taken = (inner.store.stored(&key))
            .is_some_and(|stored| inner.tracked.take_status_change(&key, &stored));
        if !taken {
            inner.queue.add(key);
        }
    }

    /// Registers for provider notifications, or polls providers that cannot notify.
    async fn listen_to_provider(&self) {
        let (this, that) = (self.clone(), self.clone());
        let notifies = self
            .inner
            .provider
            .call("notify_pods", move |p| {
                p.notify_pods(
                    move |pod| this.provider_reported(pod),
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

    /// Asks a provider that cannot notify for the status of every pod it runs, now and then.
    async fn poll(self) {
        let mut ticks = tokio::time::interval(POLL_PERIOD);
        loop {
            ticks.tick().await;
            for key in self.inner.tracked.keys() {
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
                        self.provider_reported(pod);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        log::debug!(pod:% = key; "cannot poll the status of {key}: {error}")
                    }
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
                if let Some(key) = pod.key() {
                    self.inner.queue.add(key);
                }
            }
            for key in self.inner.tracked.keys() {
                self.inner.queue.add(key);
            }
        }
    }

    /// A worker: syncs the queued pods one at a time, retrying failed syncs with back-off.
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
                        pod:% = key;
                        "sync of {key} failed, retrying in {delay:?}: {}",
                        error_chain(&error)
                    );
                }
            }
            queue.done(&key);
        }
    }
}
