//! `/metrics/resource`: the kubelet's resource metrics in Prometheus text format, as
//! metrics-server reads them: node, pod and container CPU and memory with millisecond
//! timestamps, container start times, and whether collecting failed.

use std::{collections::BTreeMap, fmt::Write, sync::Arc};

use http::{Response, header};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use vk_abi::stats::{CpuStats, MemoryStats, Summary};

use super::state::ServerState;
use crate::response::{Body, full};

const STABLE: [(&str, &str, &str); 8] = [
    (
        "container_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the container in core-seconds",
    ),
    (
        "container_memory_working_set_bytes",
        "gauge",
        "Current working set of the container in bytes",
    ),
    (
        "container_start_time_seconds",
        "gauge",
        "Start time of the container since unix epoch in seconds",
    ),
    (
        "node_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the node in core-seconds",
    ),
    (
        "node_memory_working_set_bytes",
        "gauge",
        "Current working set of the node in bytes",
    ),
    (
        "pod_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the pod in core-seconds",
    ),
    (
        "pod_memory_working_set_bytes",
        "gauge",
        "Current working set of the pod in bytes",
    ),
    (
        "resource_scrape_error",
        "gauge",
        "1 if there was an error while getting container metrics, 0 otherwise",
    ),
];

fn millis(time: &Time) -> i64 {
    time.0.as_millisecond()
}

/// CPU seconds, never exactly zero: metrics-server drops a pod whose container reads 0.
fn cpu_seconds(cpu: &CpuStats) -> Option<(f64, i64)> {
    let nanos = cpu.usage_core_nano_seconds?;
    Some(((nanos.max(1)) as f64 / 1e9, millis(&cpu.time)))
}

fn memory_bytes(memory: &MemoryStats) -> Option<(f64, i64)> {
    Some((
        memory.working_set_bytes?.max(1) as f64,
        millis(&memory.time),
    ))
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let escaped: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    format!("{{{}}}", escaped.join(","))
}

/// Renders `summary` (or, when it could not be had, only the scrape error).
pub(super) fn render(summary: Option<&Summary>) -> String {
    let mut samples: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut add = |name: &'static str, labels: String, value: f64, at: Option<i64>| {
        let line = match at {
            Some(at) => format!("{name}{labels} {value} {at}"),
            None => format!("{name}{labels} {value}"),
        };
        samples.entry(name).or_default().push(line);
    };
    add(
        "resource_scrape_error",
        String::new(),
        if summary.is_some() { 0.0 } else { 1.0 },
        None,
    );
    if let Some(summary) = summary {
        if let Some((v, at)) = summary.node.cpu.as_ref().and_then(cpu_seconds) {
            add("node_cpu_usage_seconds_total", String::new(), v, Some(at));
        }
        if let Some((v, at)) = summary.node.memory.as_ref().and_then(memory_bytes) {
            add("node_memory_working_set_bytes", String::new(), v, Some(at));
        }
        for pod in &summary.pods {
            let (namespace, name) = (pod.pod_ref.namespace.as_str(), pod.pod_ref.name.as_str());
            let pod_labels = labels(&[("namespace", namespace), ("pod", name)]);
            if let Some((v, at)) = pod.cpu.as_ref().and_then(cpu_seconds) {
                add(
                    "pod_cpu_usage_seconds_total",
                    pod_labels.clone(),
                    v,
                    Some(at),
                );
            }
            if let Some((v, at)) = pod.memory.as_ref().and_then(memory_bytes) {
                add("pod_memory_working_set_bytes", pod_labels, v, Some(at));
            }
            for container in &pod.containers {
                let labels = labels(&[
                    ("container", &container.name),
                    ("namespace", namespace),
                    ("pod", name),
                ]);
                if let Some((v, at)) = container.cpu.as_ref().and_then(cpu_seconds) {
                    add(
                        "container_cpu_usage_seconds_total",
                        labels.clone(),
                        v,
                        Some(at),
                    );
                }
                if let Some((v, at)) = container.memory.as_ref().and_then(memory_bytes) {
                    add(
                        "container_memory_working_set_bytes",
                        labels.clone(),
                        v,
                        Some(at),
                    );
                }
                if let Some(start) = container
                    .start_time
                    .as_ref()
                    .filter(|t| t.0.as_second() > 0)
                {
                    add(
                        "container_start_time_seconds",
                        labels,
                        start.0.as_millisecond() as f64 / 1000.0,
                        None,
                    );
                }
            }
        }
    }
    let mut text = String::new();
    for (name, kind, help) in STABLE {
        let Some(lines) = samples.get(name) else {
            continue;
        };
        let _ = writeln!(text, "# HELP {name} [STABLE] {help}");
        let _ = writeln!(text, "# TYPE {name} {kind}");
        for line in lines {
            let _ = writeln!(text, "{line}");
        }
    }
    text
}

pub(super) async fn handle(state: &Arc<ServerState>) -> Response<Body> {
    let summary = match state
        .provider
        .call("stats_summary", |p| p.stats_summary())
        .await
    {
        Ok(summary) => Some(summary),
        Err(error) => {
            log::debug!("resource metrics without stats: {error}");
            None
        }
    };
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(full(render(summary.as_ref())))
        .expect("a valid response")
}

#[cfg(test)]
mod tests;
