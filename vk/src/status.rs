//! Writes pod statuses to the API server.
//!
//! Statuses are coalesced per pod (the latest wins), skipped when the API already shows them,
//! and patched by a few concurrent writers through the rate-limited client. Every patch carries
//! the pod's UID, so a status never lands on a newer pod of the same name.

use std::{collections::HashMap, sync::Arc};

use k8s_openapi::{
    api::core::v1::{ContainerState, Pod, PodStatus},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::Client;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::{
    metrics::METRICS, packed::Packed, pod_writes::PodWrites, queue::WorkQueue, store::PodStore,
};

/// A pod by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    pub fn of(pod: &Pod) -> Option<Self> {
        Some(PodKey {
            namespace: pod.metadata.namespace.clone()?,
            name: pod.metadata.name.clone()?,
        })
    }
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Conditions the kubelet owns; the others (readiness gates, DisruptionTarget) are kept.
const KUBELET_CONDITIONS: [&str; 7] = [
    "PodReadyToStartContainers",
    crate::resize::PENDING,
    crate::resize::IN_PROGRESS,
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// `status` as it should be written over `current`: foreign conditions, the start time and the
/// observed generation are kept, a condition whose status did not change keeps its transition time (whatever time the
/// provider gave), and a terminal phase is never left again.
pub fn merge(current: Option<&PodStatus>, mut status: PodStatus) -> Option<PodStatus> {
    let Some(current) = current else {
        return Some(as_the_api_keeps_it(status));
    };
    if matches!(current.phase.as_deref(), Some("Succeeded" | "Failed"))
        && current.phase != status.phase
    {
        return None;
    }
    let foreign = current
        .conditions
        .iter()
        .flatten()
        .filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str()))
        .filter(|c| {
            !status
                .conditions
                .iter()
                .flatten()
                .any(|n| n.type_ == c.type_)
        });
    let mut conditions: Vec<_> = foreign.cloned().collect();
    conditions.extend(
        status
            .conditions
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|mut condition| {
                let unchanged = current
                    .conditions
                    .iter()
                    .flatten()
                    .find(|c| c.type_ == condition.type_ && c.status == condition.status);
                if let Some(time) = unchanged.and_then(|c| c.last_transition_time.clone()) {
                    condition.last_transition_time = Some(time);
                }
                condition
            }),
    );
    status.conditions = Some(conditions).filter(|c| !c.is_empty());
    if current.start_time.is_some() {
        status.start_time.clone_from(&current.start_time);
    }
    // As the API server does for a writer that omits it.
    if status.observed_generation.is_none() {
        status.observed_generation = current.observed_generation;
    }
    if status.qos_class.is_none() {
        status.qos_class.clone_from(&current.qos_class);
    }
    Some(as_the_api_keeps_it(status))
}

/// `status` as the API server gives it back: times cut to whole seconds, and a container's
/// `state` and `lastState` present, empty where the provider gave none (Go's structs are not
/// pointers there, so the API shows `{}`). Otherwise a status the API already shows would look
/// new, and be written again at every resync.
fn as_the_api_keeps_it(mut status: PodStatus) -> PodStatus {
    fn cut(time: &mut Option<Time>) {
        if let Some(time) = time {
            time.0 = Timestamp::from_second(time.0.as_second()).unwrap_or(time.0);
        }
    }
    cut(&mut status.start_time);
    for condition in status.conditions.iter_mut().flatten() {
        cut(&mut condition.last_probe_time);
        cut(&mut condition.last_transition_time);
    }
    let containers = status
        .container_statuses
        .iter_mut()
        .chain(status.init_container_statuses.iter_mut())
        .chain(status.ephemeral_container_statuses.iter_mut())
        .flatten();
    for container in containers {
        container.state.get_or_insert_with(ContainerState::default);
        container
            .last_state
            .get_or_insert_with(ContainerState::default);
        for state in container
            .state
            .iter_mut()
            .chain(container.last_state.iter_mut())
        {
            if let Some(running) = &mut state.running {
                cut(&mut running.started_at);
            }
            if let Some(terminated) = &mut state.terminated {
                cut(&mut terminated.started_at);
                cut(&mut terminated.finished_at);
            }
        }
    }
    status
}

/// A JSON merge patch that turns `current` into `status`, with the UID as a precondition.
/// Fields `status` lacks are removed explicitly, or a merge patch would keep them.
fn patch(uid: &str, current: Option<&PodStatus>, status: &PodStatus) -> Value {
    let mut body = serde_json::to_value(status).expect("a pod status serialises");
    if let (Some(Value::Object(old)), Value::Object(new)) = (
        current.map(|c| serde_json::to_value(c).expect("a pod status serialises")),
        &mut body,
    ) {
        for key in old.keys() {
            new.entry(key.clone()).or_insert(Value::Null);
        }
    }
    json!({"metadata": {"uid": uid}, "status": body})
}

#[derive(Debug)]
struct Pending {
    uid: String,
    /// Packed: during a burst or a resync round thousands wait, and the map's table, which
    /// never shrinks, holds a pointer per slot, not a status.
    status: Packed<PodStatus>,
}

/// The status writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct StatusWriter {
    pending: Arc<Mutex<HashMap<PodKey, Pending>>>,
    queue: WorkQueue<PodKey>,
    writes: PodWrites,
    store: PodStore,
}

impl StatusWriter {
    pub fn new(client: Client, store: PodStore) -> Self {
        StatusWriter {
            pending: Arc::default(),
            queue: WorkQueue::new(),
            writes: PodWrites::new(client),
            store,
        }
    }

    /// Queues `status` for the pod `key` with `uid`, replacing any status not yet written; a
    /// status the API already shows only drops the one not yet written. A resync reads every
    /// pod's status again, and holding 10,000 of them until a writer gets to each was tens of
    /// MiB at 10,000 pods.
    pub fn submit(&self, key: PodKey, uid: String, status: PodStatus) {
        let packed = Packed::new(&status);
        // Decided under the lock: a later submit for the pod must not be dropped by this one.
        let mut pending = self.pending.lock();
        if self.to_write(&key, &uid, status).is_none() {
            pending.remove(&key);
            return;
        }
        pending.insert(
            key.clone(),
            Pending {
                uid,
                status: packed,
            },
        );
        drop(pending);
        self.queue.add(key);
    }

    /// Statuses waiting to be written.
    pub fn backlog(&self) -> usize {
        self.pending.lock().len()
    }

    /// Runs `writers` concurrent writers until the queue closes.
    pub async fn run(self, writers: usize) {
        let tasks: Vec<_> = (0..writers)
            .map(|_| tokio::spawn(self.clone().write_loop()))
            .collect();
        futures::future::join_all(tasks).await;
    }

    pub fn close(&self) {
        self.queue.close();
    }

    async fn write_loop(self) {
        while let Some(key) = self.queue.next().await {
            let pending = self.pending.lock().remove(&key);
            if let Some(pending) = pending {
                self.write(&key, pending).await;
            }
            self.queue.done(&key);
        }
    }

    /// The pod's current status and what to write over it for `status`; `None` if the pod
    /// `uid` is gone, or the API shows `status` already.
    fn to_write(
        &self,
        key: &PodKey,
        uid: &str,
        status: PodStatus,
    ) -> Option<(Option<PodStatus>, PodStatus)> {
        let stored = self.store.stored(key)?;
        if stored.uid() != Some(uid) {
            return None;
        }
        let current = stored.status();
        let status = merge(current.as_ref(), status)?;
        (current.as_ref() != Some(&status)).then_some((current, status))
    }

    async fn write(&self, key: &PodKey, pending: Pending) {
        let Some((current, status)) = self.to_write(key, &pending.uid, pending.status.unpack())
        else {
            return;
        };
        let body = patch(&pending.uid, current.as_ref(), &status);
        let written = self.writes.patch_status(key, &body).await;
        METRICS.api_request("pod_status", &written);
        match written {
            Ok(_) => self.queue.succeeded(key),
            // Gone, replaced by a pod with another UID, or refused: a retry cannot help.
            Err(kube::Error::Api(response)) if matches!(response.code, 404 | 409 | 422 | 403) => {
                log::debug!("status of {key} not written: {}", response.message);
            }
            Err(error) => {
                log::warn!("cannot write the status of {key}, will retry: {error}");
                let mut pending_map = self.pending.lock();
                pending_map.entry(key.clone()).or_insert(Pending {
                    uid: pending.uid,
                    status: Packed::new(&status),
                });
                drop(pending_map);
                self.queue.retry(key.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests;
