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
