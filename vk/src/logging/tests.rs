use log::Level;
use serde_json::{Value, json};

use super::*;

fn parsed(line: &str) -> Value {
    assert!(!line.contains('\n'), "{line:?}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
}

#[test]
fn json_lines_carry_time_level_target_message_and_node() {
    let line = json_line(
        "2026-12-06T08:00:00.123Z",
        &Record::builder()
            .level(Level::Warn)
            .target("vk_hyper::backend")
            .args(format_args!("the engine's event stream broke:\n\"eof\""))
            .build(),
        "virtual-kubelet",
    );
    assert_eq!(
        parsed(&line),
        json!({
            "time": "2026-12-06T08:00:00.123Z",
            "level": "warn",
            "target": "vk_hyper::backend",
            "message": "the engine's event stream broke:\n\"eof\"",
            "node": "virtual-kubelet",
        })
    );
    assert!(line.starts_with("{\"time\":"), "{line}");
}

#[test]
fn json_lines_name_the_pod_when_the_record_does() {
    let pod = "default/web-0";
    let pairs = [(POD_KEY, log::kv::Value::from_display(&pod))];
    let line = json_line(
        "2026-12-06T08:00:00Z",
        &Record::builder()
            .level(Level::Info)
            .target("vk::pods")
            .args(format_args!("removing {pod}"))
            .key_values(&pairs)
            .build(),
        "n1",
    );
    let value = parsed(&line);
    assert_eq!(value["pod"], "default/web-0");
    assert_eq!(value["node"], "n1");
    assert_eq!(value["level"], "info");
}
