//! vk's resource metrics as users meet them: metrics-server scrapes vk's `/metrics/resource`
//! (verifying its serving certificate against the cluster CA, at the node's InternalIP), and
//! `kubectl top` and a HorizontalPodAutoscaler read them through the aggregated metrics API.
//!
//! Needs `cargo build --workspace`, root (metrics-server runs in a network namespace of its own,
//! see `scripts/cluster/metrics-server.sh`) and, for the hyper tests, Podman.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use vk_tests::{
    cluster::{Cluster, Namespace},
    fixtures::{self, wait_running},
    metrics_server::MetricsServer,
    podman::{IMAGE, Podman},
    vk_process::VkProcess,
    wait::wait_for_ok,
};

const READY: Duration = Duration::from_secs(60);
/// Two scrapes (10 s apart) before metrics-server has a rate, plus slack for a loaded machine.
const METRICS: Duration = Duration::from_secs(120);
const MIB: u64 = 1024 * 1024;

/// A vk node (mock provider unless `podman`) that metrics-server scrapes, and a namespace.
fn start(prefix: &str, podman: Option<&Podman>) -> (&'static Cluster, Namespace, VkProcess) {
    let metrics_server = MetricsServer::shared();
    let cluster = Cluster::shared();
    let namespace = cluster.namespace(prefix);
    let mut vk = cluster
        .vk()
        .node_prefix(prefix)
        .node_ip(metrics_server.node_ip());
    if let Some(podman) = podman {
        vk = vk.on_podman(podman);
    }
    (cluster, namespace, vk.start_ready(READY))
}

/// kubectl's output with its columns separated by one space, a line per row.
fn rows(output: &str) -> Vec<String> {
    output
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect()
}

/// `kubectl top ARGS --no-headers`, until `check` accepts its rows; prints and returns the
/// output with headers.
fn wait_top(
    cluster: &Cluster,
    args: &[&str],
    timeout: Duration,
    check: impl Fn(&[String]) -> Result<(), String>,
) -> String {
    let started = Instant::now();
    let what = format!("kubectl top {}", args.join(" "));
    wait_for_ok(&what, timeout, || {
        let output = cluster.kubectl(["top"].iter().chain(args).chain(&["--no-headers"]));
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        check(&rows(&text)).map_err(|why| format!("{why}; got {text:?}"))
    });
    let shown = cluster.kubectl_ok(["top"].iter().chain(args));
    eprintln!(
        "$ kubectl top {} (after {:.0?})\n{shown}",
        args.join(" "),
        started.elapsed()
    );
    shown
}

/// `"Nm MMi"`: CPU and memory as `kubectl top` shows steady usage of `nano_cores` and `bytes`.
fn figures(nano_cores: u64, bytes: u64) -> String {
    format!("{}m {}Mi", nano_cores.div_ceil(1_000_000), bytes / MIB)
}

fn usage(stats: &Value) -> (u64, u64) {
    let nano_cores = stats["cpu"]["usageNanoCores"].as_u64();
    let bytes = stats["memory"]["workingSetBytes"].as_u64();
    match (nano_cores, bytes) {
        (Some(nano_cores), Some(bytes)) => (nano_cores, bytes),
        _ => panic!("no CPU or memory usage in {stats}"),
    }
}

#[test]
fn kubectl_top_shows_the_mock_providers_figures() {
    let (cluster, namespace, vk) = start("top-mock", None);
    let node = vk.node_name();
    let ns = namespace.name();
    let containers = |names: &[&str]| {
        let list: Vec<Value> = names
            .iter()
            .map(|n| json!({ "name": n, "image": fixtures::IMAGE }))
            .collect();
        json!({ "containers": list })
    };
    cluster.apply(&fixtures::pod(ns, "one", node, containers(&["c"])));
    cluster.apply(&fixtures::pod(ns, "two", node, containers(&["a", "b"])));
    wait_running(cluster, &namespace, "", node, 2, READY);

    // What the mock reports, through the kubelet's own Summary API.
    let path = format!("/api/v1/nodes/{node}/proxy/stats/summary");
    let summary: Value = serde_json::from_str(&cluster.kubectl_ok(["get", "--raw", &path]))
        .expect("a stats Summary");
    let (node_cpu, node_memory) = usage(&summary["node"]);
    let mut expected: Vec<String> = summary["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pod| {
            let (cpu, memory) = usage(pod);
            format!(
                "{} {}",
                pod["podRef"]["name"].as_str().unwrap_or("?"),
                figures(cpu, memory)
            )
        })
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 2, "{summary}");

    wait_top(cluster, &["pod", "-n", ns], METRICS, |rows| {
        let mut rows = rows.to_vec();
        rows.sort();
        if rows == expected {
            Ok(())
        } else {
            Err(format!("expected {expected:?}"))
        }
    });
    let expected_node = format!("{node} {}", figures(node_cpu, node_memory));
    wait_top(cluster, &["node", node], METRICS, |rows| {
        // NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)
        let shown: Vec<&str> = rows.first().map_or(vec![], |r| r.split(' ').collect());
        match shown[..] {
            [name, cpu, _, memory, _] if format!("{name} {cpu} {memory}") == expected_node => {
                Ok(())
            }
            _ => Err(format!("expected {expected_node}")),
        }
    });
}

#[test]
fn metrics_server_refuses_a_serving_certificate_that_does_not_name_the_node_ip() {
    let metrics_server = MetricsServer::shared();
    let cluster = Cluster::shared();
    let ip = metrics_server.node_ip();
    let vk = cluster
        .vk()
        .node_prefix("top-badcert")
        .node_ip(ip)
        .serving_cert_ips(&[Ipv4Addr::LOCALHOST.into()])
        .start_ready(READY);
    let node = vk.node_name();
    let log = cluster.logs_dir().join("metrics-server.log");
    let refused = format!("x509: certificate is valid for 127.0.0.1, not {ip}\" node=\"{node}\"");
    wait_for_ok("metrics-server to refuse vk's certificate", METRICS, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&refused) {
            Ok(())
        } else {
            Err(format!("no {refused:?} in {}", log.display()))
        }
    });
    let top = cluster.kubectl(["top", "node", node]);
    assert!(!top.status.success(), "{top:?}");
    let stderr = String::from_utf8_lossy(&top.stderr);
    let missing = format!("nodemetrics.metrics.k8s.io \"{node}\" not found");
    assert!(stderr.contains(&missing), "{stderr}");
}

/// A container of the local image spinning in a shell loop, with `resources`.
fn busy(resources: Value) -> Value {
    json!({
        "name": "busy",
        "image": IMAGE,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", "while :; do :; done"],
        "resources": resources,
    })
}

/// Millicores of a `kubectl top` CPU column (`"123m"`).
fn millicores(cpu: &str) -> Option<u64> {
    cpu.strip_suffix('m')?.parse().ok()
}

#[test]
fn a_busy_hyper_container_shows_its_cpu_in_kubectl_top() {
    let (cluster, namespace, vk) = start("top-hyper", Some(Podman::shared()));
    let ns = namespace.name();
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [busy(json!({ "limits": { "cpu": "200m", "memory": "32Mi" } }))],
    });
    cluster.apply(&fixtures::pod(ns, "spin", vk.node_name(), spec));
    wait_running(cluster, &namespace, "", vk.node_name(), 1, READY);
    wait_top(cluster, &["pod", "-n", ns], METRICS, |rows| {
        // NAME CPU(cores) MEMORY(bytes); the limit caps the loop at 200m
        match rows
            .first()
            .map(|r| r.split(' ').collect::<Vec<_>>())
            .as_deref()
        {
            Some(["spin", cpu, _]) if millicores(cpu).is_some_and(|m| (50..=250).contains(&m)) => {
                Ok(())
            }
            _ => Err("expected spin using about 200m".into()),
        }
    });
}

#[test]
fn an_hpa_scales_a_busy_hyper_deployment_out_on_the_vk_node() {
    let (cluster, namespace, vk) = start("hpa-hyper", Some(Podman::shared()));
    let node = vk.node_name();
    let ns = namespace.name();
    let mut deployment = fixtures::deployment(ns, "spin", node, 1);
    let template = &mut deployment["spec"]["template"]["spec"];
    template["terminationGracePeriodSeconds"] = json!(1);
    template["containers"] = json!([busy(json!({
        "requests": { "cpu": "100m" },
        "limits": { "cpu": "200m", "memory": "32Mi" },
    }))]);
    cluster.apply(&deployment);
    wait_running(cluster, &namespace, "app=spin", node, 1, READY);
    cluster.apply(&json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": "spin", "namespace": ns },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "spin" },
            "minReplicas": 1,
            "maxReplicas": 2,
            "metrics": [{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": { "type": "Utilization", "averageUtilization": 50 },
                },
            }],
        },
    }));
    let started = Instant::now();
    let hpa = |what: &str| {
        let shown = cluster.kubectl_ok(["get", "hpa", "spin", "-n", ns]);
        eprintln!(
            "$ kubectl get hpa -n {ns} ({what}, {:.0?})\n{shown}",
            started.elapsed()
        );
    };
    hpa("created");
    // The HPA needs a pod Ready for one metric window before it counts its CPU.
    wait_for_ok(
        "the HPA to want 2 replicas",
        Duration::from_secs(180),
        || {
            let hpa = cluster.kubectl_json(["get", "hpa", "spin", "-n", ns]);
            if hpa["status"]["desiredReplicas"] == 2 {
                Ok(())
            } else {
                Err(hpa["status"].to_string())
            }
        },
    );
    hpa("scaled");
    let pods = wait_running(cluster, &namespace, "app=spin", node, 2, READY);
    eprintln!("{}", fixtures::describe_pods(&pods));
    wait_top(cluster, &["pod", "-n", ns], METRICS, |rows| {
        let busy = rows
            .iter()
            .filter(|r| {
                r.split(' ')
                    .nth(1)
                    .and_then(millicores)
                    .is_some_and(|m| m >= 50)
            })
            .count();
        if busy == 2 {
            Ok(())
        } else {
            Err("expected two pods using CPU".into())
        }
    });
    hpa("both pods measured");
}
