//! The suite's report: one row per scenario (pods lost, duplicated, stuck, app containers
//! restarted, the longest recovery time, and the bounds it missed), printed as a table and
//! written as JSON with the definitions of each figure.

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};

/// What the figures mean; written into the JSON report and printed under the table.
pub const DEFINITIONS: &[(&str, &str)] = &[
    (
        "lost",
        "pods the API shows Running whose containers (hyper) or provider pod (mock) are gone",
    ),
    (
        "duplicated",
        "pods with more than one infra or app container on the engine (hyper) or provider pod \
         (mock), plus pods whose containers remain although the API lacks the pod",
    ),
    (
        "stuck",
        "at the deadline: wanted pods not Running (and Ready) with the current template, plus \
         pods still terminating",
    ),
    (
        "restarted",
        "app containers replaced or started again (ID or StartedAt changed on the engine, or \
         restartCount > 0)",
    ),
    (
        "recovery",
        "from the fault's end (vk restarted, apiserver answering /readyz, Podman answering, \
         engine resumed) until every wanted pod is Running with the current template, nothing \
         is lost or duplicated and the Node is Ready (held for 5 s)",
    ),
    (
        "vk_resume",
        "from the apiserver answering until a pod created then, bound to the node, is Running",
    ),
];

/// One scenario's result.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub provider: String,
    pub pods: u32,
    pub lost: u32,
    pub duplicated: u32,
    pub stuck: u32,
    pub restarted: u32,
    /// The longest recovery of the scenario (seconds); None: it did not recover in time.
    pub recovery_s: Option<f64>,
    pub duration_s: f64,
    /// Scenario-specific measurements (vk_resume_s, threads, ...).
    pub figures: BTreeMap<String, Value>,
    /// Every bound missed and every assertion that failed; empty when the scenario passed.
    pub failures: Vec<String>,
    /// What was wrong at the end, when something was.
    pub notes: Vec<String>,
}

impl Outcome {
    pub fn new(scenario: &str, provider: &str, pods: u32) -> Self {
        Outcome {
            scenario: scenario.into(),
            provider: provider.into(),
            pods,
            ..Outcome::default()
        }
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
            && self.lost == 0
            && self.duplicated == 0
            && self.stuck == 0
            && self.restarted == 0
    }

    /// Notes a measurement.
    pub fn figure(&mut self, name: &str, value: impl Into<Value>) {
        self.figures.insert(name.into(), value.into());
    }

    /// Notes a duration (in seconds, rounded to 0.1 s).
    pub fn seconds(&mut self, name: &str, duration: Duration) {
        self.figure(name, round(duration.as_secs_f64()));
    }

    /// Checks `value <= bound`, noting a failure if it is not.
    pub fn bound(&mut self, what: &str, value: f64, bound: f64) {
        if value.is_nan() || value > bound {
            self.failures.push(format!("{what}: {value} > {bound}"));
        }
    }

    /// Checks `holds`, noting `what` as a failure if it does not.
    pub fn check(&mut self, holds: bool, what: impl Into<String>) {
        if !holds {
            self.failures.push(what.into());
        }
    }

    /// Takes a recovery time: the scenario's recovery is its longest.
    pub fn recovered(&mut self, recovery: Option<Duration>, what: &str) {
        match recovery {
            Some(time) => {
                let seconds = round(time.as_secs_f64());
                self.recovery_s = Some(self.recovery_s.map_or(seconds, |r| r.max(seconds)));
            }
            None => self
                .failures
                .push(format!("no recovery within the deadline after {what}")),
        }
    }
}

fn round(seconds: f64) -> f64 {
    (seconds * 10.0).round() / 10.0
}

/// The table, as printed.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut lines = vec![format!(
        "{:<22} {:<6} {:>5} {:>5} {:>6} {:>6} {:>6} {:>10} {:>8}  {}",
        "SCENARIO", "PROV", "PODS", "LOST", "DUPL", "STUCK", "RESTR", "RECOVERY", "TOOK", "RESULT"
    )];
    for o in outcomes {
        let recovery = o
            .recovery_s
            .map_or_else(|| "-".to_string(), |r| format!("{r:.1}s"));
        let result = if o.passed() {
            "ok".to_string()
        } else {
            format!("FAIL: {}", o.failures.join("; "))
        };
        lines.push(format!(
            "{:<22} {:<6} {:>5} {:>5} {:>6} {:>6} {:>6} {:>10} {:>7.0}s  {}",
            o.scenario,
            o.provider,
            o.pods,
            o.lost,
            o.duplicated,
            o.stuck,
            o.restarted,
            recovery,
            o.duration_s,
            result
        ));
    }
    lines.join("\n")
}

/// The figures of each scenario, one line each.
pub fn figures(outcomes: &[Outcome]) -> String {
    outcomes
        .iter()
        .map(|o| {
            let figures: Vec<String> = o.figures.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{}: {}", o.scenario, figures.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes the JSON report to `path`.
pub fn write_json(path: &Path, outcomes: &[Outcome], context: Value) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let definitions: BTreeMap<&str, &str> = DEFINITIONS.iter().copied().collect();
    let report = json!({
        "context": context,
        "definitions": definitions,
        "passed": outcomes.iter().all(Outcome::passed),
        "scenarios": outcomes,
    });
    std::fs::write(path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", path.display()))
}
