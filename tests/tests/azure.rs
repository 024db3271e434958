//! The azure provider (`libvk_azure.so`) end to end: a real control plane, vk with the azure
//! provider, and the ACI emulator of [`vk_tests::aci`] standing in for Azure (reached through
//! the endpoints of the SDK auth file named by `AZURE_AUTH_LOCATION`). Each test has its own
//! emulator, vk and namespace.
//!
//! Needs `cargo build -p vk -p vk-azure` (for `vk` and `libvk_azure.so`).

use std::time::Duration;

use serde_json::{Value, json};
use vk_tests::{
    aci::Emulator,
    cluster::{Cluster, Namespace},
    fixtures::{self, describe_events, describe_pods, get_pod, wait_event, wait_running},
    vk_process::{VkBuilder, VkProcess},
    wait::{wait_for, wait_for_ok},
};

const READY: Duration = Duration::from_secs(30);
const ROLLOUT: Duration = Duration::from_secs(60);

/// The provider's configuration: the emulator's resource group, and a quick status poll.
fn provider_config() -> String {
    format!(
        "ResourceGroup = \"{}\"\nRegion = \"westeurope\"\nCPU = \"40\"\nMemory = \"160Gi\"\nPods = \"30\"\nStatusIntervalSeconds = 1\n",
        Emulator::RESOURCE_GROUP
    )
}

/// vk with the azure provider against `aci`, signing in with `client_secret`.
fn azure_vk(
    cluster: &'static Cluster,
    aci: &Emulator,
    prefix: &str,
    client_secret: &str,
) -> VkBuilder {
    cluster
        .vk()
        .node_prefix(prefix)
        .provider("azure")
        .provider_config(&provider_config())
        .env("AZURE_AUTH_LOCATION", aci.write_auth_file(client_secret))
}

/// An emulator, a namespace and a Ready vk.
fn start(prefix: &str) -> (&'static Cluster, Namespace, Emulator, VkProcess) {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace(prefix);
    let aci = Emulator::start();
    let vk = azure_vk(cluster, &aci, prefix, Emulator::CLIENT_SECRET).start_ready(READY);
    (cluster, namespace, aci, vk)
}

/// The names of the groups of `namespace` in the emulator.
fn groups_of(aci: &Emulator, namespace: &Namespace) -> Vec<String> {
    let prefix = format!("{}-", namespace.name());
    aci.group_names()
        .into_iter()
        .filter(|g| g.starts_with(&prefix))
        .collect()
}

/// Fails on a request the emulator refused as malformed (400) or could not route (404, 405).
fn assert_no_bad_requests(aci: &Emulator) {
    let bad: Vec<String> = aci
        .requests()
        .iter()
        .filter(|r| matches!(r.status, 400 | 405) || (r.status == 404 && r.method != "GET"))
        .map(|r| format!("{} {} -> {} {}", r.method, r.path, r.status, r.body))
        .collect();
    assert!(bad.is_empty(), "requests the emulator refused: {bad:#?}");
}

fn run_pod(cluster: &Cluster, namespace: &Namespace, vk: &VkProcess, name: &str, extra: Value) {
    cluster.apply(&fixtures::pod(
        namespace.name(),
        name,
        vk.node_name(),
        extra,
    ));
    wait_for_ok(&format!("pod {name} to run"), READY, || {
        let pod = get_pod(cluster, namespace, name);
        if fixtures::running(&pod) {
            Ok(())
        } else {
            Err(describe_pods(&[pod]))
        }
    });
}

/// Fails unless pod `name` has exactly one event of each of `reasons`.
fn assert_recorded_once(cluster: &Cluster, namespace: &Namespace, name: &str, reasons: &[&str]) {
    let events = fixtures::events(cluster, namespace, name);
    for reason in reasons {
        let count = events.iter().filter(|e| e["reason"] == *reason).count();
        assert_eq!(count, 1, "{reason}: {}", describe_events(&events));
    }
}

/// Waits for the container events ACI lists when a group starts, each about container `c`.
fn wait_start_events(cluster: &Cluster, namespace: &Namespace, name: &str) {
    for (reason, message) in [
        ("Pulling", format!("pulling image \"{}\"", fixtures::IMAGE)),
        (
            "Pulled",
            format!("Successfully pulled image \"{}\"", fixtures::IMAGE),
        ),
        ("Started", "Started container".into()),
    ] {
        let event = wait_event(cluster, namespace, name, "Normal", reason, READY);
        assert_eq!(
            event["involvedObject"]["fieldPath"], "spec.containers{c}",
            "{event}"
        );
        assert_eq!(event["message"], message.as_str(), "{event}");
    }
}

#[test]
fn deployment_becomes_container_groups_that_run_and_go() {
    let (cluster, namespace, aci, mut vk) = start("aci-deploy");
    let node = vk.node_name().to_string();
    let ns = namespace.name();
    let mut deployment = fixtures::deployment(ns, "web", &node, 3);
    deployment["spec"]["template"]["spec"]["containers"][0] = json!({
        "name": "c",
        "image": fixtures::IMAGE,
        "command": ["/bin/server"],
        "args": ["--port", "8080"],
        "env": [{ "name": "GREETING", "value": "hello" }],
        "ports": [{ "containerPort": 8080 }],
        "resources": {
            "requests": { "cpu": "250m", "memory": "512Mi" },
            "limits": { "cpu": "500m", "memory": "1Gi" },
        },
    });
    cluster.apply(&deployment);
    let pods = wait_running(cluster, &namespace, "app=web", &node, 3, ROLLOUT);

    let groups = groups_of(&aci, &namespace);
    assert_eq!(groups.len(), 3, "{groups:?}");
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().expect("a name");
        let group = format!("{ns}-{name}");
        let body = aci
            .put_body(&group)
            .unwrap_or_else(|| panic!("no group {group}: {groups:?}"));
        let tags = &body["tags"];
        assert_eq!(tags["NodeName"], node.as_str());
        assert_eq!(tags["Namespace"], ns);
        assert_eq!(tags["PodName"], name);
        assert_eq!(tags["UID"], pod["metadata"]["uid"]);
        assert!(tags["CreationTimestamp"].is_string(), "{tags}");
        assert_eq!(body["location"], "westeurope");
        let properties = &body["properties"];
        assert_eq!(properties["osType"], "Linux");
        assert_eq!(properties["restartPolicy"], "Always");
        let container = &properties["containers"][0]["properties"];
        assert_eq!(container["image"], fixtures::IMAGE);
        assert_eq!(
            container["command"],
            json!(["/bin/server", "--port", "8080"])
        );
        assert_eq!(
            container["resources"],
            json!({ "requests": { "cpu": 0.25, "memoryInGB": 0.5 },
                    "limits": { "cpu": 0.5, "memoryInGB": 1.0 } })
        );
        // The pod's own variable, then those of the API server's service (the kubelet's).
        let env = container["environmentVariables"].as_array().expect("env");
        assert_eq!(env[0], json!({ "name": "GREETING", "value": "hello" }));
        assert!(
            env[1..].iter().all(|v| v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("KUBERNETES_"))),
            "{env:?}"
        );
        assert_eq!(
            container["ports"],
            json!([{ "port": 8080, "protocol": "TCP" }])
        );
        assert_eq!(
            properties["ipAddress"],
            json!({ "type": "Public", "ports": [{ "port": 8080, "protocol": "TCP" }] })
        );
        // The pod IP is the group's.
        let ip = pod["status"]["podIP"].as_str().unwrap_or_default();
        assert!(ip.starts_with("10."), "pod IP {ip:?}");
    }
    assert_no_bad_requests(&aci);

    cluster.kubectl_ok(["delete", "deployment", "web", "-n", ns]);
    wait_for_ok("the pods and groups of web to be gone", ROLLOUT, || {
        let pods = fixtures::pods(cluster, &namespace, "app=web");
        let groups = groups_of(&aci, &namespace);
        if pods.is_empty() && groups.is_empty() {
            Ok(())
        } else {
            Err(format!("{} groups {groups:?}", describe_pods(&pods)))
        }
    });
    vk.assert_running();
}

#[test]
fn a_container_exit_shows_as_terminated_with_its_exit_code() {
    let (cluster, namespace, aci, mut vk) = start("aci-exit");
    run_pod(
        cluster,
        &namespace,
        &vk,
        "job",
        json!({ "restartPolicy": "Never" }),
    );
    wait_start_events(cluster, &namespace, "job");
    let group = format!("{}-job", namespace.name());
    // The group's own events concern no container.
    let message = "the group's host is being serviced";
    assert!(aci.add_group_event(&group, "HostMaintenance", message, "Warning"));
    let event = wait_event(
        cluster,
        &namespace,
        "job",
        "Warning",
        "HostMaintenance",
        READY,
    );
    assert_eq!(event["message"], message);
    assert!(event["involvedObject"]["fieldPath"].is_null(), "{event}");

    assert!(aci.exit_container(&group, "c", 3), "no group {group}");
    let terminated = wait_for_ok("container c to be terminated", READY, || {
        let pod = get_pod(cluster, &namespace, "job");
        let terminated = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
        if terminated.is_object() && fixtures::phase(&pod) == "Failed" {
            Ok(terminated.clone())
        } else {
            Err(describe_pods(&[pod]))
        }
    });
    assert_eq!(terminated["exitCode"], 3, "{terminated}");
    assert_eq!(terminated["reason"], "Error", "{terminated}");
    let event = wait_event(cluster, &namespace, "job", "Warning", "Terminated", READY);
    assert_eq!(event["message"], "Container c terminated with exit code 3");
    assert_eq!(event["involvedObject"]["fieldPath"], "spec.containers{c}");
    // Polls later, each ACI event was still recorded once.
    let reasons = [
        "Pulling",
        "Pulled",
        "Started",
        "HostMaintenance",
        "Terminated",
    ];
    assert_recorded_once(cluster, &namespace, "job", &reasons);
    vk.assert_running();
}

#[test]
fn kubectl_logs_and_exec_reach_the_container() {
    let (cluster, namespace, _aci, mut vk) = start("aci-streams");
    let ns = namespace.name();
    run_pod(
        cluster,
        &namespace,
        &vk,
        "shell",
        json!({
            "containers": [{
                "name": "c",
                "image": fixtures::IMAGE,
                "env": [{ "name": "GREETING", "value": "hi there" }],
            }],
        }),
    );
    let logs = cluster.kubectl_ok(["logs", "-n", ns, "shell"]);
    assert_eq!(
        logs,
        format!("container c started from {}\n", fixtures::IMAGE)
    );
    let stamped = cluster.kubectl_ok(["logs", "-n", ns, "shell", "--timestamps"]);
    assert!(
        stamped.ends_with(&format!(" container c started from {}\n", fixtures::IMAGE))
            && stamped.len() > logs.len() + 20,
        "{stamped}"
    );

    let echo = cluster.kubectl_ok(["exec", "-n", ns, "shell", "--", "echo", "hello", "aci"]);
    assert_eq!(echo, "hello aci\n");
    let env = cluster.kubectl_ok(["exec", "-n", ns, "shell", "--", "env"]);
    assert!(env.starts_with("GREETING=hi there\nKUBERNETES_"), "{env}");
    let output = cluster.kubectl_input(
        ["exec", "-i", "-n", ns, "shell", "--", "cat"],
        "through the web socket\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "through the web socket\n"
    );
    vk.assert_running();
}

#[test]
fn azure_file_volumes_get_the_storage_account_of_their_secret() {
    let (cluster, namespace, aci, mut vk) = start("aci-share");
    let ns = namespace.name();
    let account_key = "c2hhcmUta2V5LW5vdC1sb2dnZWQ=";
    cluster.apply(&json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": "storage", "namespace": ns },
        "stringData": { "azurestorageaccountname": "account", "azurestorageaccountkey": account_key },
    }));
    let share = |secret: &str| {
        json!({
            "containers": [{
                "name": "c",
                "image": fixtures::IMAGE,
                "volumeMounts": [{ "name": "share", "mountPath": "/share" }],
            }],
            "volumes": [{ "name": "share", "azureFile": {
                "shareName": "data", "secretName": secret, "readOnly": true } }],
        })
    };
    run_pod(cluster, &namespace, &vk, "mounter", share("storage"));
    let body = aci.put_body(&format!("{ns}-mounter")).expect("a group");
    let volumes = body["properties"]["volumes"].as_array().expect("volumes");
    let volume = (volumes.iter().find(|v| v["name"] == "share"))
        .unwrap_or_else(|| panic!("no volume share: {body}"));
    assert_eq!(
        volume["azureFile"],
        json!({ "shareName": "data", "storageAccountName": "account",
                "storageAccountKey": account_key, "readOnly": true })
    );

    // Without its Secret the volume cannot be mounted, and no group is made.
    cluster.apply(&fixtures::pod(
        ns,
        "orphan",
        vk.node_name(),
        share("absent"),
    ));
    let event = wait_event(
        cluster,
        &namespace,
        "orphan",
        "Warning",
        "FailedMount",
        READY,
    );
    assert_eq!(
        event["message"],
        r#"MountVolume.SetUp failed for volume "share" : secret "absent" not found"#
    );
    assert!(aci.put_body(&format!("{ns}-orphan")).is_none());
    assert_no_bad_requests(&aci);
    assert!(
        !vk.log().contains(account_key),
        "the account key was logged"
    );
    vk.assert_running();
}

#[test]
fn a_burst_of_429s_slows_vk_down_without_losing_a_pod() {
    let (cluster, namespace, aci, mut vk) = start("aci-throttle");
    let node = vk.node_name().to_string();
    aci.throttle(12);
    cluster.apply(&fixtures::deployment(namespace.name(), "burst", &node, 4));
    wait_running(cluster, &namespace, "app=burst", &node, 4, ROLLOUT);
    assert_eq!(aci.throttled(), 12);
    assert_eq!(groups_of(&aci, &namespace).len(), 4);
    // Every 429 was followed by a retry, not by a second group or a failed pod.
    let puts = aci
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.status == 201)
        .count();
    assert_eq!(puts, 4);
    vk.assert_running();
}

#[test]
fn restarted_vk_adopts_the_existing_groups() {
    let (cluster, namespace, aci, mut vk) = start("aci-adopt");
    run_pod(cluster, &namespace, &vk, "keeper", json!({}));
    wait_start_events(cluster, &namespace, "keeper");
    let group = format!("{}-keeper", namespace.name());
    let before = get_pod(cluster, &namespace, "keeper");
    vk.restart();
    vk.wait_ready(READY);
    // Some sync rounds after the restart.
    std::thread::sleep(Duration::from_secs(5));
    let after = get_pod(cluster, &namespace, "keeper");
    assert!(
        fixtures::running(&after),
        "{}",
        describe_pods(std::slice::from_ref(&after))
    );
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    // The new vk leaves the events of before its start to the old one.
    assert_recorded_once(
        cluster,
        &namespace,
        "keeper",
        &["Pulling", "Pulled", "Started"],
    );
    let touched: Vec<String> = aci
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&group) && matches!(r.method.as_str(), "PUT" | "DELETE"))
        .map(|r| format!("{} {}", r.method, r.status))
        .collect();
    assert_eq!(
        touched,
        ["PUT 201"],
        "the group was created once and never deleted"
    );
    vk.assert_running();
}

#[test]
fn a_wrong_client_secret_gives_one_clear_error_and_a_not_ready_node() {
    let cluster = Cluster::shared();
    let aci = Emulator::start();
    let mut vk = azure_vk(cluster, &aci, "aci-secret", "not-the-secret").start();
    vk.wait_registered(READY);
    let complaint = "stopping heartbeats until it answers";
    wait_for("vk to say why the provider fails", READY, || {
        vk.log().contains(complaint)
    });
    std::thread::sleep(Duration::from_secs(12));
    let log = vk.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(complaint)).collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("invalid_client") && lines[0].contains("AADSTS7000215"),
        "{}",
        lines[0]
    );
    assert!(!log.contains("not-the-secret"), "the secret was logged");
    let ready = cluster.kubectl_ok([
        "get",
        "node",
        vk.node_name(),
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_ne!(ready, "True");
    vk.assert_running();
}

#[test]
fn slow_operations_are_followed_and_settled_groups_cost_one_get_per_poll() {
    let (cluster, namespace, aci, mut vk) = start("aci-poll");
    let node = vk.node_name().to_string();
    aci.set_operation_time(Duration::from_secs(4));
    cluster.apply(&fixtures::deployment(namespace.name(), "slow", &node, 4));
    wait_running(cluster, &namespace, "app=slow", &node, 4, ROLLOUT);
    let operation_polls = aci
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/operations/"))
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert!(
        operation_polls.contains(&202) && operation_polls.contains(&200),
        "the Location URLs were polled until done: {operation_polls:?}"
    );

    // Settled: each poll lists once (two pages of two) and GETs one group in rotation.
    std::thread::sleep(Duration::from_secs(3));
    let seen = aci.requests().len();
    std::thread::sleep(Duration::from_secs(5));
    let window = &aci.requests()[seen..];
    let first_pages = window
        .iter()
        .filter(|r| r.path.ends_with("/containerGroups") && !r.query.contains_key("$skipToken"))
        .count();
    let gets = window
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/containerGroups/"))
        .count();
    assert!(first_pages >= 3, "{first_pages} polls in 5 s");
    assert!(
        gets <= first_pages + 1,
        "{gets} GETs for {first_pages} polls of 4 settled groups"
    );
    vk.assert_running();
}

#[test]
fn pods_aci_cannot_run_are_rejected_without_a_group() {
    let (cluster, namespace, aci, mut vk) = start("azure-refuse");
    let sidecar = json!({
        "initContainers": [{
            "name": "log", "image": fixtures::IMAGE, "restartPolicy": "Always",
        }],
    });
    let on_host = json!({ "hostNetwork": true });
    for (name, extra, field) in [
        (
            "sidecar",
            sidecar,
            "spec.initContainers[log].restartPolicy: Always",
        ),
        ("on-host", on_host, "spec.hostNetwork: true"),
    ] {
        cluster.apply(&fixtures::pod(
            namespace.name(),
            name,
            vk.node_name(),
            extra,
        ));
        let pod = wait_for_ok(&format!("pod {name} to fail"), READY, || {
            let pod = get_pod(cluster, &namespace, name);
            if fixtures::phase(&pod) == "Failed" {
                Ok(pod)
            } else {
                Err(describe_pods(std::slice::from_ref(&pod)))
            }
        });
        let status = &pod["status"];
        assert_eq!(status["reason"], "UnsupportedPodSpec", "{status}");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("Pod was rejected: {field}")),
            "{status}"
        );
        let event = wait_event(
            cluster,
            &namespace,
            name,
            "Warning",
            "UnsupportedPodSpec",
            READY,
        );
        assert!(
            event["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(field),
            "{event}"
        );
    }
    assert_eq!(groups_of(&aci, &namespace), Vec::<String>::new());
    let puts: Vec<String> = aci
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.path)
        .collect();
    assert!(puts.is_empty(), "no group was asked for: {puts:?}");
    vk.assert_running();
}

/// ACI runs liveness and readiness probes itself: the provider says so, vk runs none, and the
/// group it creates carries them in ACI's terms, which the emulator checks against the spec.
#[test]
fn probes_are_handed_to_aci() {
    let (cluster, namespace, aci, vk) = start("probes");
    let container = json!({
        "name": "c",
        "image": fixtures::IMAGE,
        "ports": [{ "name": "http", "containerPort": 8080 }],
        "livenessProbe": {
            "exec": { "command": ["cat", "/tmp/healthy"] },
            "periodSeconds": 5,
            "failureThreshold": 4,
        },
        "readinessProbe": {
            "httpGet": { "path": "/ready", "port": 8080, "scheme": "HTTP" },
            "initialDelaySeconds": 2,
            "timeoutSeconds": 3,
        },
    });
    run_pod(
        cluster,
        &namespace,
        &vk,
        "probed",
        json!({ "containers": [container] }),
    );
    let group = format!("{}-probed", namespace.name());
    let body = aci.put_body(&group).expect("the group was created");
    let properties = &body["properties"]["containers"][0]["properties"];
    let liveness = &properties["livenessProbe"];
    assert_eq!(
        liveness["exec"]["command"],
        json!(["cat", "/tmp/healthy"]),
        "{properties}"
    );
    assert_eq!(liveness["periodSeconds"], 5, "{properties}");
    assert_eq!(liveness["failureThreshold"], 4, "{properties}");
    assert_eq!(properties["readinessProbe"]["initialDelaySeconds"], 2);
    assert_eq!(properties["readinessProbe"]["timeoutSeconds"], 3);
    assert_eq!(
        properties["readinessProbe"]["httpGet"],
        json!({ "path": "/ready", "port": 8080, "scheme": "http" }),
        "{properties}"
    );
    assert_no_bad_requests(&aci);
    // No probe ran in vk: no exec reached the emulator, and no Unhealthy event was recorded.
    let events = fixtures::events(cluster, &namespace, "probed");
    assert!(
        !events.iter().any(|e| e["reason"] == "Unhealthy"),
        "{}",
        describe_events(&events)
    );
    assert!(
        !aci.requests()
            .iter()
            .any(|r| r.path.contains("executeCommand"))
    );
}
