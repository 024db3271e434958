//! `report`: the results of a bench run printed compactly, and written as one JSON file.

use std::fs;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::{
    cli::ReportArgs,
    measure::round3,
    results::{CeilingResult, Measured, Report, RunResult, write_json},
};

/// A figure with the precision it deserves; `-` when missing.
fn num(value: Option<f64>) -> String {
    match value {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
        None => "-".into(),
    }
}

fn count(value: usize) -> String {
    num(Some(value as f64))
}

pub fn report(args: &ReportArgs) -> Result<()> {
    let mut runs = Vec::new();
    let mut ceiling = None;
    for path in &args.inputs {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let measured: Measured =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        match measured {
            Measured::Run(run) => runs.push(*run),
            Measured::Ceiling(result) => ceiling = Some(*result),
        }
    }
    let ceiling_rate = ceiling.as_ref().and_then(|c| c.status_patches_per_second);
    for run in &mut runs {
        if let (Some(rate), Some(ceiling)) = (run.pods_per_second, ceiling_rate) {
            run.ratio_to_ceiling = Some(round3(rate / ceiling));
        }
    }
    let summary = summary(ceiling.as_ref(), &runs);
    print!("{summary}");

    let meta: Value = serde_json::from_str(&args.meta).context("--meta is not JSON")?;
    write_json(
        &args.out,
        &Report {
            meta,
            ceiling,
            runs,
            summary,
        },
    )?;
    eprintln!("bench: wrote {}", args.out.display());
    Ok(())
}

/// The table of runs, then each run's requests and CPU use, then what the columns mean.
fn summary(ceiling: Option<&CeilingResult>, runs: &[RunResult]) -> String {
    let mut out = String::new();
    if let Some(ceiling) = ceiling {
        out += &format!(
            "ceiling (plain kube-rs client, {} in flight, no vk): {} pod creates/s, {} token requests/s, {} status patches/s, {} deletes/s\n",
            ceiling.concurrency,
            num(ceiling.creates_per_second),
            num(ceiling.token_requests_per_second),
            num(ceiling.status_patches_per_second),
            num(ceiling.deletes_per_second),
        );
    }
    out += &format!(
        "{:<24} {:<8} {:>6} {:>8} {:>7} {:>6} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}\n",
        "run",
        "provider",
        "pods",
        "running",
        "pods/s",
        "ratio",
        "p50 ms",
        "p99 ms",
        "del s",
        "RSS MiB",
        "CPU s",
        "vk r/p",
        "api r/p"
    );
    for run in runs {
        out += &format!(
            "{:<24} {:<8} {:>6} {:>8} {:>7} {:>6} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}{}\n",
            run.label,
            run.provider,
            count(run.pods),
            num(run.all_running_seconds),
            num(run.pods_per_second),
            num(run.ratio_to_ceiling),
            num(run.start_latency.p50_ms),
            num(run.start_latency.p99_ms),
            num(run.delete_seconds),
            num(run.vk.peak_rss_mib),
            num(run.vk.cpu_seconds_total),
            num(run.vk_requests.as_ref().map(|r| r.per_pod)),
            num(Some(run.apiserver_requests.per_pod)),
            if run.complete { "" } else { "  (INCOMPLETE)" },
        );
    }
    for run in runs {
        out += &format!("{}:\n", run.label);
        if let Some(requests) = &run.vk_requests {
            let pods = (run.pods as f64).max(1.0);
            let list: Vec<String> = requests
                .by_kind
                .iter()
                .map(|(kind, total)| format!("{kind} {}", num(Some(total / pods))))
                .collect();
            out += &format!("  vk requests per pod: {}\n", list.join(", "));
        }
        if let Some(failed) = &run.vk_failed_requests
            && !failed.by_kind.is_empty()
        {
            let list: Vec<String> = failed
                .by_kind
                .iter()
                .map(|(kind, total)| format!("{kind} x{}", num(Some(*total))))
                .collect();
            out += &format!("  vk requests that failed: {}\n", list.join(", "));
        }
        if let Some(cpu) = &run.cpu_seconds_hold_phase {
            let vk = cpu.processes.get("vk").copied();
            let per_pod_second = vk.map(|seconds| {
                seconds * 1000.0 / (run.pods as f64 * run.hold_seconds.max(1) as f64)
            });
            out += &format!(
                "  held Running {} s: vk CPU {} s ({} ms per pod per second), RSS {} MiB at the end\n",
                run.hold_seconds,
                num(vk),
                num(per_pod_second),
                num(run.rss_mib_after_hold),
            );
        }
        for (phase, cpu) in [
            ("cpu seconds start phase", &run.cpu_seconds_start_phase),
            ("cpu seconds delete phase", &run.cpu_seconds_delete_phase),
        ] {
            let list: Vec<String> = cpu
                .seconds()
                .into_iter()
                .map(|(name, seconds)| format!("{name} {}", num(Some(seconds))))
                .collect();
            out += &format!("  {phase}: {}\n", list.join(", "));
        }
    }
    out += "columns: provider = the provider vk ran; running = seconds from the first create to all pods Running (watch); pods/s = pods / that; \
ratio = pods/s / ceiling status patches/s; p50/p99 = pod start latency; del s = seconds from the delete to \
all pods gone (watch); RSS = vk's VmHWM; CPU s = vk's utime+stime since it started; vk r/p = requests by \
the node's user per pod (apiserver audit log); api r/p = all apiserver requests per pod (apiserver_request_total)\n";
    out
}
