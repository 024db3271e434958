use serde_json::json;

use super::*;

fn service(namespace: &str, name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(
        json!({"metadata": {"namespace": namespace, "name": name}, "spec": spec}),
    )
    .unwrap()
}

#[test]
fn only_the_api_servers_service_comes_from_the_master_namespace() {
    let master = [
        service(
            "default",
            "kubernetes",
            json!({"clusterIP": "10.96.0.1", "ports": [{"port": 443}]}),
        ),
        service(
            "default",
            "other",
            json!({"clusterIP": "10.96.0.2", "ports": [{"port": 80}]}),
        ),
    ];
    let variables = link_variables(&master, &[], false);
    assert_eq!(variables["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
    assert!(!variables.contains_key("OTHER_SERVICE_HOST"));
}

#[test]
fn headless_namespace_services_do_not_replace_the_api_servers() {
    let master = [service(
        "default",
        "kubernetes",
        json!({"clusterIP": "10.96.0.1", "ports": [{"port": 443}]}),
    )];
    let own = [service(
        "ns",
        "kubernetes",
        json!({"clusterIP": "None", "ports": [{"port": 80}]}),
    )];
    assert_eq!(
        link_variables(&master, &own, true)["KUBERNETES_SERVICE_HOST"],
        "10.96.0.1"
    );
}

#[test]
fn services_without_ports_only_have_a_host() {
    let own = [service("ns", "bare", json!({"clusterIP": "10.96.0.3"}))];
    let variables = link_variables(&[], &own, true);
    assert_eq!(variables.len(), 1);
    assert_eq!(variables["BARE_SERVICE_HOST"], "10.96.0.3");
}

#[test]
fn names_are_upper_cased_with_underscores() {
    assert_eq!(variable_name("my-svc.v2"), "MY_SVC.V2");
    assert_eq!(host_port("fd00::1", 443), "[fd00::1]:443");
    assert_eq!(host_port("10.0.0.1", 80), "10.0.0.1:80");
}
