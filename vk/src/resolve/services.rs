//! Service-link variables (`<SVC>_SERVICE_HOST`, Docker-link style `<SVC>_PORT_...`), as the
//! kubelet's `getServiceEnvVarMap` and `envvars.FromServices` make them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;

#[cfg(test)]
mod tests;

/// The namespace and name of the API server's Service, whose variables every pod gets.
pub(super) const MASTER_NAMESPACE: &str = "default";
const MASTER_SERVICE: &str = "kubernetes";

/// The variables for a pod in `namespace`: `default/kubernetes` always, plus, when service links
/// are enabled, every Service of `namespace_services` (a same-named one replaces `kubernetes`).
pub(super) fn link_variables(
    master_namespace_services: &[Service],
    namespace_services: &[Service],
    enable_service_links: bool,
) -> BTreeMap<String, String> {
    let master = master_namespace_services
        .iter()
        .filter(|service| service.metadata.name.as_deref() == Some(MASTER_SERVICE));
    let linked: &[Service] = if enable_service_links {
        namespace_services
    } else {
        &[]
    };
    let mut services: BTreeMap<&str, &Service> = BTreeMap::new();
    for service in master.chain(linked) {
        if let Some((name, _)) = name_and_cluster_ip(service) {
            services.insert(name, service);
        }
    }
    services.into_values().flat_map(service_variables).collect()
}

/// Services without a cluster IP (headless, ExternalName) have no variables.
fn name_and_cluster_ip(service: &Service) -> Option<(&str, &str)> {
    let name = service.metadata.name.as_deref()?;
    let cluster_ip = service.spec.as_ref()?.cluster_ip.as_deref()?;
    (!cluster_ip.is_empty() && cluster_ip != "None").then_some((name, cluster_ip))
}

fn service_variables(service: &Service) -> Vec<(String, String)> {
    let Some((name, cluster_ip)) = name_and_cluster_ip(service) else {
        return Vec::new();
    };
    let prefix = variable_name(name);
    let ports = service
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.as_deref())
        .unwrap_or_default();
    let mut variables = vec![(format!("{prefix}_SERVICE_HOST"), cluster_ip.to_string())];
    if let Some(first) = ports.first() {
        variables.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
    }
    for port in ports {
        if let Some(port_name) = port.name.as_deref().filter(|name| !name.is_empty()) {
            variables.push((
                format!("{prefix}_SERVICE_PORT_{}", variable_name(port_name)),
                port.port.to_string(),
            ));
        }
    }
    for (index, port) in ports.iter().enumerate() {
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        let lower = protocol.to_lowercase();
        let url = format!("{lower}://{}", host_port(cluster_ip, port.port));
        if index == 0 {
            // Docker gives the first port the bare name.
            variables.push((format!("{prefix}_PORT"), url.clone()));
        }
        let port_prefix = format!("{prefix}_PORT_{}_{}", port.port, protocol.to_uppercase());
        variables.extend([
            (format!("{port_prefix}_PROTO"), lower),
            (format!("{port_prefix}_PORT"), port.port.to_string()),
            (format!("{port_prefix}_ADDR"), cluster_ip.to_string()),
            (port_prefix, url),
        ]);
    }
    variables
}

/// `my-svc` → `MY_SVC`.
fn variable_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// Go's `net.JoinHostPort`: IPv6 addresses in brackets.
fn host_port(ip: &str, port: i32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}
