//! Manifests and kubectl queries shared by the kubelet tests (`tests/node.rs`, `tests/pods.rs`):
//! pods and Deployments pinned to one test's vk node, and what `kubectl get pods` and
//! `kubectl get events` show about them.

use std::{process::Output, time::Duration};

use serde_json::{Value, json};

use crate::{
    cluster::{Cluster, Namespace},
    wait,
};

/// The image of the test pods; the providers never pull it.
pub const IMAGE: &str = "registry.invalid/vk-test:1";

/// The part of a pod spec that puts the pod on `node` (and nowhere else): a nodeSelector on its
/// hostname and type labels, and a toleration of vk's taint.
pub fn placement(node: &str) -> Value {
    json!({
        "nodeSelector": { "kubernetes.io/hostname": node, "type": "virtual-kubelet" },
        "tolerations": [{
            "key": "virtual-kubelet.io/provider",
            "operator": "Exists",
            "effect": "NoSchedule",
        }],
    })
}

/// `base` with the keys of `extra` added (objects only; `extra` wins).
pub fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

/// A pod spec on `node` with one container `c`, plus the fields of `extra`.
pub fn pod_spec(node: &str, extra: Value) -> Value {
    let spec = merged(
        placement(node),
        json!({ "containers": [{ "name": "c", "image": IMAGE }] }),
    );
    merged(spec, extra)
}

/// A pod `name` in `namespace` on `node`, with the spec fields of `extra`.
pub fn pod(namespace: &str, name: &str, node: &str, extra: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace },
        "spec": pod_spec(node, extra),
    })
}

/// `kubectl patch pod NAME --subresource resize` with `patch`.
pub fn resize(cluster: &Cluster, namespace: &Namespace, name: &str, patch: &Value) -> Output {
    cluster.kubectl([
        "patch",
        "pod",
        name,
        "-n",
        namespace.name(),
        "--subresource",
        "resize",
        "--patch",
        &patch.to_string(),
    ])
}

/// A Deployment `name` of `replicas` pods labelled `app=NAME` on `node`.
pub fn deployment(namespace: &str, name: &str, node: &str, replicas: u32) -> Value {
    let labels = json!({ "app": name });
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": pod_spec(node, json!({ "terminationGracePeriodSeconds": 30 })),
            },
        },
    })
}

/// The pods of `namespace` (matching `selector`, a label selector, if not empty).
pub fn pods(cluster: &Cluster, namespace: &Namespace, selector: &str) -> Vec<Value> {
    let mut args = vec!["get", "pods", "-n", namespace.name()];
    if !selector.is_empty() {
        args.extend(["-l", selector]);
    }
    items(cluster.kubectl_json(args))
}

/// One pod as kubectl shows it.
pub fn get_pod(cluster: &Cluster, namespace: &Namespace, name: &str) -> Value {
    cluster.kubectl_json(["get", "pod", name, "-n", namespace.name()])
}

fn items(list: Value) -> Vec<Value> {
    match list {
        Value::Object(mut list) => match list.remove("items") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// `status.phase` of a pod ("" if it has none).
pub fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

/// Whether the pod is Running, Ready, and not being deleted.
pub fn running(pod: &Value) -> bool {
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    phase(pod) == "Running" && ready && pod["metadata"]["deletionTimestamp"].is_null()
}

/// A line per pod: name, phase, node, reason, deletion, container states; for messages.
pub fn describe_pods(pods: &[Value]) -> String {
    let mut lines: Vec<String> = pods
        .iter()
        .map(|pod| {
            let waiting: Vec<String> = pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| format!("{}={}", c["name"], c["state"]))
                .collect();
            format!(
                "{} phase={} node={} reason={} deleting={} containers=[{}]",
                pod["metadata"]["name"].as_str().unwrap_or("?"),
                phase(pod),
                pod["spec"]["nodeName"].as_str().unwrap_or("-"),
                pod["status"]["reason"].as_str().unwrap_or("-"),
                !pod["metadata"]["deletionTimestamp"].is_null(),
                waiting.join(", ")
            )
        })
        .collect();
    lines.sort();
    format!("{} pods: {}", pods.len(), lines.join("; "))
}

/// Waits until the pods matching `selector` are exactly `count`, all Running on `node`; returns
/// them.
pub fn wait_running(
    cluster: &Cluster,
    namespace: &Namespace,
    selector: &str,
    node: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Value> {
    let what = format!("exactly {count} Running pods ({selector}) in {namespace} on {node}");
    wait::wait_for_ok(&what, timeout, || {
        let pods = pods(cluster, namespace, selector);
        let all = pods.len() == count
            && pods
                .iter()
                .all(|p| running(p) && p["spec"]["nodeName"] == node);
        if all {
            Ok(pods)
        } else {
            Err(describe_pods(&pods))
        }
    })
}

/// The events of `namespace` about the object `name` (every object if empty), oldest first.
pub fn events(cluster: &Cluster, namespace: &Namespace, name: &str) -> Vec<Value> {
    let mut args = vec!["get", "events", "-n", namespace.name()];
    let selector = format!("involvedObject.name={name}");
    if !name.is_empty() {
        args.extend(["--field-selector", &selector]);
    }
    items(cluster.kubectl_json(args))
}

/// `reason: message` of each event, for messages.
pub fn describe_events(events: &[Value]) -> String {
    let lines: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {} {}: {}",
                e["involvedObject"]["name"].as_str().unwrap_or("?"),
                e["type"].as_str().unwrap_or("?"),
                e["reason"].as_str().unwrap_or("?"),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    format!("{} events: {}", events.len(), lines.join(" | "))
}

/// Waits for an event of `type_` (Normal or Warning) and `reason` about pod `name`, and
/// returns it.
pub fn wait_event(
    cluster: &Cluster,
    namespace: &Namespace,
    name: &str,
    type_: &str,
    reason: &str,
    timeout: Duration,
) -> Value {
    let what = format!("a {type_} event {reason} about {namespace}/{name}");
    wait::wait_for_ok(&what, timeout, || {
        let events = events(cluster, namespace, name);
        events
            .iter()
            .find(|e| e["type"] == type_ && e["reason"] == reason)
            .cloned()
            .ok_or_else(|| describe_events(&events))
    })
}

/// Pod `name` once `ready` holds of it (`what` says what is awaited, for the message).
pub fn wait_pod(
    cluster: &Cluster,
    namespace: &Namespace,
    name: &str,
    what: &str,
    timeout: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    wait::wait_for_ok(&format!("pod {name} {what}"), timeout, || {
        let pod = get_pod(cluster, namespace, name);
        if ready(&pod) {
            Ok(pod)
        } else {
            Err(describe_pods(std::slice::from_ref(&pod)))
        }
    })
}

/// The pod's condition of type `kind` (null if it has none).
pub fn condition<'a>(pod: &'a Value, kind: &str) -> &'a Value {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}
