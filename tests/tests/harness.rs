//! The test harness itself, against the real control plane: the cluster is ready, node
//! credentials are what they claim, namespaces come and go, pods without a node stay Pending,
//! and no `vk` outlives its test, not even when the test process is SIGKILLed.
//!
//! Needs `cargo build --workspace` (for `vk` and `libvk_mock.so`).

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use k8s_openapi::api::core::v1::Namespace as KubeNamespace;
use kube::Api;
use serde_json::{Value, json};
use vk_tests::{
    cluster::{self, Cluster, REUSE_ENV, RUN_LABEL},
    wait::{wait_for, wait_for_ok},
};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (COMM) STATE ...": COMM may hold anything, the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

#[tokio::test]
async fn cluster_is_ready() {
    let cluster = Cluster::shared();
    assert_eq!(cluster.kubectl_ok(["get", "--raw", "/readyz"]).trim(), "ok");
    let namespaces: Api<KubeNamespace> = Api::all(cluster.client().await);
    let default = namespaces.get("default").await.expect("namespace default");
    let phase = default.status.and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Active"));
}

#[test]
fn node_kubeconfig_authenticates_as_the_node() {
    let cluster = Cluster::shared();
    let node = cluster::unique_name("whoami");
    let kubeconfig = cluster.node_kubeconfig(&node);
    let output = Command::new(cluster.kubectl_path())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["auth", "whoami", "-o", "json"])
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl auth whoami: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let review: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let user = &review["status"]["userInfo"];
    assert_eq!(user["username"], format!("system:node:{node}"), "{review}");
    let groups = user["groups"].as_array().expect("groups");
    assert!(groups.contains(&json!("system:nodes")), "{review}");
}

#[test]
fn namespace_guard_creates_and_deletes_its_namespace() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("guard");
    let name = namespace.name().to_string();
    let object = cluster.kubectl_json(["get", "namespace", &name]);
    assert_eq!(object["status"]["phase"], "Active");
    assert_eq!(object["metadata"]["labels"][RUN_LABEL], cluster::run_id());
    drop(namespace);
    wait_for(&format!("namespace {name} to be gone"), TIMEOUT, || {
        let out = cluster.kubectl_ok(["get", "namespace", &name, "--ignore-not-found"]);
        out.trim().is_empty()
    });
}

#[test]
fn deployment_pods_stay_pending_without_a_node() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("pending");
    let labels = json!({ "app": "nowhere" });
    cluster.apply(&json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "nowhere", "namespace": namespace.name() },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": { "containers": [{ "name": "c", "image": "registry.invalid/none:1" }] },
            },
        },
    }));
    let unschedulable = |pods: &Value| -> Result<(), String> {
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        let states: Vec<String> = items
            .iter()
            .map(|pod| {
                let scheduled = pod["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "PodScheduled");
                format!(
                    "{} phase={} node={} PodScheduled={}",
                    pod["metadata"]["name"],
                    pod["status"]["phase"],
                    pod["spec"]["nodeName"],
                    scheduled.map_or("none".into(), |c| format!(
                        "{}/{}",
                        c["status"], c["reason"]
                    ))
                )
            })
            .collect();
        let all = items.len() == 2
            && states.iter().all(|s| {
                s.contains("phase=\"Pending\"")
                    && s.contains("node=null")
                    && s.contains("PodScheduled=\"False\"/\"Unschedulable\"")
            });
        if all { Ok(()) } else { Err(states.join("; ")) }
    };
    let get_pods = || cluster.kubectl_json(["get", "pods", "-n", namespace.name()]);
    wait_for_ok("2 pods rejected by the scheduler", TIMEOUT, || {
        unschedulable(&get_pods())
    });
    // And they stay so.
    std::thread::sleep(Duration::from_secs(2));
    unschedulable(&get_pods()).expect("pods still Pending without a node");
}

#[test]
fn vk_process_is_reaped_on_kill_stop_restart_and_drop() {
    let cluster = Cluster::shared();
    let mut vk = cluster.vk().start();
    vk.wait_registered(TIMEOUT);
    let (node, port, first) = (vk.node_name().to_string(), vk.port(), vk.pid());
    assert!(alive(first), "vk pid {first} runs");

    assert!(!vk.kill().success());
    assert!(!alive(first), "vk pid {first} is gone after kill()");

    vk.restart();
    let second = vk.pid();
    assert_ne!(first, second);
    assert_eq!((vk.node_name(), vk.port(), vk.starts()), (&*node, port, 2));
    vk.wait_ready(TIMEOUT);
    assert!(alive(second), "restarted vk pid {second} runs");

    let status = vk.stop();
    assert!(status.success(), "vk exits cleanly on SIGTERM: {status}");
    assert!(!alive(second), "vk pid {second} is gone after stop()");

    vk.restart();
    let third = vk.pid();
    assert!(alive(third), "restarted vk pid {third} runs");
    drop(vk);
    assert!(!alive(third), "vk pid {third} is gone after drop");
    wait_for(&format!("node {node} to be deleted"), TIMEOUT, || {
        let out = cluster.kubectl_ok(["get", "node", &node, "--ignore-not-found"]);
        out.trim().is_empty()
    });
}

/// Set for the child test process of [`nothing_outlives_a_killed_test_process`].
const CHILD_ENV: &str = "VK_TEST_HARNESS_CHILD";

/// Run as a child process by [`nothing_outlives_a_killed_test_process`]: takes a namespace and
/// starts a vk in the parent's cluster, says so, and waits to be killed.
#[test]
#[ignore = "the child of nothing_outlives_a_killed_test_process"]
fn killed_test_process_body() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let cluster = Cluster::shared();
    assert!(cluster.is_kept());
    let namespace = cluster.namespace("orphan");
    let mut vk = cluster.vk().start();
    vk.wait_registered(TIMEOUT);
    println!("READY {} {} {}", vk.pid(), namespace.name(), vk.node_name());
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn nothing_outlives_a_killed_test_process() {
    let cluster = Cluster::shared();
    let log = cluster::run_dir().join("child-test.log");
    let mut child = Command::new(std::env::current_exe().expect("the test binary"));
    // Marked: should this test process die, its watchdog kills the child too (and the child's
    // own watchdog then its vk).
    let mut child = cluster::mark_for_teardown(&mut child)
        .args([
            "killed_test_process_body",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(REUSE_ENV, cluster.name())
        .env("VK_CLUSTER_DIR", cluster.dir())
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("child log"))
        .spawn()
        .expect("the child test process starts");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("READY ") {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(60));
    let Ok(ready) = ready else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the child test did not get ready: {ready:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    let fields: Vec<&str> = ready.split_whitespace().collect();
    let [pid, namespace, node] = fields[..] else {
        panic!("bad READY line: {ready}");
    };
    let pid: u32 = pid.parse().expect("a pid");
    assert!(alive(pid), "the child's vk (pid {pid}) runs");

    child.kill().expect("SIGKILL the child test process");
    child.wait().expect("reap the child");

    wait_for(
        &format!("the killed test's vk (pid {pid}) to be gone"),
        Duration::from_secs(10),
        || !alive(pid),
    );
    wait_for(
        &format!("the killed test's namespace {namespace} to be deleted"),
        TIMEOUT,
        || {
            let jsonpath = "-o=jsonpath={.metadata.deletionTimestamp}";
            let out = cluster.kubectl(["get", "namespace", namespace, jsonpath]);
            !out.status.success() || !out.stdout.is_empty()
        },
    );
    wait_for(
        &format!("the killed test's node {node} to be deleted"),
        TIMEOUT,
        || {
            let out = cluster.kubectl_ok(["get", "node", node, "--ignore-not-found"]);
            out.trim().is_empty()
        },
    );
    // The child reused this cluster: it must still be up.
    assert_eq!(cluster.kubectl_ok(["get", "--raw", "/readyz"]).trim(), "ok");
}
