use serde_json::json;

use super::*;

fn status(value: serde_json::Value) -> PodStatus {
    serde_json::from_value(value).unwrap()
}

#[test]
fn settled_groups_are_running_or_finished() {
    let tracked = |s: PodStatus| Tracked {
        provisioning: Some("Succeeded".into()),
        pod: Pod {
            status: Some(s),
            ..Pod::default()
        },
        refreshed: 0,
        events: Seen::default(),
    };
    let running = status(json!({ "phase": "Running", "containerStatuses": [
        { "name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
          "state": { "running": {} } }] }));
    assert!(tracked(running).settled());
    let restarting = status(json!({ "phase": "Running", "containerStatuses": [
        { "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 1,
          "state": { "waiting": { "reason": "CrashLoopBackOff" } } }] }));
    assert!(!tracked(restarting).settled());
    assert!(tracked(status(json!({ "phase": "Failed" }))).settled());
    assert!(!tracked(status(json!({ "phase": "Pending" }))).settled());
}

#[test]
fn a_vanished_group_ends_its_containers() {
    let mut s = status(json!({
        "phase": "Running",
        "conditions": [{ "type": "Ready", "status": "True" }],
        "containerStatuses": [
            { "name": "a", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
              "state": { "running": { "startedAt": "2026-01-02T03:04:05Z" } } },
            { "name": "b", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
              "state": { "terminated": { "exitCode": 4 } } },
        ],
    }));
    terminate(&mut s);
    let containers = s.container_statuses.unwrap();
    let a = containers[0].state.clone().unwrap().terminated.unwrap();
    assert_eq!((a.exit_code, a.reason.as_deref()), (0, Some("NotFound")));
    assert!(a.started_at.is_some());
    assert_eq!(
        containers[1]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap()
            .exit_code,
        4
    );
    assert_eq!(s.conditions.unwrap()[0].status, "False");
}
