use super::*;

#[test]
fn empty_config_gives_defaults() {
    let config = NodeConfig::parse("", "vk").unwrap();
    assert_eq!(config, NodeConfig::default());
    assert_eq!(config.capacity()["pods"], Quantity("110".into()));
}

#[test]
fn upstream_format_is_read() {
    let contents = r#"{"vk": {"cpu": "4", "memory": "8Gi", "pods": "1000",
        "others": {"nvidia.com/gpu": "2"}, "providerID": "mock://vk"}}"#;
    let config = NodeConfig::parse(contents, "vk").unwrap();
    assert_eq!(config.cpu, "4");
    assert_eq!(config.provider_id.as_deref(), Some("mock://vk"));
    assert_eq!(config.capacity()["nvidia.com/gpu"], Quantity("2".into()));
}

#[test]
fn missing_fields_take_defaults() {
    let config = NodeConfig::parse(r#"{"vk": {"cpu": "2"}}"#, "vk").unwrap();
    assert_eq!(config.memory, "100Gi");
}

#[test]
fn bad_config_is_a_clear_error() {
    let missing = NodeConfig::parse(r#"{"other": {}}"#, "vk").unwrap_err();
    assert!(
        missing.message.contains("no entry for node \"vk\""),
        "{missing}"
    );
    let bad_quantity = NodeConfig::parse(r#"{"vk": {"cpu": "lots"}}"#, "vk").unwrap_err();
    assert!(
        bad_quantity.message.contains("cpu = \"lots\""),
        "{bad_quantity}"
    );
    let unknown = NodeConfig::parse(r#"{"vk": {"cpus": "2"}}"#, "vk").unwrap_err();
    assert!(unknown.message.contains("unknown field"), "{unknown}");
    let not_json = NodeConfig::parse("cpu=2", "vk").unwrap_err();
    assert!(not_json.message.starts_with("mock config:"), "{not_json}");
}

#[test]
fn quantities() {
    for ok in ["1", "0.5", "100m", "8Gi", "1k", "2E"] {
        assert!(is_quantity(ok), "{ok}");
    }
    for bad in ["", "Gi", "-1", "1e3", "x", "1 Gi"] {
        assert!(!is_quantity(bad), "{bad}");
    }
}

/// The example that vk-provider-mock ships in /usr/share/doc must stay a valid configuration.
#[test]
fn shipped_example_parses() {
    let config = NodeConfig::parse(include_str!("../../example.json"), "virtual-kubelet")
        .expect("example.json is a valid mock configuration");
    assert_eq!(
        config.provider_id.as_deref(),
        Some("mock://virtual-kubelet")
    );
    assert_eq!(
        config.others.get("nvidia.com/gpu").map(String::as_str),
        Some("2")
    );
}
