use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, PodSpec,
};
use vk_abi::ResolvedPod;

use super::*;

fn state(running: bool) -> ContainerStatus {
    let state = if running {
        ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..ContainerState::default()
        }
    } else {
        ContainerState {
            terminated: Some(ContainerStateTerminated::default()),
            ..ContainerState::default()
        }
    };
    ContainerStatus {
        state: Some(state),
        ..ContainerStatus::default()
    }
}

#[test]
fn termination_needs_every_container_stopped() {
    assert!(
        all_terminated(None),
        "a pod the provider does not know has stopped"
    );
    let status = |states: Vec<ContainerStatus>| PodStatus {
        container_statuses: Some(states),
        ..PodStatus::default()
    };
    assert!(all_terminated(Some(&status(vec![
        state(false),
        state(false)
    ]))));
    assert!(!all_terminated(Some(&status(vec![
        state(false),
        state(true)
    ]))));
}

#[test]
fn fingerprints_ignore_bookkeeping() {
    let mut pod = ResolvedPod::default();
    pod.pod.spec = Some(PodSpec::default());
    let before = fingerprint(&pod);
    pod.pod.metadata.resource_version = Some("42".into());
    pod.pod.status = Some(PodStatus {
        phase: Some("Running".into()),
        ..PodStatus::default()
    });
    assert_eq!(fingerprint(&pod), before);
    pod.pod.spec.as_mut().unwrap().active_deadline_seconds = Some(5);
    assert_ne!(fingerprint(&pod), before);
}

#[test]
fn terminal_pods_are_recognised() {
    let with_phase = |phase: &str| Pod {
        status: Some(PodStatus {
            phase: Some(phase.into()),
            ..PodStatus::default()
        }),
        ..Pod::default()
    };
    assert!(is_terminal(&with_phase("Succeeded")));
    assert!(is_terminal(&with_phase("Failed")));
    assert!(!is_terminal(&with_phase("Running")));
}

#[test]
fn a_pod_listed_without_some_of_its_containers_was_cut_short() {
    let with_containers = |names: &[&str]| Pod {
        spec: Some(PodSpec {
            containers: names
                .iter()
                .map(|name| k8s_openapi::api::core::v1::Container {
                    name: name.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    let in_api = with_containers(&["web", "sidecar"]);
    assert!(has_every_container(
        &with_containers(&["sidecar", "web"]),
        &in_api
    ));
    assert!(!has_every_container(&with_containers(&["web"]), &in_api));
    assert!(
        !has_every_container(&Pod::default(), &in_api),
        "only the infra container was made"
    );
}

#[test]
fn the_active_deadline_counts_from_the_start_time() {
    let mut pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [], "activeDeadlineSeconds": 30},
    }))
    .unwrap();
    assert_eq!(
        active_deadline(&pod).map(|t| t.to_string()),
        Some("2026-01-01T00:00:30Z".into()),
        "before a start time, from the creation"
    );
    pod.status = Some(PodStatus {
        start_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:01:00Z".parse().unwrap(),
        )),
        ..PodStatus::default()
    });
    assert_eq!(
        active_deadline(&pod).map(|t| t.to_string()),
        Some("2026-01-01T00:01:30Z".into())
    );
    pod.spec.as_mut().unwrap().active_deadline_seconds = None;
    assert_eq!(active_deadline(&pod), None);
}
