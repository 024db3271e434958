//! `vk-bench`, the client side of `scripts/bench.sh`.
//!
//! - `run`: creates N pods (bound directly to the node, or through a Deployment and the
//!   scheduler), watches them until all are Running, deletes them, watches until all are gone,
//!   and writes the timings, the requests vk made (from the apiserver's audit log), the requests
//!   the apiserver served (from its metrics) and the CPU each process used, as JSON.
//! - `ceiling`: what a plain kube-rs client reaches against the same apiserver with the same
//!   concurrency and no vk: pod creates, pod status patches and pod deletes per second.
//! - `report`: prints the results of a bench run compactly and writes them as one JSON file.
//!
//! `run` and `ceiling` write the typed results of [`results`], which `report` reads back.

mod ceiling;
mod cli;
mod cluster;
mod measure;
mod progress;
mod report;
mod results;
mod run;
mod watch;

use anyhow::Result;
use clap::Parser;

use cli::Command;

#[tokio::main]
async fn main() -> Result<()> {
    match Command::parse() {
        Command::Run(args) => run::run(*args).await,
        Command::Ceiling(args) => ceiling::ceiling(args).await,
        Command::Report(args) => report::report(&args),
    }
}
