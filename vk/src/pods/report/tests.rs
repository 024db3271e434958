use k8s_openapi::api::core::v1::{ContainerStateRunning, PodCondition};

use super::*;

#[test]
fn a_pod_past_its_deadline_fails_with_its_containers_stopped() {
    let with_state = |state: ContainerState| ContainerStatus {
        state: Some(state),
        ..ContainerStatus::default()
    };
    let running = with_state(ContainerState {
        running: Some(ContainerStateRunning::default()),
        ..ContainerState::default()
    });
    let exited = with_state(ContainerState {
        terminated: Some(ContainerStateTerminated::default()),
        ..ContainerState::default()
    });
    let status = PodStatus {
        phase: Some("Running".into()),
        container_statuses: Some(vec![running, exited]),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }]),
        ..PodStatus::default()
    };
    let failed = deadline_exceeded(status);
    assert_eq!(failed.phase.as_deref(), Some("Failed"));
    assert_eq!(failed.reason.as_deref(), Some("DeadlineExceeded"));
    let containers = failed.container_statuses.unwrap();
    let killed = containers[0].state.as_ref().unwrap().terminated.as_ref();
    assert_eq!(killed.map(|t| t.exit_code), Some(137));
    assert_eq!(
        containers[1].state.as_ref().unwrap().terminated,
        Some(ContainerStateTerminated::default()),
        "an exit already there is kept"
    );
    assert_eq!(failed.conditions.unwrap()[0].status, "False");
}
