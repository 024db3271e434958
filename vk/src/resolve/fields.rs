//! `fieldRef` values: the pod's own metadata, spec and addresses, as the kubelet renders them
//! into environment variables and downwardAPI files.

use std::{collections::BTreeMap, net::IpAddr};

use k8s_openapi::api::core::v1::{ObjectFieldSelector, Pod};

#[cfg(test)]
mod tests;

/// Why a `fieldRef` has no value: what it names is unsupported.
#[derive(Debug, thiserror::Error)]
pub enum FieldError {
    #[error("unsupported pod version: {0}")]
    ApiVersion(String),
    #[error("unsupported fieldPath: {0}")]
    FieldPath(String),
    #[error("fieldPath {0:?} does not support subscript")]
    Subscript(String),
}

/// The node's and the pod's IPs, primary family first, at most one per family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Addresses {
    pub(super) host_ips: Vec<String>,
    pub(super) pod_ips: Vec<String>,
}

impl Addresses {
    /// Host-network pods have the node's IPs; other pods the IPs in their status, which stay
    /// empty until the provider reports them.
    pub(super) fn of(pod: &Pod, host_ips: &[String]) -> Self {
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.host_network)
            .unwrap_or(false);
        let pod_ips: Vec<&str> = if host_network {
            host_ips.iter().map(String::as_str).collect()
        } else {
            let status = pod.status.as_ref();
            let listed: Vec<&str> = status
                .and_then(|status| status.pod_ips.as_deref())
                .unwrap_or_default()
                .iter()
                .map(|pod_ip| pod_ip.ip.as_str())
                .collect();
            if listed.is_empty() {
                status
                    .and_then(|status| status.pod_ip.as_deref())
                    .into_iter()
                    .collect()
            } else {
                listed
            }
        };
        let primary_is_v6 = host_ips
            .first()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .is_some_and(|ip| ip.is_ipv6());
        Addresses {
            host_ips: host_ips.to_vec(),
            pod_ips: primary_family_first(&pod_ips, primary_is_v6),
        }
    }
}

/// The kubelet's `sortPodIPs`: the first valid IP of the node's primary family, then the first
/// of the other family.
fn primary_family_first(ips: &[&str], primary_is_v6: bool) -> Vec<String> {
    let first_of_family = |v6: bool| {
        ips.iter()
            .find(|ip| ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6() == v6))
            .map(|ip| ip.to_string())
    };
    first_of_family(primary_is_v6)
        .into_iter()
        .chain(first_of_family(!primary_is_v6))
        .collect()
}

/// Whether the selector reads the pod's IPs, which are unknown until the pod runs.
pub(super) fn reads_pod_ips(selector: &ObjectFieldSelector) -> bool {
    matches!(
        selector.field_path.as_str(),
        "status.podIP" | "status.podIPs"
    )
}

/// A `fieldRef` of an environment variable: metadata, spec and status paths.
pub(super) fn env_value(
    pod: &Pod,
    selector: &ObjectFieldSelector,
    addresses: &Addresses,
) -> Result<String, FieldError> {
    match selector.api_version.as_deref() {
        None | Some("" | "v1") => {}
        Some(other) => return Err(FieldError::ApiVersion(other.to_string())),
    }
    let spec = pod.spec.as_ref();
    let value = match selector.field_path.as_str() {
        "spec.nodeName" | "spec.host" => spec.and_then(|spec| spec.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|spec| spec.service_account_name.clone()),
        "status.hostIP" => addresses.host_ips.first().cloned(),
        "status.hostIPs" => Some(addresses.host_ips.join(",")),
        "status.podIP" => addresses.pod_ips.first().cloned(),
        "status.podIPs" => Some(addresses.pod_ips.join(",")),
        path => return metadata_value(pod, path),
    };
    Ok(value.unwrap_or_default())
}

/// A `fieldRef` of a downwardAPI volume file: metadata paths only; whole label and annotation
/// maps are written one `key="value"` line per entry.
pub(super) fn metadata_value(pod: &Pod, path: &str) -> Result<String, FieldError> {
    let metadata = &pod.metadata;
    if let Some((map_path, key)) = subscripted(path) {
        let map = match map_path {
            "metadata.labels" => &metadata.labels,
            "metadata.annotations" => &metadata.annotations,
            _ => return Err(FieldError::Subscript(path.to_string())),
        };
        return Ok(map
            .as_ref()
            .and_then(|map| map.get(key))
            .cloned()
            .unwrap_or_default());
    }
    let value = match path {
        "metadata.name" => metadata.name.clone(),
        "metadata.namespace" => metadata.namespace.clone(),
        "metadata.uid" => metadata.uid.clone(),
        "metadata.labels" => metadata.labels.as_ref().map(format_map),
        "metadata.annotations" => metadata.annotations.as_ref().map(format_map),
        _ => return Err(FieldError::FieldPath(path.to_string())),
    };
    Ok(value.unwrap_or_default())
}

/// Splits `metadata.labels['key']` into the map's path and the key.
fn subscripted(path: &str) -> Option<(&str, &str)> {
    let (map_path, key) = path.strip_suffix("']")?.split_once("['")?;
    (!map_path.is_empty()).then_some((map_path, key))
}

/// The kubelet's `FormatMap`: sorted `key="value"` lines, no trailing newline.
fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(key, value)| format!("{key}={}", go_quote(value)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `%q` for a valid UTF-8 string. Go leaves every printable character unescaped; lacking
/// Unicode's tables, this treats controls and non-space whitespace as the unprintable ones.
fn go_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\u{07}' => quoted.push_str("\\a"),
            '\u{08}' => quoted.push_str("\\b"),
            '\u{0c}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{0b}' => quoted.push_str("\\v"),
            ' ' => quoted.push(' '),
            c if c < ' ' || c == '\u{7f}' => quoted.push_str(&format!("\\x{:02x}", u32::from(c))),
            // All of these lie in the Basic Multilingual Plane, hence Go's four-digit form.
            c if c.is_control() || c.is_whitespace() => {
                quoted.push_str(&format!("\\u{:04x}", u32::from(c)))
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}
