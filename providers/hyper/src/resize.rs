//! In-place resize of a running container's CPU and memory, and the resources a container
//! actually has.
//!
//! Docker takes the change through `POST /containers/{id}/update`. Podman 4 lacks that
//! compatible endpoint (it answers 404) but has its own, `POST /libpod/containers/{id}/update`,
//! which takes OCI resources; bollard does not speak it, so it is sent by hand over the
//! engine's unix socket. Podman 4.3 applies the change to the container's cgroup but its
//! inspect keeps showing the values of creation, so the backend remembers what it applied.

use bollard::models::{ContainerUpdateBody, HostConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use vk_abi::k8s_openapi::{
    api::core::v1::ResourceRequirements, apimachinery::pkg::api::resource::Quantity,
};

use crate::{
    backend::{PodError, engine_error},
    engine::Engine,
    spec::Resources,
};

/// The CFS period the kubelet uses; a CPU limit becomes a quota per period.
const CPU_PERIOD: i64 = 100_000;

/// Sets `resources` on the running container `id`.
pub async fn apply(engine: &Engine, id: &str, resources: &Resources) -> Result<(), PodError> {
    if engine.is_podman() && engine.is_local() {
        return libpod_update(engine, id, resources).await;
    }
    let body = ContainerUpdateBody {
        nano_cpus: resources.nano_cpus,
        cpu_shares: resources.cpu_shares,
        memory: resources.memory,
        memory_reservation: resources.memory_reservation,
        ..ContainerUpdateBody::default()
    };
    engine
        .docker
        .update_container(id, body)
        .await
        .map_err(engine_error(format!("cannot resize container {id}")))
}

/// Podman's own update call: OCI `LinuxResources` as JSON.
async fn libpod_update(engine: &Engine, id: &str, resources: &Resources) -> Result<(), PodError> {
    let unavailable = |error: std::io::Error| {
        PodError::Unavailable(format!("cannot resize container {id}: {error}"))
    };
    let mut cpu = serde_json::Map::new();
    if let Some(nano_cpus) = resources.nano_cpus {
        cpu.insert(
            "quota".into(),
            json!(nano_cpus * CPU_PERIOD / 1_000_000_000),
        );
        cpu.insert("period".into(), json!(CPU_PERIOD));
    }
    if let Some(shares) = resources.cpu_shares {
        cpu.insert("shares".into(), json!(shares));
    }
    let mut memory = serde_json::Map::new();
    if let Some(limit) = resources.memory {
        memory.insert("limit".into(), json!(limit));
    }
    if let Some(reservation) = resources.memory_reservation {
        memory.insert("reservation".into(), json!(reservation));
    }
    let body = json!({"cpu": cpu, "memory": memory}).to_string();
    let socket = engine.endpoint().trim_start_matches("unix://");
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(unavailable)?;
    let request = format!(
        "POST /v4.0.0/libpod/containers/{id}/update HTTP/1.1\r\nHost: podman\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unavailable)?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .map_err(unavailable)?;
    let status_line = answer.lines().next().unwrap_or_default();
    if status_line
        .split(' ')
        .nth(1)
        .is_some_and(|code| code.starts_with('2'))
    {
        Ok(())
    } else {
        let detail = answer.split("\r\n\r\n").nth(1).unwrap_or(status_line);
        Err(PodError::Unavailable(format!(
            "cannot resize container {id}: Podman answered {}",
            detail.trim()
        )))
    }
}

/// The requests and limits a container was created with, read back from its engine settings
/// (the kubelet's conversions reversed: 1024 shares per CPU, a quota per period).
pub fn reported(host_config: Option<&HostConfig>) -> ResourceRequirements {
    let Some(host) = host_config else {
        return ResourceRequirements::default();
    };
    let milli_cpu = |milli: i64| Quantity(format!("{milli}m"));
    let bytes = |bytes: i64| Quantity(bytes.to_string());
    let cpu_limit = match (host.nano_cpus, host.cpu_quota, host.cpu_period) {
        (Some(nano), _, _) if nano > 0 => Some(nano / 1_000_000),
        (_, Some(quota), Some(period)) if quota > 0 && period > 0 => Some(quota * 1000 / period),
        _ => None,
    };
    let limits = [
        ("cpu", cpu_limit.map(milli_cpu)),
        ("memory", host.memory.filter(|m| *m > 0).map(bytes)),
    ];
    let requests = [
        (
            "cpu",
            // Shares round the request down; rounding up recovers it.
            host.cpu_shares
                .filter(|s| *s > 0)
                .map(|shares| milli_cpu((shares * 1000 + 1023) / 1024)),
        ),
        (
            "memory",
            host.memory_reservation.filter(|m| *m > 0).map(bytes),
        ),
    ];
    let collect = |pairs: [(&str, Option<Quantity>); 2]| {
        let map: std::collections::BTreeMap<_, _> = pairs
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_string(), value?)))
            .collect();
        (!map.is_empty()).then_some(map)
    };
    ResourceRequirements {
        limits: collect(limits),
        requests: collect(requests),
        ..ResourceRequirements::default()
    }
}

#[cfg(test)]
mod tests;
