//! The pod watch of a run: when each bench pod was created, first seen, Running and gone, and
//! the counts the run waits on.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};

use crate::progress::log;

/// When the bench saw one pod reach each step.
#[derive(Debug, Default, Clone, Copy)]
pub struct PodTimes {
    /// When this client sent the create request (direct mode).
    pub created: Option<Instant>,
    /// When the watch first showed the pod.
    pub seen: Option<Instant>,
    /// When the watch first showed it Running.
    pub running: Option<Instant>,
    /// When the watch showed it deleted.
    pub gone: Option<Instant>,
}

/// What the watch saw of the bench pods so far.
#[derive(Debug, Default)]
pub struct Tracker {
    pub pods: HashMap<String, PodTimes>,
    pub running: usize,
    pub live: usize,
    pub gone: usize,
    pub synced: bool,
    /// Names listed again after the watch restarted (the others were deleted meanwhile).
    relist: Option<HashSet<String>>,
    pub watch_errors: usize,
}

impl Tracker {
    fn apply(&mut self, pod: &Pod, now: Instant) {
        let name = pod.name_any();
        if let Some(relist) = &mut self.relist {
            relist.insert(name.clone());
        }
        let times = self.pods.entry(name).or_default();
        if times.seen.is_none() {
            times.seen = Some(now);
            self.live += 1;
        }
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if running && times.running.is_none() {
            times.running = Some(now);
            self.running += 1;
        }
    }

    fn delete(&mut self, name: &str, now: Instant) {
        if let Some(times) = self.pods.get_mut(name)
            && times.seen.is_some()
            && times.gone.is_none()
        {
            times.gone = Some(now);
            self.live -= 1;
            self.gone += 1;
        }
    }

    fn relisted(&mut self, now: Instant) {
        let Some(listed) = self.relist.take() else {
            return;
        };
        let missing: Vec<String> = self
            .pods
            .keys()
            .filter(|name| !listed.contains(*name))
            .cloned()
            .collect();
        for name in missing {
            self.delete(&name, now);
        }
    }
}

/// The tracker, shared by the watch task and the run that waits on it.
pub type Shared = Arc<Mutex<Tracker>>;

pub fn spawn_watch(client: &Client, namespace: &str) -> (Shared, tokio::task::JoinHandle<()>) {
    let tracker = Shared::default();
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let shared = tracker.clone();
    let task = tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            let now = Instant::now();
            let mut tracker = shared.lock().expect("tracker lock");
            match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    tracker.apply(&pod, now);
                }
                Ok(watcher::Event::Delete(pod)) => tracker.delete(&pod.name_any(), now),
                Ok(watcher::Event::Init) => {
                    if tracker.synced {
                        tracker.relist = Some(HashSet::new());
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    tracker.relisted(now);
                    tracker.synced = true;
                }
                Err(error) => {
                    tracker.watch_errors += 1;
                    drop(tracker);
                    log(format!("watch: {error}"));
                }
            }
        }
    });
    (tracker, task)
}

/// Polls the tracker until `done` holds or the time is up; returns whether it held.
pub async fn wait_for(
    tracker: &Shared,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Tracker) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    let mut next_log = Instant::now() + Duration::from_secs(10);
    loop {
        {
            let tracker = tracker.lock().expect("tracker lock");
            if done(&tracker) {
                return true;
            }
            if Instant::now() >= next_log {
                log(format!(
                    "{what}: {} seen, {} running, {} gone",
                    tracker.pods.len(),
                    tracker.running,
                    tracker.gone
                ));
                next_log += Duration::from_secs(10);
            }
        }
        if Instant::now() >= deadline {
            log(format!("{what}: timed out after {} s", timeout.as_secs()));
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
