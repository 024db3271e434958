use vk_abi::k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements, Volume};

use super::*;

fn pod(spec: PodSpec) -> Pod {
    Pod {
        spec: Some(spec),
        ..Pod::default()
    }
}

fn volume(json: serde_json::Value) -> Volume {
    serde_json::from_value(json).unwrap()
}

#[test]
fn a_plain_pod_with_supported_volumes_is_accepted() {
    let spec = PodSpec {
        host_users: Some(true),
        resources: Some(ResourceRequirements::default()),
        volumes: Some(vec![
            volume(serde_json::json!({"name": "scratch", "emptyDir": {}})),
            volume(serde_json::json!({"name": "cfg", "configMap": {"name": "c"}})),
        ]),
        ..PodSpec::default()
    };
    assert_eq!(refusal(&pod(spec)), None);
}

#[test]
fn host_users_false_is_refused() {
    let spec = PodSpec {
        host_users: Some(false),
        ..PodSpec::default()
    };
    let refusal = refusal(&pod(spec)).unwrap();
    assert_eq!(refusal.reason, "UnsupportedPodSpec");
    assert!(refusal.message.starts_with("spec.hostUsers: false"));
}

#[test]
fn pod_level_resources_are_refused_as_the_kubelet_does() {
    let spec: PodSpec = serde_json::from_value(serde_json::json!({
        "containers": [],
        "resources": {"limits": {"memory": "64Mi"}},
    }))
    .unwrap();
    let refusal = refusal(&pod(spec)).unwrap();
    assert_eq!(refusal.reason, "PodLevelResourcesNotSupported");
    assert!(refusal.message.starts_with("spec.resources: "));
}

#[test]
fn image_and_other_volumes_are_refused_by_field() {
    let spec = PodSpec {
        volumes: Some(vec![
            volume(serde_json::json!({"name": "scratch", "emptyDir": {}})),
            volume(serde_json::json!({"name": "tools", "image": {"reference": "quay.io/t:1"}})),
        ]),
        ..PodSpec::default()
    };
    let refusal = refusal(&pod(spec)).unwrap();
    assert_eq!(refusal.reason, "UnsupportedPodSpec");
    assert!(
        refusal
            .message
            .starts_with("spec.volumes[1].image: image volumes (volume \"tools\")"),
        "{}",
        refusal.message
    );
    let spec = PodSpec {
        volumes: Some(vec![volume(
            serde_json::json!({"name": "data", "persistentVolumeClaim": {"claimName": "d"}}),
        )]),
        ..PodSpec::default()
    };
    assert!(
        super::refusal(&pod(spec))
            .unwrap()
            .message
            .starts_with("spec.volumes[0].persistentVolumeClaim: ")
    );
}
