use serde_json::json;

use super::*;

fn pod(spec: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "someFutureMetadata": 1},
        "spec": spec,
        "status": {"someFutureStatus": true},
    }))
    .unwrap()
}

#[test]
fn a_pod_of_known_fields_is_understood() {
    let (pod, refusal) = understand(&pod(json!({
        "containers": [{"name": "app", "image": "busybox", "resources": {}}],
        "hostUsers": false,
        "volumes": [{"name": "v", "emptyDir": {}}],
    })))
    .unwrap();
    assert_eq!(refusal, None);
    assert_eq!(pod.spec.unwrap().host_users, Some(false));
}

#[test]
fn an_unknown_spec_field_is_refused_by_its_path() {
    let (_, refusal) = understand(&pod(json!({
        "containers": [
            {"name": "app", "image": "busybox"},
            {"name": "side", "image": "busybox", "someFutureContainerField": {"a": 1}},
        ],
        "someFutureField": "on",
    })))
    .unwrap();
    let refusal = refusal.unwrap();
    assert_eq!(refusal.reason, UNKNOWN_POD_FIELD);
    assert_eq!(
        refusal.message,
        "spec.containers[1].someFutureContainerField, spec.someFutureField: not in the \
         Kubernetes API this provider was built with, so it cannot run the pod as written"
    );
}

#[test]
fn nulls_and_unknown_metadata_or_status_are_no_objection() {
    let (_, refusal) = understand(&pod(json!({
        "containers": [{"name": "app", "image": "busybox", "someFutureField": null}],
        "nodeName": null,
    })))
    .unwrap();
    assert_eq!(refusal, None);
}

#[test]
fn a_pod_that_does_not_decode_is_an_error() {
    assert!(understand(&pod(json!({"containers": "none"}))).is_err());
}

#[test]
fn a_volume_kind_is_its_source_field() {
    let volume: Volume = serde_json::from_value(json!({
        "name": "v",
        "image": {"reference": "quay.io/x/y:1"},
    }))
    .unwrap();
    assert_eq!(volume_kind(&volume).as_deref(), Some("image"));
    let bare = Volume {
        name: "v".into(),
        ..Volume::default()
    };
    assert_eq!(volume_kind(&bare), None);
}

#[test]
fn empty_pod_level_resources_ask_for_nothing() {
    let spec = |resources: Value| -> PodSpec {
        serde_json::from_value(json!({"containers": [], "resources": resources})).unwrap()
    };
    assert!(!has_pod_level_resources(&spec(json!({}))));
    assert!(!has_pod_level_resources(&spec(json!({"limits": {}}))));
    assert!(has_pod_level_resources(&spec(
        json!({"limits": {"cpu": "1"}})
    )));
}
