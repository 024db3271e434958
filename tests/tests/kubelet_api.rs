//! vk's kubelet API end to end: the real kubectl through the real API server for logs, exec,
//! attach and port-forward against the mock provider, and direct HTTPS calls to vk's port (as
//! the API server, metrics-server or a ServiceAccount would make them) for stats, metrics, pods
//! and health, with authentication and authorization through TokenReview and
//! SubjectAccessReview.
//!
//! Each test runs its own vk and namespace. The API server here refuses to proxy to loopback
//! node addresses (`nodes/N/proxy`), so the read-only endpoints are called directly with the
//! API server's kubelet-client certificate, which is what the API server itself would send.
//!
//! Needs `cargo build --workspace` (for `vk` and `libvk_mock.so`).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpStream},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use prometheus_parse::{LineInfo, Sample, Scrape, Value as PromValue};
use serde_json::{Value, json};
use vk_tests::{
    cluster::{self, Cluster, Namespace},
    kubelet_client::{Credentials, KubeletClient},
    vk_process::VkProcess,
    wait::{wait_for_ok, wait_for_ok_async},
};

const TIMEOUT: Duration = Duration::from_secs(30);
const CONTAINER: &str = "c";

/// A vk with the mock provider, Ready, and a namespace for the test's objects.
fn start_vk(prefix: &str) -> (&'static Cluster, Namespace, VkProcess) {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace(prefix);
    let vk = cluster.vk().node_prefix(prefix).start_ready(TIMEOUT);
    (cluster, namespace, vk)
}

/// Creates pod `name` on vk's node (one container `c`, plus `container` merged into it and
/// `spec` merged into the pod spec) and waits until it is Ready.
fn run_pod(
    cluster: &Cluster,
    namespace: &Namespace,
    vk: &VkProcess,
    name: &str,
    container: Value,
    spec: Value,
) {
    let mut c = json!({ "name": CONTAINER, "image": "registry.invalid/mock:1" });
    merge(&mut c, container);
    let mut pod_spec = json!({
        "nodeName": vk.node_name(),
        "tolerations": [{ "key": "virtual-kubelet.io/provider", "operator": "Exists" }],
        "containers": [c],
    });
    merge(&mut pod_spec, spec);
    cluster.apply(&json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace.name() },
        "spec": pod_spec,
    }));
    let pod = format!("pod/{name}");
    cluster.kubectl_ok([
        "wait",
        "-n",
        namespace.name(),
        "--for=condition=Ready",
        &pod,
        "--timeout=30s",
    ]);
}

fn merge(target: &mut Value, extra: Value) {
    if let (Some(target), Value::Object(extra)) = (target.as_object_mut(), extra) {
        target.extend(extra);
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The mock's log line `n` of container `c`.
fn log_line(namespace: &Namespace, pod: &str, n: usize) -> String {
    format!("{namespace}/{pod} {CONTAINER} line {n}")
}

/// The whole log the mock has before following: lines 1 to 10.
fn full_log(namespace: &Namespace, pod: &str) -> String {
    (1..=10)
        .map(|n| log_line(namespace, pod, n) + "\n")
        .collect()
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        bytes.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Asserts two byte strings are equal without printing megabytes when they are not.
fn assert_same_bytes(what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {:?}",
            got.len(),
            want.len(),
            first.or(Some(got.len().min(want.len())))
        );
    }
}

/// Runs `command` with `input` written to its stdin from another thread (so that neither side
/// can block the other), and its output collected.
fn run_with_input(mut command: Command, input: Vec<u8>) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("the command's output");
    writer
        .join()
        .expect("the writer thread")
        .expect("all input written");
    output
}

/// A child process that is killed and reaped when dropped (say, when the test panics).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines a child prints on stdout, as they come.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// The samples of a Prometheus text exposition, after checking that every line is a comment, a
/// sample or blank (the parser itself skips what it does not understand).
fn parse_metrics(what: &str, text: &str) -> Vec<Sample> {
    for line in text.lines() {
        let parsed = LineInfo::parse(line);
        let comment = line.starts_with('#');
        assert!(
            comment || matches!(parsed, LineInfo::Sample { .. } | LineInfo::Empty),
            "{what}: not a Prometheus line: {line:?}"
        );
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("{what} does not parse: {e}\n{text}"))
        .samples
}

fn sample_value(sample: &Sample) -> f64 {
    match &sample.value {
        PromValue::Counter(v) | PromValue::Gauge(v) | PromValue::Untyped(v) => *v,
        other => panic!("{}: not a single value: {other:?}", sample.metric),
    }
}

/// The sum of `metric` over the samples whose labels include `labels`.
fn metric_sum(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(sample_value)
        .sum()
}

/// vk's own `/metrics`, as the API server's identity reads them.
async fn vk_metrics(vk: &VkProcess) -> Vec<Sample> {
    let client = KubeletClient::new(vk.port(), Credentials::apiserver(Cluster::shared()));
    let (status, body) = client.get("/metrics").await;
    assert_eq!(status, 200, "/metrics: {body}");
    parse_metrics("/metrics", &body)
}

/// Waits until vk has finished `want` provider calls `call` (of any outcome): streaming
/// sessions release their provider call when the client goes away.
async fn wait_calls_finished(vk: &VkProcess, call: &str, want: f64) {
    let what = format!("{want} finished {call} provider calls");
    wait_for_ok_async(&what, TIMEOUT, async || {
        let samples = vk_metrics(vk).await;
        let done = metric_sum(&samples, "vk_provider_calls_total", &[("call", call)]);
        if done == want {
            Ok(())
        } else {
            Err(format!("{done} finished"))
        }
    })
    .await;
}

#[tokio::test]
async fn kubectl_logs_tail_since_timestamps_limit_and_follow() {
    let (cluster, namespace, mut vk) = start_vk("logs");
    let pod = "logger";
    run_pod(cluster, &namespace, &vk, pod, json!({}), json!({}));
    let ns = namespace.name();
    let logs = |extra: &[&str]| {
        let mut args = vec!["logs", "-n", ns, pod];
        args.extend_from_slice(extra);
        cluster.kubectl_ok(&args)
    };
    let full = full_log(&namespace, pod);
    assert_eq!(logs(&[]), full);
    let mut calls = 1.0;

    // --tail: exactly the last 2 lines.
    let tail = format!(
        "{}\n{}\n",
        log_line(&namespace, pod, 9),
        log_line(&namespace, pod, 10)
    );
    assert_eq!(logs(&["--tail", "2"]), tail);
    // --since: all 10 lines are from the last hour.
    assert_eq!(logs(&["--since=1h"]), full);
    calls += 2.0;

    // --timestamps: each line is prefixed with its RFC 3339 time and a space.
    let stamped = logs(&["--timestamps"]);
    calls += 1.0;
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 10, "{stamped}");
    let mut previous: Option<Timestamp> = None;
    for (i, line) in lines.iter().enumerate() {
        let (stamp, text) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("no timestamp in {line:?}"));
        assert_eq!(text, log_line(&namespace, pod, i + 1));
        assert!(stamp.ends_with('Z'), "not UTC: {stamp:?}");
        let at: Timestamp = stamp
            .parse()
            .unwrap_or_else(|e| panic!("not an RFC 3339 time: {stamp:?}: {e}"));
        let age = Timestamp::now().duration_since(at);
        assert!(
            age.as_secs() >= 0 && age.as_secs() < 3600,
            "{stamp} is not recent"
        );
        assert!(previous.is_none_or(|p| p <= at), "times go back: {stamped}");
        previous = Some(at);
    }

    // --limit-bytes: exactly that many bytes, cut mid-line.
    assert_eq!(logs(&["--limit-bytes=25"]), full[..25]);
    calls += 1.0;

    // --since-time in the future: nothing yet.
    let future = (Timestamp::now() + SignedDuration::from_hours(1))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert_eq!(logs(&[&format!("--since-time={future}")]), "");
    calls += 1.0;

    // --previous: the mock keeps no terminated instance; the kubelet's 400 reaches kubectl.
    let output = cluster.kubectl(["logs", "-n", ns, pod, "--previous"]);
    assert!(!output.status.success(), "logs --previous succeeded");
    assert!(
        stderr(&output).contains("previous terminated container"),
        "{}",
        stderr(&output)
    );
    calls += 1.0;

    // An unknown container: kubectl fails (the API server knows the pod's containers).
    let output = cluster.kubectl(["logs", "-n", ns, pod, "-c", "nope"]);
    assert!(!output.status.success(), "logs of container nope succeeded");
    assert!(stderr(&output).contains("nope"), "{}", stderr(&output));

    // -f: the 10 lines, then a new one every 0.5 s, until the client goes away.
    let started = Instant::now();
    let mut follow = KillOnDrop(
        cluster
            .kubectl_command()
            .args(["logs", "-f", "-n", ns, pod])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl logs -f starts"),
    );
    calls += 1.0;
    let lines = stdout_lines(&mut follow.0);
    let mut seen = Vec::new();
    while seen.len() < 12 {
        match lines.recv_timeout(Duration::from_secs(15)) {
            Ok(line) => seen.push(line),
            Err(e) => panic!("kubectl logs -f stopped after {seen:?}: {e}"),
        }
    }
    let want: Vec<String> = (1..=12).map(|n| log_line(&namespace, pod, n)).collect();
    assert_eq!(seen, want);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "lines 11 and 12 came at once: {:?}",
        started.elapsed()
    );
    drop(follow);

    // vk is fine afterwards: it answers again, and the followed stream was released.
    vk.assert_running();
    assert_eq!(logs(&["--tail", "1"]), log_line(&namespace, pod, 10) + "\n");
    calls += 1.0;
    wait_calls_finished(&vk, "container_logs", calls).await;
    vk.assert_running();
}

#[tokio::test]
async fn kubectl_exec_streams_tty_exit_codes_env_and_files() {
    let (cluster, namespace, mut vk) = start_vk("exec");
    let ns = namespace.name();
    cluster.apply(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "settings", "namespace": ns },
        "data": { "key": "value from the ConfigMap\n" },
    }));
    let pod = "runner";
    run_pod(
        cluster,
        &namespace,
        &vk,
        pod,
        json!({
            "env": [
                { "name": "GREETING", "value": "hi" },
                { "name": "POD_IP", "valueFrom": { "fieldRef": { "fieldPath": "status.podIP" } } },
            ],
            "volumeMounts": [{ "name": "config", "mountPath": "/etc/config" }],
        }),
        json!({ "volumes": [{ "name": "config", "configMap": { "name": "settings" } }] }),
    );
    let exec = |args: &[&str]| {
        let mut command = cluster.kubectl_command();
        command.args(["exec", "-n", ns, pod]).args(args);
        command
    };
    let mut calls = 0.0;

    // stdin round trip through `cat`.
    let output = run_with_input(exec(&["-i", "--", "cat"]), b"hello through cat\n".to_vec());
    calls += 1.0;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "hello through cat\n");

    // 10 MiB of random bytes, byte for byte.
    let payload = random_bytes(10 << 20, 0x5eed_cafe);
    let started = Instant::now();
    let output = run_with_input(exec(&["-i", "--", "cat"]), payload.clone());
    calls += 1.0;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_same_bytes("10 MiB through cat", &output.stdout, &payload);
    eprintln!("10 MiB through kubectl exec cat in {:?}", started.elapsed());

    // A terminal: kubectl runs on a pseudo-terminal (`script`) and asks for a tty.
    let shell_quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let kubectl_line = [
        cluster.kubectl_path().to_str().expect("a UTF-8 path"),
        "--kubeconfig",
        cluster.kubeconfig().to_str().expect("a UTF-8 path"),
        "exec",
        "-it",
        "-n",
        ns,
        pod,
        "--",
        "echo",
        "tty-ok",
    ]
    .map(shell_quote)
    .join(" ");
    let mut script = Command::new("script");
    script.args(["-qec", &kubectl_line, "/dev/null"]);
    let output = run_with_input(script, Vec::new());
    calls += 1.0;
    let text = stdout(&output);
    assert!(
        output.status.success() && text.contains("tty-ok"),
        "kubectl exec -it under script: {}\n{text}{}",
        output.status,
        stderr(&output)
    );
    assert!(
        !text.contains("Unable to use a TTY"),
        "kubectl had no terminal: {text}"
    );

    // A failing command: kubectl exits with its code.
    let output = exec(&["--", "exit", "3"]).output().expect("kubectl runs");
    calls += 1.0;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("command terminated with exit code 3"),
        "{}",
        stderr(&output)
    );

    // The resolved environment, POD_IP once the pod has its IP.
    let pod_ip = wait_for_ok("the pod's IP", TIMEOUT, || {
        let ip = cluster.kubectl_ok([
            "get",
            "pod",
            "-n",
            ns,
            pod,
            "-o",
            "jsonpath={.status.podIP}",
        ]);
        if ip.is_empty() { Err("none") } else { Ok(ip) }
    });
    let env = wait_for_ok("POD_IP in the container's env", TIMEOUT, || {
        let output = exec(&["--", "env"]).output().expect("kubectl runs");
        calls += 1.0;
        let env = stdout(&output);
        if output.status.success() && env.lines().any(|l| l == format!("POD_IP={pod_ip}")) {
            Ok(env)
        } else {
            Err(format!("{env}{}", stderr(&output)))
        }
    });
    assert!(env.lines().any(|l| l == "GREETING=hi"), "{env}");

    // A file of a ConfigMap volume.
    let output = exec(&["--", "cat", "/etc/config/key"])
        .output()
        .expect("kubectl runs");
    calls += 1.0;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "value from the ConfigMap\n");
    let output = exec(&["--", "cat", "/etc/config/missing"])
        .output()
        .expect("kubectl runs");
    calls += 1.0;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("No such file"),
        "{}",
        stderr(&output)
    );

    // Every session released its provider call.
    wait_calls_finished(&vk, "exec", calls).await;
    vk.assert_running();
}

#[tokio::test]
async fn kubectl_attach_and_port_forward_on_two_ports() {
    let (cluster, namespace, mut vk) = start_vk("attach");
    let ns = namespace.name();
    let pod = "echoer";
    run_pod(
        cluster,
        &namespace,
        &vk,
        pod,
        json!({ "stdin": true }),
        json!({}),
    );

    // attach -i: the mock's main process echoes stdin.
    let mut attach = cluster.kubectl_command();
    attach.args(["attach", "-i", "-n", ns, pod, "-c", CONTAINER]);
    let output = run_with_input(attach, b"attached line 1\nattached line 2\n".to_vec());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "attached line 1\nattached line 2\n");
    wait_calls_finished(&vk, "attach", 1.0).await;

    // port-forward on two ports at once, to random local ports.
    let mut forward = KillOnDrop(
        cluster
            .kubectl_command()
            .args(["port-forward", "-n", ns, &format!("pod/{pod}")])
            .args([":7001", ":7002"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl port-forward starts"),
    );
    let lines = stdout_lines(&mut forward.0);
    let mut local = [0u16; 2];
    while local.contains(&0) {
        let line = lines
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("kubectl port-forward printed no ports: {e}"));
        // "Forwarding from 127.0.0.1:LOCAL -> REMOTE"
        let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") else {
            continue;
        };
        let (port, remote) = rest.split_once(" -> ").expect("LOCAL -> REMOTE");
        let slot = match remote {
            "7001" => 0,
            "7002" => 1,
            other => panic!("unexpected remote port {other}"),
        };
        local[slot] = port.parse().expect("a port number");
    }
    // Each connection sends its payload, half-closes, and reads the echo until vk closes too.
    let exchange = |port: u16, payload: Vec<u8>| {
        thread::spawn(move || {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
            let mut writer = stream.try_clone().expect("a second handle");
            let sending = thread::spawn(move || {
                writer.write_all(&payload).expect("send");
                writer.shutdown(Shutdown::Write).expect("half-close");
                payload
            });
            let mut echoed = Vec::new();
            stream.read_to_end(&mut echoed).expect("the echo, then EOF");
            (sending.join().expect("the sender"), echoed)
        })
    };
    for round in 0..2u64 {
        let one = exchange(local[0], random_bytes(300_000, 1 + round));
        let two = exchange(local[1], random_bytes(200_000, 100 + round));
        for (which, handle) in [("7001", one), ("7002", two)] {
            let (sent, echoed) = handle.join().expect("the exchange");
            assert_same_bytes(&format!("echo on port {which}"), &echoed, &sent);
        }
    }
    // Each closed connection ends its provider call, while kubectl port-forward still runs.
    wait_calls_finished(&vk, "port_forward", 4.0).await;
    drop(forward);
    vk.assert_running();
}

/// Cluster-scoped RBAC objects of one test, deleted when dropped.
struct ClusterRbac {
    cluster: &'static Cluster,
    names: Vec<String>,
}

impl ClusterRbac {
    /// A ClusterRole allowing `get` on `nodes/SUBRESOURCE`, bound to ServiceAccount `sa`.
    fn grant(&mut self, namespace: &Namespace, sa: &str, subresource: &str) {
        let name = cluster::unique_name(&format!("kubelet-api-{subresource}"));
        self.cluster.apply(&json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": { "name": name },
                    "rules": [{
                        "apiGroups": [""],
                        "resources": [format!("nodes/{subresource}")],
                        "verbs": ["get"],
                    }],
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": { "name": name },
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": name,
                    },
                    "subjects": [{
                        "kind": "ServiceAccount",
                        "name": sa,
                        "namespace": namespace.name(),
                    }],
                },
            ],
        }));
        self.names.push(name);
        // vk caches a denial for a while: ask only once the API server's RBAC has the grant.
        let user = format!("system:serviceaccount:{namespace}:{sa}");
        let what = format!("{user} to be allowed nodes/{subresource}");
        wait_for_ok(&what, TIMEOUT, || {
            let output = self.cluster.kubectl([
                "auth",
                "can-i",
                "get",
                "nodes",
                "--subresource",
                subresource,
                "--as",
                &user,
            ]);
            let answer = stdout(&output);
            if answer.trim() == "yes" {
                Ok(())
            } else {
                Err(answer)
            }
        });
    }
}

impl Drop for ClusterRbac {
    fn drop(&mut self) {
        for name in &self.names {
            for kind in ["clusterrolebinding", "clusterrole"] {
                let _ = self
                    .cluster
                    .kubectl(["delete", kind, name, "--ignore-not-found"]);
            }
        }
    }
}

/// A token of a new ServiceAccount `name` in `namespace`.
fn service_account_token(cluster: &Cluster, namespace: &Namespace, name: &str) -> String {
    cluster.kubectl_ok(["create", "serviceaccount", "-n", namespace.name(), name]);
    cluster
        .kubectl_ok(["create", "token", "-n", namespace.name(), name])
        .trim()
        .to_string()
}

/// A client certificate `O=system:masters, CN=intruder` of a CA that is not the cluster's,
/// written to the run directory.
fn foreign_client_certificate(name: &str) -> Credentials {
    let mut ca = rcgen::CertificateParams::new(vec![]).expect("CA parameters");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "some-other-ca");
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).expect("a CA");
    let mut client = rcgen::CertificateParams::new(vec![]).expect("client parameters");
    let subject = &mut client.distinguished_name;
    subject.push(rcgen::DnType::OrganizationName, "system:masters");
    subject.push(rcgen::DnType::CommonName, "intruder");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().expect("a client key");
    let cert = client.signed_by(&key, &ca).expect("a client certificate");
    let dir = cluster::run_dir();
    let (cert_path, key_path) = (
        dir.join(format!("{name}-foreign.crt")),
        dir.join(format!("{name}-foreign.key")),
    );
    std::fs::write(&cert_path, cert.pem()).expect("write the certificate");
    std::fs::write(&key_path, key.serialize_pem()).expect("write the key");
    Credentials::Certificate {
        cert: cert_path,
        key: key_path,
    }
}

#[tokio::test]
async fn kubelet_endpoints_for_the_apiserver_identity() {
    let (cluster, namespace, vk) = start_vk("endpoints");
    let ns = namespace.name();
    let pod = "measured";
    run_pod(cluster, &namespace, &vk, pod, json!({}), json!({}));
    let apiserver = KubeletClient::new(vk.port(), Credentials::apiserver(cluster));

    let (status, body) = apiserver.get("/healthz").await;
    assert_eq!((status.as_u16(), body.trim()), (200, "ok"));

    // /pods: the PodList of the node's pods.
    let (status, body) = apiserver.get("/pods").await;
    assert_eq!(status, 200, "{body}");
    let pods: Value = serde_json::from_str(&body).expect("/pods is JSON");
    assert_eq!(pods["kind"], "PodList", "{body}");
    let items = pods["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .any(|p| p["metadata"]["name"] == pod && p["metadata"]["namespace"] == ns),
        "{body}"
    );
    let (status, body) = apiserver.get("/runningpods/").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("\"name\":\"{pod}\"")), "{body}");

    // /containerLogs as the API server sends it, and the kubelet's refusals.
    let logs = format!("/containerLogs/{ns}/{pod}/{CONTAINER}");
    let (status, body) = apiserver.get(&format!("{logs}?tailLines=1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!("{ns}/{pod} {CONTAINER} line 10\n"));
    let (status, body) = apiserver.get(&format!("{logs}?tailLines=-1")).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = apiserver
        .get(&format!("/containerLogs/{ns}/{pod}/nope"))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = apiserver
        .get(&format!("/containerLogs/{ns}/absent/c"))
        .await;
    assert_eq!(status, 404, "{body}");

    // /stats/summary: the node and the pod's container with CPU and memory.
    let (status, body) = apiserver.get("/stats/summary").await;
    assert_eq!(status, 200, "{body}");
    let summary: Value = serde_json::from_str(&body).expect("/stats/summary is JSON");
    assert_eq!(summary["node"]["nodeName"], vk.node_name(), "{body}");
    let stats = summary["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .find(|p| p["podRef"]["name"] == pod && p["podRef"]["namespace"] == ns)
        .unwrap_or_else(|| panic!("pod {pod} not in {body}"));
    let container = stats["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == CONTAINER)
        .unwrap_or_else(|| panic!("container {CONTAINER} not in {stats}"));
    assert!(
        container["cpu"]["usageNanoCores"].as_u64() > Some(0),
        "{container}"
    );
    assert!(
        container["memory"]["workingSetBytes"].as_u64() > Some(0),
        "{container}"
    );

    // /metrics/resource, as metrics-server reads it.
    let (status, body) = apiserver.get("/metrics/resource").await;
    assert_eq!(status, 200, "{body}");
    let samples = parse_metrics("/metrics/resource", &body);
    let one = |metric: &str, labels: &[(&str, &str)]| -> f64 {
        let found: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .collect();
        assert_eq!(found.len(), 1, "{metric}{labels:?} in:\n{body}");
        sample_value(found[0])
    };
    assert_eq!(one("resource_scrape_error", &[]), 0.0);
    let container = [("container", CONTAINER), ("namespace", ns), ("pod", pod)];
    let of_pod = [("namespace", ns), ("pod", pod)];
    let positive = [
        ("node_cpu_usage_seconds_total", &[][..]),
        ("node_memory_working_set_bytes", &[][..]),
        ("container_cpu_usage_seconds_total", &container[..]),
        ("container_memory_working_set_bytes", &container[..]),
        ("container_start_time_seconds", &container[..]),
        ("pod_cpu_usage_seconds_total", &of_pod[..]),
        ("pod_memory_working_set_bytes", &of_pod[..]),
    ];
    for (metric, labels) in positive {
        let value = one(metric, labels);
        assert!(value > 0.0, "{metric}{labels:?} = {value}\n{body}");
    }
    let counter = samples
        .iter()
        .find(|s| s.metric == "container_cpu_usage_seconds_total")
        .expect("the container CPU sample");
    assert!(
        matches!(counter.value, PromValue::Counter(_)),
        "{counter:?}"
    );
    let started = one("container_start_time_seconds", &container);
    let now = Timestamp::now().as_second() as f64;
    assert!(
        (now - 600.0..=now + 1.0).contains(&started),
        "container started at {started}, now is {now}"
    );

    // vk's own /metrics.
    let samples = vk_metrics(&vk).await;
    assert!(
        metric_sum(
            &samples,
            "vk_provider_calls_total",
            &[("call", "create_pod")]
        ) >= 1.0,
        "no create_pod call counted"
    );
}

#[tokio::test]
async fn kubelet_api_authentication_and_authorization() {
    let (cluster, namespace, vk) = start_vk("authz");
    let port = vk.port();
    let get = async |credentials: Credentials, path: &str| {
        KubeletClient::new(port, credentials).get(path).await
    };

    // No credentials at all.
    for path in ["/pods", "/healthz", "/stats/summary", "/metrics"] {
        let (status, body) = get(Credentials::None, path).await;
        assert_eq!(status, 401, "{path} without credentials: {body}");
    }
    // A token the API server does not know.
    let (status, body) = get(Credentials::Bearer("not-a-token".into()), "/pods").await;
    assert_eq!(status, 401, "{body}");

    // A ServiceAccount without RBAC: authenticated (TokenReview), not authorized (SAR).
    let nobody = service_account_token(cluster, &namespace, "nobody");
    for path in [
        "/pods",
        "/stats/summary",
        "/metrics/resource",
        "/containerLogs/a/b/c",
    ] {
        let (status, body) = get(Credentials::Bearer(nobody.clone()), path).await;
        assert_eq!(status, 403, "{path} as nobody: {body}");
        assert!(
            body.contains(&format!("system:serviceaccount:{namespace}:nobody")),
            "{body}"
        );
    }

    // ServiceAccounts granted nodes/proxy and nodes/stats get what those allow, and only that.
    let mut rbac = ClusterRbac {
        cluster,
        names: Vec::new(),
    };
    let proxy = service_account_token(cluster, &namespace, "proxy");
    let proxy_token = proxy.clone();
    let stats = service_account_token(cluster, &namespace, "stats");
    rbac.grant(&namespace, "proxy", "proxy");
    rbac.grant(&namespace, "stats", "stats");
    let (status, body) = get(Credentials::Bearer(proxy.clone()), "/pods").await;
    assert_eq!(status, 200, "/pods with nodes/proxy: {body}");
    let list: Value = serde_json::from_str(&body).expect("/pods is JSON");
    assert_eq!(list["kind"], "PodList");
    let (status, body) = get(Credentials::Bearer(proxy.clone()), "/healthz").await;
    assert_eq!((status.as_u16(), body.trim()), (200, "ok"));
    let (status, body) = get(Credentials::Bearer(proxy.clone()), "/stats/summary").await;
    assert_eq!(status, 403, "/stats/summary with only nodes/proxy: {body}");

    let (status, body) = get(Credentials::Bearer(stats.clone()), "/stats/summary").await;
    assert_eq!(status, 200, "/stats/summary with nodes/stats: {body}");
    let summary: Value = serde_json::from_str(&body).expect("/stats/summary is JSON");
    assert_eq!(summary["node"]["nodeName"], vk.node_name());
    let (status, body) = get(Credentials::Bearer(stats), "/pods").await;
    assert_eq!(status, 403, "/pods with only nodes/stats: {body}");

    // The API server's identity may do everything.
    let (status, body) = get(Credentials::apiserver(cluster), "/pods").await;
    assert_eq!(status, 200, "{body}");

    // A client certificate of another CA (claiming system:masters) is ignored, as the kubelet
    // ignores it: the handshake succeeds, and the request counts as one without it.
    let foreign = foreign_client_certificate(vk.node_name());
    let (status, body) = get(foreign.clone(), "/pods").await;
    assert_eq!(status, 401, "/pods with a foreign certificate: {body}");
    let with_token = KubeletClient::new(port, foreign).with_bearer(&proxy_token);
    let (status, body) = with_token.get("/pods").await;
    assert_eq!(
        status, 200,
        "/pods with a foreign certificate and a token: {body}"
    );
    drop(rbac);
}

/// kubectl with WebSockets switched off speaks SPDY end to end: the apiserver relays it to vk
/// as it does for clusters whose nodes do not declare WebSocket support.
#[tokio::test]
async fn kubectl_exec_over_spdy() {
    let (cluster, namespace, vk) = start_vk("spdy");
    let ns = namespace.name();
    let pod = "spdy";
    run_pod(cluster, &namespace, &vk, pod, json!({}), json!({}));
    let exec = |args: &[&str]| {
        let mut command = cluster.kubectl_command();
        command.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
        command.args(["exec", "-n", ns, pod]).args(args);
        command
    };
    let payload = random_bytes(1 << 20, 0x5bd1);
    let output = run_with_input(exec(&["-i", "--", "cat"]), payload.clone());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_same_bytes("1 MiB through cat over SPDY", &output.stdout, &payload);
    let output = exec(&["--", "exit", "3"]).output().expect("kubectl runs");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
}
