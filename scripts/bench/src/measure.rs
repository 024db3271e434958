//! What a bench measures besides the watch: latency percentiles, CPU time from `/proc`, vk's
//! memory, and request counts from the apiserver's metrics and audit log.

use std::{
    collections::BTreeMap,
    fs,
    io::{Read, Seek, SeekFrom},
    path::Path,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};
use kube::Client;
use serde_json::Value;

use crate::results::{CpuSeconds, Latency, Requests};

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = (p / 100.0 * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

pub fn latency(mut values: Vec<f64>) -> Latency {
    values.sort_by(f64::total_cmp);
    let ms = |p| percentile(&values, p).map(|v| (v * 1e4).round() / 10.0);
    Latency {
        count: values.len(),
        p50_ms: ms(50.0),
        p90_ms: ms(90.0),
        p99_ms: ms(99.0),
        max_ms: ms(100.0),
    }
}

pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// utime + stime of a process, in clock ticks.
pub fn proc_ticks(pid: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The machine's CPU time so far, in ticks: (busy, of which niced).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    let busy = v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4)?;
    Some((busy, *v.get(1)?))
}

/// CPU ticks so far of the watched processes (and this one), and of the machine.
#[derive(Debug)]
pub struct CpuSnapshot {
    procs: Vec<(String, Option<u64>)>,
    machine: Option<(u64, u64)>,
    at: Instant,
}

pub fn cpu_snapshot(procs: &[(String, u32)]) -> CpuSnapshot {
    let mut all: Vec<(String, Option<u64>)> = procs
        .iter()
        .map(|(name, pid)| (name.clone(), proc_ticks(&pid.to_string())))
        .collect();
    all.push(("bench-client".into(), proc_ticks("self")));
    CpuSnapshot {
        procs: all,
        machine: machine_ticks(),
        at: Instant::now(),
    }
}

/// CPU seconds each process used between two snapshots, and the machine's.
/// CPU seconds each process used between two snapshots, and the machine's.
pub fn cpu_delta(before: &CpuSnapshot, after: &CpuSnapshot, clk_tck: u64) -> CpuSeconds {
    let seconds = |ticks: u64| round3(ticks as f64 / clk_tck as f64);
    let mut processes = BTreeMap::new();
    for ((name, b), (_, a)) in before.procs.iter().zip(&after.procs) {
        if let (Some(b), Some(a)) = (b, a) {
            processes.insert(name.clone(), seconds(a.saturating_sub(*b)));
        }
    }
    let mut cpu = CpuSeconds {
        processes,
        other_processes: None,
        machine_busy: None,
        machine_niced: None,
        wall: round3(after.at.duration_since(before.at).as_secs_f64()),
        cores: num_cpus(),
    };
    if let (Some((b, bn)), Some((a, an))) = (before.machine, after.machine) {
        let known: u64 = before
            .procs
            .iter()
            .zip(&after.procs)
            .filter_map(|((_, b), (_, a))| Some(a.as_ref()?.saturating_sub(*b.as_ref()?)))
            .sum();
        cpu.other_processes = Some(seconds((a - b).saturating_sub(known)));
        cpu.machine_busy = Some(seconds(a - b));
        cpu.machine_niced = Some(seconds(an - bn));
    }
    cpu
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Request counts per "VERB resource[/subresource]".
pub type Counts = BTreeMap<String, f64>;

/// `apiserver_request_total`, summed per "VERB resource[/subresource]".
pub async fn apiserver_requests(client: &Client) -> Result<Counts> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let mut verb = "";
        let mut resource = "";
        let mut subresource = "";
        for pair in labels.split("\",") {
            let Some((key, val)) = pair.split_once("=\"") else {
                continue;
            };
            let val = val.trim_end_matches('"');
            match key {
                "verb" => verb = val,
                "resource" => resource = val,
                "subresource" => subresource = val,
                _ => {}
            }
        }
        *counts
            .entry(kind(verb, resource, subresource))
            .or_insert(0.0) += value;
    }
    Ok(counts)
}

fn kind(verb: &str, resource: &str, subresource: &str) -> String {
    if subresource.is_empty() {
        format!("{} {resource}", verb.to_uppercase())
    } else {
        format!("{} {resource}/{subresource}", verb.to_uppercase())
    }
}

pub fn per_pod(counts: &Counts, pods: usize) -> Requests {
    let total: f64 = counts.values().sum();
    Requests {
        total,
        per_pod: round3(total / pods.max(1) as f64),
        by_kind: counts
            .iter()
            .filter(|(_, v)| **v > 0.0)
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
    }
}

pub fn diff(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// Requests of `user` in the audit log after byte `offset`, per "VERB resource[/subresource]".
/// Watches are counted when they start, everything else when it completes.
pub fn audit_requests(path: &Path, offset: u64, user: &str) -> Result<(Counts, Counts)> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    file.seek(SeekFrom::Start(offset))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let mut counts = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["user"]["username"].as_str() != Some(user) {
            continue;
        }
        let verb = event["verb"].as_str().unwrap_or("");
        let stage = event["stage"].as_str().unwrap_or("");
        let counted = if verb == "watch" {
            stage == "ResponseStarted"
        } else {
            stage == "ResponseComplete"
        };
        if !counted {
            continue;
        }
        let object = &event["objectRef"];
        let resource = object["resource"].as_str().unwrap_or("-");
        let subresource = object["subresource"].as_str().unwrap_or("");
        let kind = kind(verb, resource, subresource);
        let code = event["responseStatus"]["code"].as_i64().unwrap_or(0);
        if code >= 400 {
            *errors.entry(format!("{kind} {code}")).or_insert(0.0) += 1.0;
        }
        *counts.entry(kind).or_insert(0.0) += 1.0;
    }
    Ok((counts, errors))
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
