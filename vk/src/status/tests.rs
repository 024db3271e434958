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
