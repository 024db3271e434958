use super::*;

#[test]
fn deleted_pods_are_remembered_by_uid() {
    let tracked = TrackedPods::default();
    assert!(!tracked.was_deleted("u1"));
    tracked.deleted("u1");
    assert!(tracked.was_deleted("u1"));
    assert!(!tracked.was_deleted("u2"));
}

#[test]
fn deleted_pods_are_forgotten_after_a_while_even_if_deleted_twice() {
    let tracked = TrackedPods::default();
    let start = Instant::now();
    tracked.deleted_at("u1", start);
    tracked.deleted_at("u2", start + Duration::from_secs(1));
    tracked.deleted_at("u1", start + Duration::from_secs(2));
    let later = start + DELETED_MEMORY + Duration::from_millis(1500);
    assert!(!tracked.was_deleted_at("u2", later));
    assert!(
        tracked.was_deleted_at("u1", later),
        "the second deletion of u1 is remembered"
    );
    assert!(!tracked.was_deleted_at("u1", later + Duration::from_secs(1)));
    assert!(tracked.deleted.lock().order.is_empty());
}

fn key() -> PodKey {
    PodKey {
        namespace: "default".into(),
        name: "web".into(),
    }
}

/// A pod as the watch shows it, with `label` and `phase`.
fn watched(label: &str, phase: &str) -> Arc<StoredPod> {
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "default", "name": "web", "uid": "u1",
            "resourceVersion": phase, "labels": {"app": label}},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
        "status": {"phase": phase},
    }))
    .expect("a pod");
    Arc::new(StoredPod::new(pod))
}

fn tracked(last_seen: Arc<StoredPod>) -> Tracked {
    Tracked {
        uid: "u1".into(),
        fingerprint: Some(1),
        deleting: false,
        waits_for_pod_ip: false,
        last_seen,
        reports: 0,
        status_round: 1,
        allocation: Allocation::default(),
        follows: false,
    }
}

#[test]
fn a_change_of_status_alone_is_taken_without_a_sync() {
    let pods = TrackedPods::default();
    assert!(
        !pods.take_status_change(&key(), &watched("web", "Running")),
        "an untracked pod is synced"
    );
    pods.insert(&key(), tracked(watched("web", "Pending")));
    let running = watched("web", "Running");
    assert!(pods.take_status_change(&key(), &running));
    let last_seen = pods.get(&key()).unwrap().last_seen;
    assert!(
        Arc::ptr_eq(&last_seen, &running),
        "kept as the pod last seen"
    );
    assert!(
        !pods.take_status_change(&key(), &watched("db", "Running")),
        "a label changed"
    );
}

#[test]
fn a_change_of_status_is_synced_when_the_sync_reads_the_status() {
    let pods = TrackedPods::default();
    type Change = fn(&mut Tracked);
    let cases: [(&str, Change); 3] = [
        ("the environment waits for the pod IP", |t| {
            t.waits_for_pod_ip = true
        }),
        ("the pod is being deleted", |t| t.deleting = true),
        ("the pod was adopted and not synced since", |t| {
            t.fingerprint = None
        }),
    ];
    for (why, change) in cases {
        let mut record = tracked(watched("web", "Pending"));
        change(&mut record);
        pods.insert(&key(), record);
        assert!(
            !pods.take_status_change(&key(), &watched("web", "Running")),
            "{why}"
        );
    }
}
