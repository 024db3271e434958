use k8s_openapi::api::core::v1::{PodIP, PodStatus};
use serde_json::json;

use crate::{
    events::EventType,
    resolve::{
        PodEvent, ResolveError,
        fake::{FakeObjects, env_of, pod, pod_with_container, resolve_now},
    },
};

fn objects() -> FakeObjects {
    FakeObjects::new()
        .with_config_map(
            "ns",
            "settings",
            &[("A", "from-cm"), ("B", "b-cm"), ("REF", "$(A)")],
        )
        .with_secret(
            "ns",
            "creds",
            &[("B", b"b-secret"), ("PASSWORD", b"s3cret")],
        )
}

fn warning(reason: &'static str, message: &str) -> PodEvent {
    PodEvent {
        type_: EventType::Warning,
        reason,
        message: message.into(),
        field_path: Some("spec.containers{app}".into()),
    }
}

#[test]
fn later_sources_override_earlier_ones() {
    let pod = pod_with_container(json!({
        "envFrom": [
            {"configMapRef": {"name": "settings"}},
            {"secretRef": {"name": "creds"}},
            {"configMapRef": {"name": "settings"}, "prefix": "CM_"},
        ],
        "env": [
            {"name": "A", "value": "from-env"},
            {"name": "C", "value": "first"},
            {"name": "C", "value": "second"},
        ],
    }));
    let resolution = resolve_now(&pod, &objects()).unwrap();
    let env = env_of(&resolution, "app");
    assert_eq!(env["A"], "from-env");
    assert_eq!(env["B"], "b-secret");
    assert_eq!(env["PASSWORD"], "s3cret");
    assert_eq!(env["CM_A"], "from-cm");
    assert_eq!(env["CM_B"], "b-cm");
    assert_eq!(env["C"], "second");
    assert!(resolution.events.is_empty());
    let container = &resolution.pod.pod.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.env_from, None);
    let names: Vec<&str> = (container.env.iter().flatten())
        .map(|variable| variable.name.as_str())
        .collect();
    let (user, links) = names.split_at(
        names
            .iter()
            .position(|n| n.starts_with("KUBERNETES"))
            .unwrap(),
    );
    assert!(user.is_sorted() && links.is_sorted(), "{names:?}");
    assert_eq!(user.len() + 8, names.len(), "every name once: {names:?}");
}

#[test]
fn values_expand_earlier_variables_and_service_links_only() {
    let pod = pod_with_container(json!({
        "envFrom": [{"configMapRef": {"name": "settings"}}],
        "env": [
            {"name": "FIRST", "value": "1"},
            {"name": "USES", "value": "$(FIRST)-$(A)-$(LATER)-$(KUBERNETES_SERVICE_HOST)-$(NOPE)"},
            {"name": "ESCAPED", "value": "$$(FIRST) $$$(FIRST) $(FIRST"},
            {"name": "LATER", "value": "2"},
            {"name": "FROM_REF", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "REF"}}},
            {"name": "EMPTY", "value": ""},
            {"name": "UNSET"},
            {"name": "KUBERNETES_SERVICE_HOST", "value": "own"},
        ],
    }));
    let env = env_of(&resolve_now(&pod, &objects()).unwrap(), "app");
    assert_eq!(env["USES"], "1-from-cm-$(LATER)-10.96.0.1-$(NOPE)");
    assert_eq!(env["ESCAPED"], "$(FIRST) $1 $(FIRST");
    assert_eq!(
        env["FROM_REF"], "$(A)",
        "values from references are not expanded"
    );
    assert_eq!(env["EMPTY"], "");
    assert_eq!(env["UNSET"], "");
    assert_eq!(
        env["KUBERNETES_SERVICE_HOST"], "own",
        "user variables shadow service links"
    );
    assert_eq!(env["KUBERNETES_SERVICE_PORT"], "443");
}

#[test]
fn every_key_is_passed_on_whatever_its_name() {
    let objects = FakeObjects::new().with_binary_config_map(
        "ns",
        "odd",
        &[("1st", "a"), ("dotted.key", "b"), ("-dash", "c")],
        &[("blob", b"\x00\x01")],
    );
    let pod = pod_with_container(json!({"envFrom": [{"configMapRef": {"name": "odd"}}]}));
    let resolution = resolve_now(&pod, &objects).unwrap();
    let env = env_of(&resolution, "app");
    assert_eq!(
        (
            env["1st"].as_str(),
            env["dotted.key"].as_str(),
            env["-dash"].as_str()
        ),
        ("a", "b", "c")
    );
    assert!(
        !env.contains_key("blob"),
        "binaryData is not for the environment"
    );
    assert!(
        resolution.events.is_empty(),
        "kubelet 1.30+ warns about no names"
    );
}

#[test]
fn optional_env_from_misses_are_skipped_with_a_warning() {
    let pod = pod_with_container(json!({
        "envFrom": [
            {"configMapRef": {"name": "gone", "optional": true}},
            {"secretRef": {"name": "hidden", "optional": true}},
        ],
    }));
    let resolution = resolve_now(&pod, &objects()).unwrap();
    assert_eq!(
        resolution.events,
        [
            warning("OptionalConfigMapNotFound", "configmap \"gone\" not found"),
            warning("OptionalSecretNotFound", "secret \"hidden\" not found"),
        ]
    );
}

#[test]
fn mandatory_env_from_misses_fail() {
    for (source, message, reason) in [
        (
            json!({"configMapRef": {"name": "gone"}}),
            "configmap \"gone\" not found",
            "MandatoryConfigMapNotFound",
        ),
        (
            json!({"secretRef": {"name": "gone", "optional": false}}),
            "secret \"gone\" not found",
            "MandatorySecretNotFound",
        ),
    ] {
        let pod = pod_with_container(json!({"envFrom": [source]}));
        let error = resolve_now(&pod, &objects()).unwrap_err();
        assert_eq!(error.to_string(), message);
        assert_eq!(error.reason(), reason);
        assert!(
            matches!(error.scope(), Some(crate::resolve::Scope::Container(c)) if c.field_path() == "spec.containers{app}")
        );
    }
}

#[test]
fn optional_key_reference_misses_keep_what_was_there() {
    let pod = pod_with_container(json!({
        "envFrom": [{"configMapRef": {"name": "settings"}}],
        "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "A", "optional": true}}},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope", "optional": true}}},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": true}}},
            {"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope", "optional": true}}},
        ],
    }));
    let resolution = resolve_now(&pod, &objects()).unwrap();
    let env = env_of(&resolution, "app");
    assert_eq!(env["A"], "from-cm");
    assert_eq!(env["B"], "b-cm");
    assert!(!env.contains_key("S") && !env.contains_key("T"));
    assert_eq!(
        resolution.events,
        [
            warning(
                "OptionalConfigMapNotFound",
                "skipping optional envvar \"A\": configmap \"gone\" not found"
            ),
            warning(
                "OptionalConfigMapKeyNotFound",
                "skipping optional envvar \"B\": key \"nope\" does not exist in configmap \"settings\"",
            ),
            warning(
                "OptionalSecretNotFound",
                "skipping optional envvar \"S\": secret \"gone\" not found"
            ),
            warning(
                "OptionalSecretKeyNotFound",
                "skipping optional envvar \"T\": key \"nope\" does not exist in secret \"creds\"",
            ),
        ]
    );
}

#[test]
fn mandatory_key_reference_misses_fail() {
    let cases = [
        (
            json!({"configMapKeyRef": {"name": "gone", "key": "A"}}),
            "configmap \"gone\" not found",
            "MandatoryConfigMapNotFound",
        ),
        (
            json!({"secretKeyRef": {"name": "gone", "key": "A"}}),
            "secret \"gone\" not found",
            "MandatorySecretNotFound",
        ),
        (
            json!({"configMapKeyRef": {"name": "settings", "key": "nope"}}),
            "couldn't find key nope in ConfigMap ns/settings",
            "MandatoryConfigMapKeyNotFound",
        ),
        (
            json!({"secretKeyRef": {"name": "creds", "key": "nope", "optional": false}}),
            "couldn't find key nope in Secret ns/creds",
            "MandatorySecretKeyNotFound",
        ),
    ];
    for (reference, message, reason) in cases {
        let pod = pod_with_container(json!({"env": [{"name": "X", "valueFrom": reference}]}));
        let error = resolve_now(&pod, &objects()).unwrap_err();
        assert_eq!(
            (error.to_string().as_str(), error.reason()),
            (message, reason)
        );
    }
}

#[test]
fn read_failures_fail_even_for_optional_references() {
    let objects = objects().forbidding("settings").forbidding("creds");
    let cases = [
        (
            json!({"envFrom": [{"configMapRef": {"name": "settings", "optional": true}}]}),
            "FailedToReadOptionalConfigMap",
        ),
        (
            json!({"envFrom": [{"configMapRef": {"name": "settings"}}]}),
            "FailedToReadMandatoryConfigMap",
        ),
        (
            json!({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "B", "optional": true}}}]}),
            "FailedToReadOptionalSecret",
        ),
        (
            json!({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "B"}}}]}),
            "FailedToReadMandatorySecret",
        ),
    ];
    for (container, reason) in cases {
        let error = resolve_now(&pod_with_container(container), &objects).unwrap_err();
        assert_eq!(error.reason(), reason);
        assert!(matches!(error, ResolveError::Read { .. }), "{error}");
        assert!(error.to_string().starts_with("failed to read "), "{error}");
    }
}

#[test]
fn field_references_read_the_pod() {
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    let pod = pod_with_container(json!({"env": [
        field("NAME", "metadata.name"),
        field("NAMESPACE", "metadata.namespace"),
        field("UID", "metadata.uid"),
        field("APP", "metadata.labels['app']"),
        field("MISSING", "metadata.labels['missing']"),
        field("NOTE", "metadata.annotations['example.com/note']"),
        field("NODE", "spec.nodeName"),
        field("HOST", "spec.host"),
        field("ACCOUNT", "spec.serviceAccountName"),
        field("HOST_IP", "status.hostIP"),
        field("HOST_IPS", "status.hostIPs"),
        {"name": "V1", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
    ]}));
    let resolution = resolve_now(&pod, &objects()).unwrap();
    let env = env_of(&resolution, "app");
    let expected = [
        ("NAME", "web"),
        ("NAMESPACE", "ns"),
        ("UID", "uid-1"),
        ("APP", "web"),
        ("MISSING", ""),
        ("NOTE", "say \"hi\"\n"),
        ("NODE", "vk-node"),
        ("HOST", "vk-node"),
        ("ACCOUNT", "sa"),
        ("HOST_IP", "192.0.2.10"),
        ("HOST_IPS", "192.0.2.10"),
        ("V1", "web"),
    ];
    for (name, value) in expected {
        assert_eq!(env[name], value, "{name}");
    }
    assert!(!resolution.waits_for_pod_ip);
}

#[test]
fn pod_ips_are_empty_until_known() {
    let mut pod = pod_with_container(json!({"env": [
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
    ]}));
    let before = resolve_now(&pod, &objects()).unwrap();
    assert!(before.waits_for_pod_ip);
    assert_eq!(
        (
            env_of(&before, "app")["IP"].as_str(),
            env_of(&before, "app")["IPS"].as_str()
        ),
        ("", "")
    );

    pod.status = Some(PodStatus {
        pod_ip: Some("10.0.0.5".into()),
        ..PodStatus::default()
    });
    let after = resolve_now(&pod, &objects()).unwrap();
    assert!(!after.waits_for_pod_ip);
    assert_eq!(env_of(&after, "app")["IP"], "10.0.0.5");
    assert_eq!(env_of(&after, "app")["IPS"], "10.0.0.5");

    let ip = |ip: &str| PodIP { ip: ip.into() };
    pod.status = Some(PodStatus {
        pod_ip: Some("fd00::5".into()),
        pod_ips: Some(vec![ip("fd00::5"), ip("fd00::6"), ip("10.0.0.5")]),
        ..PodStatus::default()
    });
    let dual = resolve_now(&pod, &objects()).unwrap();
    assert_eq!(
        env_of(&dual, "app")["IP"],
        "10.0.0.5",
        "the node's family comes first"
    );
    assert_eq!(env_of(&dual, "app")["IPS"], "10.0.0.5,fd00::5");
}

#[test]
fn host_network_pods_have_the_node_ips() {
    let mut pod = pod_with_container(json!({"env": [
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]}));
    pod.spec.as_mut().unwrap().host_network = Some(true);
    let resolution = resolve_now(&pod, &objects()).unwrap();
    assert!(!resolution.waits_for_pod_ip);
    assert_eq!(env_of(&resolution, "app")["IP"], "192.0.2.10");
}

#[test]
fn unsupported_field_references_fail() {
    for (selector, detail) in [
        (
            json!({"fieldPath": "spec.restartPolicy"}),
            "unsupported fieldPath: spec.restartPolicy",
        ),
        (
            json!({"apiVersion": "v2", "fieldPath": "metadata.name"}),
            "unsupported pod version: v2",
        ),
        (
            json!({"fieldPath": "spec.nodeName['x']"}),
            "fieldPath \"spec.nodeName['x']\" does not support subscript",
        ),
    ] {
        let pod = pod_with_container(
            json!({"env": [{"name": "X", "valueFrom": {"fieldRef": selector}}]}),
        );
        let error = resolve_now(&pod, &objects()).unwrap_err();
        assert_eq!(error.to_string(), "cannot resolve fieldRef of \"X\"");
        assert_eq!(
            std::error::Error::source(&error).unwrap().to_string(),
            detail
        );
        assert_eq!(error.reason(), "Failed");
    }
}

#[test]
fn resource_references_round_up_in_divisor_units() {
    let resource = |name: &str, selector: serde_json::Value| json!({"name": name, "valueFrom": {"resourceFieldRef": selector}});
    let pod = pod(json!({
        "resources": {"limits": {"memory": "1Gi"}},
        "containers": [
            {
                "name": "app",
                "resources": {
                    "requests": {"cpu": "250m", "memory": "100M", "hugepages-2Mi": "4Mi"},
                    "limits": {"cpu": "250m", "memory": "0"},
                },
                "env": [
                    resource("CPU", json!({"resource": "limits.cpu"})),
                    resource("CPU_M", json!({"resource": "limits.cpu", "divisor": "1m"})),
                    resource("MEM_REQ", json!({"resource": "requests.memory", "divisor": "1Mi"})),
                    resource("MEM_LIMIT", json!({"resource": "limits.memory", "divisor": "1Mi"})),
                    resource("DISK", json!({"resource": "limits.ephemeral-storage", "divisor": "1Gi"})),
                    resource("DISK_REQ", json!({"resource": "requests.ephemeral-storage"})),
                    resource("HUGE", json!({"resource": "requests.hugepages-2Mi", "divisor": "1Mi"})),
                    resource("HUGE_LIMIT", json!({"resource": "limits.hugepages-2Mi"})),
                    resource("SIDE_CPU", json!({"containerName": "side", "resource": "limits.cpu"})),
                    resource("SIDE_REQ", json!({"containerName": "side", "resource": "requests.cpu", "divisor": "1m"})),
                ],
            },
            {"name": "side", "resources": {"requests": {"cpu": "1.5"}}},
        ],
    }));
    let env = env_of(&resolve_now(&pod, &objects()).unwrap(), "app");
    let expected = [
        ("CPU", "1"),
        ("CPU_M", "250"),
        ("MEM_REQ", "96"),
        ("MEM_LIMIT", "1024"), // zero: the pod's limit
        ("DISK", "100"),       // unset: the node's allocatable
        ("DISK_REQ", "0"),     // requests are never defaulted
        ("HUGE", "4"),
        ("HUGE_LIMIT", "0"), // nor hugepages limits
        ("SIDE_CPU", "4"),
        ("SIDE_REQ", "1500"),
    ];
    for (name, value) in expected {
        assert_eq!(env[name], value, "{name}");
    }
}

#[test]
fn bad_resource_references_fail() {
    for (selector, detail) in [
        (
            json!({"resource": "limits.gpu"}),
            "unsupported container resource : limits.gpu",
        ),
        (
            json!({"resource": "cpu"}),
            "unsupported container resource : cpu",
        ),
        (
            json!({"containerName": "ghost", "resource": "limits.cpu"}),
            "container ghost not found",
        ),
        (
            json!({"resource": "limits.cpu", "divisor": "lots"}),
            "invalid quantity for divisor",
        ),
    ] {
        let pod = pod_with_container(
            json!({"env": [{"name": "X", "valueFrom": {"resourceFieldRef": selector}}]}),
        );
        let error = resolve_now(&pod, &objects()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot resolve resourceFieldRef of \"X\""
        );
        assert_eq!(
            std::error::Error::source(&error).unwrap().to_string(),
            detail
        );
    }
}

#[test]
fn service_links_follow_enable_service_links() {
    let objects = objects()
        .with_service(
            "ns",
            "my-db",
            "10.96.0.20",
            json!([{"name": "pg-main", "port": 5432}, {"name": "metrics", "port": 9187, "protocol": "UDP"}]),
        )
        .with_service("ns", "v6", "fd00::20", json!([{"port": 80}]))
        .with_service("ns", "headless", "None", json!([{"port": 80}]))
        .with_service("ns", "no-ip", "", json!([{"port": 80}]))
        .with_service("other", "elsewhere", "10.96.0.30", json!([{"port": 80}]));
    let mut pod = pod(json!({}));
    let linked = env_of(&resolve_now(&pod, &objects).unwrap(), "app");
    let expected = [
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
        ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
        ("KUBERNETES_PORT_443_TCP_PORT", "443"),
        ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
        ("MY_DB_SERVICE_HOST", "10.96.0.20"),
        ("MY_DB_SERVICE_PORT", "5432"),
        ("MY_DB_SERVICE_PORT_PG_MAIN", "5432"),
        ("MY_DB_SERVICE_PORT_METRICS", "9187"),
        ("MY_DB_PORT", "tcp://10.96.0.20:5432"),
        ("MY_DB_PORT_5432_TCP", "tcp://10.96.0.20:5432"),
        ("MY_DB_PORT_5432_TCP_PROTO", "tcp"),
        ("MY_DB_PORT_5432_TCP_PORT", "5432"),
        ("MY_DB_PORT_5432_TCP_ADDR", "10.96.0.20"),
        ("MY_DB_PORT_9187_UDP", "udp://10.96.0.20:9187"),
        ("MY_DB_PORT_9187_UDP_PROTO", "udp"),
        ("MY_DB_PORT_9187_UDP_PORT", "9187"),
        ("MY_DB_PORT_9187_UDP_ADDR", "10.96.0.20"),
        ("V6_SERVICE_HOST", "fd00::20"),
        ("V6_SERVICE_PORT", "80"),
        ("V6_PORT", "tcp://[fd00::20]:80"),
        ("V6_PORT_80_TCP", "tcp://[fd00::20]:80"),
        ("V6_PORT_80_TCP_PROTO", "tcp"),
        ("V6_PORT_80_TCP_PORT", "80"),
        ("V6_PORT_80_TCP_ADDR", "fd00::20"),
    ];
    assert_eq!(
        linked,
        expected
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    );

    pod.spec.as_mut().unwrap().enable_service_links = Some(false);
    let unlinked = env_of(&resolve_now(&pod, &objects).unwrap(), "app");
    assert_eq!(
        unlinked,
        expected[..8]
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    );
}

#[test]
fn a_namespace_service_called_kubernetes_replaces_the_api_servers() {
    let objects = objects().with_service("ns", "kubernetes", "10.96.0.99", json!([{"port": 8443}]));
    let env = env_of(&resolve_now(&pod(json!({})), &objects).unwrap(), "app");
    assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.96.0.99");
    assert!(!env.contains_key("KUBERNETES_SERVICE_PORT_HTTPS"));
}

#[test]
fn pods_in_the_default_namespace_link_its_services() {
    let objects = objects().with_service("default", "cache", "10.96.0.40", json!([{"port": 6379}]));
    let mut pod = pod(json!({}));
    pod.metadata.namespace = Some("default".into());
    let env = env_of(&resolve_now(&pod, &objects).unwrap(), "app");
    assert_eq!(env["CACHE_SERVICE_HOST"], "10.96.0.40");
    assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
}

#[test]
fn command_and_args_expand_with_the_final_environment() {
    let pod = pod_with_container(json!({
        "command": ["/bin/$(TOOL)", "$(KUBERNETES_SERVICE_HOST)"],
        "args": ["--password=$(PASSWORD)", "$$(TOOL)", "$(UNKNOWN)", "$(OPTIONAL)"],
        "env": [
            {"name": "TOOL", "value": "server"},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASSWORD"}}},
            {"name": "OPTIONAL", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope", "optional": true}}},
        ],
    }));
    let resolution = resolve_now(&pod, &objects()).unwrap();
    let container = &resolution.pod.pod.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        container.command.as_deref().unwrap(),
        ["/bin/server", "10.96.0.1"]
    );
    assert_eq!(
        container.args.as_deref().unwrap(),
        ["--password=s3cret", "$(TOOL)", "$(UNKNOWN)", "$(OPTIONAL)"]
    );
}

#[test]
fn sub_path_expressions_become_sub_paths() {
    let mount =
        |expression: &str| json!({"name": "data", "mountPath": "/data", "subPathExpr": expression});
    let container = |expression: &str| {
        pod_with_container(json!({
            "env": [
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "EMPTY", "value": ""},
                {"name": "UP", "value": ".."},
            ],
            "volumeMounts": [mount(expression), {"name": "data", "mountPath": "/plain", "subPath": "x"}],
        }))
    };
    let resolution = resolve_now(&container("logs/$(POD)"), &objects()).unwrap();
    let mounts = resolution.pod.pod.spec.unwrap().containers[0]
        .volume_mounts
        .clone()
        .unwrap();
    assert_eq!(mounts[0].sub_path.as_deref(), Some("logs/web"));
    assert_eq!(mounts[0].sub_path_expr, None);
    assert_eq!(mounts[1].sub_path.as_deref(), Some("x"));

    for (expression, message) in [
        ("$(NOPE)/$(EMPTY)/$(POD)", "missing value for EMPTY, NOPE"),
        (
            "a/$(UP)/b",
            "invalid SubPath `a/../b`: must not contain '..'",
        ),
        (
            "/$(POD)",
            "invalid SubPath `/web`: must not be an absolute path",
        ),
    ] {
        let error = resolve_now(&container(expression), &objects()).unwrap_err();
        assert_eq!(error.to_string(), message);
        assert_eq!(error.reason(), "Failed");
    }
}

#[test]
fn file_key_references_are_left_to_the_provider() {
    let reference = json!({"fileKeyRef": {"volumeName": "config", "path": "env", "key": "K"}});
    let pod = pod_with_container(json!({"env": [
        {"name": "FROM_FILE", "valueFrom": reference},
        {"name": "USES", "value": "$(FROM_FILE)"},
    ]}));
    let resolution = resolve_now(&pod, &objects()).unwrap();
    let env = resolution.pod.pod.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    let from_file = env
        .iter()
        .find(|variable| variable.name == "FROM_FILE")
        .unwrap();
    assert_eq!(from_file.value, None);
    assert!(
        from_file
            .value_from
            .as_ref()
            .unwrap()
            .file_key_ref
            .is_some()
    );
    let uses = env.iter().find(|variable| variable.name == "USES").unwrap();
    assert_eq!(uses.value.as_deref(), Some("$(FROM_FILE)"));
}

#[test]
fn values_from_secrets_say_so() {
    let pod = pod_with_container(json!({
        "envFrom": [{"configMapRef": {"name": "settings"}}, {"prefix": "S_", "secretRef": {"name": "creds"}}],
        "env": [
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASSWORD"}}},
            {"name": "PLAIN", "value": "p"},
        ],
    }));
    let resolved = resolve_now(&pod, &objects()).unwrap();
    let env = resolved.pod.pod.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    let secret_of = |name: &str| {
        let var = env
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("{name} in {env:?}"));
        let selector = var
            .value_from
            .as_ref()
            .and_then(|s| s.secret_key_ref.as_ref());
        (
            var.value.clone().unwrap(),
            selector.map(|s| (s.name.clone(), s.key.clone())),
        )
    };
    assert_eq!(
        secret_of("KEY"),
        ("s3cret".into(), Some(("creds".into(), "PASSWORD".into())))
    );
    assert_eq!(
        secret_of("S_B"),
        ("b-secret".into(), Some(("creds".into(), "B".into())))
    );
    assert_eq!(secret_of("PLAIN"), ("p".into(), None));
    assert_eq!(secret_of("A"), ("from-cm".into(), None));
}
