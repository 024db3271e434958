//! A work queue that never hands out the same key twice at once.
//!
//! Keys are deduplicated while waiting; a key added while a worker holds it is handed out again
//! once that worker is done, so every change is seen and no two workers sync one pod together.
//! Failed keys come back after an exponential back-off.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    hash::Hash,
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use tokio::{sync::Notify, time::Instant};

/// Back-off after the first failure of a key; doubled on each further failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct State<K> {
    ready: VecDeque<K>,
    /// Keys in `ready` (waiting for a worker).
    queued: HashSet<K>,
    /// Keys a worker holds, and whether they were added again meanwhile.
    active: HashMap<K, bool>,
    failures: HashMap<K, u32>,
    /// When keys added with a delay come back (the soonest asked for).
    delayed: HashMap<K, Instant>,
    closed: bool,
}

/// The queue; cheap to clone.
#[derive(Debug)]
pub struct WorkQueue<K> {
    state: Arc<Mutex<State<K>>>,
    wake: Arc<Notify>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        WorkQueue {
            state: self.state.clone(),
            wake: self.wake.clone(),
        }
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> Default for WorkQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    pub fn new() -> Self {
        WorkQueue {
            state: Arc::new(Mutex::new(State {
                ready: VecDeque::new(),
                queued: HashSet::new(),
                active: HashMap::new(),
                failures: HashMap::new(),
                delayed: HashMap::new(),
                closed: false,
            })),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: K) {
        let mut state = self.state.lock();
        if let Some(again) = state.active.get_mut(&key) {
            *again = true;
            return;
        }
        if state.queued.insert(key.clone()) {
            state.ready.push_back(key);
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Queues `key` after `delay`, unless it comes back sooner already; a later time asked
    /// before a sooner one is dropped: the key's handling asks again. Every sync of a pod with
    /// a token asks for the token's renewal, and a sleeping task for each ask was tens of
    /// thousands of tasks at 10,000 pods.
    pub fn add_after(&self, key: K, delay: Duration) {
        let due = Instant::now() + delay;
        {
            let mut state = self.state.lock();
            if state
                .delayed
                .get(&key)
                .is_some_and(|soonest| *soonest <= due)
            {
                return;
            }
            state.delayed.insert(key.clone(), due);
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(due).await;
            {
                let mut state = queue.state.lock();
                if state.delayed.get(&key) != Some(&due) {
                    return;
                }
                state.delayed.remove(&key);
            }
            queue.add(key);
        });
    }

    /// Queues `key` again after its back-off, which grows with each failure.
    pub fn retry(&self, key: K) -> Duration {
        let failures = {
            let mut state = self.state.lock();
            let failures = state.failures.entry(key.clone()).or_insert(0);
            *failures += 1;
            *failures
        };
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << (failures - 1).min(20))
            .min(MAX_BACKOFF);
        self.add_after(key, delay);
        delay
    }

    /// Forgets the failures of `key` after it synced.
    pub fn succeeded(&self, key: &K) {
        self.state.lock().failures.remove(key);
    }

    /// Waits for the next key; `None` once the queue is closed. The caller must call `done`.
    pub async fn next(&self) -> Option<K> {
        loop {
            let notified = self.wake.notified();
            {
                let mut state = self.state.lock();
                if state.closed {
                    return None;
                }
                if let Some(key) = state.ready.pop_front() {
                    state.queued.remove(&key);
                    state.active.insert(key.clone(), false);
                    if !state.ready.is_empty() {
                        self.wake.notify_one();
                    }
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Releases `key`; if it was added while held, it is queued again.
    pub fn done(&self, key: &K) {
        let again = self.state.lock().active.remove(key);
        if again == Some(true) {
            self.add(key.clone());
        }
    }

    /// How many keys wait for a worker.
    pub fn len(&self) -> usize {
        self.state.lock().ready.len()
    }

    /// Wakes every waiting worker with `None`.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.wake.notify_waiters();
    }
}

#[cfg(test)]
mod tests;
