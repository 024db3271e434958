//! The `vk` binary.

use std::{path::Path, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::Parser;
use vk::{
    cli::{Cli, Command},
    provider,
};
use vk_abi::error_chain;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.run.log_level);
    let result = match cli.command {
        Some(Command::Providers) => list_providers(&cli.plugin_dir),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|runtime| {
                let result = runtime.block_on(vk::kubelet::run(cli.run, cli.plugin_dir));
                // A provider call that hangs holds a blocking thread forever; do not wait for it.
                runtime.shutdown_timeout(Duration::from_secs(1));
                result
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vk: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--log-level` sets the default; `RUST_LOG` refines it per module.
fn init_logging(level: &str) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&format!("warn,vk={level},vk_mock={level}"));
    if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    builder.format_timestamp_millis().init();
}

/// `vk providers`: one line per library in the plugin directory.
fn list_providers(dir: &Path) -> anyhow::Result<()> {
    let names = provider::provider_files(dir)?;
    if names.is_empty() {
        anyhow::bail!("no provider libraries (libvk_NAME.so) in {}", dir.display());
    }
    println!(
        "{:<12} {:<10} {:<8} {:<10} FILE",
        "NAME", "VERSION", "ABI", "COMPATIBLE"
    );
    for name in names {
        let path = provider::library_path(dir, &name);
        match provider::open(dir, &name) {
            Ok(library) => match &library.module {
                Ok(module) => println!(
                    "{:<12} {:<10} {:<8} {:<10} {}",
                    module.name(),
                    module.version(),
                    library.abi_version,
                    "yes",
                    path.display()
                ),
                Err(error) => println!(
                    "{:<12} {:<10} {:<8} {:<10} {} ({})",
                    name,
                    "-",
                    library.abi_version,
                    "no",
                    path.display(),
                    error_chain(error),
                ),
            },
            Err(error) => println!(
                "{:<12} {:<10} {:<8} {:<10} {} ({})",
                name,
                "-",
                "-",
                "no",
                path.display(),
                error_chain(&error),
            ),
        }
    }
    Ok(())
}
