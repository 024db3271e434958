//! The command line of `vk-bench`: its three subcommands and their options.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
#[command(about = "The benchmark client of scripts/bench.sh")]
pub enum Command {
    /// Start N pods on a vk node, measure, delete them, measure.
    Run(Box<RunArgs>),
    /// The apiserver's ceiling for a plain client: creates, status patches, deletes per second.
    Ceiling(CeilingArgs),
    /// Print result files compactly and combine them into one JSON file.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
pub struct Common {
    /// An admin kubeconfig.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// The namespace to create, use and delete.
    #[arg(long)]
    pub namespace: String,
    /// The node the pods go to.
    #[arg(long)]
    pub node: String,
    #[arg(long, default_value_t = 1000)]
    pub pods: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Where to write the result (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Processes whose CPU time to report, as NAME=PID (repeatable).
    #[arg(long = "proc", value_parser = parse_proc)]
    pub procs: Vec<(String, u32)>,
    /// Clock ticks per second of /proc/*/stat (getconf CLK_TCK).
    #[arg(long, default_value_t = 100)]
    pub clk_tck: u64,
}

/// How the bench pods reach the node: bound by this client, or through a Deployment and the
/// scheduler (also the `mode` of a run's result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Direct,
    Deployment,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// automountServiceAccountToken: true keeps the default (a projected token volume).
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    pub automount: bool,
    /// vk's process id (its peak RSS and CPU time are reported).
    #[arg(long)]
    pub vk_pid: u32,
    /// The apiserver's audit log (only node users' requests are in it).
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// A name for this run in the report.
    #[arg(long)]
    pub label: String,
    /// Create the pods at this steady rate (pods per second) instead of as fast as possible
    /// (direct mode).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Keep the pods Running this many seconds before deleting them, measuring what vk
    /// costs while they just run (their probes, for instance).
    #[arg(long, default_value_t = 0)]
    pub hold: u64,
    /// The provider vk runs (recorded in the report).
    #[arg(long, default_value = "mock")]
    pub provider: String,
    #[command(flatten)]
    pub pod: PodOptions,
}

/// What the bench pods' container runs; unset options keep the defaults (busybox running
/// `sleep infinity`, the apiserver's pull policy and grace period).
#[derive(Debug, Default, clap::Args)]
pub struct PodOptions {
    /// The container image.
    #[arg(long)]
    pub image: Option<String>,
    /// The container's imagePullPolicy.
    #[arg(long)]
    pub pull_policy: Option<String>,
    /// The container's command, words separated by spaces.
    #[arg(long, value_delimiter = ' ')]
    pub command: Option<Vec<String>>,
    /// terminationGracePeriodSeconds.
    #[arg(long)]
    pub grace: Option<i64>,
    /// A readiness probe that execs this command (words separated by spaces).
    #[arg(long, value_delimiter = ' ')]
    pub readiness_exec: Option<Vec<String>>,
    /// The readiness probe's periodSeconds.
    #[arg(long, default_value_t = 10)]
    pub probe_period: u32,
}

#[derive(Debug, clap::Args)]
pub struct CeilingArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Where to write the combined JSON.
    #[arg(long)]
    pub out: PathBuf,
    /// Free-form facts about the bench (JSON object), copied into the combined JSON.
    #[arg(long, default_value = "{}")]
    pub meta: String,
    /// Result files of `run` and `ceiling`.
    pub inputs: Vec<PathBuf>,
}

fn parse_proc(value: &str) -> Result<(String, u32), String> {
    let (name, pid) = value.split_once('=').ok_or("expected NAME=PID")?;
    let pid = pid
        .parse()
        .map_err(|error| format!("bad pid {pid:?}: {error}"))?;
    Ok((name.to_owned(), pid))
}
