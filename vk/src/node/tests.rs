use super::*;

fn settings() -> NodeSettings {
    NodeSettings {
        name: "vk-1".into(),
        operating_system: "linux".into(),
        internal_ip: Some("10.1.2.3".into()),
        kubelet_port: 10250,
        taint: Some(Taint {
            key: "virtual-kubelet.io/provider".into(),
            value: Some("mock".into()),
            effect: "NoSchedule".into(),
            ..Taint::default()
        }),
    }
}

#[test]
fn template_has_labels_taint_and_endpoint() {
    let node = settings().template();
    let labels = node.metadata.labels.unwrap();
    assert_eq!(labels["type"], "virtual-kubelet");
    assert_eq!(labels["kubernetes.io/role"], "agent");
    assert_eq!(labels["kubernetes.io/hostname"], "vk-1");
    assert_eq!(
        labels["node.kubernetes.io/exclude-from-external-load-balancers"],
        "true"
    );
    assert_eq!(
        node.spec.unwrap().taints.unwrap()[0].key,
        "virtual-kubelet.io/provider"
    );
    let status = node.status.unwrap();
    assert_eq!(
        status
            .daemon_endpoints
            .unwrap()
            .kubelet_endpoint
            .unwrap()
            .port,
        10250
    );
    assert_eq!(status.addresses.unwrap()[0].address, "10.1.2.3");
    assert_eq!(
        status.declared_features.unwrap(),
        ["ExtendWebSocketsToKubelet"]
    );
}

#[test]
fn declared_features_join_the_providers_sorted_and_valid() {
    let provider = [
        "RestartAllContainersOnContainerExits",
        "ExtendWebSocketsToKubelet",
        "Vendor/BackendFeature",
        "lowercase",
        "Trailing/",
        "Spaced Name",
    ]
    .map(String::from);
    assert_eq!(
        declared_features(Some(provider.to_vec())),
        [
            "ExtendWebSocketsToKubelet",
            "RestartAllContainersOnContainerExits",
            "Vendor/BackendFeature",
        ]
    );
    assert_eq!(declared_features(None), ["ExtendWebSocketsToKubelet"]);
    assert!(!valid_feature_name(&"A".repeat(FEATURE_NAME_MAX + 1)));
}

#[test]
fn node_restriction_labels() {
    for restricted in [
        "kubernetes.io/role",
        "node-role.kubernetes.io/agent",
        "k8s.io/x",
        "node-restriction.kubernetes.io/a",
    ] {
        assert!(restricted_label(restricted), "{restricted}");
    }
    for allowed in [
        "type",
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "node.kubernetes.io/exclude-from-external-load-balancers",
        "kubelet.kubernetes.io/x",
        "example.com/x",
        "topology.kubernetes.io/zone",
    ] {
        assert!(!restricted_label(allowed), "{allowed}");
    }
}

#[test]
fn ready_needs_provider_and_synced_pods() {
    assert_eq!(ready_condition(None, true).status, "True");
    let waiting = ready_condition(None, false);
    assert_eq!(
        (waiting.status.as_str(), waiting.reason.as_deref()),
        ("False", Some("KubeletNotReady"))
    );
    let broken = NodeCondition {
        type_: "Ready".into(),
        status: "False".into(),
        message: Some("bad credentials".into()),
        ..NodeCondition::default()
    };
    let not_ready = ready_condition(Some(&broken), true);
    assert_eq!(
        (not_ready.status.as_str(), not_ready.message.as_deref()),
        ("False", Some("bad credentials"))
    );
}

#[test]
fn a_failed_ping_turns_only_ready_false() {
    let conditions = vec![
        NodeCondition {
            type_: "MemoryPressure".into(),
            status: "False".into(),
            ..NodeCondition::default()
        },
        ready_condition(None, true),
    ];
    let conditions = not_ready(conditions, "provider ping failed: refused".into());
    let summary: Vec<(&str, &str, Option<&str>)> = conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.message.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("Ready", "False", Some("provider ping failed: refused")),
            ("MemoryPressure", "False", None),
        ]
    );
}

#[test]
fn transition_times_survive_unchanged_statuses() {
    let then = Timestamp::from_second(1_000_000).unwrap();
    let now = Timestamp::from_second(2_000_000).unwrap();
    let previous = vec![NodeCondition {
        type_: "Ready".into(),
        status: "True".into(),
        last_transition_time: Some(Time(then)),
        ..NodeCondition::default()
    }];
    let mut same = previous.clone();
    stamp_conditions(&mut same, &previous, now);
    assert_eq!(same[0].last_transition_time, Some(Time(then)));
    assert_eq!(same[0].last_heartbeat_time, Some(Time(now)));
    let mut flipped = vec![NodeCondition {
        status: "False".into(),
        ..previous[0].clone()
    }];
    stamp_conditions(&mut flipped, &previous, now);
    assert_eq!(flipped[0].last_transition_time, Some(Time(now)));
}

#[test]
fn a_ready_node_taken_over_stays_ready_while_the_pods_sync() {
    let ready = ready_condition(None, true);
    let mut desired = vec![ready_condition(None, false)];
    keep_ready_while_syncing(&mut desired, std::slice::from_ref(&ready));
    assert_eq!(desired, std::slice::from_ref(&ready));

    // A node that was not Ready stays so until the sync...
    let mut desired = vec![ready_condition(None, false)];
    let not_ready = not_ready(vec![], "provider ping failed".into());
    keep_ready_while_syncing(&mut desired, &not_ready);
    assert_eq!(desired[0].status, "False");
    // ... and a provider that says NotReady is believed.
    let broken = NodeCondition {
        type_: "Ready".into(),
        status: "False".into(),
        message: Some("backend down".into()),
        ..NodeCondition::default()
    };
    let mut desired = vec![ready_condition(Some(&broken), false)];
    keep_ready_while_syncing(&mut desired, &[ready]);
    assert_eq!(desired[0].message.as_deref(), Some("backend down"));
}
