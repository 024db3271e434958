//! The mock provider's configuration, compatible with upstream virtual-kubelet's mock provider:
//! a JSON object keyed by node name, each entry with optional `cpu`, `memory`, `pods`, `others`
//! (extra resources) and `providerID`, and vk's own `declaredFeatures`.

use std::collections::BTreeMap;

use serde::Deserialize;
use vk_abi::{ProviderError, k8s_openapi::apimachinery::pkg::api::resource::Quantity};

/// The resources and identity of one mock node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeConfig {
    #[serde(default = "default_cpu")]
    pub cpu: String,
    #[serde(default = "default_memory")]
    pub memory: String,
    #[serde(default = "default_pods")]
    pub pods: String,
    #[serde(default)]
    pub others: BTreeMap<String, String>,
    #[serde(default, rename = "providerID")]
    pub provider_id: Option<String>,
    /// Node features (KEP-5328) the mock declares as its backend's: it models none, so tests
    /// name them to see how vk declares a provider's features.
    #[serde(default)]
    pub declared_features: Vec<String>,
}

fn default_cpu() -> String {
    "20".into()
}
fn default_memory() -> String {
    "100Gi".into()
}
fn default_pods() -> String {
    "110".into()
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            cpu: default_cpu(),
            memory: default_memory(),
            pods: default_pods(),
            others: BTreeMap::new(),
            provider_id: None,
            declared_features: Vec::new(),
        }
    }
}

impl NodeConfig {
    /// Reads the entry for `node_name` from `contents`; empty contents give the defaults.
    pub fn parse(contents: &str, node_name: &str) -> Result<Self, ProviderError> {
        if contents.trim().is_empty() {
            return Ok(NodeConfig::default());
        }
        let mut nodes: BTreeMap<String, NodeConfig> = serde_json::from_str(contents)
            .map_err(|error| ProviderError::invalid_input(format!("mock config: {error}")))?;
        let config = nodes.remove(node_name).ok_or_else(|| {
            let known: Vec<_> = nodes.keys().cloned().collect();
            ProviderError::invalid_input(format!(
                "mock config has no entry for node {node_name:?} (it has: {})",
                known.join(", ")
            ))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ProviderError> {
        let mut all = vec![
            ("cpu", &self.cpu),
            ("memory", &self.memory),
            ("pods", &self.pods),
        ];
        all.extend(
            self.others
                .iter()
                .map(|(name, value)| (name.as_str(), value)),
        );
        for (name, value) in all {
            if !is_quantity(value) {
                return Err(ProviderError::invalid_input(format!(
                    "mock config: {name} = {value:?} is not a Kubernetes quantity"
                )));
            }
        }
        Ok(())
    }

    /// The node's capacity (also its allocatable).
    pub fn capacity(&self) -> BTreeMap<String, Quantity> {
        let mut capacity = BTreeMap::from([
            ("cpu".to_string(), Quantity(self.cpu.clone())),
            ("memory".to_string(), Quantity(self.memory.clone())),
            ("pods".to_string(), Quantity(self.pods.clone())),
        ]);
        for (name, value) in &self.others {
            capacity.insert(name.clone(), Quantity(value.clone()));
        }
        capacity
    }
}

/// A loose check of the quantity grammar: a decimal number and an optional known suffix.
fn is_quantity(value: &str) -> bool {
    const SUFFIXES: [&str; 14] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P",
    ];
    let number = SUFFIXES
        .iter()
        .find_map(|suffix| value.strip_suffix(suffix))
        .or_else(|| value.strip_suffix('E'))
        .unwrap_or(value);
    !number.is_empty()
        && number
            .parse::<f64>()
            .is_ok_and(|n| n.is_finite() && n >= 0.0)
        && !number.contains(['e', 'E', '+'])
}

#[cfg(test)]
mod tests;
