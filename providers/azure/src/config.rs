//! The provider's TOML configuration (`--provider-config`) and the environment variables that
//! override it: where container groups go, the node's capacity, and the group network.
//!
//! Keys follow upstream virtual-kubelet's ACI provider (`ResourceGroup`, `Region`,
//! `OperatingSystem`, `CPU`, `Memory`, `Pods`); `ACI_RESOURCE_GROUP`, `ACI_REGION` and
//! `ACI_QUOTA_CPU`/`ACI_QUOTA_MEMORY`/`ACI_QUOTA_POD` win over the file.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;
use vk_abi::{
    k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    quantity::{Amount, QuantityError},
};

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("azure config is not valid TOML")]
    Toml(#[source] toml::de::Error),
    #[error("azure config: {what} is not set (set {key} in the config or {env})")]
    Missing {
        what: &'static str,
        key: &'static str,
        env: &'static str,
    },
    #[error("azure config: {key} = {value:?}: {why}")]
    Invalid {
        key: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("azure config: {key}")]
    Quantity {
        key: &'static str,
        #[source]
        source: QuantityError,
    },
}

/// The file as written; see [`Config`] for what is made of it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct File {
    resource_group: Option<String>,
    region: Option<String>,
    operating_system: Option<String>,
    #[serde(rename = "CPU")]
    cpu: Option<String>,
    memory: Option<String>,
    pods: Option<String>,
    subnet_id: Option<String>,
    #[serde(rename = "KubeDNSIP")]
    kube_dns_ip: Option<String>,
    cluster_domain: Option<String>,
    status_interval_seconds: Option<u64>,
}

/// The operating system of every container group of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsType {
    Linux,
    Windows,
}

impl OsType {
    /// ACI's spelling (`osType`).
    pub fn as_str(self) -> &'static str {
        match self {
            OsType::Linux => "Linux",
            OsType::Windows => "Windows",
        }
    }
}

/// Cluster DNS handed to groups in a virtual network (ACI groups outside one cannot reach it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDns {
    pub server: Option<String>,
    pub domain: String,
}

/// What the provider runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub resource_group: String,
    pub region: String,
    pub os_type: OsType,
    /// Node capacity: cpu, memory and pods.
    pub capacity: BTreeMap<String, Quantity>,
    /// The subnet that gives groups private IPs, as an ARM resource id.
    pub subnet_id: Option<String>,
    pub dns: ClusterDns,
    /// How often the resource group is listed for status changes.
    pub status_interval: Duration,
}

const DEFAULT_CPU: &str = "10000";
const DEFAULT_MEMORY: &str = "4Ti";
const DEFAULT_PODS: &str = "5000";
const DEFAULT_STATUS_INTERVAL: u64 = 5;

impl Config {
    /// Reads `contents` (TOML, may be empty) with overrides from `env`.
    pub fn load(contents: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(contents).map_err(ConfigError::Toml)?;
        let setting = |env_key: &str, value: Option<String>| {
            env(env_key)
                .filter(|v| !v.trim().is_empty())
                .or(value)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let resource_group =
            setting("ACI_RESOURCE_GROUP", file.resource_group).ok_or(ConfigError::Missing {
                what: "the resource group",
                key: "ResourceGroup",
                env: "ACI_RESOURCE_GROUP",
            })?;
        check_resource_group(&resource_group)?;
        let region = setting("ACI_REGION", file.region).ok_or(ConfigError::Missing {
            what: "the region",
            key: "Region",
            env: "ACI_REGION",
        })?;
        if !region.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::Invalid {
                key: "Region",
                value: region,
                why: "a region is a name such as westeurope (letters and digits only)",
            });
        }
        let os_type = match file.operating_system.as_deref().unwrap_or("Linux") {
            "Linux" => OsType::Linux,
            "Windows" => OsType::Windows,
            other => {
                return Err(ConfigError::Invalid {
                    key: "OperatingSystem",
                    value: other.into(),
                    why: "must be Linux or Windows",
                });
            }
        };
        let mut capacity = BTreeMap::new();
        for (name, key, env_key, value, default) in [
            ("cpu", "CPU", "ACI_QUOTA_CPU", file.cpu, DEFAULT_CPU),
            (
                "memory",
                "Memory",
                "ACI_QUOTA_MEMORY",
                file.memory,
                DEFAULT_MEMORY,
            ),
            ("pods", "Pods", "ACI_QUOTA_POD", file.pods, DEFAULT_PODS),
        ] {
            let value = setting(env_key, value).unwrap_or_else(|| default.into());
            let amount =
                Amount::parse(&value).map_err(|source| ConfigError::Quantity { key, source })?;
            if amount.ceil_milli() < 0 {
                return Err(ConfigError::Invalid {
                    key,
                    value,
                    why: "a capacity cannot be negative",
                });
            }
            capacity.insert(name.to_string(), Quantity(value));
        }
        if let Some(subnet) = &file.subnet_id {
            check_subnet_id(subnet)?;
        }
        if let Some(server) = &file.kube_dns_ip
            && server.parse::<std::net::IpAddr>().is_err()
        {
            return Err(ConfigError::Invalid {
                key: "KubeDNSIP",
                value: server.clone(),
                why: "not an IP address",
            });
        }
        let status_interval = file
            .status_interval_seconds
            .unwrap_or(DEFAULT_STATUS_INTERVAL);
        if status_interval == 0 {
            return Err(ConfigError::Invalid {
                key: "StatusIntervalSeconds",
                value: "0".into(),
                why: "must be at least 1",
            });
        }
        Ok(Config {
            resource_group,
            region,
            os_type,
            capacity,
            subnet_id: file.subnet_id,
            dns: ClusterDns {
                server: file.kube_dns_ip,
                domain: file
                    .cluster_domain
                    .unwrap_or_else(|| "cluster.local".into()),
            },
            status_interval: Duration::from_secs(status_interval),
        })
    }
}

/// ARM's rule for resource group names: 1–90 letters, digits, `_`, `-`, `.`, `(`, `)`, not
/// ending in a period.
fn check_resource_group(name: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| c.is_alphanumeric() || "_-.()".contains(c);
    if name.len() <= 90 && name.chars().all(allowed) && !name.ends_with('.') {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: "ResourceGroup",
            value: name.into(),
            why: "a resource group name has 1-90 letters, digits, _-.() and does not end in .",
        })
    }
}

fn check_subnet_id(id: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = id.trim_start_matches('/').split('/').collect();
    let shape = [
        Some("subscriptions"),
        None,
        Some("resourceGroups"),
        None,
        Some("providers"),
        Some("Microsoft.Network"),
        Some("virtualNetworks"),
        None,
        Some("subnets"),
        None,
    ];
    let fits = id.starts_with('/')
        && parts.len() == shape.len()
        && parts.iter().zip(shape).all(|(part, want)| match want {
            Some(word) => part.eq_ignore_ascii_case(word),
            None => !part.is_empty(),
        });
    if fits {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: "SubnetId",
            value: id.into(),
            why: "expected /subscriptions/S/resourceGroups/G/providers/Microsoft.Network/virtualNetworks/V/subnets/N",
        })
    }
}

#[cfg(test)]
mod tests;
