//! One sync of a pod: what the API asks of it (run, update, stop, forget, fail at its deadline)
//! made true on the provider, and at start-up the adoption of what the provider already runs.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use k8s_openapi::{
    api::core::v1::{Pod, PodStatus},
    jiff::Timestamp,
};
use kube::api::{DeleteParams, Preconditions};
use vk_abi::{ErrorKind, ProviderError, error_chain};

use super::{
    PodController,
    report::{DEADLINE_EXCEEDED, DEADLINE_MESSAGE, deadline_exceeded},
    tracked::Tracked,
};
use crate::{
    events::EventType,
    metrics::METRICS,
    resize::Allocation,
    resolve::{self, Resolution},
    status::PodKey,
    store::StoredPod,
};

/// How often a terminating pod's containers are checked while the provider stops them.
const TERMINATION_CHECK: Duration = Duration::from_secs(1);
/// The longest wait between two start-up attempts to list the provider's pods.
const LIST_RETRY_MAX: Duration = Duration::from_secs(30);
/// How soon a token is asked again for a pod the API server may not have seen bound yet.
const UNSEEN_POD_RETRY: Duration = Duration::from_millis(250);
/// A pod younger than this may not be seen bound by the API server's node authorizer yet.
const UNSEEN_POD_AGE: Duration = Duration::from_secs(60);

/// How soon a resize that the provider deferred or failed is tried again.
const RESIZE_RETRY: Duration = Duration::from_secs(5);

/// A pod's status read from the provider; `None` if the provider does not know the pod.
type StatusRead = Result<Option<PodStatus>, ProviderError>;

/// Why one sync of a pod did not finish; the key is retried with back-off.
#[derive(Debug, thiserror::Error)]
pub(super) enum SyncError {
    #[error("provider call failed")]
    Provider(#[from] ProviderError),
    #[error("cannot resolve the pod")]
    Resolve(#[from] resolve::ResolveError),
    #[error("kubernetes API call failed")]
    Api(#[from] kube::Error),
}

/// What a sync asks for besides success.
pub(super) enum Next {
    Done,
    /// Check again after this delay (a terminating pod, a token to renew).
    After(Duration),
}

/// Fingerprint of what the provider was given, ignoring what changes without meaning
/// (resource version, managed fields, status).
fn fingerprint(resolved: &vk_abi::ResolvedPod) -> u64 {
    let pod = &resolved.pod;
    let mut hasher = DefaultHasher::new();
    // Their JSON is hashed as it is written, not gathered in a string first.
    let _ = serde_json::to_writer(HashWriter(&mut hasher), &pod.spec);
    pod.metadata.labels.hash(&mut hasher);
    pod.metadata.annotations.hash(&mut hasher);
    let _ = serde_json::to_writer(HashWriter(&mut hasher), &resolved.volumes);
    hasher.finish()
}

/// Feeds what is written to a hasher.
struct HashWriter<'a>(&'a mut DefaultHasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// When to sync a resolved pod again: when its first token is due for renewal.
fn next_sync(resolution: &Resolution) -> Next {
    match resolution.refresh_at {
        Some(at) => Next::After(until(at)),
        None => Next::Done,
    }
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

/// Whether the pod was created less than [`UNSEEN_POD_AGE`] ago.
fn is_young(pod: &Pod) -> bool {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .is_some_and(|created| {
            Timestamp::now().duration_since(created.0).as_secs_f64() < UNSEEN_POD_AGE.as_secs_f64()
        })
}

fn until(at: Timestamp) -> Duration {
    let left = at.duration_since(Timestamp::now());
    Duration::try_from(left).unwrap_or(Duration::ZERO)
}

impl PodController {
    /// At start-up: adopts the provider's pods that the API still has, and removes the ones it
    /// does not, now that the watch has seen every pod bound to this node. Until the provider
    /// can list its pods, nothing can be started safely: the list is asked again, backing off.
    pub(super) async fn reconcile_provider_pods(&self) {
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
            let in_api = inner.store.stored(&key).map(|stored| {
                let api_pod = stored.pod();
                (stored, api_pod)
            });
            let same = in_api.as_ref().filter(|(_, api_pod)| {
                pod.metadata.uid.is_none() || api_pod.metadata.uid == pod.metadata.uid
            });
            match same {
                Some((_, api_pod)) if !has_every_container(&pod, api_pod) => {
                    // vk stopped while the provider created it: the sync creates it again,
                    // and the provider finishes or redoes it.
                    partial += 1;
                    log::info!("{key} was only partly created before vk stopped: creating it");
                }
                Some((stored, api_pod)) => {
                    adopted += 1;
                    let tracked = Tracked {
                        uid: api_pod.metadata.uid.clone().unwrap_or_default(),
                        fingerprint: None,
                        deleting: false,
                        waits_for_pod_ip: false,
                        last_seen: stored.clone(),
                        reports: 0,
                        status_round: 0,
                        allocation: Allocation::of(api_pod),
                        follows: inner.prober.follows(api_pod),
                    };
                    inner.tracked.insert(&key, tracked);
                }
                None => {
                    removed += 1;
                    log::info!(pod:% = key; "removing {key} from the provider: the API no longer has it");
                    if let Err(error) = inner
                        .provider
                        .call("delete_pod", move |p| p.delete_pod(&pod, 0))
                        .await
                    {
                        log::warn!(pod:% = key; "cannot remove {key} from the provider: {error}");
                    }
                }
            }
        }
        log::info!(
            "adopted {adopted} running pods, removed {removed} the API no longer has, \
             {partial} partly created"
        );
    }

    /// Brings the provider in line with the API for pod `key`.
    pub(super) async fn sync(&self, key: &PodKey) -> Result<Next, SyncError> {
        let stored = self.inner.store.stored(key);
        let tracked = self.inner.tracked.get(key);
        match (stored, tracked) {
            (None, None) => Ok(Next::Done),
            (None, Some(tracked)) => self.forget(key, tracked).await,
            (Some(stored), Some(tracked)) if stored.uid() != Some(tracked.uid.as_str()) => {
                // A new pod took the old one's name: the old one goes first.
                self.forget(key, tracked).await?;
                self.sync_pod(key, stored, None).await
            }
            (Some(stored), tracked) => self.sync_pod(key, stored, tracked).await,
        }
    }

    async fn sync_pod(
        &self,
        key: &PodKey,
        stored: Arc<StoredPod>,
        tracked: Option<Tracked>,
    ) -> Result<Next, SyncError> {
        if stored.deletion_timestamp().is_some() {
            return self.terminate(key, &stored, tracked).await;
        }
        let pod = Arc::new(stored.pod());
        if is_terminal(&pod) {
            return Ok(Next::Done);
        }
        let deadline = active_deadline(&pod);
        if deadline.is_some_and(|d| d <= Timestamp::now()) {
            return self.exceed_deadline(key, &pod, &stored, tracked).await;
        }
        let next = self.ensure_running(key, pod, stored, tracked).await?;
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
        stored: &Arc<StoredPod>,
        tracked: Option<Tracked>,
    ) -> Result<Next, SyncError> {
        let inner = &self.inner;
        if let Some(tracked) = tracked.filter(|t| !t.deleting) {
            inner.recorder.pod(
                pod,
                EventType::Normal,
                DEADLINE_EXCEEDED,
                DEADLINE_MESSAGE,
                None,
            );
            let grace = pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(30);
            // The status written is the deadline's, whatever the provider's is now.
            let _status = self.stop_in_provider(key, tracked, stored, grace).await?;
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
        stored: Arc<StoredPod>,
        tracked: Option<Tracked>,
    ) -> Result<Next, SyncError> {
        let inner = &self.inner;
        let given_before = tracked.is_some();
        let resolved = self.resolve(key, &pod, &stored, given_before).await?;
        let mut resolution = match resolved {
            Ok(resolution) => resolution,
            Err(next) => return Ok(next),
        };
        let mut current = Tracked {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            fingerprint: Some(fingerprint(&resolution.pod)),
            deleting: false,
            waits_for_pod_ip: resolution.waits_for_pod_ip,
            last_seen: stored.clone(),
            reports: 0,
            // A pod created now is reported by the provider as it starts.
            status_round: tracked
                .as_ref()
                .map_or_else(|| inner.round.load(Ordering::Relaxed), |t| t.status_round),
            allocation: tracked
                .as_ref()
                .map_or_else(|| Allocation::of(&pod), |t| t.allocation.clone()),
            follows: inner.prober.follows(&pod),
        };
        let update = match &tracked {
            None => false,
            Some(t) if t.allocation.is_resize(|| t.last_seen.pod(), &pod) => {
                return self.resize(key, pod, current, next_sync(&resolution)).await;
            }
            Some(t) if t.fingerprint.is_none_or(|f| Some(f) == current.fingerprint) => {
                self.inner.tracked.insert(key, current);
                self.check_status(key).await?;
                return Ok(next_sync(&resolution));
            }
            Some(_) => true,
        };
        if resolution.lacks_a_token() {
            // Cached tokens are known by their digests: the provider gets new ones.
            inner.objects.forget_pod(&current.uid);
            let resolved = self.resolve(key, &pod, &stored, given_before).await?;
            resolution = match resolved {
                Ok(resolution) => resolution,
                Err(next) => return Ok(next),
            };
            current.fingerprint = Some(fingerprint(&resolution.pod));
        }
        let next = next_sync(&resolution);
        // An update hands the provider the whole pod, resources included.
        current.allocation = Allocation::of(&pod);
        let events = std::mem::take(&mut resolution.events);
        // Tracked before the call: a provider may report the pod's status before it returns.
        self.inner.tracked.insert(key, current);
        let resolved = resolution.provider_pod();
        let result = if update {
            inner
                .provider
                .call("update_pod", move |p| p.update_pod(&resolved))
                .await
                .map(|()| None)
        } else {
            // The provider's admission first, as the kubelet's, in the same trip as the create.
            inner
                .provider
                .trip("check_pod", move |trip| {
                    let refusal = trip.call("check_pod", |p| p.check_pod(&stored.json()))?;
                    if refusal.is_none() {
                        trip.call("create_pod", |p| p.create_pod(&resolved))?;
                    }
                    Ok(refusal)
                })
                .await
        };
        if let Ok(Some(refusal)) = result {
            self.untrack(key);
            self.report_refusal(key, &pod, refusal);
            return Ok(Next::Done);
        }
        for event in events {
            inner.recorder.pod(
                &pod,
                event.type_,
                event.reason,
                &event.message,
                event.field_path,
            );
        }
        // Success makes no event: the kubelet records none, and the provider records what
        // the backend did (Pulled, Started); one request per pod fewer.
        match result {
            Ok(_) => {
                log::debug!(pod:% = key; "{key}: {} by the provider", if update { "updated" } else { "created" });
                Ok(next)
            }
            Err(error) => {
                match tracked {
                    Some(previous) => self.inner.tracked.insert(key, previous),
                    None => self.untrack(key),
                }
                let failure = if update {
                    "ProviderUpdateFailed"
                } else {
                    "ProviderCreateFailed"
                };
                self.report_provider_error(key, &pod, failure, &error);
                Err(error.into())
            }
        }
    }

    /// Resolves the pod; `Ok(Err(next))` where it has no resolution but is not failed either:
    /// asked again soon while the API server may not have seen the pod yet, or done with if
    /// the provider refused it. A failure is reported on the pod only if the provider was not
    /// `given_before` the pod, and then only if the provider's admission, which comes first
    /// for the kubelet, does not refuse the pod.
    async fn resolve(
        &self,
        key: &PodKey,
        pod: &Arc<Pod>,
        stored: &Arc<StoredPod>,
        given_before: bool,
    ) -> Result<Result<Resolution, Next>, SyncError> {
        let inner = &self.inner;
        match resolve::resolve(pod, &inner.settings.node, &inner.objects).await {
            Ok(resolution) => Ok(Ok(resolution)),
            // Asked again soon and quietly, rather than with growing back-off and an event
            // and a status write each time: the API server will see the pod in a moment.
            Err(error) if error.may_be_unseen_pod() && is_young(pod) => {
                log::debug!(pod:% = key; "{key}: {}; asking again", error_chain(&error));
                Ok(Err(Next::After(UNSEEN_POD_RETRY)))
            }
            Err(error) => {
                if !given_before {
                    if self.refused(key, pod, stored).await? {
                        return Ok(Err(Next::Done));
                    }
                    self.report_config_error(key, pod, &error);
                }
                Err(error.into())
            }
        }
    }

    /// Asks the provider whether it can run a pod it was never given; a refused pod is
    /// rejected (see [`PodController::report_refusal`]) and, being terminal, never synced
    /// again.
    async fn refused(
        &self,
        key: &PodKey,
        pod: &Arc<Pod>,
        stored: &Arc<StoredPod>,
    ) -> Result<bool, SyncError> {
        let checked = stored.clone();
        let refusal = self
            .inner
            .provider
            .call("check_pod", move |p| p.check_pod(&checked.json()))
            .await?;
        let Some(refusal) = refusal else {
            return Ok(false);
        };
        self.report_refusal(key, pod, refusal);
        Ok(true)
    }

    /// Resizes the running pod in place (the kubelet's resize admission and actuation), then
    /// writes the status that shows the outcome.
    async fn resize(
        &self,
        key: &PodKey,
        pod: Arc<Pod>,
        mut current: Tracked,
        next: Next,
    ) -> Result<Next, SyncError> {
        // Read from the provider at once, whatever the round, to show the outcome.
        current.status_round = 0;
        let (allocation, again) = match current.allocation.settled(&pod) {
            Some(settled) => (settled, false),
            None => {
                // Tracked as started before the call: a report during it shows the resize
                // in progress.
                let previous =
                    std::mem::replace(&mut current.allocation, Allocation::started(&pod));
                self.inner.tracked.insert(key, current.clone());
                let resized = pod.clone();
                let result = self
                    .inner
                    .provider
                    .call("resize_pod", move |p| p.resize_pod(&resized))
                    .await;
                previous.after(&pod, result.as_ref().err())
            }
        };
        current.allocation = allocation;
        self.inner.tracked.insert(key, current);
        self.check_status(key).await?;
        Ok(if again {
            Next::After(RESIZE_RETRY)
        } else {
            next
        })
    }

    /// Reads the pod's status from the provider and writes it where the API disagrees: once
    /// for a pod adopted at start-up, then once per resync round. No provider is trusted to
    /// report again what it reported before vk stopped, nor every report to have been written.
    async fn check_status(&self, key: &PodKey) -> Result<(), SyncError> {
        let round = self.inner.round.load(Ordering::Relaxed);
        let unchecked = self
            .inner
            .tracked
            .get(key)
            .filter(|t| !t.deleting && t.status_round < round);
        let Some(reports) = unchecked.map(|t| t.reports) else {
            return Ok(());
        };
        let (namespace, name) = (key.namespace.clone(), key.name.clone());
        let status = self
            .inner
            .provider
            .call("get_pod_status", move |p| {
                p.get_pod_status(&namespace, &name)
            })
            .await?;
        if status.is_none() {
            log::debug!(pod:% = key; "{key}: the provider has no status for the pod");
        }
        // Submitted under the map's lock, so that a report counted after this check is also
        // submitted after this status, and wins.
        self.inner.tracked.update(key, |tracked| {
            tracked.status_round = round;
            if let Some(mut status) =
                status.filter(|_| tracked.reports == reports && !tracked.deleting)
            {
                self.decorate(key, tracked, &mut status);
                self.inner
                    .status
                    .submit(key.clone(), tracked.uid.clone(), status);
            }
        });
        Ok(())
    }

    /// A pod with a deletion timestamp: the provider stops it, then the API object goes, once
    /// every container has terminated or the grace period is over. The pod is decoded only
    /// for what needs more than its metadata (a preStop hook, an event).
    async fn terminate(
        &self,
        key: &PodKey,
        stored: &Arc<StoredPod>,
        tracked: Option<Tracked>,
    ) -> Result<Next, SyncError> {
        let inner = &self.inner;
        let Some(tracked) = tracked else {
            // Deleted already: the watch has yet to show it gone.
            if stored
                .uid()
                .is_some_and(|uid| inner.tracked.was_deleted(uid))
            {
                return Ok(Next::Done);
            }
            // Never started: nothing to stop.
            return self.delete_from_api(key, stored.uid()).await;
        };
        let status = if tracked.deleting {
            let (namespace, name) = (key.namespace.clone(), key.name.clone());
            inner
                .provider
                .call("get_pod_status", move |p| {
                    p.get_pod_status(&namespace, &name)
                })
                .await?
        } else {
            let grace = stored.deletion_grace_period_seconds().unwrap_or(30);
            match self.stop_in_provider(key, tracked, stored, grace).await {
                Ok(status) => status?,
                Err(error) => {
                    inner.recorder.pod(
                        &stored.pod(),
                        EventType::Warning,
                        "ProviderDeleteFailed",
                        &error.message,
                        None,
                    );
                    return Err(error.into());
                }
            }
        };
        let deadline = stored.deletion_timestamp();
        if all_terminated(status.as_ref()) || deadline.is_some_and(|d| d <= Timestamp::now()) {
            return self.delete_from_api(key, stored.uid()).await;
        }
        Ok(Next::After(TERMINATION_CHECK))
    }

    /// Has the provider stop the pod within `grace` seconds, after its preStop hooks (which take
    /// their time from that grace), and reads the status it has then, in the same trip to the
    /// provider (see [`Provider::call_then`]): no status if the provider no longer knows the
    /// pod. Marked as deleting first: the provider may report the stopped pod before the call
    /// returns, and that report must not become a status write (over a Failed status, or on a
    /// pod being deleted). Unmarked if the call fails.
    async fn stop_in_provider(
        &self,
        key: &PodKey,
        mut tracked: Tracked,
        stored: &Arc<StoredPod>,
        grace: i64,
    ) -> Result<StatusRead, ProviderError> {
        tracked.deleting = true;
        self.inner.tracked.insert(key, tracked.clone());
        let grace = self.inner.prober.terminate(key, grace).await;
        let doomed = stored.clone();
        let (namespace, name) = (key.namespace.clone(), key.name.clone());
        let stopped = self.inner.provider.call_then(
            ("delete_pod", "get_pod_status"),
            move |p| p.delete_pod(&doomed.json(), grace),
            move |p| p.get_pod_status(&namespace, &name),
        );
        match stopped.await {
            Ok(((), status)) => Ok(status),
            Err(error) if error.kind == ErrorKind::NotFound => Ok(Ok(None)),
            Err(error) => {
                tracked.deleting = false;
                self.inner.tracked.insert(key, tracked);
                Err(error)
            }
        }
    }

    /// Removes the pod from the API with grace 0, only if it is still the same pod (`uid`).
    async fn delete_from_api(&self, key: &PodKey, uid: Option<&str>) -> Result<Next, SyncError> {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: uid.map(str::to_string),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let deleted = self.inner.writes.delete(key, &params).await;
        METRICS.api_request("pod_delete", &deleted);
        match deleted {
            Ok(_) => {
                if let Some(uid) = uid {
                    self.inner.tracked.deleted(uid);
                    // Also a pod never given to the provider may have had tokens issued: its
                    // resolution failed after them.
                    self.inner.objects.forget_pod(uid);
                }
            }
            // NodeRestriction answers 404 for a pod that its informer has not seen yet (under
            // load it lags the watch): while the watch still shows the pod, ask again.
            Err(kube::Error::Api(response))
                if response.code == 404 && self.still_watched(key, uid) =>
            {
                log::debug!(
                    pod:% = key;
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

    /// Whether the watch still shows the pod `uid` under `key`.
    fn still_watched(&self, key: &PodKey, uid: Option<&str>) -> bool {
        self.inner
            .store
            .stored(key)
            .is_some_and(|watched| watched.uid() == uid)
    }

    /// The API no longer has the pod (force-deleted, or replaced): the provider drops it too.
    async fn forget(&self, key: &PodKey, tracked: Tracked) -> Result<Next, SyncError> {
        if !tracked.deleting {
            let last_seen = tracked.last_seen.clone();
            match self
                .inner
                .provider
                .call("delete_pod", move |p| p.delete_pod(&last_seen.json(), 0))
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

    /// Forgets the pod, and the tokens issued for it.
    fn untrack(&self, key: &PodKey) {
        let removed = self.inner.tracked.remove(key);
        self.inner.prober.forget(key);
        if let Some(tracked) = removed {
            self.inner.objects.forget_pod(&tracked.uid);
        }
    }
}

#[cfg(test)]
mod tests;
