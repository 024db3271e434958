use serde_json::json;

use super::*;
use crate::spec::PodIdentity;

fn view(restart_policy: &str, containers: Vec<ContainerView>) -> PodView {
    PodView {
        identity: PodIdentity {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "u".into(),
        },
        restart_policy: restart_policy.into(),
        infra: Some(container(
            "POD",
            Role::Infra,
            0,
            json!({"Status": "running", "Running": true}),
        )),
        containers,
    }
}

fn container(name: &str, role: Role, index: usize, state: serde_json::Value) -> ContainerView {
    let inspect = serde_json::from_value(json!({
        "Id": format!("id-{name}"),
        "Created": "2026-11-24T10:00:00.5Z",
        "Image": "sha256:abc",
        "Config": {"Image": "busybox"},
        "State": state,
        "NetworkSettings": {"Networks": {"podman": {"IPAddress": "10.88.0.7"}}},
    }))
    .unwrap();
    ContainerView {
        id: format!("id-{name}"),
        name: name.into(),
        role,
        index,
        inspect,
    }
}

fn running() -> serde_json::Value {
    json!({"Status": "running", "Running": true, "StartedAt": "2026-11-24T10:00:01.123456789Z",
           "FinishedAt": "0001-01-01T00:00:00Z"})
}

fn exited(code: i64) -> serde_json::Value {
    json!({"Status": "exited", "Running": false, "ExitCode": code,
           "StartedAt": "2026-11-24T10:00:01Z", "FinishedAt": "2026-11-24T10:00:02Z"})
}

fn created() -> serde_json::Value {
    json!({"Status": "created", "Running": false, "StartedAt": "0001-01-01T00:00:00Z"})
}

fn condition<'s>(status: &'s PodStatus, type_: &str) -> &'s str {
    &status
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap()
        .status
}

#[test]
fn running_pod() {
    let view = view("Always", vec![container("app", Role::App, 0, running())]);
    let status = pod_status(&view, &Memory::default(), "192.0.2.1");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.pod_ip.as_deref(), Some("10.88.0.7"));
    assert_eq!(status.host_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(condition(&status, "Ready"), "True");
    let app = &status.container_statuses.as_ref().unwrap()[0];
    assert!(app.ready);
    assert_eq!(app.container_id.as_deref(), Some("docker://id-app"));
    assert_eq!(app.image, "busybox");
    assert_eq!(app.image_id, "sha256:abc");
    let started = app
        .state
        .as_ref()
        .unwrap()
        .running
        .as_ref()
        .unwrap()
        .started_at
        .as_ref()
        .unwrap();
    assert_eq!(started.0.to_string(), "2026-11-24T10:00:01.123456789Z");
    assert!(status.start_time.is_some());
}

#[test]
fn exits_by_restart_policy() {
    let never = view("Never", vec![container("app", Role::App, 0, exited(3))]);
    let status = pod_status(&never, &Memory::default(), "h");
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    let terminated = status.container_statuses.as_ref().unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .terminated
        .clone()
        .unwrap();
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (3, Some("Error"))
    );
    assert_eq!(condition(&status, "Ready"), "False");

    let done = view("OnFailure", vec![container("app", Role::App, 0, exited(0))]);
    assert_eq!(
        pod_status(&done, &Memory::default(), "h").phase.as_deref(),
        Some("Succeeded")
    );

    // Always: exited and waiting out its back-off, with the exit as the last state.
    let always = view("Always", vec![container("app", Role::App, 0, exited(3))]);
    let mut memory = Memory::default();
    memory.restarts.insert("app".into(), 2);
    memory.waiting.insert(
        "app".into(),
        ContainerStateWaiting {
            reason: Some("CrashLoopBackOff".into()),
            message: Some("back-off 20s".into()),
        },
    );
    let status = pod_status(&always, &memory, "h");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let app = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!(app.restart_count, 2);
    assert_eq!(
        app.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("CrashLoopBackOff")
    );
    assert_eq!(
        app.last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        3
    );
}

#[test]
fn init_containers_gate_the_pod() {
    let waiting = view(
        "Always",
        vec![
            container("init", Role::Init, 0, running()),
            container("app", Role::App, 1, created()),
        ],
    );
    let status = pod_status(&waiting, &Memory::default(), "h");
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(condition(&status, "Initialized"), "False");
    let app = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        app.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("PodInitializing")
    );

    let failed = view(
        "Never",
        vec![
            container("init", Role::Init, 0, exited(1)),
            container("app", Role::App, 1, created()),
        ],
    );
    assert_eq!(
        pod_status(&failed, &Memory::default(), "h")
            .phase
            .as_deref(),
        Some("Failed")
    );

    let done = view(
        "Always",
        vec![
            container("init", Role::Init, 0, exited(0)),
            container("app", Role::App, 1, running()),
        ],
    );
    let status = pod_status(&done, &Memory::default(), "h");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&status, "Initialized"), "True");
    assert_eq!(
        status.init_container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("Completed")
    );
}
