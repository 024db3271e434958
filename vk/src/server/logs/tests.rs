use super::*;

fn parse(query: &str) -> Result<LogOptions, QueryError> {
    parse_query(query, "ns", "p", "c")
}

#[test]
fn kubelet_parameters() {
    let options =
        parse("follow=true&tailLines=5&timestamps=true&limitBytes=100&sinceSeconds=30").unwrap();
    assert!(options.follow && options.timestamps);
    assert_eq!(
        (
            options.tail_lines,
            options.limit_bytes,
            options.since_seconds
        ),
        (Some(5), Some(100), Some(30))
    );
    assert_eq!(parse("tail=all").unwrap().tail_lines, None);
    assert_eq!(parse("tail=3").unwrap().tail_lines, Some(3));
    let since = parse("sinceTime=2026-01-02T03:04:05Z")
        .unwrap()
        .since_time
        .unwrap();
    assert_eq!(since.0.to_string(), "2026-01-02T03:04:05Z");
}

#[test]
fn bad_parameters() {
    assert_eq!(parse("follow=maybe").unwrap_err(), QueryError::Undecodable);
    assert_eq!(parse("tailLines=x").unwrap_err(), QueryError::Undecodable);
    assert_eq!(parse("tailLines=-1").unwrap_err(), QueryError::Invalid);
    assert_eq!(parse("limitBytes=0").unwrap_err(), QueryError::Invalid);
    assert_eq!(parse("sinceSeconds=0").unwrap_err(), QueryError::Invalid);
    assert_eq!(
        parse("sinceSeconds=5&sinceTime=2026-01-02T03:04:05Z").unwrap_err(),
        QueryError::Invalid
    );
}
