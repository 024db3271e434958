use std::sync::{Arc, Mutex};

use abi_stable::sabi_trait::TD_Opaque;

use super::*;
use crate::raw::{LogSink, LogSink_TO};

#[test]
fn levels_cross_unchanged() {
    for level in [
        Level::Error,
        Level::Warn,
        Level::Info,
        Level::Debug,
        Level::Trace,
    ] {
        assert_eq!(level_from_raw(level_to_raw(level)), level);
        assert_eq!(
            level_filter_from_raw(level_to_raw(level)),
            level.to_level_filter()
        );
    }
    assert_eq!(level_filter_from_raw(LOG_OFF), LevelFilter::Off);
    assert_eq!(level_from_raw(99), Level::Trace);
}

/// What the host received: level, target, message, module path, line.
type Received = (Level, String, String, Option<String>, Option<u32>);

/// A host that wants records up to `Info`, and none of target `noisy`.
struct Capture(Arc<Mutex<Vec<Received>>>);

impl LogSink for Capture {
    fn max_level(&self) -> u32 {
        LOG_INFO
    }
    fn enabled(&self, level: u32, target: RStr<'_>) -> bool {
        level <= LOG_INFO && target.as_str() != "noisy"
    }
    fn log(&self, record: RawLogRecord<'_>) {
        self.0.lock().unwrap().push((
            level_from_raw(record.level),
            record.target.to_string(),
            record.message.to_string(),
            record.module_path.into_option().map(|m| m.to_string()),
            record.line.into_option(),
        ));
    }
}

#[test]
fn records_reach_the_host_with_level_target_and_message_when_it_wants_them() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let logger = ToHost(LogSink_TO::from_value(Capture(received.clone()), TD_Opaque));
    let send = |level, target, message: &str| {
        logger.log(
            &Record::builder()
                .level(level)
                .target(target)
                .args(format_args!("{message} {}", 1))
                .module_path(Some("vk_x::backend"))
                .line(Some(7))
                .build(),
        )
    };
    send(Level::Warn, "vk_x::backend", "engine gone");
    send(Level::Debug, "vk_x::backend", "too verbose");
    send(Level::Error, "noisy", "filtered out");
    assert_eq!(
        *received.lock().unwrap(),
        [(
            Level::Warn,
            "vk_x::backend".to_string(),
            "engine gone 1".to_string(),
            Some("vk_x::backend".to_string()),
            Some(7)
        )]
    );
}
