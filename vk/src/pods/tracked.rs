//! What vk knows of the pods it handed to the provider: one record per pod, behind a lock
//! that only this module takes, so no caller can hold it across an await or a provider call.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;

use crate::{resize::Allocation, status::PodKey, store::StoredPod};

/// What vk knows of a pod it has handed to the provider.
#[derive(Debug, Clone)]
pub(super) struct Tracked {
    pub(super) uid: String,
    /// Fingerprint of what the provider was given; `None` for pods adopted at start-up.
    pub(super) fingerprint: Option<u64>,
    /// The provider was told to delete the pod.
    pub(super) deleting: bool,
    /// Environment that uses the pod IP is resolved again once the provider reports one.
    pub(super) waits_for_pod_ip: bool,
    /// The pod as last seen, for deleting it from the provider after the API forgot it; kept
    /// as the store keeps it, and shared with the store while the watch shows no newer one.
    pub(super) last_seen: Arc<StoredPod>,
    /// Status reports received from the provider: a status read from the provider is written
    /// only if no report came while it was being read, since a report is at least as new.
    pub(super) reports: u64,
    /// The resync round in which the provider's status of the pod was last compared with the
    /// API's (0: never, as for a pod adopted at start-up).
    pub(super) status_round: u64,
    /// The resources the provider was asked to run, and where a resize of them stands.
    pub(super) allocation: Allocation,
    /// The prober follows the pod (see [`crate::prober::Prober::follows`]), which is decided
    /// by the spec of its containers, fixed once created.
    pub(super) follows: bool,
}

/// How long vk remembers the pods it deleted from the API: longer than the watch lags.
const DELETED_MEMORY: Duration = Duration::from_secs(300);

/// The tracked pods by key.
#[derive(Debug, Default)]
pub(super) struct TrackedPods {
    /// Boxed: a map sized for 10,000 pods has 16,384 slots, each as large as its key and
    /// value, where a `Tracked` is over 170 bytes.
    pods: Mutex<HashMap<PodKey, Box<Tracked>>>,
    /// UIDs of pods vk deleted from the API, while the watch may still show them.
    deleted: Mutex<Deleted>,
}

/// UIDs remembered for [`DELETED_MEMORY`], forgotten oldest first: each deletion costs the same
/// however many pods were deleted before it (scanning them all made a burst of deletions
/// quadratic).
#[derive(Debug, Default)]
struct Deleted {
    /// When each UID was last deleted.
    at: HashMap<String, Instant>,
    /// The deletions in the order they came, some already superseded in `at`.
    order: VecDeque<(Instant, String)>,
}

impl Deleted {
    fn forget_before(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front()
            && now.duration_since(*at) >= DELETED_MEMORY
        {
            let Some((at, uid)) = self.order.pop_front() else {
                break;
            };
            if self.at.get(&uid) == Some(&at) {
                self.at.remove(&uid);
            }
        }
    }
}

impl TrackedPods {
    pub(super) fn get(&self, key: &PodKey) -> Option<Tracked> {
        self.pods
            .lock()
            .get(key)
            .map(|tracked| Tracked::clone(tracked))
    }

    pub(super) fn keys(&self) -> Vec<PodKey> {
        self.pods.lock().keys().cloned().collect()
    }

    /// Records what vk knows of the pod; the count of the provider's reports goes on for the
    /// same pod.
    pub(super) fn insert(&self, key: &PodKey, mut tracked: Tracked) {
        let mut pods = self.pods.lock();
        if let Some(previous) = pods.get(key).filter(|p| p.uid == tracked.uid) {
            tracked.reports = previous.reports;
        }
        pods.insert(key.clone(), Box::new(tracked));
    }

    pub(super) fn remove(&self, key: &PodKey) -> Option<Tracked> {
        self.pods.lock().remove(key).map(|tracked| *tracked)
    }

    /// Remembers that the pod `uid` was deleted from the API.
    pub(super) fn deleted(&self, uid: &str) {
        self.deleted_at(uid, Instant::now());
    }

    fn deleted_at(&self, uid: &str, now: Instant) {
        let mut deleted = self.deleted.lock();
        deleted.forget_before(now);
        deleted.at.insert(uid.to_string(), now);
        deleted.order.push_back((now, uid.to_string()));
    }

    /// Whether vk deleted the pod `uid` from the API (recently).
    pub(super) fn was_deleted(&self, uid: &str) -> bool {
        self.was_deleted_at(uid, Instant::now())
    }

    fn was_deleted_at(&self, uid: &str, now: Instant) -> bool {
        let mut deleted = self.deleted.lock();
        deleted.forget_before(now);
        deleted.at.contains_key(uid)
    }

    /// Keeps `pod` as the pod last seen if it differs from that in its status alone and the
    /// change needs no sync (mostly the echo of vk's own status write); whether it did. A
    /// sync reads a status only for a pod IP that the environment waits for, while the pod is
    /// deleted, or for a pod adopted at start-up and not synced since. (An
    /// `activeDeadlineSeconds` counts from the status's start time, but that is never before
    /// the creation time that the deadline's timer was set from.)
    pub(super) fn take_status_change(&self, key: &PodKey, pod: &Arc<StoredPod>) -> bool {
        let taken = self.update(key, |tracked| {
            let needs_no_sync = !tracked.deleting
                && !tracked.waits_for_pod_ip
                && tracked.fingerprint.is_some()
                && pod.differs_only_in_status(&tracked.last_seen);
            if needs_no_sync {
                tracked.last_seen = pod.clone();
            }
            needs_no_sync
        });
        taken == Some(true)
    }

    /// Changes the record of `key`, if there is one, under the lock: what `change` does is
    /// ordered with every other change of the map.
    pub(super) fn update<R>(
        &self,
        key: &PodKey,
        change: impl FnOnce(&mut Tracked) -> R,
    ) -> Option<R> {
        self.pods.lock().get_mut(key).map(|tracked| change(tracked))
    }
}

#[cfg(test)]
mod tests;
