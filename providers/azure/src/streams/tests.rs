use super::*;

#[test]
fn log_lines_with_and_without_timestamps() {
    let lines = parse_log("2026-01-02T03:04:05.123456789Z hello world\nno stamp here\n");
    assert_eq!(
        lines,
        [
            LogLine {
                time: Some("2026-01-02T03:04:05.123456789Z".parse().unwrap()),
                text: "hello world".into(),
            },
            LogLine {
                time: None,
                text: "no stamp here".into(),
            },
        ]
    );
    assert!(parse_log("").is_empty());
}
