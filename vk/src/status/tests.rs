use k8s_openapi::api::core::v1::PodCondition;

use super::*;

fn condition(kind: &str, status: &str) -> PodCondition {
    PodCondition {
        type_: kind.into(),
        status: status.into(),
        ..PodCondition::default()
    }
}

fn status(phase: &str, conditions: &[(&str, &str)]) -> PodStatus {
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions.iter().map(|(k, s)| condition(k, s)).collect()),
        ..PodStatus::default()
    }
}

#[test]
fn foreign_conditions_are_kept() {
    let current = status(
        "Pending",
        &[("DisruptionTarget", "True"), ("Ready", "False")],
    );
    let merged = merge(Some(&current), status("Running", &[("Ready", "True")])).unwrap();
    let kinds: Vec<_> = merged
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status))
        .collect();
    assert_eq!(
        kinds,
        [
            ("DisruptionTarget".into(), "True".into()),
            ("Ready".into(), "True".into())
        ]
    );
}

#[test]
fn terminal_phases_stick() {
    let current = status("Failed", &[]);
    assert!(merge(Some(&current), status("Running", &[])).is_none());
    assert!(merge(Some(&current), status("Failed", &[])).is_some());
}

#[test]
fn patch_removes_fields_the_new_status_lacks() {
    let current = PodStatus {
        reason: Some("ProviderFailed".into()),
        message: Some("boom".into()),
        ..status("Pending", &[])
    };
    let body = patch("uid-1", Some(&current), &status("Running", &[]));
    assert_eq!(body["metadata"]["uid"], "uid-1");
    assert_eq!(body["status"]["phase"], "Running");
    assert!(body["status"]["reason"].is_null() && body["status"].get("reason").is_some());
    assert!(body["status"]["message"].is_null());
}

#[test]
fn transition_times_move_only_with_the_status() {
    let at = |second: i64| {
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(second).unwrap(),
        ))
    };
    let with_time = |kind: &str, state: &str, second: i64| PodCondition {
        last_transition_time: at(second),
        ..condition(kind, state)
    };
    let current = PodStatus {
        conditions: Some(vec![
            with_time("Ready", "True", 100),
            with_time("Initialized", "False", 100),
        ]),
        ..status("Running", &[])
    };
    let reported = PodStatus {
        conditions: Some(vec![
            with_time("Ready", "True", 200),
            with_time("Initialized", "True", 200),
        ]),
        ..status("Running", &[])
    };
    let merged = merge(Some(&current), reported).unwrap().conditions.unwrap();
    assert_eq!(merged[0].last_transition_time, at(100), "Ready stayed True");
    assert_eq!(
        merged[1].last_transition_time,
        at(200),
        "Initialized changed"
    );
}

#[test]
fn times_are_cut_to_whole_seconds_as_the_api_keeps_them() {
    use k8s_openapi::{
        api::core::v1::{ContainerState, ContainerStateRunning, ContainerStatus},
        apimachinery::pkg::apis::meta::v1::Time,
        jiff::Timestamp,
    };
    let precise = Time(
        "2026-12-06T10:00:00.123456789Z"
            .parse::<Timestamp>()
            .unwrap(),
    );
    let whole = Time("2026-12-06T10:00:00Z".parse::<Timestamp>().unwrap());
    let with = |time: &Time| PodStatus {
        start_time: Some(time.clone()),
        conditions: Some(vec![PodCondition {
            last_transition_time: Some(time.clone()),
            ..condition("Ready", "True")
        }]),
        container_statuses: Some(vec![ContainerStatus {
            state: Some(ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(time.clone()),
                }),
                ..ContainerState::default()
            }),
            last_state: Some(ContainerState::default()),
            ..ContainerStatus::default()
        }]),
        ..status("Running", &[])
    };
    let current = with(&whole);
    // What the API shows already is not new, whatever the provider's precision.
    assert_eq!(merge(Some(&current), with(&precise)), Some(current));
}

#[test]
fn a_status_the_api_shows_is_not_new_at_the_next_resync() {
    // What the provider reports: no lastState, finer times.
    let reported: PodStatus = serde_json::from_value(json!({
        "phase": "Running",
        "conditions": [{ "type": "Ready", "status": "True",
                         "lastTransitionTime": "2026-12-06T15:56:58.123456Z" }],
        "containerStatuses": [{
            "name": "c", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0,
            "containerID": "mock://1",
            "state": { "running": { "startedAt": "2026-12-06T15:56:58.5Z" } },
        }],
    }))
    .unwrap();
    let written = merge(None, reported.clone()).unwrap();
    // What the API server gives back after that write: whole seconds, `lastState: {}` and
    // `lastProbeTime: null` (as captured in an audit log).
    let mut shown = serde_json::to_value(&written).unwrap();
    shown["conditions"][0]["lastProbeTime"] = Value::Null;
    assert_eq!(shown["containerStatuses"][0]["lastState"], json!({}));
    assert_eq!(
        shown["containerStatuses"][0]["state"]["running"]["startedAt"],
        "2026-12-06T15:56:58Z"
    );
    let shown: PodStatus = serde_json::from_value(shown).unwrap();
    assert_eq!(merge(Some(&shown), reported), Some(shown));
}
