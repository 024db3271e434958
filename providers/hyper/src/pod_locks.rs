//! One lock per pod, so that the provider's calls for a pod run one after the other. vk gives up
//! on a call after its time limit and calls again, but the call it gave up on goes on (its
//! requests wait in the engine). Without the lock the retried create found the half-made pod,
//! took it for one cut short by a vk restart and removed its infra container while the first
//! call was creating the app container in it: Podman left the infra container in "Removing"
//! for good and the pod never ran (scripts/chaos.sh engine-hang).

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
};

use parking_lot::Mutex;
use tokio::sync::OwnedMutexGuard;

type PodLock = tokio::sync::Mutex<()>;

/// The locks of the pods that have a call in progress, by pod UID.
#[derive(Debug, Default)]
pub struct PodLocks {
    locks: Mutex<HashMap<String, Weak<PodLock>>>,
}

impl PodLocks {
    /// Waits until no other call holds pod `uid`, and holds it until the guard is dropped.
    pub async fn lock(&self, uid: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock();
            // Locks nobody holds or waits for are gone: forget them.
            locks.retain(|_, lock| lock.strong_count() > 0);
            match locks.get(uid).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(PodLock::new(()));
                    locks.insert(uid.to_string(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let locks = self.locks.lock();
        locks.values().filter(|l| l.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn calls_for_one_pod_wait_for_each_other_and_others_do_not() {
        let locks = Arc::new(PodLocks::default());
        let first = locks.lock("a").await;
        let _other_pod = tokio::time::timeout(Duration::from_secs(1), locks.lock("b"))
            .await
            .expect("another pod's lock is free");
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { locks.lock("a").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the second call waits for the first"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("the second call goes on once the first is done")
            .unwrap();
        drop(second);
        drop(_other_pod);
        assert_eq!(locks.len(), 0, "no lock outlives its calls");
    }
}
