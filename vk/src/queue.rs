//! A work queue that never hands out the same key twice at once.
//!
//! Keys are deduplicated while waiting; a key added while a worker holds it is handed out again
//! once that worker is done, so every change is seen and no two workers sync one pod together.
//! Failed keys come back after an exponential back-off. Delayed keys wait in one map sorted by
//! due time, watched by one timer task: a sleeping task for each delayed key was 7 MB of tasks at
//! 10,000 pods with tokens, each asking to come back when its token is due for renewal.

use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
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
    /// When keys added with a delay come back (the soonest asked for) ...
    delayed: HashMap<K, Instant>,
    /// ... and the same, soonest first, for the timer task.
    due: BTreeSet<(Instant, K)>,
    timer_started: bool,
    closed: bool,
}

impl<K: Clone + Eq + Hash> State<K> {
    /// Queues `key` unless it is already waiting; whether a worker should be woken.
    fn add(&mut self, key: K) -> bool {
        if let Some(again) = self.active.get_mut(&key) {
            *again = true;
            return false;
        }
        if !self.queued.insert(key.clone()) {
            return false;
        }
        self.ready.push_back(key);
        true
    }
}

#[derive(Debug)]
struct Shared<K> {
    state: Mutex<State<K>>,
    /// Wakes a worker: a key is ready.
    wake: Notify,
    /// Wakes the timer task: a sooner key was delayed, or the queue closed.
    timer: Notify,
}

/// The queue; cheap to clone.
#[derive(Debug)]
pub struct WorkQueue<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        WorkQueue {
            shared: self.shared.clone(),
        }
    }
}

impl<K: Clone + Ord + Hash + Send + 'static> Default for WorkQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Ord + Hash + Send + 'static> WorkQueue<K> {
    pub fn new() -> Self {
        let state = State {
            ready: VecDeque::new(),
            queued: HashSet::new(),
            active: HashMap::new(),
            failures: HashMap::new(),
            delayed: HashMap::new(),
            due: BTreeSet::new(),
            timer_started: false,
            closed: false,
        };
        WorkQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                wake: Notify::new(),
                timer: Notify::new(),
            }),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State<K>> {
        self.shared.state.lock()
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: K) {
        if self.lock().add(key) {
            self.shared.wake.notify_one();
        }
    }

    /// Queues `key` after `delay`, unless it comes back sooner already; a later time asked
    /// before a sooner one is dropped: the key's handling asks again.
    pub fn add_after(&self, key: K, delay: Duration) {
        let due = Instant::now() + delay;
        let mut state = self.lock();
        if let Some(soonest) = state.delayed.get(&key).copied() {
            if soonest <= due {
                return;
            }
            state.due.remove(&(soonest, key.clone()));
        }
        state.delayed.insert(key.clone(), due);
        state.due.insert((due, key));
        let soonest = state.due.first().is_some_and(|(first, _)| *first == due);
        let start = !std::mem::replace(&mut state.timer_started, true);
        drop(state);
        if start {
            tokio::spawn(self.clone().fire_timers());
        } else if soonest {
            self.shared.timer.notify_one();
        }
    }

    /// The timer task: queues each delayed key when it is due, until the queue closes.
    async fn fire_timers(self) {
        loop {
            let (woken, next) = {
                let mut state = self.lock();
                if state.closed {
                    return;
                }
                let now = Instant::now();
                let mut woken = false;
                while let Some((due, key)) = state.due.pop_first() {
                    if due > now {
                        state.due.insert((due, key));
                        break;
                    }
                    state.delayed.remove(&key);
                    woken |= state.add(key);
                }
                (woken, state.due.first().map(|(due, _)| *due))
            };
            if woken {
                // One worker; it wakes the next while keys remain ready.
                self.shared.wake.notify_one();
            }
            match next {
                Some(due) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => {}
                        () = self.shared.timer.notified() => {}
                    }
                }
                None => self.shared.timer.notified().await,
            }
        }
    }

    /// Queues `key` again after its back-off, which grows with each failure.
    pub fn retry(&self, key: K) -> Duration {
        let failures = {
            let mut state = self.lock();
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
        self.lock().failures.remove(key);
    }

    /// Waits for the next key; `None` once the queue is closed. The caller must call `done`.
    pub async fn next(&self) -> Option<K> {
        loop {
            let notified = self.shared.wake.notified();
            {
                let mut state = self.lock();
                if state.closed {
                    return None;
                }
                if let Some(key) = state.ready.pop_front() {
                    state.queued.remove(&key);
                    state.active.insert(key.clone(), false);
                    if !state.ready.is_empty() {
                        self.shared.wake.notify_one();
                    }
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Releases `key`; if it was added while held, it is queued again.
    pub fn done(&self, key: &K) {
        let again = self.lock().active.remove(key);
        if again == Some(true) {
            self.add(key.clone());
        }
    }

    /// How many keys wait for a worker.
    pub fn len(&self) -> usize {
        self.lock().ready.len()
    }

    /// Wakes every waiting worker with `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.shared.wake.notify_waiters();
        self.shared.timer.notify_one();
    }
}

#[cfg(test)]
mod tests;
