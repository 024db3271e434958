//! The results that `run` and `ceiling` write as JSON and `report` reads back and combines.
//!
//! Field names are those of the JSON files (under `target/bench/`), so that files written
//! before still read.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cli::Mode;

#[cfg(test)]
mod tests;

/// One result file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Measured {
    Run(Box<RunResult>),
    Ceiling(Box<CeilingResult>),
}

/// Pods started on a vk node and deleted again.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunResult {
    pub label: String,
    pub provider: String,
    /// The bench pods' container, as created.
    pub container: Value,
    pub termination_grace_period_seconds: Option<i64>,
    pub mode: Mode,
    pub automount_token: bool,
    pub pods: usize,
    pub concurrency: usize,
    pub node: String,
    /// Every pod was created, ran and went away in time.
    pub complete: bool,
    pub create_failures: usize,
    pub pods_seen: usize,
    pub pods_running: usize,
    pub watch_errors: usize,
    pub creates_done_seconds: Option<f64>,
    pub all_running_seconds: Option<f64>,
    pub pods_per_second: Option<f64>,
    pub start_latency: Latency,
    pub start_latency_basis: String,
    pub delete_method: String,
    pub delete_seconds: Option<f64>,
    pub delete_latency: Latency,
    pub vk: VkUsage,
    pub cpu_seconds_start_phase: CpuSeconds,
    /// The steady rate the pods were created at; none: as fast as possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_rate: Option<f64>,
    /// How long the pods were held Running before the delete (0: not held).
    #[serde(default)]
    pub hold_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds_hold_phase: Option<CpuSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_mib_after_hold: Option<f64>,
    pub cpu_seconds_delete_phase: CpuSeconds,
    /// From the audit log, when the run had one.
    pub vk_requests: Option<Requests>,
    pub vk_failed_requests: Option<Requests>,
    pub vk_requests_method: String,
    pub apiserver_requests: Requests,
    pub apiserver_requests_method: String,
    pub loadavg_before: String,
    pub unix_time: f64,
    /// Pods per second over the ceiling's status patches per second; set by `report`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_to_ceiling: Option<f64>,
}

/// What a plain client reaches against the same apiserver, without vk.
#[derive(Debug, Serialize, Deserialize)]
pub struct CeilingResult {
    pub pods: usize,
    pub concurrency: usize,
    pub method: String,
    pub creates_per_second: Option<f64>,
    /// Service-account tokens bound to the pods, as vk asks one for each pod with the
    /// default token volume (absent from results written before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_requests_per_second: Option<f64>,
    pub status_patches_per_second: Option<f64>,
    pub deletes_per_second: Option<f64>,
    pub failures: CeilingFailures,
    pub cpu_seconds_create: CpuSeconds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds_token: Option<CpuSeconds>,
    pub cpu_seconds_patch: CpuSeconds,
    pub cpu_seconds_delete: CpuSeconds,
    pub loadavg_before: String,
    pub unix_time: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CeilingFailures {
    pub create: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<usize>,
    pub patch: usize,
    pub delete: usize,
}

/// Latency percentiles, in milliseconds (nearest rank; none without samples).
#[derive(Debug, Serialize, Deserialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// vk's own process.
#[derive(Debug, Serialize, Deserialize)]
pub struct VkUsage {
    pub pid: u32,
    pub peak_rss_mib: Option<f64>,
    pub rss_mib_at_end: Option<f64>,
    pub cpu_seconds_total: Option<f64>,
}

/// CPU seconds used during one phase: by each watched process (by name), by the rest of the
/// machine, and the wall time and cores they compare to.
#[derive(Debug, Serialize, Deserialize)]
pub struct CpuSeconds {
    #[serde(flatten)]
    pub processes: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_processes: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_busy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_niced: Option<f64>,
    pub wall: f64,
    pub cores: usize,
}

impl CpuSeconds {
    /// Every figure but the core count, by name.
    pub fn seconds(&self) -> BTreeMap<&str, f64> {
        let machine = [
            ("other_processes", self.other_processes),
            ("machine_busy", self.machine_busy),
            ("machine_niced", self.machine_niced),
            ("wall", Some(self.wall)),
        ];
        self.processes
            .iter()
            .map(|(name, seconds)| (name.as_str(), *seconds))
            .chain(
                machine
                    .into_iter()
                    .filter_map(|(name, seconds)| Some((name, seconds?))),
            )
            .collect()
    }
}

/// Requests counted per "VERB resource[/subresource]".
#[derive(Debug, Serialize, Deserialize)]
pub struct Requests {
    pub total: f64,
    pub per_pod: f64,
    /// Only kinds with requests.
    pub by_kind: BTreeMap<String, f64>,
}

/// What `report` writes: the results it read and the summary it printed.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Free-form facts about the bench, from `--meta`.
    pub meta: Value,
    pub ceiling: Option<CeilingResult>,
    pub runs: Vec<RunResult>,
    pub summary: String,
}

pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}
