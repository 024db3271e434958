//! Synthesised stats: each container uses a steady, name-derived amount of CPU and memory. The
//! cumulative CPU is exact to the nanosecond at millisecond instants (the precision of the
//! kubelet's resource metrics), so metrics-server, which divides the CPU used between two scrapes
//! by the time between them, shows exactly the steady amount.

use std::hash::{DefaultHasher, Hash, Hasher};

use vk_abi::{
    k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp},
    stats::{ContainerStats, CpuStats, MemoryStats, NodeStats, PodReference, PodStats, Summary},
};

use crate::pods::MockPod;

const MIB: u64 = 1024 * 1024;

/// CPU (nanocores) and memory (bytes) that one container steadily uses.
fn usage(pod: &MockPod, container: &str) -> (u64, u64) {
    let mut hasher = DefaultHasher::new();
    (&pod.uid, container).hash(&mut hasher);
    let seed = hasher.finish();
    ((1 + seed % 10) * 1_000_000, (8 + (seed >> 8) % 56) * MIB)
}

/// The current time, truncated to the millisecond.
fn now() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now)
}

fn cpu(now: &Timestamp, started: &Timestamp, nano_cores: u64) -> CpuStats {
    let nanos = u128::try_from(now.duration_since(*started).as_nanos()).unwrap_or(0);
    let used = u128::from(nano_cores) * nanos / 1_000_000_000;
    CpuStats {
        time: Time(*now),
        usage_nano_cores: Some(nano_cores),
        usage_core_nano_seconds: Some(u64::try_from(used).unwrap_or(u64::MAX)),
    }
}

fn memory(now: &Timestamp, bytes: u64) -> MemoryStats {
    MemoryStats {
        time: Time(*now),
        available_bytes: None,
        usage_bytes: Some(bytes),
        working_set_bytes: Some(bytes),
        rss_bytes: Some(bytes),
    }
}

pub fn pod_stats(pod: &MockPod) -> PodStats {
    pod_stats_at(pod, &now())
}

fn pod_stats_at(pod: &MockPod, now: &Timestamp) -> PodStats {
    let containers: Vec<_> = pod
        .containers
        .iter()
        .map(|c| {
            let (nano_cores, bytes) = usage(pod, &c.name);
            ContainerStats {
                name: c.name.clone(),
                start_time: Some(Time(pod.started)),
                cpu: Some(cpu(now, &pod.started, nano_cores)),
                memory: Some(memory(now, bytes)),
            }
        })
        .collect();
    let (nano_cores, bytes) = pod
        .containers
        .iter()
        .map(|c| usage(pod, &c.name))
        .fold((0, 0), |(c, m), (dc, dm)| (c + dc, m + dm));
    PodStats {
        pod_ref: PodReference {
            name: pod.name.clone(),
            namespace: pod.namespace.clone(),
            uid: pod.uid.clone(),
        },
        start_time: Some(Time(pod.started)),
        containers,
        cpu: Some(cpu(now, &pod.started, nano_cores)),
        memory: Some(memory(now, bytes)),
    }
}

pub fn summary<'a>(node_name: &str, pods: impl Iterator<Item = &'a MockPod>) -> Summary {
    // One instant for the whole node: its CPU is the sum of its pods'.
    let now = now();
    let pods: Vec<_> = pods.map(|pod| pod_stats_at(pod, &now)).collect();
    let sum = |f: fn(&PodStats) -> Option<u64>| pods.iter().filter_map(f).sum::<u64>();
    let nano_cores = sum(|p| p.cpu.as_ref()?.usage_nano_cores);
    let core_nano_seconds = sum(|p| p.cpu.as_ref()?.usage_core_nano_seconds);
    let bytes = sum(|p| p.memory.as_ref()?.working_set_bytes);
    Summary {
        node: NodeStats {
            node_name: node_name.to_string(),
            start_time: None,
            cpu: Some(CpuStats {
                time: Time(now),
                usage_nano_cores: Some(nano_cores),
                usage_core_nano_seconds: Some(core_nano_seconds),
            }),
            memory: Some(memory(&now, bytes)),
        },
        pods,
    }
}
