//! vk run the way platform teams run it: its image (`scripts/image.sh`) installed by its Helm
//! chart into the project's control plane, with two replicas standing by for each other. The
//! cluster's own "kubelet" is a vk with the hyper provider on Podman, so the chart's pods are
//! Podman containers; they run on the host's network and reach the apiserver on 127.0.0.1.
//!
//! The chart's node, `vk-incluster-*`, runs the mock provider and a Deployment. The leader's
//! container is killed with `podman kill` five times; each time the standby must take the lease
//! within the lease duration while the node stays Ready and the Deployment's pods stay Running.
//! Then `helm uninstall`: the node stays, and turns NotReady once its Lease is no longer renewed
//! (the node lifecycle controller's grace period), as a stopped kubelet's node does. vk cannot
//! tell an uninstall from a restart or an upgrade, and deleting the node would have its pods
//! evicted; an operator who retires the node deletes it (NOTES.txt says so).
//!
//! Ignored by default: it needs the image, which `scripts/test.sh` builds after the packages and
//! then runs this test with `--ignored`. By hand: `scripts/package.sh && scripts/image.sh`, then
//! `cargo test -p vk-tests --test incluster -- --ignored`.

use std::{
    fs,
    process::{Command, Output},
    time::{Duration, Instant},
};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use vk_tests::{
    cluster::{Cluster, describe, free_port, unique_name},
    fixtures::{self, describe_pods, wait_running},
    helm,
    podman::Podman,
    takeover::{Lease, ReadyWatch, jsonpath},
    wait::{wait_for, wait_for_ok},
};

const READY: Duration = Duration::from_secs(90);
/// The lease duration (15 s), and the kubectl polls that see the change.
const TAKEOVER: Duration = Duration::from_secs(20);
const KILLS: usize = 5;
/// A restarted container waits out the kubelet's crash back-off (10 s, doubling) first.
const RESTARTED: Duration = Duration::from_secs(120);
/// The node lifecycle controller's grace period (40 s) and its 5 s monitor period.
const NOT_READY: Duration = Duration::from_secs(90);
const STANDING_BY: &str = "; standing by";
const RELEASE: &str = "vk";

/// The image the chart runs by default: `localhost/vk:APPVERSION`.
fn image() -> String {
    let chart = fs::read_to_string(helm::chart().join("Chart.yaml")).expect("Chart.yaml");
    let version = chart
        .lines()
        .find_map(|line| line.strip_prefix("appVersion:"))
        .expect("Chart.yaml has an appVersion")
        .trim()
        .trim_matches('"');
    format!("localhost/vk:{version}")
}

fn helm(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(helm::helm())
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(args)
        .output()
        .expect("cannot run helm")
}

/// The chart's vk pods: (name, restart count, phase).
fn vk_pods(cluster: &Cluster, namespace: &str) -> Vec<(String, i64, String)> {
    let pods = cluster.kubectl_json([
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        &format!("app.kubernetes.io/instance={RELEASE}"),
        "-o",
        "json",
    ]);
    let mut pods: Vec<_> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pod| {
            (
                pod["metadata"]["name"].as_str().unwrap_or_default().into(),
                pod["status"]["containerStatuses"][0]["restartCount"]
                    .as_i64()
                    .unwrap_or_default(),
                pod["status"]["phase"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    pods.sort();
    pods
}

fn logs(cluster: &Cluster, namespace: &str, pod: &str) -> String {
    String::from_utf8_lossy(&cluster.kubectl(["logs", "-n", namespace, pod]).stdout).into_owned()
}

/// The pod named in a holder identity (`POD_xxxxxxxx`).
fn pod_of(holder: &str) -> &str {
    holder.rsplit_once('_').map_or(holder, |(pod, _)| pod)
}

/// Each pod's UID and phase.
fn uids_and_phases(pods: &[Value]) -> Vec<(String, String)> {
    let mut seen: Vec<_> = pods
        .iter()
        .map(|pod| {
            (
                pod["metadata"]["uid"].as_str().unwrap_or_default().into(),
                fixtures::phase(pod).into(),
            )
        })
        .collect();
    seen.sort();
    seen
}

#[test]
#[ignore = "needs the image of scripts/image.sh; scripts/test.sh builds it and runs this test"]
fn the_chart_runs_vk_in_the_cluster_with_a_hot_standby() {
    let podman = Podman::shared();
    let cluster = Cluster::shared();
    let image = image();
    let exists = podman.podman(["image", "exists", &image]);
    assert!(
        exists.status.success(),
        "{image} is missing: run scripts/package.sh and scripts/image.sh"
    );
    let host = cluster
        .vk()
        .node_prefix("host")
        .on_podman(podman)
        .start_ready(READY);
    let namespace = cluster.namespace("incluster");
    let ns = namespace.name().to_string();
    let node = unique_name("vk-incluster");
    let server = cluster.kubectl_ok([
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let api_port = server
        .trim()
        .rsplit_once(':')
        .map(|(_, port)| port.to_string())
        .expect("the server URL has a port");
    let placement = fixtures::placement(host.node_name());

    // `helm install`, as a user would, with the apiserver's address for a pod on the host's
    // network.
    let sets = [
        format!("nodeName={node}"),
        "provider=mock".into(),
        "replicas=2".into(),
        "hostNetwork=true".into(),
        "apiServer.host=127.0.0.1".into(),
        format!("apiServer.port={api_port}"),
        format!("kubeletPort={}", free_port()),
        "image.pullPolicy=Never".into(),
        "logLevel=debug".into(),
    ];
    let mut args = vec!["install", RELEASE, "--namespace", &ns];
    let chart = helm::chart();
    let chart = chart.to_str().expect("a UTF-8 path");
    args.push(chart);
    for set in &sets {
        args.extend(["--set", set]);
    }
    let node_selector = format!("nodeSelector={}", placement["nodeSelector"]);
    let tolerations = format!("tolerations={}", placement["tolerations"]);
    args.extend(["--set-json", &node_selector, "--set-json", &tolerations]);
    let installed = helm(cluster, &args);
    assert!(
        installed.status.success(),
        "{}",
        describe("helm install", &installed)
    );
    eprintln!("{}", String::from_utf8_lossy(&installed.stdout));

    // Both vk pods run as Podman containers of the host node; one leads, the other stands by.
    let started = Instant::now();
    wait_for("both vk pods to run", READY, || {
        let pods = vk_pods(cluster, &ns);
        pods.len() == 2 && pods.iter().all(|(_, _, phase)| phase == "Running")
    });
    let containers = podman.containers(host.node_name());
    for (pod, _, _) in vk_pods(cluster, &ns) {
        assert!(
            containers.iter().any(
                |(name, _, state)| name.starts_with(&format!("k8s_vk_{pod}_"))
                    && state == "running"
            ),
            "no running container for {pod}: {containers:?}"
        );
    }
    wait_for("the chart's node to be Ready", READY, || {
        jsonpath(
            cluster,
            &["get", "node", &node],
            r#"{.status.conditions[?(@.type=="Ready")].status}"#,
        ) == "True"
    });
    eprintln!(
        "node {node} Ready {:.1?} after helm install",
        started.elapsed()
    );
    let lease = Lease {
        namespace: ns.clone(),
        name: format!("vk-{node}"),
    };
    wait_for("a vk pod to stand by", READY, || {
        vk_pods(cluster, &ns)
            .iter()
            .any(|(pod, _, _)| logs(cluster, &ns, pod).contains(STANDING_BY))
    });

    let mut deployment = fixtures::deployment(&ns, "web", &node, 3);
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(1);
    cluster.apply(&deployment);
    let before = uids_and_phases(&wait_running(
        cluster, &namespace, "app=web", &node, 3, READY,
    ));

    let watch = ReadyWatch::start(cluster, &node);
    let mut taken = Vec::new();
    for kill in 1..=KILLS {
        let holder = lease.holder(cluster);
        let leader = pod_of(&holder).to_string();
        let (_, restarts, _) = vk_pods(cluster, &ns)
            .into_iter()
            .find(|(pod, _, _)| *pod == leader)
            .unwrap_or_else(|| panic!("the holder {holder} is no vk pod"));
        let standing_by = logs(cluster, &ns, &leader).matches(STANDING_BY).count();
        let container = podman
            .containers(host.node_name())
            .into_iter()
            .find(|(name, _, _)| name.starts_with(&format!("k8s_vk_{leader}_")))
            .map(|(name, _, _)| name)
            .unwrap_or_else(|| panic!("no container for the leader {leader}"));

        let killed = podman.podman(["kill", &container]);
        let killed_at = Timestamp::now();
        assert!(
            killed.status.success(),
            "{}",
            describe("podman kill", &killed)
        );
        let new_holder = wait_for_ok("the standby to take the lease", TAKEOVER, || {
            let now = lease.holder(cluster);
            if now != holder && !now.is_empty() {
                Ok(now)
            } else {
                Err(now)
            }
        });
        let after = lease.taken_after(cluster, killed_at);
        eprintln!(
            "kill {kill}: {} took the lease {after:.1?} after {leader} was killed",
            pod_of(&new_holder)
        );
        assert_ne!(pod_of(&new_holder), leader);
        taken.push(after);

        let pods = wait_running(cluster, &namespace, "app=web", &node, 3, READY);
        assert_eq!(uids_and_phases(&pods), before, "{}", describe_pods(&pods));
        // The apiserver reaches the new leader for exec.
        let web = pods[0]["metadata"]["name"].as_str().unwrap();
        let said = cluster.kubectl_ok(["exec", "-n", &ns, web, "--", "echo", "after", "kill"]);
        assert_eq!(said, "after kill\n");

        // The killed container is restarted in its pod, and stands by.
        wait_for("the killed vk to restart and stand by", RESTARTED, || {
            vk_pods(cluster, &ns)
                .iter()
                .any(|(pod, now, phase)| *pod == leader && *now > restarts && phase == "Running")
                && logs(cluster, &ns, &leader).matches(STANDING_BY).count() > standing_by
        });
    }
    let not_ready = watch.finish();
    let times: Vec<String> = taken.iter().map(|t| format!("{t:.1?}")).collect();
    eprintln!(
        "takeover over {KILLS} podman kills: lease taken after [{}]",
        times.join(", ")
    );
    assert!(not_ready.is_empty(), "node not Ready: {not_ready:?}");
    assert!(
        taken.iter().all(|t| *t <= TAKEOVER),
        "lease taken after {times:?}"
    );

    // `helm uninstall`: vk's pods and containers go; the node stays and turns NotReady when its
    // heartbeat stops, with the node lifecycle controller's reason.
    let uninstalled = helm(
        cluster,
        &["uninstall", RELEASE, "--namespace", &ns, "--wait"],
    );
    assert!(
        uninstalled.status.success(),
        "{}",
        describe("helm uninstall", &uninstalled)
    );
    let stopped = Instant::now();
    wait_for("the vk pods and containers to go", READY, || {
        vk_pods(cluster, &ns).is_empty()
            && !podman
                .containers(host.node_name())
                .iter()
                .any(|(name, _, _)| name.starts_with("k8s_vk_"))
    });
    let ready = wait_for_ok("the node to turn NotReady", NOT_READY, || {
        let ready = jsonpath(
            cluster,
            &["get", "node", &node],
            r#"{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}: {.status.conditions[?(@.type=="Ready")].message}"#,
        );
        if ready.starts_with("Unknown ") {
            Ok(ready)
        } else {
            Err(ready)
        }
    });
    eprintln!(
        "after helm uninstall: node {node} {ready} ({:.1?} after uninstall)",
        stopped.elapsed()
    );
    assert_eq!(
        ready,
        "Unknown NodeStatusUnknown: Kubelet stopped posting node status."
    );
    cluster.kubectl_ok(["delete", "node", &node]);
}
