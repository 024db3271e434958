use serde_json::json;
use vk_abi::{VolumeFile, VolumeFiles, k8s_openapi::ByteString};

use super::*;

fn infra() -> Infra {
    Infra {
        image: "localhost/pause".into(),
        command: None,
    }
}

fn resolved(spec: serde_json::Value) -> ResolvedPod {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"namespace": "ns", "name": "web", "uid": "u-1"},
        "spec": spec,
    }))
    .unwrap();
    ResolvedPod {
        pod,
        ..ResolvedPod::default()
    }
}

#[test]
fn containers_in_start_order_with_labels_and_settings() {
    let pod = resolved(json!({
        "restartPolicy": "OnFailure",
        "initContainers": [{"name": "setup", "image": "busybox:1.36"}],
        "containers": [{
            "name": "app", "image": "busybox", "command": ["sh", "-c"], "args": ["echo $A"],
            "env": [{"name": "A", "value": "1"}, {"name": "EMPTY"}],
            "workingDir": "/srv", "imagePullPolicy": "Never",
            "ports": [{"containerPort": 80, "hostPort": 8080}],
            "resources": {"limits": {"cpu": "1500m", "memory": "64Mi"},
                          "requests": {"cpu": "250m", "memory": "32Mi"}},
            "securityContext": {"runAsUser": 1000, "runAsGroup": 2000}
        }]
    }));
    let plan = plan(&pod, "node-1", &infra(), Some("pods")).unwrap();
    assert_eq!(plan.identity.container_name("app"), "k8s_app_web_ns_u-1_0");
    let names: Vec<_> = plan
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.role))
        .collect();
    assert_eq!(names, [("setup", Role::Init), ("app", Role::App)]);
    assert_eq!(plan.containers[0].pull_policy, PullPolicy::IfNotPresent);

    let app = &plan.containers[1];
    assert_eq!(app.pull_policy, PullPolicy::Never);
    let body = &app.body;
    assert_eq!(
        body.entrypoint.as_deref(),
        Some(&["sh".to_string(), "-c".into()][..])
    );
    assert_eq!(body.cmd.as_deref(), Some(&["echo $A".to_string()][..]));
    assert_eq!(
        body.env.as_deref(),
        Some(&["A=1".to_string(), "EMPTY=".into(), "HOSTNAME=web".into()][..])
    );
    assert_eq!(body.working_dir.as_deref(), Some("/srv"));
    assert_eq!(body.user.as_deref(), Some("1000:2000"));
    let labels = body.labels.as_ref().unwrap();
    for (label, value) in [
        (NODE_LABEL, "node-1"),
        (NAMESPACE_LABEL, "ns"),
        (POD_LABEL, "web"),
        (UID_LABEL, "u-1"),
        (CONTAINER_LABEL, "app"),
        (ROLE_LABEL, "app"),
        (INDEX_LABEL, "1"),
        (RESTART_POLICY_LABEL, "OnFailure"),
    ] {
        assert_eq!(labels[label], value, "{label}");
    }
    let host = body.host_config.as_ref().unwrap();
    assert_eq!(host.nano_cpus, Some(1_500_000_000));
    assert_eq!(host.cpu_shares, Some(256));
    assert_eq!(host.memory, Some(64 << 20));
    assert_eq!(host.memory_reservation, Some(32 << 20));

    let infra = &plan.infra.body;
    assert_eq!(infra.hostname.as_deref(), Some("web"));
    assert_eq!(
        infra.exposed_ports.as_deref(),
        Some(&["80/tcp".to_string()][..])
    );
    let infra_host = infra.host_config.as_ref().unwrap();
    assert_eq!(infra_host.network_mode.as_deref(), Some("pods"));
    assert_eq!(
        infra_host.port_bindings.as_ref().unwrap()["80/tcp"]
            .as_ref()
            .unwrap()[0]
            .host_port
            .as_deref(),
        Some("8080")
    );
    assert_eq!(infra.labels.as_ref().unwrap()[ROLE_LABEL], "infra");
}

#[test]
fn unset_command_stays_unset_and_latest_is_always_pulled() {
    let plan = plan(
        &resolved(json!({"containers": [{"name": "c", "image": "registry:5000/busybox"}]})),
        "n",
        &infra(),
        None,
    )
    .unwrap();
    let c = &plan.containers[0];
    assert_eq!(
        (c.body.entrypoint.clone(), c.body.cmd.clone()),
        (None, None)
    );
    assert_eq!(c.pull_policy, PullPolicy::Always);
    assert_eq!(
        c.body.labels.as_ref().unwrap()[RESTART_POLICY_LABEL],
        "Always"
    );
}

#[test]
fn volumes_become_engine_volumes_and_files() {
    let mut pod = resolved(json!({
        "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "config", "configMap": {"name": "c"}}],
        "containers": [{"name": "c", "image": "busybox:1",
            "volumeMounts": [
                {"name": "scratch", "mountPath": "/scratch"},
                {"name": "config", "mountPath": "/etc/config/"},
                {"name": "config", "mountPath": "/etc/one.conf", "subPath": "dir/one.conf"}
            ]}]
    }));
    let file = |data: &str| VolumeFile {
        data: ByteString(data.as_bytes().to_vec()),
        mode: 0o644,
    };
    pod.volumes.insert(
        "config".into(),
        VolumeFiles {
            files: [
                ("key".to_string(), file("v")),
                ("dir/one.conf".to_string(), file("1")),
            ]
            .into(),
        },
    );
    let plan = plan(&pod, "n", &infra(), None).unwrap();
    assert_eq!(plan.volumes, ["k8s_scratch_web_ns_u-1"]);
    let c = &plan.containers[0];
    let mounts = c
        .body
        .host_config
        .as_ref()
        .unwrap()
        .mounts
        .as_ref()
        .unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].source.as_deref(), Some("k8s_scratch_web_ns_u-1"));
    assert_eq!(mounts[0].target.as_deref(), Some("/scratch"));
    let paths: Vec<_> = c.files.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "/etc/config/dir/one.conf",
            "/etc/config/key",
            "/etc/one.conf"
        ]
    );
}

#[test]
fn what_cannot_be_run_is_refused_clearly() {
    let cases = [
        (
            json!({"containers": [{"name": "c"}]}),
            "container c: no image",
        ),
        (
            json!({"volumes": [{"name": "v", "nfs": {"server": "s", "path": "/"}}], "containers": [{"name": "c", "image": "i"}]}),
            "volume \"v\": only emptyDir",
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}]}),
            "volume mount \"x\" names no volume",
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "lots"}}}]}),
            "container c: resources: quantity \"lots\"",
        ),
    ];
    for (spec, expected) in cases {
        let error = plan(&resolved(spec), "n", &infra(), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn host_namespaces_use_the_engines_host_modes() {
    let pod = resolved(json!({
        "hostNetwork": true, "hostPID": true, "hostIPC": true,
        "containers": [{"name": "app", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 80}]}]
    }));
    let plan = plan(&pod, "node-1", &infra(), Some("pods")).unwrap();
    let infra = plan.infra.body.host_config.as_ref().unwrap();
    assert_eq!(infra.network_mode.as_deref(), Some("host"));
    assert_eq!(infra.ipc_mode.as_deref(), Some("host"));
    assert_eq!(infra.pid_mode.as_deref(), Some("host"));
    assert_eq!(infra.port_bindings, None, "the host's ports are the pod's");
    assert_eq!(
        plan.infra.body.hostname, None,
        "the host's name is the pod's"
    );
    let app = &plan.containers[0].body;
    assert!(
        !app.env.iter().flatten().any(|v| v.starts_with("HOSTNAME=")),
        "{:?}",
        app.env
    );

    let mut joined = HostConfig::default();
    plan.host.join(&mut joined, "infra-id", true);
    assert_eq!(joined.network_mode.as_deref(), Some("host"));
    assert_eq!(joined.uts_mode.as_deref(), Some("host"));
    assert_eq!(joined.ipc_mode.as_deref(), Some("host"));
    assert_eq!(joined.pid_mode.as_deref(), Some("host"));

    let mut own = HostConfig::default();
    HostNamespaces::default().join(&mut own, "infra-id", false);
    assert_eq!(own.network_mode.as_deref(), Some("container:infra-id"));
    assert_eq!(own.ipc_mode.as_deref(), Some("container:infra-id"));
    assert_eq!(own.uts_mode, None, "Docker cannot share the UTS namespace");
    assert_eq!(own.pid_mode, None);
}
