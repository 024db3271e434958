use serde_json::json;

use super::*;

/// A group as GET answers it (as the ACI emulator of vk-tests writes it).
fn running_group() -> ContainerGroup {
    serde_json::from_value(json!({
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/ns-web",
        "name": "ns-web",
        "type": "Microsoft.ContainerInstance/containerGroups",
        "location": "westeurope",
        "tags": {
            "NodeName": "vk-1", "Namespace": "ns", "PodName": "web", "UID": "u-1",
            "CreationTimestamp": "2026-01-02T03:04:05Z"
        },
        "properties": {
            "provisioningState": "Succeeded",
            "osType": "Linux",
            "restartPolicy": "Always",
            "ipAddress": { "type": "Public", "ports": [{ "port": 80, "protocol": "TCP" }], "ip": "10.0.0.7" },
            "containers": [{
                "name": "c",
                "properties": {
                    "image": "nginx",
                    "resources": { "requests": { "cpu": 1.0, "memoryInGB": 1.5 } },
                    "instanceView": {
                        "restartCount": 2,
                        "currentState": { "state": "Running", "startTime": "2026-01-02T03:05:00Z", "detailStatus": "" },
                        "previousState": {
                            "state": "Terminated", "exitCode": 137, "startTime": "2026-01-02T03:04:30Z",
                            "finishTime": "2026-01-02T03:04:59Z", "detailStatus": "Error"
                        },
                        "events": [{ "count": 1, "firstTimestamp": "2026-01-02T03:04:10Z",
                                     "lastTimestamp": "2026-01-02T03:04:10Z", "name": "Pulled",
                                     "message": "pulled", "type": "Normal" }]
                    }
                }
            }],
            "instanceView": { "state": "Running", "events": [] }
        }
    }))
    .unwrap()
}

#[test]
fn a_running_group_is_a_running_ready_pod() {
    let status = pod_status(&running_group(), "192.0.2.1", None);
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(status.host_ip.as_deref(), Some("192.0.2.1"));
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    let container = &status.container_statuses.unwrap()[0];
    assert!(container.ready);
    assert_eq!(container.restart_count, 2);
    let running = container.state.as_ref().unwrap().running.as_ref().unwrap();
    assert_eq!(
        running.started_at.as_ref().unwrap().0.to_string(),
        "2026-01-02T03:05:00Z"
    );
    let last = container
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_eq!(last.exit_code, 137);
    assert_eq!(last.reason.as_deref(), Some("Error"));
    assert_eq!(
        status.start_time.unwrap().0.to_string(),
        "2026-01-02T03:05:00Z"
    );
}

#[test]
fn exit_codes_and_waiting_reasons() {
    let mut group = running_group();
    let view = group.properties.containers[0]
        .properties
        .instance_view
        .as_mut()
        .unwrap();
    view.current_state = Some(ContainerState {
        state: Some("Terminated".into()),
        exit_code: Some(3),
        ..Default::default()
    });
    group.properties.instance_view.as_mut().unwrap().state = Some("Failed".into());
    let status = pod_status(&group, "h", None);
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    let state = status.container_statuses.unwrap()[0].state.clone().unwrap();
    let terminated = state.terminated.unwrap();
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (3, Some("Error"))
    );

    let mut creating = running_group();
    creating.properties.provisioning_state = Some("Creating".into());
    let view = creating.properties.containers[0]
        .properties
        .instance_view
        .as_mut()
        .unwrap();
    view.current_state = Some(ContainerState {
        state: Some("Waiting".into()),
        ..Default::default()
    });
    let status = pod_status(&creating, "h", None);
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let waiting = status.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("Waiting"));
    assert_eq!(waiting.message.as_deref(), Some("Pulled: pulled"));
}

#[test]
fn phases_of_group_states() {
    for (state, phase_) in [
        ("Running", "Running"),
        ("Succeeded", "Succeeded"),
        ("Failed", "Failed"),
        ("Canceled", "Failed"),
        ("Creating", "Pending"),
        ("Repairing", "Pending"),
        ("Unhealthy", "Unknown"),
    ] {
        assert_eq!(phase(state), phase_, "{state}");
    }
}

#[test]
fn a_pod_is_rebuilt_from_tags() {
    let pod = pod_from_group(&running_group(), "h").unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("web"));
    assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
    assert_eq!(pod.metadata.uid.as_deref(), Some("u-1"));
    assert_eq!(
        pod.metadata.creation_timestamp.unwrap().0.to_string(),
        "2026-01-02T03:04:05Z"
    );
    let spec = pod.spec.unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("vk-1"));
    assert_eq!(spec.containers[0].image.as_deref(), Some("nginx"));
    let mut untagged = running_group();
    untagged.tags.clear();
    assert!(pod_from_group(&untagged, "h").is_none());
}
