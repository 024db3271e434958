//! Pods on vk's node, through the real scheduler and controller manager, as `kubectl` shows
//! them: Deployments scale up and down and go away; a vk killed mid-rollout picks up where it
//! was; unresolvable ConfigMap and Secret references show as the kubelet shows them; provider
//! failures land on the pod while the node serves its other pods. vk runs with node
//! credentials under NodeRestriction (the harness's default).
//!
//! Needs `cargo build --workspace` (for `vk`, `libvk_mock.so` and `libvk_faulty.so`).

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use vk_tests::{
    cluster::{Cluster, Namespace},
    fixtures::{self, describe_pods, get_pod, wait_event, wait_running},
    kubelet_client::{Credentials, KubeletClient},
    wait::{wait_for, wait_for_ok},
};

const READY: Duration = Duration::from_secs(30);
const ROLLOUT: Duration = Duration::from_secs(45);

fn scale(cluster: &Cluster, namespace: &Namespace, deployment: &str, replicas: u32) {
    cluster.kubectl_ok([
        "scale",
        &format!("deployment/{deployment}"),
        &format!("--replicas={replicas}"),
        "-n",
        namespace.name(),
    ]);
}

/// The first container's `state.waiting` of pod `name`, once it has one.
fn wait_waiting(cluster: &Cluster, namespace: &Namespace, name: &str) -> Value {
    wait_for_ok(
        &format!("container c of {name} to be waiting"),
        READY,
        || {
            let pod = get_pod(cluster, namespace, name);
            let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
            if waiting.is_object() {
                Ok(waiting.clone())
            } else {
                Err(describe_pods(&[pod]))
            }
        },
    )
}

#[test]
fn deployment_scales_up_and_down_and_its_pods_go_with_it() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("deploy");
    let mut vk = cluster.vk().start_ready(READY);
    let node = vk.node_name().to_string();

    let started = Instant::now();
    cluster.apply(&fixtures::deployment(namespace.name(), "web", &node, 20));
    wait_running(cluster, &namespace, "app=web", &node, 20, ROLLOUT);
    eprintln!("20 pods Running after {:.1?}", started.elapsed());

    scale(cluster, &namespace, "web", 5);
    wait_running(cluster, &namespace, "app=web", &node, 5, READY);
    // And it stays at 5.
    std::thread::sleep(Duration::from_secs(1));
    wait_running(cluster, &namespace, "app=web", &node, 5, Duration::ZERO);

    scale(cluster, &namespace, "web", 20);
    wait_running(cluster, &namespace, "app=web", &node, 20, ROLLOUT);

    // The garbage collector deletes the pods gracefully (30 s); vk removes each from the API as
    // soon as the provider has stopped it.
    let deleting = Instant::now();
    cluster.kubectl_ok(["delete", "deployment", "web", "-n", namespace.name()]);
    wait_for_ok(
        "every pod of web to be gone",
        Duration::from_secs(20),
        || {
            let pods = fixtures::pods(cluster, &namespace, "app=web");
            if pods.is_empty() {
                Ok(())
            } else {
                Err(describe_pods(&pods))
            }
        },
    );
    eprintln!(
        "20 pods gone {:.1?} after deleting the Deployment",
        deleting.elapsed()
    );
    vk.assert_running();
}

#[test]
fn vk_killed_mid_rollout_runs_every_pod_exactly_once_after_restart() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("crash");
    // A tight API budget, so that the rollout is still under way when vk dies.
    let mut vk = cluster
        .vk()
        .args(["--kube-api-qps", "10", "--kube-api-burst", "10"])
        .start_ready(READY);
    let node = vk.node_name().to_string();

    cluster.apply(&fixtures::deployment(namespace.name(), "app", &node, 30));
    let running_at_kill = wait_for_ok("10 pods Running", ROLLOUT, || {
        let pods = fixtures::pods(cluster, &namespace, "app=app");
        let running = pods.iter().filter(|p| fixtures::running(p)).count();
        if running >= 10 {
            Ok(running)
        } else {
            Err(describe_pods(&pods))
        }
    });
    assert!(!vk.kill().success());
    eprintln!("vk killed with {running_at_kill} of 30 pods Running");

    vk.restart();
    let pods = wait_running(cluster, &namespace, "app=app", &node, 30, ROLLOUT);
    vk.wait_ready(READY);

    // Each pod was created in the provider exactly once by the new vk (the mock provider forgets
    // its pods with its process, so each one is created again; none twice), as its own metrics
    // count the calls, read as the API server reads them.
    let uids: BTreeSet<&str> = pods
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().expect("a uid"))
        .collect();
    assert_eq!(uids.len(), 30);
    let kubelet = KubeletClient::new(vk.port(), Credentials::apiserver(cluster));
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let creates = || -> String {
        let (_, metrics) = runtime.block_on(kubelet.get("/metrics"));
        metrics
            .lines()
            .find(|l| {
                l.starts_with("vk_provider_calls_total{")
                    && l.contains("call=\"create_pod\"")
                    && l.contains("outcome=\"success\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("0")
            .to_string()
    };
    wait_for_ok(
        "30 creates in the provider since the restart",
        READY,
        || {
            let count = creates();
            if count == "30" { Ok(()) } else { Err(count) }
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        creates(),
        "30",
        "pods created more than once since the restart"
    );

    // Nothing dangling: the Deployment counts 30 ready replicas, and 30 pods exist.
    let deployment = cluster.kubectl_json(["get", "deployment", "app", "-n", namespace.name()]);
    let status = &deployment["status"];
    assert_eq!(status["replicas"], 30, "{status}");
    assert_eq!(status["readyReplicas"], 30, "{status}");
    wait_running(cluster, &namespace, "app=app", &node, 30, Duration::ZERO);
    vk.assert_running();
}

#[test]
fn missing_configmap_blocks_the_container_until_it_is_created() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("configmap");
    let mut vk = cluster.vk().start_ready(READY);
    let node = vk.node_name().to_string();

    let env = json!({ "containers": [{
        "name": "c",
        "image": fixtures::IMAGE,
        "env": [{
            "name": "GREETING",
            "valueFrom": { "configMapKeyRef": { "name": "settings", "key": "greeting" } },
        }],
    }]});
    cluster.apply(&fixtures::pod(namespace.name(), "reader", &node, env));

    let waiting = wait_waiting(cluster, &namespace, "reader");
    assert_eq!(waiting["reason"], "CreateContainerConfigError", "{waiting}");
    assert_eq!(waiting["message"], r#"configmap "settings" not found"#);
    let pod = get_pod(cluster, &namespace, "reader");
    assert_eq!(fixtures::phase(&pod), "Pending");
    let event = wait_event(
        cluster,
        &namespace,
        "reader",
        "Warning",
        "MandatoryConfigMapNotFound",
        READY,
    );
    assert_eq!(event["message"], r#"configmap "settings" not found"#);

    // vk retries (with back-off, at most 30 s apart): the ConfigMap lets the pod start.
    cluster.apply(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "settings", "namespace": namespace.name() },
        "data": { "greeting": "hello" },
    }));
    let created = Instant::now();
    wait_running(cluster, &namespace, "", &node, 1, Duration::from_secs(50));
    eprintln!("Running {:.1?} after the ConfigMap", created.elapsed());
    vk.assert_running();
}

#[test]
fn missing_optional_secret_is_skipped_with_a_warning() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("optional");
    let mut vk = cluster.vk().start_ready(READY);
    let node = vk.node_name().to_string();

    let env = json!({ "containers": [{
        "name": "c",
        "image": fixtures::IMAGE,
        "env": [
            { "name": "PLAIN", "value": "x" },
            {
                "name": "TOKEN",
                "valueFrom": {
                    "secretKeyRef": { "name": "absent", "key": "token", "optional": true },
                },
            },
        ],
    }]});
    cluster.apply(&fixtures::pod(namespace.name(), "relaxed", &node, env));
    wait_running(cluster, &namespace, "", &node, 1, READY);
    let event = wait_event(
        cluster,
        &namespace,
        "relaxed",
        "Warning",
        "OptionalSecretNotFound",
        READY,
    );
    let message = event["message"].as_str().unwrap_or("");
    assert!(
        message.contains("TOKEN") && message.contains(r#"secret "absent" not found"#),
        "{event}"
    );
    assert_eq!(event["involvedObject"]["fieldPath"], "spec.containers{c}");
    vk.assert_running();
}

#[test]
fn missing_secret_volume_fails_the_mount() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("volume");
    let mut vk = cluster.vk().start_ready(READY);
    let node = vk.node_name().to_string();

    let spec = json!({
        "containers": [{
            "name": "c",
            "image": fixtures::IMAGE,
            "volumeMounts": [{ "name": "creds", "mountPath": "/creds" }],
        }],
        "volumes": [{ "name": "creds", "secret": { "secretName": "absent" } }],
    });
    cluster.apply(&fixtures::pod(namespace.name(), "mounter", &node, spec));
    let event = wait_event(
        cluster,
        &namespace,
        "mounter",
        "Warning",
        "FailedMount",
        READY,
    );
    assert_eq!(
        event["message"],
        r#"MountVolume.SetUp failed for volume "creds" : secret "absent" not found"#
    );
    // As with the kubelet, the pod stays Pending, its container ContainerCreating.
    let waiting = wait_waiting(cluster, &namespace, "mounter");
    assert_eq!(waiting["reason"], "ContainerCreating", "{waiting}");
    std::thread::sleep(Duration::from_secs(2));
    let pod = get_pod(cluster, &namespace, "mounter");
    let phase = fixtures::phase(&pod).to_string();
    assert_eq!(phase, "Pending", "{}", describe_pods(&[pod]));
    vk.assert_running();
}

#[test]
fn a_provider_that_cannot_list_its_pods_at_start_is_asked_again() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("late");
    let mut vk = cluster
        .vk()
        .provider("faulty")
        .provider_config(r#"{"failingLists": 2}"#)
        .start_ready(READY);
    let node = vk.node_name().to_string();
    cluster.apply(&fixtures::pod(namespace.name(), "fine", &node, json!({})));
    wait_for("the pod to run", READY, || {
        fixtures::running(&get_pod(cluster, &namespace, "fine"))
    });
    let retries = vk
        .log()
        .matches("cannot list the provider's pods, asking again")
        .count();
    assert_eq!(retries, 2, "{}", vk.log_tail(30));
    vk.assert_running();
}

#[test]
fn provider_failures_land_on_their_pods_while_the_node_serves_the_others() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("faulty");
    let mut vk = cluster.vk().provider("faulty").start_ready(READY);
    let node = vk.node_name().to_string();
    let ns = namespace.name();

    for name in ["reject-1", "panic-1", "fine-1"] {
        cluster.apply(&fixtures::pod(ns, name, &node, json!({})));
    }
    let failed = |name: &str, words: &str| {
        let pod = wait_for_ok(&format!("{name} to fail"), READY, || {
            let pod = get_pod(cluster, &namespace, name);
            if pod["status"]["reason"] == "ProviderFailed" {
                Ok(pod)
            } else {
                Err(describe_pods(&[pod]))
            }
        });
        let message = pod["status"]["message"].as_str().unwrap_or("");
        assert!(message.contains(words), "{name}: {}", pod["status"]);
        assert_eq!(fixtures::phase(&pod), "Pending", "{}", pod["status"]);
        let event = wait_event(
            cluster,
            &namespace,
            name,
            "Warning",
            "ProviderCreateFailed",
            READY,
        );
        assert!(
            event["message"].as_str().unwrap_or("").contains(words),
            "{event}"
        );
    };
    failed(
        "reject-1",
        "the backend rejects this pod: pods named reject-* are refused (reject-1)",
    );
    failed("panic-1", "provider panicked");

    // Meanwhile the node serves its other pods, old and new (the faulty provider is polled
    // every 5 s).
    wait_for("fine-1 to run", READY, || {
        fixtures::running(&get_pod(cluster, &namespace, "fine-1"))
    });
    cluster.apply(&fixtures::pod(ns, "fine-2", &node, json!({})));
    wait_for("fine-2 to run", READY, || {
        fixtures::running(&get_pod(cluster, &namespace, "fine-2"))
    });
    vk.wait_ready(Duration::ZERO);
    vk.assert_running();
}

#[test]
fn a_pod_past_its_active_deadline_fails_and_stops() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("deadline");
    let vk = cluster.vk().start_ready(READY);
    cluster.apply(&fixtures::pod(
        namespace.name(),
        "brief",
        vk.node_name(),
        json!({ "activeDeadlineSeconds": 3 }),
    ));
    let pod = wait_for_ok("pod brief to fail at its deadline", READY, || {
        let pod = get_pod(cluster, &namespace, "brief");
        if fixtures::phase(&pod) == "Failed" {
            Ok(pod)
        } else {
            Err(describe_pods(std::slice::from_ref(&pod)))
        }
    });
    let status = &pod["status"];
    assert_eq!(status["reason"], "DeadlineExceeded", "{status}");
    assert_eq!(
        status["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    let state = &status["containerStatuses"][0]["state"];
    assert!(state["terminated"].is_object(), "{state}");
    let event = wait_event(
        cluster,
        &namespace,
        "brief",
        "Normal",
        "DeadlineExceeded",
        READY,
    );
    assert_eq!(event["message"], status["message"]);
}

#[test]
fn a_resize_reaches_the_mock_and_shows_in_the_status() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("resize");
    let vk = cluster.vk().start_ready(READY);
    let resources = |cpu: &str, memory: &str| json!({ "requests": { "cpu": cpu, "memory": memory }, "limits": { "cpu": cpu, "memory": memory } });
    cluster.apply(&fixtures::pod(
        namespace.name(),
        "elastic",
        vk.node_name(),
        json!({ "containers": [{ "name": "c", "image": "busybox", "resources": resources("100m", "64Mi") }] }),
    ));
    wait_for("pod elastic Running", READY, || {
        fixtures::running(&get_pod(cluster, &namespace, "elastic"))
    });
    let patch = json!({ "spec": { "containers": [{ "name": "c", "resources": resources("250m", "96Mi") }] } });
    let patched = fixtures::resize(cluster, &namespace, "elastic", &patch);
    assert!(patched.status.success(), "resize refused: {patched:?}");
    let pod = wait_for_ok("the resize in the status", READY, || {
        let pod = get_pod(cluster, &namespace, "elastic");
        let status = &pod["status"];
        let resized = status["containerStatuses"][0]["resources"]["limits"]["cpu"] == "250m"
            && status["observedGeneration"] == pod["metadata"]["generation"];
        if resized {
            Ok(pod)
        } else {
            Err(describe_pods(std::slice::from_ref(&pod)))
        }
    });
    let container = &pod["status"]["containerStatuses"][0];
    assert_eq!(container["allocatedResources"]["cpu"], "250m", "{pod}");
    assert_eq!(container["allocatedResources"]["memory"], "96Mi", "{pod}");
    assert_eq!(container["restartCount"], 0, "{pod}");
    let conditions = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conditions
            .iter()
            .all(|c| !c["type"].as_str().unwrap_or("").starts_with("PodResize")),
        "{pod}"
    );
}

/// The token file of pod `name`'s default service-account volume, as its container reads it.
fn token_in_container(cluster: &Cluster, namespace: &Namespace, name: &str) -> String {
    let path = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    cluster.kubectl_ok(["exec", "-n", namespace.name(), name, "--", "cat", path])
}

/// Who the API server takes `token` for (a TokenReview as admin): the user, and the pod the
/// token is bound to.
fn token_owner(cluster: &Cluster, token: &str) -> (Value, Value) {
    let review = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": { "token": token },
    });
    let output = cluster.kubectl_input(["create", "-o", "json", "-f", "-"], &review.to_string());
    assert!(output.status.success(), "{output:?}");
    let review: Value = serde_json::from_slice(&output.stdout).expect("a TokenReview");
    let user = &review["status"]["user"];
    let pod = &user["extra"]["authentication.kubernetes.io/pod-name"][0];
    (user["username"].clone(), pod.clone())
}

#[test]
fn the_service_account_token_reaches_the_container_and_a_changed_pod_gets_a_valid_one() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("token");
    let mut vk = cluster.vk().start_ready(READY);
    let node = vk.node_name().to_string();
    cluster.apply(&fixtures::pod(namespace.name(), "reader", &node, json!({})));
    wait_running(cluster, &namespace, "", &node, 1, READY);

    let owner = (
        json!(format!(
            "system:serviceaccount:{}:default",
            namespace.name()
        )),
        json!("reader"),
    );
    let first = token_in_container(cluster, &namespace, "reader");
    assert_eq!(token_owner(cluster, &first), owner);

    // A new label hands the provider the pod again. vk keeps only the digests of the tokens it
    // handed out, so it asks for a new one, which must authenticate as well.
    cluster.kubectl_ok([
        "label",
        "pod",
        "reader",
        "-n",
        namespace.name(),
        "changed=yes",
    ]);
    let second = wait_for_ok("the provider to be given a new token", READY, || {
        let token = token_in_container(cluster, &namespace, "reader");
        if token != first {
            Ok(token)
        } else {
            Err("the first token".to_string())
        }
    });
    assert_eq!(token_owner(cluster, &second), owner);
    vk.assert_running();
}
