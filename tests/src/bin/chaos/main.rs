//! `chaos`, vk's fault suite (`scripts/chaos.sh` builds what it needs and runs it): against a
//! real control plane, on the mock provider and on hyper with Podman, it kills, freezes and
//! restarts vk, the apiserver, etcd and the engine in the middle of rollouts, and reports per
//! scenario the pods lost, duplicated and stuck and the longest recovery time.
//!
//! ```sh
//! cargo run -p vk-tests --bin chaos -- [--scenario NAME[/PROVIDER]]... [--out FILE] [--list]
//! ```
//!
//! Exits non-zero if any scenario loses, duplicates or strands a pod, restarts an app
//! container, or misses a bound. Needs `cargo build -p vk -p vk-mock -p vk-hyper` first.

mod faults;
mod report;
mod scenarios;
mod workload;

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::json;
use vk_tests::{cluster::Cluster, paths};

use crate::{report::Outcome, scenarios::Scenario};

#[derive(Debug, Default)]
struct Options {
    /// `NAME` or `NAME/PROVIDER`; empty: all.
    scenarios: Vec<String>,
    out: Option<PathBuf>,
    list: bool,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options> {
        let mut options = Options::default();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--scenario" => options
                    .scenarios
                    .push(args.next().context("--scenario needs a name")?),
                "--out" => options.out = Some(args.next().context("--out needs a file")?.into()),
                "--list" => options.list = true,
                other => bail!("unknown argument {other:?} (--scenario NAME, --out FILE, --list)"),
            }
        }
        Ok(options)
    }

    fn selected(&self) -> Result<Vec<Scenario>> {
        if self.scenarios.is_empty() {
            return Ok(scenarios::ALL.to_vec());
        }
        let mut selected = Vec::new();
        for wanted in &self.scenarios {
            let matching: Vec<Scenario> = scenarios::ALL
                .iter()
                .filter(|s| s.id() == *wanted || s.name == wanted)
                .copied()
                .collect();
            if matching.is_empty() {
                bail!("no scenario {wanted:?} (see --list)");
            }
            selected.extend(matching);
        }
        Ok(selected)
    }
}

/// Runs one scenario; an error or a panic in it is a failure of that scenario only.
fn run(scenario: &Scenario) -> Outcome {
    let mut outcome = Outcome::new(scenario.name, scenario.provider.name(), scenario.pods);
    let started = Instant::now();
    eprintln!("chaos: == {} ({} pods)", scenario.id(), scenario.pods);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (scenario.run)(&mut outcome, scenario.provider, scenario.pods)
    }));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(error)) => outcome.failures.push(format!("{error:#}")),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            outcome.failures.push(format!(
                "panicked: {}",
                message.lines().next().unwrap_or("")
            ));
        }
    }
    outcome.duration_s = started.elapsed().as_secs_f64().round();
    eprintln!(
        "chaos: {} {} in {:.0}s: lost {}, duplicated {}, stuck {}, restarted {}, recovery {:?} s; \
         figures {}",
        scenario.id(),
        if outcome.passed() { "passed" } else { "FAILED" },
        outcome.duration_s,
        outcome.lost,
        outcome.duplicated,
        outcome.stuck,
        outcome.restarted,
        outcome.recovery_s,
        serde_json::Value::from(
            outcome
                .figures
                .clone()
                .into_iter()
                .collect::<serde_json::Map<_, _>>()
        )
    );
    for note in outcome.failures.iter().chain(&outcome.notes) {
        eprintln!("chaos:   {note}");
    }
    outcome
}

fn main() -> ExitCode {
    match main_result() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("chaos: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn main_result() -> Result<bool> {
    let options = Options::parse(std::env::args().skip(1))?;
    if options.list {
        for scenario in scenarios::ALL {
            println!("{} ({} pods)", scenario.id(), scenario.pods);
        }
        return Ok(true);
    }
    let selected = options.selected()?;
    let stamp = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let out = options.out.clone().unwrap_or_else(|| {
        paths::target_dir()
            .join("chaos")
            .join(format!("{stamp}.json"))
    });
    let load_before = faults::load_average();
    let started = Instant::now();
    let cluster = Cluster::shared();
    let mut outcomes = Vec::new();
    for scenario in &selected {
        // A scenario that left the control plane down must not fail the next ones too.
        if !faults::apiserver_ready(cluster) {
            let mut up = faults::start_stopped_components(cluster)?;
            up.wait()?;
            faults::apiserver_answers(cluster, Duration::from_secs(120))?;
        }
        outcomes.push(run(scenario));
    }
    let context = json!({
        "timestamp": stamp,
        "commit": git_commit(),
        "cluster_run": vk_tests::cluster::run_id(),
        "load_average_1m_before": load_before,
        "load_average_1m_after": faults::load_average(),
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "duration_s": started.elapsed().as_secs(),
        "bounds": {
            "vk_threads_during_hang": scenarios::THREAD_BOUND,
            "vk_rss_mib_during_hang": scenarios::RSS_BOUND_MIB,
        },
    });
    println!("{}", report::table(&outcomes));
    println!("\n{}", report::figures(&outcomes));
    println!();
    for (name, meaning) in report::DEFINITIONS {
        println!("{name}: {meaning}");
    }
    println!(
        "machine: load average {load_before:.2} before, {:.2} after, {} s in all",
        faults::load_average(),
        started.elapsed().as_secs()
    );
    report::write_json(&out, &outcomes, context)?;
    println!("report: {}", out.display());
    Ok(outcomes.iter().all(Outcome::passed))
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(paths::workspace())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
