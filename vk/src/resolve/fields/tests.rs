use std::collections::BTreeMap;

use super::*;

#[test]
fn subscripts_are_split_off() {
    assert_eq!(
        subscripted("metadata.labels['app']"),
        Some(("metadata.labels", "app"))
    );
    assert_eq!(
        subscripted("metadata.annotations['a/b']"),
        Some(("metadata.annotations", "a/b"))
    );
    assert_eq!(subscripted("metadata.labels"), None);
    assert_eq!(subscripted("['app']"), None);
    assert_eq!(subscripted("metadata.labels['app'"), None);
}

#[test]
fn maps_are_written_like_go_does() {
    let map: BTreeMap<String, String> = [
        ("b", "2"),
        ("a", "x\"y\\z"),
        ("c", "tab\there\u{1}\u{7f}é\u{a0}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        format_map(&map),
        "a=\"x\\\"y\\\\z\"\nb=\"2\"\nc=\"tab\\there\\x01\\x7fé\\u00a0\""
    );
    assert_eq!(format_map(&BTreeMap::new()), "");
    assert_eq!(
        go_quote("\u{7}\u{8}\u{c}\n\r\u{b} "),
        "\"\\a\\b\\f\\n\\r\\v \""
    );
}

#[test]
fn pod_ips_follow_the_node_family() {
    let ips = ["fd00::1", "garbage", "fd00::2", "10.0.0.1", "10.0.0.2"];
    assert_eq!(primary_family_first(&ips, false), ["10.0.0.1", "fd00::1"]);
    assert_eq!(primary_family_first(&ips, true), ["fd00::1", "10.0.0.1"]);
    assert_eq!(primary_family_first(&["10.0.0.1"], true), ["10.0.0.1"]);
    assert!(primary_family_first(&[], false).is_empty());
}

#[test]
fn volume_fields_are_metadata_only() {
    let pod = Pod::default();
    assert_eq!(metadata_value(&pod, "metadata.labels").unwrap(), "");
    assert_eq!(metadata_value(&pod, "metadata.labels['x']").unwrap(), "");
    assert!(matches!(
        metadata_value(&pod, "status.podIP"),
        Err(FieldError::FieldPath(_))
    ));
}
