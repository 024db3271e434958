use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

const EXAMPLE: &str = include_str!("../../example.toml");

#[test]
fn the_example_loads() {
    let config = Config::load(EXAMPLE, no_env).unwrap();
    assert_eq!(config.resource_group, "vk-rg");
    assert_eq!(config.region, "westeurope");
    assert_eq!(config.os_type, OsType::Linux);
    assert_eq!(config.capacity["cpu"], Quantity("100".into()));
    assert_eq!(config.capacity["pods"], Quantity("50".into()));
    assert_eq!(config.status_interval, Duration::from_secs(5));
}

#[test]
fn environment_overrides_the_file() {
    let env = |key: &str| match key {
        "ACI_RESOURCE_GROUP" => Some("other-rg".to_string()),
        "ACI_REGION" => Some("eastus".to_string()),
        "ACI_QUOTA_CPU" => Some("8".to_string()),
        "ACI_QUOTA_MEMORY" => Some("32Gi".to_string()),
        "ACI_QUOTA_POD" => Some("12".to_string()),
        _ => None,
    };
    let config = Config::load(EXAMPLE, env).unwrap();
    assert_eq!(config.resource_group, "other-rg");
    assert_eq!(config.region, "eastus");
    assert_eq!(config.capacity["cpu"], Quantity("8".into()));
    assert_eq!(config.capacity["memory"], Quantity("32Gi".into()));
    assert_eq!(config.capacity["pods"], Quantity("12".into()));
}

#[test]
fn empty_config_needs_group_and_region() {
    let error = Config::load("", no_env).unwrap_err().to_string();
    assert!(error.contains("ACI_RESOURCE_GROUP"), "{error}");
    let env = |key: &str| (key == "ACI_RESOURCE_GROUP").then(|| "rg".to_string());
    let error = Config::load("", env).unwrap_err().to_string();
    assert!(error.contains("region"), "{error}");
}

#[test]
fn bad_values_are_named() {
    let base = "ResourceGroup = \"rg\"\nRegion = \"westus\"\n";
    for (extra, key) in [
        ("OperatingSystem = \"Plan9\"", "OperatingSystem"),
        ("CPU = \"lots\"", "CPU"),
        ("SubnetId = \"/subscriptions/x/subnets/y\"", "SubnetId"),
        ("KubeDNSIP = \"dns\"", "KubeDNSIP"),
        ("StatusIntervalSeconds = 0", "StatusIntervalSeconds"),
    ] {
        let error = Config::load(&format!("{base}{extra}\n"), no_env).unwrap_err();
        assert!(error.to_string().contains(key), "{extra}: {error}");
    }
    let error = Config::load("Regoin = \"westus\"", no_env).unwrap_err();
    assert!(matches!(error, ConfigError::Toml(_)), "{error}");
    let error = Config::load("ResourceGroup = \"bad/rg\"\nRegion = \"x\"", no_env).unwrap_err();
    assert!(error.to_string().contains("ResourceGroup"), "{error}");
}

#[test]
fn a_subnet_id_is_checked_for_shape() {
    let toml = "ResourceGroup = \"rg\"\nRegion = \"westus\"\nSubnetId = \"/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/aci\"\n";
    let config = Config::load(toml, no_env).unwrap();
    assert!(config.subnet_id.unwrap().ends_with("/subnets/aci"));
}
