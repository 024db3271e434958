//! Probes, lifecycle hooks and termination messages run by vk for a provider that does not run
//! them itself, here the mock (its exec runs `true`, `false`, `sleep N`, `exit N`), checked as
//! `kubectl get` and the events show them. The same on Podman is in `tests/hyper.rs`.
//!
//! Needs `cargo build --workspace` (for `vk` and `libvk_mock.so`).

use std::time::Duration;

use serde_json::{Value, json};
use vk_tests::{
    cluster::{Cluster, Namespace},
    fixtures::{self, get_pod, wait_event},
    vk_process::VkProcess,
};

const READY: Duration = Duration::from_secs(30);

fn start(prefix: &str) -> (&'static Cluster, Namespace, VkProcess) {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace(prefix);
    let vk = cluster.vk().node_prefix(prefix).start_ready(READY);
    (cluster, namespace, vk)
}

/// A probe that runs `command` every second.
fn exec_probe(command: &[&str], failure_threshold: u32) -> Value {
    json!({
        "exec": { "command": command },
        "periodSeconds": 1,
        "failureThreshold": failure_threshold,
    })
}

/// Pod `name` whose container `c` has the fields of `container`.
fn apply_pod(
    cluster: &Cluster,
    namespace: &Namespace,
    vk: &VkProcess,
    name: &str,
    container: Value,
) {
    let container = fixtures::merged(json!({ "name": "c", "image": fixtures::IMAGE }), container);
    let spec = json!({ "containers": [container], "terminationGracePeriodSeconds": 2 });
    cluster.apply(&fixtures::pod(namespace.name(), name, vk.node_name(), spec));
}

#[test]
fn readiness_probes_decide_whether_a_pod_is_ready() {
    let (cluster, namespace, vk) = start("ready");
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "unready",
        json!({ "readinessProbe": exec_probe(&["false"], 1) }),
    );
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "ready",
        json!({ "readinessProbe": exec_probe(&["true"], 1) }),
    );

    let ready = fixtures::wait_pod(cluster, &namespace, "ready", "Ready", READY, |pod| {
        fixtures::condition(pod, "Ready")["status"] == "True"
    });
    assert_eq!(ready["status"]["containerStatuses"][0]["ready"], true);

    let event = wait_event(
        cluster,
        &namespace,
        "unready",
        "Warning",
        "Unhealthy",
        READY,
    );
    assert_eq!(
        event["message"], "Readiness probe failed: command exited with code 1",
        "{event}"
    );
    assert_eq!(event["involvedObject"]["fieldPath"], "spec.containers{c}");
    let unready = get_pod(cluster, &namespace, "unready");
    assert_eq!(unready["status"]["phase"], "Running");
    assert_eq!(unready["status"]["containerStatuses"][0]["ready"], false);
    let condition = fixtures::condition(&unready, "Ready");
    assert_eq!(condition["status"], "False", "{unready}");
    assert_eq!(condition["reason"], "ContainersNotReady");
    assert_eq!(condition["message"], "containers with unready status: [c]");
    // Readiness never restarts.
    assert_eq!(unready["status"]["containerStatuses"][0]["restartCount"], 0);
}

#[test]
fn a_failing_liveness_probe_restarts_the_container_with_back_off() {
    let (cluster, namespace, vk) = start("liveness");
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "hung",
        json!({
            "livenessProbe": exec_probe(&["false"], 2),
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }),
    );
    // The message is read from the log once the container was seen killed.
    let pod = fixtures::wait_pod(
        cluster,
        &namespace,
        "hung",
        "restarted twice",
        READY,
        |pod| {
            let status = &pod["status"]["containerStatuses"][0];
            status["restartCount"].as_i64().is_some_and(|n| n >= 2)
                && status["lastState"]["terminated"]["message"].is_string()
        },
    );
    let status = &pod["status"]["containerStatuses"][0];
    let last = &status["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "{status}");
    // The killed container's message falls back to the end of its log.
    let message = last["message"].as_str().unwrap_or_default();
    assert!(message.ends_with("/hung c line 10\n"), "{status}");
    assert!(message.len() <= 2048);
    // The second restart waits out the crash-loop back-off: the container is waiting, or runs
    // again at least 10 s after it was killed.
    let seconds = |value: &Value| {
        value
            .as_str()
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map(|t| t.as_second())
    };
    let backed_off = status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        || seconds(&status["state"]["running"]["startedAt"])
            .zip(seconds(&last["finishedAt"]))
            .is_some_and(|(started, killed)| started - killed >= 10);
    assert!(backed_off, "{status}");

    let killing = wait_event(cluster, &namespace, "hung", "Normal", "Killing", READY);
    assert_eq!(
        killing["message"],
        "Container c failed liveness probe, will be restarted"
    );
    let unhealthy = wait_event(cluster, &namespace, "hung", "Warning", "Unhealthy", READY);
    assert_eq!(
        unhealthy["message"],
        "Liveness probe failed: command exited with code 1"
    );
    wait_event(cluster, &namespace, "hung", "Warning", "BackOff", READY);
}

#[test]
fn a_startup_probe_holds_the_other_probes_and_kills_when_it_fails() {
    let (cluster, namespace, vk) = start("startup");
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "slow",
        json!({
            // Every attempt outlives its one-second time limit.
            "startupProbe": exec_probe(&["sleep", "5"], 2),
            "readinessProbe": exec_probe(&["true"], 1),
        }),
    );
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "quick",
        json!({
            "startupProbe": exec_probe(&["true"], 1),
            "livenessProbe": exec_probe(&["true"], 1),
            "readinessProbe": exec_probe(&["true"], 1),
        }),
    );
    let quick = fixtures::wait_pod(cluster, &namespace, "quick", "Ready", READY, |pod| {
        fixtures::condition(pod, "Ready")["status"] == "True"
    });
    assert_eq!(quick["status"]["containerStatuses"][0]["started"], true);

    let killing = wait_event(cluster, &namespace, "slow", "Normal", "Killing", READY);
    assert_eq!(
        killing["message"],
        "Container c failed startup probe, will be restarted"
    );
    let unhealthy = wait_event(cluster, &namespace, "slow", "Warning", "Unhealthy", READY);
    assert_eq!(
        unhealthy["message"],
        "Startup probe failed: command timed out after 1s"
    );
    let slow = get_pod(cluster, &namespace, "slow");
    let status = &slow["status"]["containerStatuses"][0];
    assert_eq!(status["started"], false, "{status}");
    assert_eq!(
        status["ready"], false,
        "readiness waits for startup: {status}"
    );
}

#[test]
fn lifecycle_hooks_that_fail_are_events_and_a_failed_post_start_kills() {
    let (cluster, namespace, vk) = start("hooks");
    let hook = |hook: &str, command: &[&str]| json!({ "lifecycle": { hook: { "exec": { "command": command } } } });
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "post",
        hook("postStart", &["exit", "3"]),
    );
    apply_pod(cluster, &namespace, &vk, "pre", hook("preStop", &["false"]));

    let failed = wait_event(
        cluster,
        &namespace,
        "post",
        "Warning",
        "FailedPostStartHook",
        READY,
    );
    assert_eq!(failed["message"], "PostStartHook failed");
    let killing = wait_event(cluster, &namespace, "post", "Normal", "Killing", READY);
    assert_eq!(killing["message"], "FailedPostStartHook");
    fixtures::wait_pod(cluster, &namespace, "post", "restarted", READY, |pod| {
        pod["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .is_some_and(|n| n >= 1)
    });

    fixtures::wait_pod(
        cluster,
        &namespace,
        "pre",
        "Running",
        READY,
        fixtures::running,
    );
    cluster.kubectl_ok([
        "delete",
        "pod",
        "pre",
        "-n",
        namespace.name(),
        "--wait=false",
    ]);
    let failed = wait_event(
        cluster,
        &namespace,
        "pre",
        "Warning",
        "FailedPreStopHook",
        READY,
    );
    assert_eq!(failed["message"], "PreStopHook failed");
}
