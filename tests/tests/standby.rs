//! Hot standby (`--leader-elect`) end to end: two vks for one node on the real control plane,
//! with the hyper provider on the shared Podman service so that both see the same containers.
//! The leader is SIGKILLed five times (the killed one restarting as the next standby); each time
//! the standby must lead within the lease duration, the Node must stay Ready, the pods must keep
//! their containers, and `kubectl logs`/`exec` must reach them through the new leader.
//!
//! The vks run as the ServiceAccount of the shipped RBAC manifest, as in a cluster: the
//! NodeRestriction admission plugin lets node credentials (`system:node:NAME`) write no Lease
//! outside `kube-node-lease` whatever RBAC grants ("can only access leases in the
//! kube-node-lease system namespace"), and one there must be named after the node, which is the
//! node's heartbeat. The election's Lease is `kube-system/vk-NODE`, the default place.
//!
//! Needs `cargo build --workspace` and Podman (see tests/tests/hyper.rs).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use vk_tests::{
    cluster::{Cluster, unique_name},
    fixtures::{self, describe_pods, wait_running},
    podman::{IMAGE, Podman},
    takeover::{Lease, ReadyWatch, jsonpath},
    vk_process::VkProcess,
    wait::{wait_for, wait_for_ok},
};

const READY: Duration = Duration::from_secs(60);
/// client-go's lease duration (15 s), after which a standby may take a dead leader's lease,
/// plus one retry period with its jitter (2.4 s) and slack for a busy machine.
const TAKEOVER: Duration = Duration::from_secs(20);
const KILLS: usize = 5;
/// A released lease is free at once: a retry period with its jitter, and slack.
const RELEASED: Duration = Duration::from_secs(5);
/// A leader reads the lease every retry period (2 s): it sees another holder within one.
const EXIT: Duration = Duration::from_secs(5);
const STANDING_BY: &str = "; standing by";

/// The election's Lease of `node`, at its default place.
fn lease(node: &str) -> Lease {
    Lease {
        namespace: "kube-system".into(),
        name: format!("vk-{node}"),
    }
}

/// The node's InternalIP and kubelet port, as the apiserver dials them.
fn node_endpoint(cluster: &Cluster, node: &str) -> String {
    jsonpath(
        cluster,
        &["get", "node", node],
        r#"{.status.addresses[?(@.type=="InternalIP")].address}:{.status.daemonEndpoints.kubeletEndpoint.Port}"#,
    )
}

/// Each pod's name with its containers' IDs and restart counts.
fn containers(pods: &[Value]) -> BTreeMap<String, Vec<(String, i64)>> {
    pods.iter()
        .map(|pod| {
            let statuses = pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    (
                        c["containerID"].as_str().unwrap_or_default().to_string(),
                        c["restartCount"].as_i64().unwrap_or(-1),
                    )
                })
                .collect();
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            (name.to_string(), statuses)
        })
        .collect()
}

fn wait_standing_by(vk: &mut VkProcess, sightings_before: usize) {
    let what = format!("vk on port {} to stand by", vk.port());
    wait_for(&what, READY, || {
        vk.assert_running();
        vk.log().matches(STANDING_BY).count() > sightings_before
    });
}

#[test]
fn a_standby_takes_over_a_killed_leader_without_touching_its_pods() {
    let podman = Podman::shared();
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("standby");
    let node = unique_name("standby");
    let builder = cluster
        .vk()
        .node_name(&node)
        .kubeconfig(cluster.service_account_kubeconfig(&node))
        .on_podman(podman)
        .arg("--leader-elect");
    let first = builder.clone().start_ready(READY);
    let mut second = builder.start();
    wait_standing_by(&mut second, 0);
    let mut vks = [first, second];

    let mut deployment = fixtures::deployment(namespace.name(), "web", &node, 3);
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(1);
    deployment["spec"]["template"]["spec"]["containers"] = json!([{
        "name": "web",
        "image": IMAGE,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", "echo serving from $HOSTNAME; exec httpd -f -p 8080 -h /etc"],
    }]);
    cluster.apply(&deployment);
    let pods = wait_running(cluster, &namespace, "app=web", &node, 3, READY);
    let before = containers(&pods);
    let engine_before = podman.containers(&node);
    assert_eq!(engine_before.len(), 6, "{engine_before:?}");

    let watch = ReadyWatch::start(cluster, &node);
    let mut times = Vec::new();
    for kill in 1..=KILLS {
        let endpoint = node_endpoint(cluster, &node);
        let leader = vks
            .iter()
            .position(|vk| endpoint == format!("127.0.0.1:{}", vk.port()))
            .unwrap_or_else(|| panic!("no vk serves the node's endpoint {endpoint}"));
        let standby = 1 - leader;
        let holder = lease(&node).holder(cluster);
        assert!(vks[leader].log().contains(&holder), "{holder} leads");
        let standing_by = vks[leader].log().matches(STANDING_BY).count();

        vks[leader].kill();
        let killed = Instant::now();
        let killed_at = Timestamp::now();
        let new_holder = wait_for_ok("the standby to take the lease", TAKEOVER, || {
            let now = lease(&node).holder(cluster);
            if now != holder && !now.is_empty() {
                Ok(now)
            } else {
                Err(now)
            }
        });
        // The new holder's acquireTime, on this machine's clock, rather than when a kubectl
        // poll first saw it.
        let leads = lease(&node).taken_after(cluster, killed_at);
        let expected = format!("127.0.0.1:{}", vks[standby].port());
        wait_for("the node to point at the new leader", TAKEOVER, || {
            node_endpoint(cluster, &node) == expected
        });
        let points = killed.elapsed();
        eprintln!(
            "kill {kill}: the standby took the lease after {leads:.1?} and the node pointed at it after {points:.1?}"
        );
        assert!(
            vks[standby].log().contains(&new_holder),
            "{new_holder} is the standby"
        );
        assert!(points <= TAKEOVER, "took over after {points:?}");
        times.push((leads, points));

        let pods = wait_running(cluster, &namespace, "app=web", &node, 3, READY);
        assert_eq!(containers(&pods), before, "{}", describe_pods(&pods));
        assert_eq!(podman.containers(&node), engine_before);
        // The apiserver dials the node's new endpoint: the new leader serves logs and exec.
        let name = pods[0]["metadata"]["name"].as_str().unwrap();
        let logs = cluster.kubectl_ok(["logs", "-n", namespace.name(), name]);
        assert_eq!(logs, format!("serving from {name}\n"));
        let said = cluster.kubectl_ok([
            "exec",
            "-n",
            namespace.name(),
            name,
            "--",
            "echo",
            &format!("exec after kill {kill}"),
        ]);
        assert_eq!(said, format!("exec after kill {kill}\n"));

        vks[leader].restart();
        wait_standing_by(&mut vks[leader], standing_by);
    }
    let not_ready = watch.finish();
    let leads: Vec<String> = times.iter().map(|(l, _)| format!("{l:.1?}")).collect();
    let points: Vec<String> = times.iter().map(|(_, p)| format!("{p:.1?}")).collect();
    eprintln!(
        "takeover over {KILLS} kills: lease taken after [{}]; node pointing at the new leader after [{}]",
        leads.join(", "),
        points.join(", ")
    );
    assert!(
        not_ready.is_empty(),
        "the node was seen not Ready: {not_ready:?}"
    );

    // A leader told to stop hands the lease back: the standby leads within a retry period.
    let endpoint = node_endpoint(cluster, &node);
    let leader = vks
        .iter()
        .position(|vk| endpoint == format!("127.0.0.1:{}", vk.port()))
        .expect("a vk serves the node");
    let holder = lease(&node).holder(cluster);
    assert!(vks[leader].stop().success());
    let stopped = Instant::now();
    wait_for("the standby to take the released lease", RELEASED, || {
        let now = lease(&node).holder(cluster);
        now != holder && !now.is_empty()
    });
    eprintln!(
        "after SIGTERM the standby took the lease {:.1?} after the leader exited",
        stopped.elapsed()
    );
    let last = &mut vks[1 - leader];
    assert!(last.log().contains("leader election: acquired lease"));

    // The new leader runs the pods: deleting them goes through it to the engine.
    cluster.kubectl_ok(["delete", "deployment", "web", "-n", namespace.name()]);
    wait_for("the containers of the node to be removed", READY, || {
        podman.containers(&node).is_empty()
    });
    last.assert_running();
    drop(vks);
    cluster.kubectl_ok([
        "delete",
        "lease",
        &format!("vk-{node}"),
        "-n",
        "kube-system",
        "--ignore-not-found",
    ]);
}

/// A leader that finds the Lease held by someone else (here an admin's write, as a standby
/// that took it while this leader could not renew) exits at once rather than act beside it.
#[test]
fn a_leader_that_finds_another_holder_exits_at_once() {
    let cluster = Cluster::shared();
    let node = unique_name("usurped");
    let mut vk = cluster
        .vk()
        .node_name(&node)
        .kubeconfig(cluster.service_account_kubeconfig(&node))
        .arg("--leader-elect")
        .start_ready(READY);
    let lease = lease(&node);
    cluster.kubectl_ok([
        "patch",
        "lease",
        &lease.name,
        "-n",
        "kube-system",
        "--type=merge",
        "-p",
        r#"{"spec":{"holderIdentity":"intruder"}}"#,
    ]);
    let patched = Instant::now();
    let status = wait_for_ok("vk to exit", EXIT, || vk.exit_status().ok_or("running"));
    eprintln!(
        "vk exited {:.1?} after the lease changed hands",
        patched.elapsed()
    );
    assert!(!status.success(), "{status}");
    let log = vk.log();
    let expected = format!(
        "leader election lost: lease kube-system/{} is held by intruder now",
        lease.name
    );
    assert!(log.contains(&expected), "{}", vk.log_tail(10));
    assert_eq!(lease.holder(cluster), "intruder", "vk wrote no more");
    cluster.kubectl_ok(["delete", "lease", &lease.name, "-n", "kube-system"]);
}
