use serde_json::json;
use vk_abi::{VolumeFile, VolumeFiles, k8s_openapi::ByteString};

use super::*;

fn settings() -> GroupSettings {
    GroupSettings {
        node_name: "vk-1".into(),
        region: "westeurope".into(),
        os_type: OsType::Linux,
        subnet_id: None,
        dns: ClusterDns {
            server: Some("10.0.0.10".into()),
            domain: "cluster.local".into(),
        },
    }
}

/// A pod `ns/web` with `spec` (JSON) and the resolved volume files `volumes`.
fn resolved(spec: serde_json::Value, volumes: &[(&str, &[(&str, &str)])]) -> ResolvedPod {
    let pod = serde_json::from_value(json!({
        "metadata": {
            "namespace": "ns", "name": "web", "uid": "u-1",
            "creationTimestamp": "2026-01-02T03:04:05Z",
        },
        "spec": spec,
    }))
    .unwrap();
    let volumes = volumes
        .iter()
        .map(|(name, files)| {
            let files = files
                .iter()
                .map(|(path, data)| {
                    let file = VolumeFile {
                        data: ByteString(data.as_bytes().to_vec()),
                        mode: 0o644,
                    };
                    (path.to_string(), file)
                })
                .collect();
            (name.to_string(), VolumeFiles { files })
        })
        .collect();
    ResolvedPod {
        pod,
        volumes,
        ..ResolvedPod::default()
    }
}

fn build(spec: serde_json::Value) -> Result<(String, ContainerGroup), GroupError> {
    container_group(&resolved(spec, &[]), &settings())
}

fn body(group: &ContainerGroup) -> serde_json::Value {
    serde_json::to_value(group).unwrap()
}

#[test]
fn a_pod_becomes_a_tagged_group() {
    let (name, group) = build(json!({
        "restartPolicy": "OnFailure",
        "containers": [{
            "name": "c", "image": "nginx",
            "command": ["/bin/sh"], "args": ["-c", "serve"],
            "env": [{ "name": "A", "value": "1" }],
            "ports": [{ "containerPort": 80 }, { "containerPort": 53, "protocol": "UDP" }],
        }],
    }))
    .unwrap();
    assert_eq!(name, "ns-web");
    assert_eq!(
        body(&group),
        json!({
            "location": "westeurope",
            "tags": {
                "NodeName": "vk-1", "Namespace": "ns", "PodName": "web", "UID": "u-1",
                "CreationTimestamp": "2026-01-02T03:04:05Z",
            },
            "properties": {
                "containers": [{
                    "name": "c",
                    "properties": {
                        "image": "nginx",
                        "command": ["/bin/sh", "-c", "serve"],
                        "ports": [{ "port": 80, "protocol": "TCP" }, { "port": 53, "protocol": "UDP" }],
                        "environmentVariables": [{ "name": "A", "value": "1" }],
                        "resources": { "requests": { "cpu": 1.0, "memoryInGB": 1.5 } },
                    },
                }],
                "restartPolicy": "OnFailure",
                "ipAddress": {
                    "ports": [{ "port": 80, "protocol": "TCP" }, { "port": 53, "protocol": "UDP" }],
                    "type": "Public",
                },
                "osType": "Linux",
            },
        })
    );
}

#[test]
fn resources_follow_aci_granularity() {
    assert_eq!(cores(250), 0.25);
    assert_eq!(cores(5), 0.01);
    assert_eq!(cores(100), 0.1);
    assert_eq!(cores(1234), 1.23);
    assert_eq!(gigabytes(536_870_912), 0.5);
    assert_eq!(gigabytes(1_073_741_824), 1.0);
    assert_eq!(gigabytes(1_000_000), 0.1);
    let (_, group) = build(json!({ "containers": [{
        "name": "c", "image": "i",
        "resources": {
            "requests": { "cpu": "250m", "memory": "512Mi" },
            "limits": { "cpu": "1500m" },
        },
    }] }))
    .unwrap();
    let resources = &group.properties.containers[0].properties.resources;
    assert_eq!(
        resources.requests,
        Amounts {
            cpu: 0.25,
            memory_in_gb: 0.5
        }
    );
    assert_eq!(
        resources.limits,
        Some(Amounts {
            cpu: 1.5,
            memory_in_gb: 0.5
        })
    );
}

#[test]
fn secret_sourced_variables_are_secure_values() {
    let (_, group) = build(json!({ "containers": [{
        "name": "c", "image": "i",
        "env": [
            { "name": "PLAIN", "value": "p" },
            { "name": "TOKEN", "value": "s3cret",
              "valueFrom": { "secretKeyRef": { "name": "creds", "key": "token" } } },
        ],
    }] }))
    .unwrap();
    assert_eq!(
        body(&group)["properties"]["containers"][0]["properties"]["environmentVariables"],
        json!([{ "name": "PLAIN", "value": "p" }, { "name": "TOKEN", "secureValue": "s3cret" }])
    );
}

#[test]
fn probes_map_to_exec_and_http_get() {
    let (_, group) = build(json!({ "containers": [{
        "name": "c", "image": "i",
        "ports": [{ "name": "http", "containerPort": 8080 }],
        "livenessProbe": { "exec": { "command": ["true"] }, "periodSeconds": 5 },
        "readinessProbe": {
            "httpGet": { "port": "http", "path": "/ready", "scheme": "HTTPS",
                         "httpHeaders": [{ "name": "X", "value": "y" }] },
            "initialDelaySeconds": 2, "failureThreshold": 3,
        },
    }] }))
    .unwrap();
    let container = &body(&group)["properties"]["containers"][0]["properties"];
    assert_eq!(
        container["livenessProbe"],
        json!({ "exec": { "command": ["true"] }, "periodSeconds": 5 })
    );
    assert_eq!(
        container["readinessProbe"],
        json!({
            "httpGet": { "path": "/ready", "port": 8080, "scheme": "https",
                         "httpHeaders": [{ "name": "X", "value": "y" }] },
            "initialDelaySeconds": 2, "failureThreshold": 3,
        })
    );
}

#[test]
fn what_aci_cannot_express_is_named() {
    let container = |extra: serde_json::Value| {
        let mut c = json!({ "name": "c", "image": "i" });
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        build(json!({ "containers": [c] })).unwrap_err().to_string()
    };
    assert!(container(json!({ "args": ["x"] })).contains("args without command"));
    assert!(
        container(json!({ "startupProbe": { "exec": { "command": ["true"] } } }))
            .contains("startup probe")
    );
    assert!(
        container(json!({ "lifecycle": { "preStop": { "exec": { "command": ["x"] } } } }))
            .contains("lifecycle")
    );
    assert!(
        container(json!({ "livenessProbe": { "tcpSocket": { "port": 80 } } }))
            .contains("tcpSocket")
    );
    assert!(
        container(json!({ "readinessProbe": { "httpGet": { "port": "web" } } }))
            .contains("\"web\"")
    );
    assert!(
        container(json!({ "resources": { "limits": { "nvidia.com/gpu": "1" } } })).contains("GPU")
    );
    assert!(container(json!({ "resources": { "requests": { "cpu": "lots" } } })).contains("cpu"));
    let error = build(json!({
        "containers": [{ "name": "c", "image": "i" }],
        "volumes": [{ "name": "data", "persistentVolumeClaim": { "claimName": "x" } }],
    }))
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "volume data: persistentVolumeClaim volumes are not supported by Azure Container Instances"
    );
}

#[test]
fn image_pull_secrets_become_registry_credentials() {
    let mut pod = resolved(
        json!({ "containers": [{ "name": "c", "image": "i" }] }),
        &[],
    );
    pod.registry_credentials = vec![
        vk_abi::RegistryCredential {
            server: "https://index.docker.io/v1/".into(),
            username: "me".into(),
            password: "pw".into(),
        },
        vk_abi::RegistryCredential {
            server: "example.azurecr.io".into(),
            username: "app".into(),
            password: "s3cret-pw".into(),
        },
    ];
    let (_, group) = container_group(&pod, &settings()).unwrap();
    assert_eq!(
        body(&group)["properties"]["imageRegistryCredentials"],
        json!([
            { "server": "index.docker.io", "username": "me", "password": "pw" },
            { "server": "example.azurecr.io", "username": "app", "password": "s3cret-pw" },
        ])
    );
    let debug = format!("{group:?}");
    assert!(
        debug.contains("example.azurecr.io") && !debug.contains("s3cret-pw"),
        "{debug}"
    );
}

#[test]
fn volumes_become_aci_volumes() {
    let spec = json!({
        "containers": [{
            "name": "c", "image": "i",
            "volumeMounts": [
                { "name": "scratch", "mountPath": "/scratch" },
                { "name": "config", "mountPath": "/etc/config", "readOnly": true },
                { "name": "empty", "mountPath": "/empty" },
                { "name": "share", "mountPath": "/share" },
                { "name": "repo", "mountPath": "/repo" },
            ],
        }],
        "volumes": [
            { "name": "scratch", "emptyDir": {} },
            { "name": "config", "configMap": { "name": "settings" } },
            { "name": "empty", "secret": { "secretName": "nothing", "optional": true } },
            { "name": "share", "azureFile": { "shareName": "data", "secretName": "storage", "readOnly": true } },
            { "name": "repo", "gitRepo": { "repository": "https://example.invalid/r.git", "revision": "main" } },
        ],
    });
    let pod = resolved(
        spec,
        &[
            ("config", &[("key", "value")]),
            (
                "share",
                &[
                    (STORAGE_ACCOUNT_NAME, "account\n"),
                    (STORAGE_ACCOUNT_KEY, "s3cret-key"),
                ],
            ),
        ],
    );
    let (_, group) = container_group(&pod, &settings()).unwrap();
    let body = body(&group);
    assert_eq!(
        body["properties"]["volumes"],
        json!([
            { "name": "scratch", "emptyDir": {} },
            { "name": "config", "secret": { "key": "dmFsdWU=" } },
            { "name": "share", "azureFile": {
                "shareName": "data", "storageAccountName": "account",
                "storageAccountKey": "s3cret-key", "readOnly": true } },
            { "name": "repo", "gitRepo": { "repository": "https://example.invalid/r.git", "revision": "main" } },
        ])
    );
    let mounts: Vec<&str> = group.properties.containers[0]
        .properties
        .volume_mounts
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        mounts,
        ["scratch", "config", "share", "repo"],
        "the empty volume's mount goes"
    );
    let debug = format!("{group:?}");
    assert!(
        debug.contains("share_name: \"data\"") && !debug.contains("s3cret-key"),
        "{debug}"
    );

    let without_account = resolved(
        json!({
            "containers": [{ "name": "c", "image": "i" }],
            "volumes": [{ "name": "share", "azureFile": { "shareName": "d", "secretName": "storage" } }],
        }),
        &[],
    );
    let error = container_group(&without_account, &settings()).unwrap_err();
    assert!(error.to_string().contains("Secret storage"), "{error}");
}

#[test]
fn init_containers_and_a_subnet_with_cluster_dns() {
    let settings = GroupSettings {
        subnet_id: Some("/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/aci".into()),
        ..settings()
    };
    let pod = resolved(
        json!({
            "initContainers": [{ "name": "init", "image": "busybox", "command": ["true"],
                                 "resources": { "requests": { "cpu": "1" } } }],
            "containers": [{ "name": "c", "image": "i", "ports": [{ "containerPort": 80 }] }],
            "dnsConfig": { "nameservers": ["1.1.1.1"], "searches": ["example.org"],
                           "options": [{ "name": "ndots", "value": "2" }, { "name": "edns0" }] },
        }),
        &[],
    );
    let (_, group) = container_group(&pod, &settings).unwrap();
    let body = body(&group);
    let properties = &body["properties"];
    assert_eq!(
        properties["initContainers"],
        json!([{ "name": "init", "properties": { "image": "busybox", "command": ["true"] } }])
    );
    assert_eq!(properties["ipAddress"]["type"], "Private");
    assert_eq!(
        properties["subnetIds"][0]["id"],
        settings.subnet_id.clone().unwrap()
    );
    assert_eq!(
        properties["dnsConfig"],
        json!({
            "nameServers": ["10.0.0.10", "1.1.1.1"],
            "searchDomains": "ns.svc.cluster.local svc.cluster.local cluster.local example.org",
            "options": "ndots:2 edns0",
        })
    );
}

#[test]
fn pods_aci_cannot_run_are_refused_by_field() {
    let app = json!({"name": "app", "image": "nginx"});
    let refused = |spec: serde_json::Value| refusal(&resolved(spec, &[]).pod, &settings()).unwrap();
    let sidecar = refused(json!({
        "containers": [app],
        "initContainers": [{"name": "log", "image": "busybox", "restartPolicy": "Always"}],
    }));
    assert_eq!(sidecar.reason, "UnsupportedPodSpec");
    assert_eq!(
        sidecar.message,
        "spec.initContainers[log].restartPolicy: Always (a sidecar) is not supported by Azure \
         Container Instances: ACI runs every init container to completion before the containers \
         start"
    );
    let host = refused(json!({"containers": [app], "hostNetwork": true}));
    assert!(
        host.message
            .starts_with("spec.hostNetwork: true is not supported")
    );
    let pid = refused(json!({"containers": [app], "hostPID": true}));
    assert!(pid.message.starts_with("spec.hostPID: true"));
    let users = refused(json!({"containers": [app], "hostUsers": false}));
    assert!(users.message.starts_with("spec.hostUsers: false"));
    let resources = refused(json!({"containers": [app], "resources": {"limits": {"cpu": "1"}}}));
    assert_eq!(resources.reason, "PodLevelResourcesNotSupported");
    let image = refused(json!({
        "containers": [app],
        "volumes": [{"name": "tools", "image": {"reference": "quay.io/t:1"}}],
    }));
    assert_eq!(
        image.message,
        "volume tools: image volumes are not supported by Azure Container Instances"
    );
    let hook = refused(json!({"containers": [{
        "name": "app", "image": "nginx", "lifecycle": {"preStop": {"exec": {"command": ["x"]}}},
    }]}));
    assert_eq!(hook.reason, "UnsupportedPodSpec");
}

#[test]
fn what_depends_on_resolved_files_is_left_to_create() {
    let spec = json!({
        "containers": [{"name": "app", "image": "nginx"}],
        "volumes": [
            {"name": "share", "azureFile": {"secretName": "acct", "shareName": "s"}},
            {"name": "cfg", "configMap": {"name": "c"}},
        ],
    });
    assert_eq!(refusal(&resolved(spec, &[]).pod, &settings()), None);
}
