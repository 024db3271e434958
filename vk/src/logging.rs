//! vk's own log on stderr: the filter (`--log-level`, refined by `RUST_LOG`) and the format
//! (`--log-format`). Provider libraries of ABI 1.3 and later log into it too, under their own
//! targets (`vk_hyper::backend`), so the same filter applies to them.

use std::io::Write;

use clap::ValueEnum;
use log::{Record, kv::Key};
use serde::Serialize;

/// How each record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `[TIME LEVEL target] message`, for people.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Starts logging for node `node_name`, whose provider is `provider`. `level` applies to vk
/// and to the provider's crate (`vk_NAME`, the crate behind `libvk_NAME.so`), `warn` to
/// everything else; `RUST_LOG` refines it per target.
pub fn init(level: &str, format: LogFormat, provider: &str, node_name: &str) {
    let mut builder = env_logger::Builder::new();
    let provider_crate = format!("vk_{}", provider.replace('-', "_"));
    builder.parse_filters(&format!("warn,vk={level},{provider_crate}={level}"));
    if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    match format {
        LogFormat::Text => builder.format_timestamp_millis(),
        LogFormat::Json => {
            let node_name = node_name.to_string();
            builder.format(move |out, record| {
                let time = out.timestamp_millis().to_string();
                writeln!(out, "{}", json_line(&time, record, &node_name))
            })
        }
    };
    builder.init();
}

/// The key-value pair that names the pod a record is about: `log::info!(pod:% = key; "...")`.
pub const POD_KEY: &str = "pod";

/// One record as a JSON object (without the newline). `time` is RFC 3339.
pub fn json_line(time: &str, record: &Record<'_>, node_name: &str) -> String {
    #[derive(Serialize)]
    struct Line<'a> {
        time: &'a str,
        level: &'a str,
        target: &'a str,
        message: String,
        node: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        pod: Option<String>,
    }
    let line = Line {
        time,
        level: &record.level().as_str().to_ascii_lowercase(),
        target: record.target(),
        message: record.args().to_string(),
        node: node_name,
        pod: record
            .key_values()
            .get(Key::from_str(POD_KEY))
            .map(|pod| pod.to_string()),
    };
    // Only strings: serialising cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

#[cfg(test)]
mod tests;
