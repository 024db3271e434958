//! What the tests of a hot standby look at: the election's Lease (its holder, and when it was
//! taken) and the Node's Ready condition, polled in the background throughout a takeover.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use k8s_openapi::jiff::Timestamp;

use crate::{cluster::Cluster, wait::POLL_INTERVAL};

/// `kubectl get ARGS -o jsonpath=PATH`, trimmed.
pub fn jsonpath(cluster: &Cluster, args: &[&str], path: &str) -> String {
    let output = cluster.kubectl(
        args.iter()
            .copied()
            .chain(["-o", &format!("jsonpath={path}")]),
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The election's Lease `namespace/name`.
#[derive(Debug, Clone)]
pub struct Lease {
    pub namespace: String,
    pub name: String,
}

impl Lease {
    fn field(&self, cluster: &Cluster, path: &str) -> String {
        jsonpath(
            cluster,
            &["get", "lease", &self.name, "-n", &self.namespace],
            path,
        )
    }

    /// Its holderIdentity (empty when free or missing).
    pub fn holder(&self, cluster: &Cluster) -> String {
        self.field(cluster, "{.spec.holderIdentity}")
    }

    /// Its acquireTime: when the holder took it, on the holder's clock (this machine's).
    pub fn acquired(&self, cluster: &Cluster) -> Timestamp {
        let time = self.field(cluster, "{.spec.acquireTime}");
        time.parse()
            .unwrap_or_else(|e| panic!("acquireTime {time:?}: {e}"))
    }

    /// How long after `killed_at` the current holder took the lease.
    pub fn taken_after(&self, cluster: &Cluster, killed_at: Timestamp) -> Duration {
        let span = self.acquired(cluster).duration_since(killed_at);
        Duration::try_from(span).expect("the lease was taken after the kill")
    }
}

/// Polls a node's Ready condition in the background; every sighting that is not True.
#[derive(Debug)]
pub struct ReadyWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<String>>,
}

impl ReadyWatch {
    pub fn start(cluster: &'static Cluster, node: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let node = node.to_string();
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let started = Instant::now();
                let mut sightings = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let ready = jsonpath(
                        cluster,
                        &["get", "node", &node],
                        r#"{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].message}"#,
                    );
                    if !ready.starts_with("True ") {
                        sightings.push(format!("{:.1?}: {ready:?}", started.elapsed()));
                    }
                    std::thread::sleep(POLL_INTERVAL);
                }
                sightings
            }
        });
        ReadyWatch { stop, thread }
    }

    /// Stops polling; every sighting of the node not Ready.
    pub fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the Ready watch panicked")
    }
}
