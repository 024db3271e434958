//! A provider's `log` records, forwarded to the host's log (ABI 1.3).
//!
//! Each provider library has its own copy of the `log` crate, whose logger nobody would set:
//! [`export_provider!`](crate::export_provider) installs [`ToHost`] there, which hands every
//! record the host wants to the host's [`LogSink`](crate::raw::LogSink) with its level, target
//! and message intact, so that the host's filter (`RUST_LOG=vk_hyper=debug`) applies to
//! provider targets as to its own. It also logs the library's panics under the provider's
//! target, where the standard hook would print them unformatted on stderr.

use std::sync::Once;

use abi_stable::std_types::{ROption, RStr};
use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::raw::{
    LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_OFF, LOG_TRACE, LOG_WARN, LogSinkBox, RawLogRecord,
};

/// The `LOG_*` code of `level`.
pub fn level_to_raw(level: Level) -> u32 {
    match level {
        Level::Error => LOG_ERROR,
        Level::Warn => LOG_WARN,
        Level::Info => LOG_INFO,
        Level::Debug => LOG_DEBUG,
        Level::Trace => LOG_TRACE,
    }
}

/// The level of a `LOG_*` code; unknown codes read as the most verbose.
pub fn level_from_raw(level: u32) -> Level {
    match level {
        LOG_ERROR => Level::Error,
        LOG_WARN => Level::Warn,
        LOG_INFO => Level::Info,
        LOG_DEBUG => Level::Debug,
        _ => Level::Trace,
    }
}

/// The maximum level of a `LOG_*` code, `LOG_OFF` included.
pub fn level_filter_from_raw(level: u32) -> LevelFilter {
    match level {
        LOG_OFF => LevelFilter::Off,
        level => level_from_raw(level).to_level_filter(),
    }
}

/// The library's `log` logger: the host's sink.
struct ToHost(LogSinkBox);

impl Log for ToHost {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.0.enabled(
            level_to_raw(metadata.level()),
            RStr::from_str(metadata.target()),
        )
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        self.0.log(RawLogRecord {
            level: level_to_raw(record.level()),
            target: RStr::from_str(record.target()),
            message: RStr::from_str(&message),
            module_path: record.module_path().map(RStr::from_str).into(),
            file: record.file().map(RStr::from_str).into(),
            line: ROption::from(record.line()),
        });
    }

    fn flush(&self) {}
}

/// Makes `sink` this library's `log` logger and logs panics under `provider_target`.
///
/// A library is loaded once per host process, and the host hands every provider it builds the
/// same log, so only the first sink is installed; so is nothing when the provider set a logger
/// of its own.
pub(crate) fn install(sink: LogSinkBox, provider_target: &'static str) {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let max_level = level_filter_from_raw(sink.max_level());
        if log::set_boxed_logger(Box::new(ToHost(sink))).is_err() {
            return;
        }
        log::set_max_level(max_level);
        std::panic::set_hook(Box::new(move |panic| {
            log::error!(target: provider_target, "{}", panic_message(panic));
        }));
    });
}

/// What the standard panic hook would print, on one line: `panicked at FILE:LINE:COL: MESSAGE`.
fn panic_message(panic: &std::panic::PanicHookInfo<'_>) -> String {
    let message = panic_text(panic.payload());
    match panic.location() {
        Some(location) => format!("panicked at {location}: {message}"),
        None => format!("panicked: {message}"),
    }
}

/// The message of a panic (`panic!`'s formatted text).
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

#[cfg(test)]
mod tests;
