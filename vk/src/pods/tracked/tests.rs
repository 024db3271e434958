use super::*;

#[test]
fn deleted_pods_are_remembered_by_uid() {
    let tracked = TrackedPods::default();
    assert!(!tracked.was_deleted("u1"));
    tracked.deleted("u1");
    assert!(tracked.was_deleted("u1"));
    assert!(!tracked.was_deleted("u2"));
}
