//! The `vk` binary.

use std::{path::Path, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{CommandFactory, Parser};
use vk::{
    cli::{Cli, Command, Generated},
    logging::{self, LogFormat},
    provider,
};
use vk_abi::error_chain;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.run.log_format;
    logging::init(
        &cli.run.log_level,
        log_format,
        &cli.run.provider,
        &cli.run.nodename,
    );
    let result = match cli.command {
        Some(Command::Providers) => list_providers(&cli.plugin_dir),
        Some(Command::Generate { what }) => generate(what),
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
            match log_format {
                LogFormat::Text => eprintln!("vk: {error:#}"),
                // A log shipper reads every line as JSON.
                LogFormat::Json => log::error!("{error:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// `vk providers`: one line per library in the plugin directory.
fn list_providers(dir: &Path) -> anyhow::Result<()> {
    let names = provider::provider_files(dir)?;
    if names.is_empty() {
        anyhow::bail!(
            "{} holds no provider (no libvk_NAME.so in it): install a provider package such as \
             vk-provider-mock, or point --plugin-dir at a directory that has one",
            dir.display()
        );
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

/// `vk generate`: the man page or a completion script, on stdout.
fn generate(what: Generated) -> anyhow::Result<()> {
    let mut command = Cli::command();
    let mut stdout = std::io::stdout().lock();
    match what {
        Generated::Man => clap_mangen::Man::new(command)
            .render(&mut stdout)
            .context("cannot write the man page")?,
        Generated::Completions { shell } => {
            clap_complete::generate(shell, &mut command, "vk", &mut stdout)
        }
    }
    Ok(())
}
