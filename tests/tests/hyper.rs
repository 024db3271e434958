//! The hyper provider end to end: the real control plane, a real Podman service speaking the
//! Docker Engine API, and the real kubectl. Pods become containers that `podman ps` shows;
//! logs, exec, restarts, volumes and deletion are checked the way a user would.
//!
//! Needs `cargo build --workspace` (for `vk` and `libvk_hyper.so`) and Podman (`scripts/podman.sh`
//! starts its service and builds the local image; `.ci/run` installs the packages).

use std::{
    io::Write,
    process::{Output, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use vk_tests::{
    cluster::{Cluster, Namespace},
    fixtures::{self, describe_pods, wait_running},
    podman::{IMAGE, Podman},
    vk_process::VkProcess,
    wait::{wait_for, wait_for_ok},
};

const READY: Duration = Duration::from_secs(60);

fn start(prefix: &str) -> (&'static Cluster, &'static Podman, Namespace, VkProcess) {
    let podman = Podman::shared();
    let cluster = Cluster::shared();
    let namespace = cluster.namespace(prefix);
    let vk = cluster
        .vk()
        .node_prefix(prefix)
        .on_podman(podman)
        .start_ready(READY);
    (cluster, podman, namespace, vk)
}

/// A container of the local image that runs `script` with `sh -c`.
fn container(name: &str, script: &str) -> Value {
    json!({
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
    })
}

/// Pod `name` on vk's node with `spec` (which needs `containers`); a short grace period, since
/// `sh` as PID 1 ignores SIGTERM.
fn apply_pod(cluster: &Cluster, namespace: &Namespace, vk: &VkProcess, name: &str, spec: Value) {
    let spec = fixtures::merged(json!({ "terminationGracePeriodSeconds": 1 }), spec);
    cluster.apply(&fixtures::pod(namespace.name(), name, vk.node_name(), spec));
}

fn wait_pod(
    cluster: &Cluster,
    namespace: &Namespace,
    name: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    fixtures::wait_pod(cluster, namespace, name, what, READY, ready)
}

/// `kubectl port-forward` to `port` of pod `name`, and `GET path` through it.
fn get_through_port_forward(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    port: u16,
    path: &str,
) -> String {
    use std::io::{BufRead as _, Read as _};
    let mut forward = cluster
        .kubectl_command()
        .args([
            "port-forward",
            "-n",
            namespace,
            &format!("pod/{name}"),
            &format!(":{port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(forward.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    // kubectl prints a line per connection, and must not die of a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    // "Forwarding from 127.0.0.1:LOCAL -> PORT"
    let local_port = line
        .trim_start_matches("Forwarding from 127.0.0.1:")
        .split_once(' ')
        .and_then(|(local, _)| local.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("unexpected kubectl output {line:?}"));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", local_port)).unwrap();
    stream.set_read_timeout(Some(READY)).unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    let mut response = String::new();
    let read = stream.read_to_string(&mut response);
    let _ = forward.kill();
    let _ = forward.wait();
    read.unwrap();
    response
}

fn kubectl(cluster: &Cluster, args: &[&str]) -> Output {
    cluster.kubectl(args.iter().copied())
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_deployment_becomes_podman_containers_and_goes_away_with_it() {
    let (cluster, podman, namespace, mut vk) = start("hyper-deploy");
    let node = vk.node_name().to_string();
    let mut deployment = fixtures::deployment(namespace.name(), "web", &node, 3);
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(5);
    deployment["spec"]["template"]["spec"]["containers"] = json!([container(
        "web",
        "echo serving from $HOSTNAME; exec httpd -f -p 8080 -h /etc"
    )]);
    let applied = std::time::Instant::now();
    cluster.apply(&deployment);
    let pods = wait_running(cluster, &namespace, "app=web", &node, 3, READY);
    eprintln!("3 pods Running {:.1?} after the apply", applied.elapsed());

    let containers = podman.containers(&node);
    eprintln!("podman ps for node {node}:");
    for (name, id, state) in &containers {
        eprintln!("  {name} {id} {state}");
    }
    assert_eq!(
        containers.len(),
        6,
        "an infra and an app container per pod: {containers:?}"
    );
    assert!(
        containers.iter().all(|(_, _, state)| state == "running"),
        "{containers:?}"
    );
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let uid = pod["metadata"]["uid"].as_str().unwrap();
        for container in ["POD", "web"] {
            let expected = format!("k8s_{container}_{name}_{}_{uid}_0", namespace.name());
            assert!(
                containers.iter().any(|(n, _, _)| *n == expected),
                "{expected} in {containers:?}"
            );
        }
        assert!(
            pod["status"]["podIP"]
                .as_str()
                .is_some_and(|ip| !ip.is_empty() && ip != "127.0.0.1")
        );
        let id = pod["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap();
        assert!(id.starts_with("docker://"), "{id}");
        // The kubelet's events, from the provider.
        let events = fixtures::events(cluster, &namespace, name);
        for reason in ["Pulled", "Created", "Started"] {
            assert!(
                events.iter().any(|e| e["reason"] == reason
                    && e["involvedObject"]["fieldPath"] == "spec.containers{web}"),
                "{reason} in {}",
                fixtures::describe_events(&events)
            );
        }
        // The container's real output, through the API server and vk.
        let logs = kubectl(cluster, &["logs", "-n", namespace.name(), name]);
        assert_eq!(text(&logs), format!("serving from {name}\n"), "{logs:?}");
    }

    cluster.kubectl_ok(["delete", "deployment", "web", "-n", namespace.name()]);
    wait_for_ok("every pod of web to be gone", READY, || {
        let pods = fixtures::pods(cluster, &namespace, "app=web");
        if pods.is_empty() {
            Ok(())
        } else {
            Err(describe_pods(&pods))
        }
    });
    wait_for("every container of the node to be removed", READY, || {
        podman.containers(&node).is_empty()
    });
    vk.assert_running();
}

#[test]
fn a_pods_containers_share_localhost_volumes_and_run_exec() {
    let (cluster, _podman, namespace, mut vk) = start("hyper-pod");
    let ns = namespace.name();
    cluster.apply(&json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "settings", "namespace": ns },
        "data": { "greeting": "hello from the ConfigMap" },
    }));
    let mut web = container(
        "web",
        "echo served by web > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
    );
    web["volumeMounts"] = json!([
        { "name": "config", "mountPath": "/etc/config" },
        { "name": "scratch", "mountPath": "/scratch" },
    ]);
    let mut client = container(
        "client",
        "while true; do wget -qO- http://127.0.0.1:8080/ || echo unreachable; sleep 1; done",
    );
    client["env"] = json!([{ "name": "GREETING", "value": "hi" }]);
    let mut init = container("init", "echo written by init > /scratch/note");
    init["volumeMounts"] = json!([{ "name": "scratch", "mountPath": "/scratch" }]);
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "pair",
        json!({
            "volumes": [
                { "name": "config", "configMap": { "name": "settings" } },
                { "name": "scratch", "emptyDir": {} },
            ],
            "initContainers": [init],
            "containers": [web, client],
        }),
    );
    let pod = wait_pod(cluster, &namespace, "pair", "Running", fixtures::running);
    let init_state = &pod["status"]["initContainerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (
            init_state["exitCode"].as_i64(),
            init_state["reason"].as_str()
        ),
        (Some(0), Some("Completed"))
    );

    // The client reaches the web container on localhost.
    wait_for_ok("the client to reach web on localhost", READY, || {
        let logs = text(&kubectl(
            cluster,
            &["logs", "-n", ns, "pair", "-c", "client", "--tail", "1"],
        ));
        if logs == "served by web\n" {
            Ok(())
        } else {
            Err(logs)
        }
    });
    let exec = |container: &str, command: &[&str]| {
        let mut args = vec!["exec", "-n", ns, "pair", "-c", container, "--"];
        args.extend(command);
        kubectl(cluster, &args)
    };
    assert_eq!(
        text(&exec("web", &["cat", "/etc/config/greeting"])),
        "hello from the ConfigMap"
    );
    assert_eq!(
        text(&exec("web", &["cat", "/scratch/note"])),
        "written by init\n"
    );
    let output = exec("client", &["sh", "-c", "echo $GREETING; exit 7"]);
    assert_eq!(text(&output), "hi\n");
    assert_eq!(output.status.code(), Some(7), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("command terminated with exit code 7"),
        "{output:?}"
    );

    // A terminal of the client's size: kubectl runs on a pseudo-terminal (`script`). The size
    // reaches the engine as a resize just after the process starts (Podman ignores a size given
    // at creation), hence the pause before reading it.
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let kubectl_line = [
        cluster.kubectl_path().to_str().unwrap(),
        "--kubeconfig",
        cluster.kubeconfig().to_str().unwrap(),
        "exec",
        "-it",
        "-n",
        ns,
        "pair",
        "-c",
        "web",
        "--",
        "sh",
        "-c",
        "tty; sleep 1; stty size",
    ]
    .map(quote)
    .join(" ");
    let output = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("stty rows 45 cols 123; {kubectl_line}"),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let terminal = text(&output);
    assert!(terminal.contains("/dev/pts/"), "{terminal}");
    assert!(terminal.contains("45 123"), "{terminal}");

    // stdin through the real container.
    let mut child = cluster
        .kubectl_command()
        .args([
            "exec", "-i", "-n", ns, "pair", "-c", "web", "--", "tr", "a-z", "A-Z",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(text(&output), "THROUGH STDIN\n");
    vk.assert_running();
}

#[test]
fn exits_follow_the_restart_policy_and_bad_pods_fail_alone() {
    let (cluster, podman, namespace, mut vk) = start("hyper-exit");
    let ns = namespace.name();
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "once",
        json!({
            "restartPolicy": "Never",
            "containers": [container("c", "echo failing; exit 3")],
        }),
    );
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "again",
        json!({
            "containers": [container("c", "echo failing; sleep 1; exit 3")],
        }),
    );
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "missing-image",
        json!({
            "containers": [{ "name": "c", "image": "localhost/not-there:1", "imagePullPolicy": "Never" }],
        }),
    );

    let once = wait_pod(cluster, &namespace, "once", "Failed", |p| {
        fixtures::phase(p) == "Failed"
    });
    let terminated = &once["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (
            terminated["exitCode"].as_i64(),
            terminated["reason"].as_str()
        ),
        (Some(3), Some("Error"))
    );
    assert_eq!(
        text(&kubectl(cluster, &["logs", "-n", ns, "once"])),
        "failing\n"
    );

    // Restarted after the kubelet's 10 s back-off, with the exit as the last state.
    let again = wait_pod(cluster, &namespace, "again", "restarted", |p| {
        p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)
    });
    let status = &again["status"]["containerStatuses"][0];
    assert_eq!(
        status["lastState"]["terminated"]["exitCode"].as_i64(),
        Some(3),
        "{status}"
    );
    assert_eq!(fixtures::phase(&again), "Running");
    fixtures::wait_event(cluster, &namespace, "again", "Warning", "BackOff", READY);
    let started_ids: Vec<_> = podman
        .containers(vk.node_name())
        .into_iter()
        .filter(|(n, _, _)| n.contains("_again_"))
        .collect();
    assert_eq!(
        started_ids.len(),
        2,
        "restarted in place, not recreated: {started_ids:?}"
    );

    // The engine's refusal is the pod's alone.
    let event = fixtures::wait_event(
        cluster,
        &namespace,
        "missing-image",
        "Warning",
        "ProviderCreateFailed",
        READY,
    );
    let message = event["message"].as_str().unwrap_or_default();
    assert!(message.contains("ErrImageNeverPull"), "{event}");
    vk.assert_running();
}

#[test]
fn a_restarted_vk_adopts_running_containers() {
    let (cluster, podman, namespace, mut vk) = start("hyper-adopt");
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "kept",
        json!({
            "containers": [container("c", "echo started once; exec sleep 100000")],
        }),
    );
    wait_pod(cluster, &namespace, "kept", "Running", fixtures::running);
    let before = podman.containers(vk.node_name());

    vk.kill();
    vk.restart();
    wait_for("the restarted vk to adopt the pod", READY, || {
        vk.log().contains("adopted 1 running pods")
    });
    vk.wait_ready(READY);
    let pod = wait_pod(cluster, &namespace, "kept", "Running", fixtures::running);
    assert_eq!(
        podman.containers(vk.node_name()),
        before,
        "the same containers, none recreated"
    );
    assert_eq!(
        pod["status"]["containerStatuses"][0]["restartCount"].as_i64(),
        Some(0)
    );
    wait_for_ok("the log through the restarted vk", READY, || {
        let output = kubectl(cluster, &["logs", "-n", namespace.name(), "kept"]);
        if text(&output) == "started once\n" {
            Ok(())
        } else {
            Err(format!("{output:?}"))
        }
    });

    cluster.kubectl_ok(["delete", "pod", "kept", "-n", namespace.name()]);
    wait_for("its containers to be removed", READY, || {
        podman.containers(vk.node_name()).is_empty()
    });
}

#[test]
fn a_bad_configuration_is_refused_in_one_line() {
    let cluster = Cluster::shared();
    let mut vk = cluster
        .vk()
        .node_prefix("hyper-bad")
        .provider("hyper")
        .provider_config("endpoint = \"http://engine\"\n")
        .start();
    wait_for("vk to exit", READY, || vk.exit_status().is_some());
    assert!(!vk.exit_status().unwrap().success());
    assert!(
        vk.log()
            .contains("endpoint \"http://engine\" is neither unix:///path nor tcp://host:port"),
        "{}",
        vk.log()
    );
}

#[tokio::test]
async fn logs_attach_port_forward_and_stats_reach_the_real_containers() {
    let (cluster, _podman, namespace, mut vk) = start("hyper-streams");
    let ns = namespace.name();
    let mut web = container(
        "web",
        "echo line1; echo line2; echo line3; exec httpd -f -p 8080 -h /etc",
    );
    web["resources"] = json!({ "limits": { "cpu": "500m", "memory": "64Mi" } });
    let mut echo = container("echo", "exec cat");
    echo["stdin"] = json!(true);
    echo["stdinOnce"] = json!(true);
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "streams",
        json!({ "containers": [web, echo] }),
    );
    wait_pod(cluster, &namespace, "streams", "Running", fixtures::running);

    // Logs with the kubelet's options.
    let logs = |extra: &[&str]| {
        let mut args = vec!["logs", "-n", ns, "streams", "-c", "web"];
        args.extend(extra);
        text(&kubectl(cluster, &args))
    };
    assert_eq!(logs(&[]), "line1\nline2\nline3\n");
    assert_eq!(logs(&["--tail", "2"]), "line2\nline3\n");
    assert_eq!(logs(&["--limit-bytes", "8"]), "line1\nli");
    let stamped = logs(&["--timestamps", "--tail", "1"]);
    let (stamp, line) = stamped
        .trim_end()
        .split_once(' ')
        .expect("a timestamp and a line");
    assert!(
        stamp.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
        "{stamped}"
    );
    assert_eq!(line, "line3");

    // port-forward to httpd in the pod.
    let response = get_through_port_forward(cluster, ns, "streams", 8080, "/passwd");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("root:x:0:0"), "{response}");

    // attach -i to `cat`: what goes in comes back out.
    let mut attach = cluster.kubectl_command();
    attach
        .args(["attach", "-i", "-n", ns, "streams", "-c", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = attach.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"attached line\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(text(&output).contains("attached line\n"), "{output:?}");

    // One-shot engine stats in the kubelet's Summary.
    let client = vk_tests::kubelet_client::KubeletClient::new(
        vk.port(),
        vk_tests::kubelet_client::Credentials::apiserver(cluster),
    );
    let (status, body) = client.get("/stats/summary").await;
    assert_eq!(status, 200, "{body}");
    let summary: Value = serde_json::from_str(&body).unwrap();
    let pod = summary["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["podRef"]["name"] == "streams")
        .unwrap_or_else(|| panic!("no stats of the pod: {summary}"));
    let web = pod["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "web")
        .unwrap_or_else(|| panic!("no stats of web: {pod}"));
    assert!(
        web["cpu"]["usageCoreNanoSeconds"].as_u64() > Some(0),
        "{web}"
    );
    assert!(web["memory"]["workingSetBytes"].as_u64() > Some(0), "{web}");
    vk.assert_running();
}

/// A remote engine: Podman's API on TCP, with Hyper.sh credentials configured (Podman ignores
/// the signature headers, so this shows signed requests are well-formed end to end), and a
/// port-forward that has to go through `nc` run in the pod.
#[test]
fn a_remote_engine_over_tcp_with_signed_requests_and_a_relayed_port_forward() {
    let podman = Podman::shared();
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("hyper-tcp");
    let ns = namespace.name();
    let config = podman.provider_config(
        &podman.tcp_endpoint(),
        "[hyper]\naccess_key = \"AKID\"\nsecret_key = \"not-logged-SECRET\"\n",
    );
    let mut vk = cluster
        .vk()
        .node_prefix("hyper-tcp")
        .provider("hyper")
        .provider_config(&config)
        .start_ready(READY);
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "remote",
        json!({
            "containers": [container("web", "exec httpd -f -p 8080 -h /etc")],
        }),
    );
    wait_pod(cluster, &namespace, "remote", "Running", fixtures::running);

    let response = get_through_port_forward(cluster, ns, "remote", 8080, "/passwd");
    assert!(response.contains("root:x:0:0"), "{response}");
    assert!(
        !vk.log().contains("not-logged-SECRET"),
        "the secret key reached vk's log"
    );
    vk.assert_running();
}

#[test]
fn host_namespaces_are_the_hosts() {
    let (cluster, _podman, namespace, vk) = start("hyper-host");
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "on-host",
        json!({
            "hostNetwork": true, "hostPID": true, "hostIPC": true,
            "containers": [container("c", "exec sleep 100000")],
        }),
    );
    let pod = wait_pod(cluster, &namespace, "on-host", "Running", fixtures::running);
    let status = &pod["status"];
    assert_eq!(status["podIP"], status["hostIP"], "{status}");
    assert_eq!(status["podIPs"][0]["ip"], status["hostIP"], "{status}");

    // The container's namespaces are this (host) process's.
    for kind in ["net", "pid", "ipc", "uts"] {
        let link = format!("/proc/self/ns/{kind}");
        let own = std::fs::read_link(&link).expect("read own namespace");
        let output = kubectl(
            cluster,
            &[
                "exec",
                "-n",
                namespace.name(),
                "on-host",
                "--",
                "readlink",
                &link,
            ],
        );
        assert_eq!(
            text(&output).trim(),
            own.to_string_lossy(),
            "{kind}: {output:?}"
        );
    }
}

#[test]
fn a_pod_past_its_active_deadline_fails_and_its_containers_go() {
    let (cluster, podman, namespace, vk) = start("hyper-deadline");
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "brief",
        json!({
            "activeDeadlineSeconds": 5,
            "containers": [container("c", "exec sleep 100000")],
        }),
    );
    wait_pod(cluster, &namespace, "brief", "Running", fixtures::running);
    let pod = wait_pod(cluster, &namespace, "brief", "Failed", |pod| {
        fixtures::phase(pod) == "Failed"
    });
    assert_eq!(pod["status"]["reason"], "DeadlineExceeded", "{pod}");
    wait_for("its containers to be removed", READY, || {
        podman.containers(vk.node_name()).is_empty()
    });
    let still = fixtures::get_pod(cluster, &namespace, "brief");
    assert_eq!(fixtures::phase(&still), "Failed", "the pod stays, Failed");
}

/// A sidecar: an init container with `restartPolicy: Always`.
fn sidecar(name: &str, script: &str) -> Value {
    fixtures::merged(
        container(name, script),
        json!({ "restartPolicy": "Always" }),
    )
}

#[test]
fn sidecars_start_in_order_restart_and_end_with_a_jobs_main_containers() {
    let (cluster, podman, namespace, vk) = start("hyper-sidecar");
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "served",
        json!({
            "initContainers": [
                container("setup", "echo set up"),
                sidecar("proxy", "exec sleep 100000"),
            ],
            "containers": [container("app", "exec sleep 100000")],
        }),
    );
    let pod = wait_pod(cluster, &namespace, "served", "Running", fixtures::running);
    let init = &pod["status"]["initContainerStatuses"];
    assert_eq!(init[0]["state"]["terminated"]["exitCode"], 0, "{init}");
    assert!(init[1]["state"]["running"].is_object(), "{init}");
    assert_eq!(init[1]["started"], true, "{init}");
    assert_eq!(init[1]["ready"], true, "{init}");

    // A sidecar that exits is started again, whatever the pod's restart policy.
    let proxy = format!("k8s_proxy_served_{}", namespace.name());
    let killed = podman.podman(["ps", "-q", "--filter", &format!("name={proxy}")]);
    let id = text(&killed).trim().to_string();
    assert!(!id.is_empty(), "no proxy container: {killed:?}");
    assert!(podman.podman(["kill", &id]).status.success());
    wait_pod(
        cluster,
        &namespace,
        "served",
        "with proxy restarted",
        |pod| {
            let proxy = &pod["status"]["initContainerStatuses"][1];
            proxy["restartCount"] == 1 && proxy["state"]["running"].is_object()
        },
    );

    // A Job's pod completes when its main container does; its sidecar is stopped.
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "job",
        json!({
            "restartPolicy": "Never",
            "initContainers": [sidecar("logger", "exec sleep 100000")],
            "containers": [container("work", "sleep 2; echo done")],
        }),
    );
    let pod = wait_pod(cluster, &namespace, "job", "Succeeded", |pod| {
        fixtures::phase(pod) == "Succeeded"
    });
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 0,
        "{pod}"
    );
    let logger = format!("k8s_logger_job_{}", namespace.name());
    wait_for("the job's sidecar to be stopped", READY, || {
        podman
            .containers(vk.node_name())
            .iter()
            .any(|(name, _, state)| name.starts_with(&logger) && state == "exited")
    });
}

/// The requests and limits of a resize patch or a container status.
fn resources(cpu_request: &str, cpu_limit: &str, memory: &str) -> Value {
    json!({
        "requests": {"cpu": cpu_request, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory},
    })
}

#[test]
fn a_resize_is_applied_to_the_running_container_without_a_restart() {
    let (cluster, _podman, namespace, vk) = start("hyper-resize");
    let mut c = container("c", "exec sleep 100000");
    c["resources"] = resources("100m", "200m", "64Mi");
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "elastic",
        json!({ "containers": [c] }),
    );
    let before = wait_pod(cluster, &namespace, "elastic", "Running", fixtures::running);
    let status = &before["status"]["containerStatuses"][0];
    assert_eq!(
        status["resources"]["limits"]["cpu"], "200m",
        "the actual resources are reported: {before}"
    );
    let id = status["containerID"].clone();
    let cgroup = |path: &str| {
        let output = kubectl(
            cluster,
            &["exec", "-n", namespace.name(), "elastic", "--", "cat", path],
        );
        text(&output).trim().to_string()
    };
    assert_eq!(cgroup("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), "20000");

    let patch = json!({"spec": {"containers": [
        {"name": "c", "resources": resources("150m", "300m", "96Mi")}
    ]}});
    let patched = fixtures::resize(cluster, &namespace, "elastic", &patch);
    assert!(patched.status.success(), "resize refused: {patched:?}");

    let after = wait_pod(cluster, &namespace, "elastic", "resized", |pod| {
        let status = &pod["status"];
        status["containerStatuses"][0]["resources"]["limits"]["cpu"] == "300m"
            && status["observedGeneration"] == pod["metadata"]["generation"]
            && status["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .all(|c| !c["type"].as_str().unwrap_or("").starts_with("PodResize"))
            })
    });
    let status = &after["status"]["containerStatuses"][0];
    assert_eq!(status["allocatedResources"]["cpu"], "150m", "{after}");
    assert_eq!(status["resources"]["limits"]["memory"], "96Mi", "{after}");
    assert_eq!(status["restartCount"], 0, "no restart: {after}");
    assert_eq!(status["containerID"], id, "the same container: {after}");
    assert_eq!(cgroup("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), "30000");
    assert_eq!(
        cgroup("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        (96 * 1024 * 1024).to_string()
    );
    eprintln!(
        "resized: generation {}, observedGeneration {}, container {id}, resources {}, \
         allocatedResources {}",
        after["metadata"]["generation"],
        after["status"]["observedGeneration"],
        status["resources"],
        status["allocatedResources"]
    );
}

#[test]
fn pods_the_engine_cannot_run_are_rejected_as_kubelet_admission_does() {
    let (cluster, podman, namespace, mut vk) = start("hyper-refuse");
    let ns = namespace.name();
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "userns",
        json!({
            "hostUsers": false,
            "containers": [container("c", "exec sleep 100000")],
        }),
    );
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "pod-resources",
        json!({
            "resources": { "limits": { "cpu": "500m", "memory": "64Mi" } },
            "containers": [container("c", "exec sleep 100000")],
        }),
    );
    for (name, reason, field) in [
        ("userns", "UnsupportedPodSpec", "spec.hostUsers: false"),
        (
            "pod-resources",
            "PodLevelResourcesNotSupported",
            "spec.resources: ",
        ),
    ] {
        let pod = wait_pod(cluster, &namespace, name, "Failed", |pod| {
            fixtures::phase(pod) == "Failed"
        });
        let status = &pod["status"];
        assert_eq!(status["reason"], reason, "{status}");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("Pod was rejected: {field}")),
            "{status}"
        );
        let event = fixtures::wait_event(cluster, &namespace, name, "Warning", reason, READY);
        assert!(
            event["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(field),
            "{event}"
        );
    }
    assert!(
        podman.containers(vk.node_name()).is_empty(),
        "no container was made for a rejected pod"
    );
    // Terminal, but deleted like any pod.
    let deleted = kubectl(
        cluster,
        &["delete", "pod", "-n", ns, "userns", "--timeout=60s"],
    );
    assert!(deleted.status.success(), "{deleted:?}");
    vk.assert_running();
}

/// Probes on Podman: HTTP and TCP straight to the pod IP, exec through the engine; a failing
/// readiness probe keeps the pod out of Ready, a failing liveness probe restarts the container
/// (after the preStop hook, with the engine's back-off), a postStart hook runs before the
/// readiness probe sees its file, and a failed container's message falls back to its log.
#[test]
fn probes_hooks_and_termination_messages_run_as_the_kubelet_runs_them() {
    let (cluster, podman, namespace, vk) = start("probes");
    let every_second = |handler: Value, failure_threshold: u32| {
        fixtures::merged(
            json!({ "periodSeconds": 1, "failureThreshold": failure_threshold }),
            handler,
        )
    };
    let mut web = container(
        "web",
        "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    web["ports"] = json!([{ "name": "http", "containerPort": 8080 }]);
    web["readinessProbe"] = every_second(
        json!({ "httpGet": { "path": "/index.html", "port": "http" } }),
        1,
    );
    web["livenessProbe"] = every_second(json!({ "tcpSocket": { "port": 8080 } }), 1);
    web["startupProbe"] = every_second(json!({ "tcpSocket": { "port": "http" } }), 10);
    let mut hooked = container("hooked", "sleep 3600");
    hooked["lifecycle"] = json!({
        "postStart": { "exec": { "command": ["sh", "-c", "echo started > /tmp/hook"] } },
        "preStop": { "exec": { "command": ["false"] } },
    });
    hooked["readinessProbe"] =
        every_second(json!({ "exec": { "command": ["cat", "/tmp/hook"] } }), 1);
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "served",
        json!({ "containers": [web, hooked] }),
    );

    let mut missing = container("missing", "exec httpd -f -p 8080 -h /");
    missing["readinessProbe"] =
        every_second(json!({ "httpGet": { "path": "/nope", "port": 8080 } }), 1);
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "unready",
        json!({ "containers": [missing] }),
    );

    let mut hung = container("hung", "sleep 3600");
    hung["livenessProbe"] = every_second(json!({ "exec": { "command": ["false"] } }), 2);
    hung["lifecycle"] = json!({ "preStop": { "exec": { "command": ["sh", "-c", "echo bye"] } } });
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "hung",
        json!({ "containers": [hung] }),
    );

    let mut failing = container("failing", "echo something broke; exit 3");
    failing["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "failing",
        json!({ "containers": [failing], "restartPolicy": "Never" }),
    );

    let noted = container("noted", "echo all done > /dev/termination-log");
    let mut custom = container("custom", "echo custom path > /tmp/why; exit 1");
    custom["terminationMessagePath"] = json!("/tmp/why");
    apply_pod(
        cluster,
        &namespace,
        &vk,
        "noted",
        json!({ "containers": [noted, custom], "restartPolicy": "Never" }),
    );

    let served = wait_pod(cluster, &namespace, "served", "Ready", |pod| {
        fixtures::condition(pod, "Ready")["status"] == "True"
    });
    for status in served["status"]["containerStatuses"].as_array().unwrap() {
        assert_eq!(status["ready"], true, "{status}");
        assert_eq!(status["started"], true, "{status}");
        assert_eq!(status["restartCount"], 0, "{status}");
    }

    let unready = wait_pod(
        cluster,
        &namespace,
        "unready",
        "Running but not ready",
        |pod| {
            fixtures::phase(pod) == "Running"
                && fixtures::condition(pod, "Ready")["reason"] == "ContainersNotReady"
        },
    );
    assert_eq!(unready["status"]["containerStatuses"][0]["ready"], false);
    let event = fixtures::wait_event(
        cluster,
        &namespace,
        "unready",
        "Warning",
        "Unhealthy",
        READY,
    );
    let message = event["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Readiness probe failed: HTTP probe failed with statuscode: 404"),
        "{event}"
    );

    let hung = wait_pod(cluster, &namespace, "hung", "restarted", |pod| {
        pod["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)
    });
    let last = &hung["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert!(last["exitCode"].as_i64().is_some_and(|c| c != 0), "{hung}");
    let killing = fixtures::wait_event(cluster, &namespace, "hung", "Normal", "Killing", READY);
    assert_eq!(
        killing["message"],
        "Container hung failed liveness probe, will be restarted"
    );
    // The engine restarted the same container: still one per pod container.
    let containers: Vec<_> = podman
        .containers(vk.node_name())
        .into_iter()
        .filter(|(name, _, _)| name.contains("_hung_"))
        .collect();
    assert_eq!(containers.len(), 2, "infra and hung: {containers:?}");

    let failing = wait_pod(cluster, &namespace, "failing", "Failed", |pod| {
        fixtures::phase(pod) == "Failed"
            && pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"].is_string()
    });
    let terminated = &failing["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3);
    assert_eq!(terminated["message"], "something broke\n", "{terminated}");

    // The message files, at the default path and at another.
    let noted = wait_pod(cluster, &namespace, "noted", "Failed", |pod| {
        fixtures::phase(pod) == "Failed"
    });
    let messages: std::collections::BTreeMap<_, _> = noted["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let message = &s["state"]["terminated"]["message"];
            (s["name"].as_str().unwrap_or_default(), message.clone())
        })
        .collect();
    assert_eq!(messages["noted"], "all done\n", "{noted}");
    assert_eq!(messages["custom"], "custom path\n", "{noted}");

    // A preStop hook runs when its pod is deleted.
    kubectl(
        cluster,
        &[
            "delete",
            "pod",
            "served",
            "-n",
            namespace.name(),
            "--wait=false",
        ],
    );
    let failed = fixtures::wait_event(
        cluster,
        &namespace,
        "served",
        "Warning",
        "FailedPreStopHook",
        READY,
    );
    assert_eq!(
        failed["involvedObject"]["fieldPath"],
        "spec.containers{hooked}"
    );
}
