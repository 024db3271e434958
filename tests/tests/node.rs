//! The node vk registers, as `kubectl` shows it: Ready, with the virtual kubelet's labels and
//! taint, the provider's capacity, vk's daemon endpoint and address, a Lease renewed every 10 s,
//! and registered again when someone deletes it. vk runs with node credentials under
//! NodeRestriction (the harness's default), which it cannot escape.
//!
//! Needs `cargo build --workspace` (for `vk` and `libvk_mock.so`).

use std::{
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use vk_tests::{
    cluster::Cluster,
    fixtures,
    vk_process::VkProcess,
    wait::{wait_for, wait_for_ok},
};

const READY: Duration = Duration::from_secs(30);

fn node_json(cluster: &Cluster, node: &str) -> Value {
    cluster.kubectl_json(["get", "node", node])
}

fn lease_json(cluster: &Cluster, node: &str) -> Option<Value> {
    let output = cluster.kubectl(["get", "lease", node, "-n", "kube-node-lease", "-o", "json"]);
    output
        .status
        .success()
        .then(|| serde_json::from_slice(&output.stdout).expect("a Lease as JSON"))
}

fn timestamp(value: &Value) -> Timestamp {
    value
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
}

/// `kubectl --kubeconfig KUBECONFIG ARGS` (as the node), whatever its outcome: (success, stdout).
fn kubectl_as(vk: &VkProcess, args: &[&str]) -> (bool, String) {
    let output = Command::new(Cluster::shared().kubectl_path())
        .arg("--kubeconfig")
        .arg(vk.kubeconfig())
        .args(args)
        .output()
        .expect("kubectl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
    )
}

#[test]
fn node_is_ready_with_labels_taint_capacity_endpoint_and_lease() {
    let cluster = Cluster::shared();
    let mut vk = cluster
        .vk()
        .provider_config(
            r#"{"{node}": {"cpu": "7", "memory": "9Gi", "pods": "300",
                "declaredFeatures": ["Mock/BackendFeature", "ExtendWebSocketsToKubelet", "not valid"]}}"#,
        )
        .start_ready(READY);
    let node_name = vk.node_name().to_string();
    let node = node_json(cluster, &node_name);
    // vk's own feature and the provider's, sorted and once each; a name the apiserver would
    // refuse is left out with a warning.
    assert_eq!(
        node["status"]["declaredFeatures"],
        json!(["ExtendWebSocketsToKubelet", "Mock/BackendFeature"])
    );
    assert!(
        vk.log()
            .contains("\"not valid\", which is not UpperCamelCase"),
        "{}",
        vk.log_tail(40)
    );

    let labels = &node["metadata"]["labels"];
    assert_eq!(labels["type"], "virtual-kubelet", "{labels}");
    assert_eq!(labels["kubernetes.io/hostname"], node_name.as_str());
    assert_eq!(labels["kubernetes.io/os"], "linux", "{labels}");
    assert!(
        labels["kubernetes.io/arch"]
            .as_str()
            .is_some_and(|a| !a.is_empty()),
        "{labels}"
    );
    assert_eq!(
        labels["node.kubernetes.io/exclude-from-external-load-balancers"], "true",
        "{labels}"
    );
    // NodeRestriction refuses kubernetes.io/role to a node identity: vk registers without it
    // and says so.
    assert!(labels.get("kubernetes.io/role").is_none(), "{labels}");
    let log = vk.log();
    assert!(
        log.lines()
            .any(|l| l.contains("kubernetes.io/role") && l.contains("NodeRestriction")),
        "vk's log does not say that kubernetes.io/role was refused:\n{}",
        vk.log_tail(40)
    );

    // (The node lifecycle controller may still hold its node.kubernetes.io/not-ready taint
    // from before the node was Ready.)
    let taints = node["spec"]["taints"].as_array().expect("taints");
    let ours =
        json!({ "key": "virtual-kubelet.io/provider", "value": "mock", "effect": "NoSchedule" });
    assert!(taints.contains(&ours), "{taints:?}");
    assert!(
        taints
            .iter()
            .all(|t| t == &ours || t["key"] == "node.kubernetes.io/not-ready"),
        "{taints:?}"
    );
    let status = &node["status"];
    let resources = json!({ "cpu": "7", "memory": "9Gi", "pods": "300" });
    assert_eq!(status["capacity"], resources);
    assert_eq!(status["allocatable"], resources);
    assert_eq!(
        status["daemonEndpoints"]["kubeletEndpoint"]["Port"],
        vk.port()
    );
    let addresses = status["addresses"].as_array().expect("node addresses");
    assert!(
        addresses.contains(&json!({ "type": "InternalIP", "address": "127.0.0.1" })),
        "{addresses:?}"
    );
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .expect("a Ready condition");
    assert_eq!(ready["status"], "True", "{ready}");

    // The Lease: held by the node, 40 s, owned by the Node, renewed every 10 s.
    let lease = wait_for_ok("the node's Lease", READY, || {
        lease_json(cluster, &node_name).ok_or("no Lease")
    });
    let spec = &lease["spec"];
    assert_eq!(spec["holderIdentity"], node_name.as_str(), "{lease}");
    assert_eq!(spec["leaseDurationSeconds"], 40, "{lease}");
    assert_eq!(
        lease["metadata"]["ownerReferences"],
        json!([{
            "apiVersion": "v1",
            "kind": "Node",
            "name": node_name,
            "uid": node["metadata"]["uid"],
        }]),
        "{lease}"
    );
    let renewed = timestamp(&spec["renewTime"]);
    let later = wait_for_ok("the Lease to be renewed", READY, || {
        let lease = lease_json(cluster, &node_name).ok_or("no Lease")?;
        let now = timestamp(&lease["spec"]["renewTime"]);
        if now > renewed {
            Ok(now)
        } else {
            Err("renewTime unchanged")
        }
    });
    let period = later.duration_since(renewed);
    assert!(
        period.as_secs_f64() >= 5.0 && period.as_secs_f64() <= 20.0,
        "renewed after {period:?}, not every ~10 s"
    );
    vk.assert_running();
}

#[test]
fn deleted_node_is_registered_again() {
    let cluster = Cluster::shared();
    let mut vk = cluster.vk().start_ready(READY);
    let node_name = vk.node_name().to_string();
    let old_uid = node_json(cluster, &node_name)["metadata"]["uid"].clone();

    let deleted = Instant::now();
    cluster.kubectl_ok(["delete", "node", &node_name, "--wait=true"]);
    // vk watches its Node: it notices the deletion at once.
    let node = wait_for_ok(
        &format!("node {node_name} to come back"),
        Duration::from_secs(15),
        || {
            let output = cluster.kubectl(["get", "node", &node_name, "-o", "json"]);
            if !output.status.success() {
                return Err("absent".to_string());
            }
            let node: Value = serde_json::from_slice(&output.stdout).expect("JSON");
            if node["metadata"]["uid"] == old_uid {
                return Err("the old node is still there".into());
            }
            Ok(node)
        },
    );
    eprintln!(
        "node {node_name} registered again {:.1?} after its deletion",
        deleted.elapsed()
    );
    vk.wait_ready(READY);
    assert_eq!(node["metadata"]["labels"]["type"], "virtual-kubelet");
    let taints = node["spec"]["taints"].as_array().expect("taints");
    assert!(
        taints
            .iter()
            .any(|t| t["key"] == "virtual-kubelet.io/provider" && t["value"] == "mock"),
        "{taints:?}"
    );
    // The Lease follows the new Node.
    wait_for("the Lease to be owned by the new Node", READY, || {
        lease_json(cluster, &node_name).is_some_and(|lease| {
            lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
        })
    });
    vk.assert_running();
}

#[test]
fn vk_runs_as_the_node_which_cannot_read_secrets() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("identity");
    let mut vk = cluster.vk().start_ready(READY);
    let node = vk.node_name().to_string();

    // vk was started with the node's kubeconfig...
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", vk.pid())).expect("vk's cmdline");
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let kubeconfig = args
        .iter()
        .position(|a| a == "--kubeconfig")
        .and_then(|i| args.get(i + 1))
        .expect("vk runs with --kubeconfig");
    assert_eq!(std::path::Path::new(kubeconfig), vk.kubeconfig());
    // ...which authenticates as system:node:NODE in system:nodes...
    let (ok, whoami) = kubectl_as(&vk, &["auth", "whoami", "-o", "json"]);
    assert!(ok, "kubectl auth whoami as the node failed");
    let whoami: Value = serde_json::from_str(&whoami).expect("JSON");
    let user = &whoami["status"]["userInfo"];
    assert_eq!(user["username"], format!("system:node:{node}"), "{whoami}");
    assert!(
        user["groups"]
            .as_array()
            .is_some_and(|g| g.contains(&json!("system:nodes"))),
        "{whoami}"
    );
    // ...and may not read secrets in general (only those of its own pods, one by one).
    for args in [
        &["auth", "can-i", "list", "secrets", "--all-namespaces"][..],
        &["auth", "can-i", "list", "secrets", "-n", namespace.name()],
        &["auth", "can-i", "get", "secrets", "-n", namespace.name()],
        &["auth", "can-i", "list", "configmaps", "--all-namespaces"],
    ] {
        let (_, answer) = kubectl_as(&vk, args);
        // "no", sometimes with a reason ("no - can only read namespaced object of this type").
        assert!(
            answer == "no" || answer.starts_with("no - "),
            "kubectl {args:?} as the node: {answer}"
        );
    }

    // With those credentials the node is Ready (above) and runs a pod.
    cluster.apply(&fixtures::pod(namespace.name(), "p", &node, json!({})));
    fixtures::wait_running(cluster, &namespace, "", &node, 1, READY);
    vk.assert_running();
}

/// With a ServiceAccount bound by the shipped RBAC manifest instead of node credentials, vk
/// registers the node with every label, `kubernetes.io/role` included, and runs pods.
#[test]
fn service_account_with_the_shipped_rbac() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("rbac");
    let path = cluster.service_account_kubeconfig(namespace.name());
    let mut vk = cluster
        .vk()
        .node_prefix("rbac")
        .kubeconfig(path)
        .start_ready(READY);
    let node = vk.node_name().to_string();
    let labels = &node_json(cluster, &node)["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/role"], "agent", "{labels}");
    assert_eq!(labels["type"], "virtual-kubelet", "{labels}");
    cluster.apply(&fixtures::pod(namespace.name(), "p", &node, json!({})));
    fixtures::wait_running(cluster, &namespace, "", &node, 1, READY);
    vk.assert_running();
}
