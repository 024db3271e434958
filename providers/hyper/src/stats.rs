//! One-shot container stats turned into the kubelet's stats Summary.

use bollard::{models::ContainerStatsResponse, query_parameters::StatsOptionsBuilder};
use futures::StreamExt as _;
use vk_abi::{
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    stats::{ContainerStats, CpuStats, MemoryStats, NodeStats, PodReference, PodStats, Summary},
};

use crate::{backend::Backend, inventory::PodView, spec::Role, status};

/// The stats of the pod's running containers (the infra container's are left out, as the
/// kubelet leaves out the sandbox's).
pub async fn pod_stats(backend: &Backend, view: &PodView) -> PodStats {
    let running: Vec<_> = view
        .containers
        .iter()
        .filter(|c| c.role != Role::Infra && status::is_running(&c.inspect))
        .collect();
    let samples = futures::future::join_all(running.iter().map(|c| async {
        let options = StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        backend
            .engine
            .docker
            .stats(&c.id, Some(options))
            .next()
            .await
    }))
    .await;
    let now = Time(jiff::Timestamp::now());
    let containers: Vec<ContainerStats> = running
        .iter()
        .zip(samples)
        .filter_map(|(container, sample)| {
            let sample = sample?.ok()?;
            Some(ContainerStats {
                name: container.name.clone(),
                start_time: container
                    .inspect
                    .state
                    .as_ref()
                    .and_then(|state| status::time(state.started_at.as_deref())),
                cpu: cpu(&sample, &now),
                memory: memory(&sample, &now),
            })
        })
        .collect();
    let total = |pick: fn(&ContainerStats) -> Option<u64>| -> Option<u64> {
        containers.iter().map(pick).sum::<Option<u64>>()
    };
    PodStats {
        pod_ref: PodReference {
            name: view.identity.name.clone(),
            namespace: view.identity.namespace.clone(),
            uid: view.identity.uid.clone(),
        },
        start_time: view
            .infra
            .as_ref()
            .and_then(|infra| status::time(infra.inspect.created.as_deref())),
        cpu: Some(CpuStats {
            time: now.clone(),
            usage_nano_cores: total(|c| c.cpu.as_ref()?.usage_nano_cores),
            usage_core_nano_seconds: total(|c| c.cpu.as_ref()?.usage_core_nano_seconds),
        }),
        memory: Some(MemoryStats {
            time: now,
            available_bytes: None,
            usage_bytes: total(|c| c.memory.as_ref()?.usage_bytes),
            working_set_bytes: total(|c| c.memory.as_ref()?.working_set_bytes),
            rss_bytes: total(|c| c.memory.as_ref()?.rss_bytes),
        }),
        containers,
    }
}

fn cpu(sample: &ContainerStatsResponse, now: &Time) -> Option<CpuStats> {
    let stats = sample.cpu_stats.as_ref()?;
    let total = stats.cpu_usage.as_ref()?.total_usage?;
    // A one-shot sample has no previous reading unless the engine kept one.
    let rate = sample.precpu_stats.as_ref().and_then(|previous| {
        let previous_total = previous.cpu_usage.as_ref()?.total_usage?;
        let system = stats
            .system_cpu_usage?
            .checked_sub(previous.system_cpu_usage?)?;
        let used = total.checked_sub(previous_total)?;
        let cpus = u64::from(stats.online_cpus.unwrap_or(1));
        (system > 0 && previous_total > 0).then(|| used * cpus * 1_000_000_000 / system)
    });
    Some(CpuStats {
        time: now.clone(),
        usage_nano_cores: rate,
        usage_core_nano_seconds: Some(total),
    })
}

fn memory(sample: &ContainerStatsResponse, now: &Time) -> Option<MemoryStats> {
    let stats = sample.memory_stats.as_ref()?;
    let usage = stats.usage?;
    let counter = |name: &str| stats.stats.as_ref().and_then(|s| s.get(name).copied());
    // cgroup v2 names the reclaimable page cache inactive_file, v1 total_inactive_file.
    let inactive = counter("inactive_file")
        .or_else(|| counter("total_inactive_file"))
        .unwrap_or(0);
    let working_set = usage.saturating_sub(inactive);
    Some(MemoryStats {
        time: now.clone(),
        available_bytes: stats
            .limit
            .filter(|limit| *limit < u64::MAX / 2)
            .map(|limit| limit.saturating_sub(working_set)),
        usage_bytes: Some(usage),
        working_set_bytes: Some(working_set),
        rss_bytes: counter("anon").or_else(|| counter("rss")),
    })
}

/// The Summary of every pod of the node, the node's figures being their sums.
pub fn summary(node_name: &str, pods: Vec<PodStats>) -> Summary {
    let now = Time(jiff::Timestamp::now());
    let sum = |pick: fn(&PodStats) -> Option<u64>| pods.iter().filter_map(pick).sum::<u64>();
    Summary {
        node: NodeStats {
            node_name: node_name.to_string(),
            start_time: None,
            cpu: Some(CpuStats {
                time: now.clone(),
                usage_nano_cores: Some(sum(|p| p.cpu.as_ref()?.usage_nano_cores)),
                usage_core_nano_seconds: Some(sum(|p| p.cpu.as_ref()?.usage_core_nano_seconds)),
            }),
            memory: Some(MemoryStats {
                time: now,
                available_bytes: None,
                usage_bytes: Some(sum(|p| p.memory.as_ref()?.usage_bytes)),
                working_set_bytes: Some(sum(|p| p.memory.as_ref()?.working_set_bytes)),
                rss_bytes: Some(sum(|p| p.memory.as_ref()?.rss_bytes)),
            }),
        },
        pods,
    }
}
