use super::*;

#[test]
fn the_same_bytes_are_kept_once_until_nobody_holds_them() {
    let shared = SharedContents::default();
    let first = shared.share(b"ca bundle".to_vec());
    let second = shared.share(b"ca bundle".to_vec());
    assert!(Arc::ptr_eq(&first, &second));
    let token = shared.share(b"token".to_vec());
    assert_eq!(shared.len(), 2);
    shared.release([first, token]);
    assert_eq!(shared.len(), 1, "the second pod still holds the CA bundle");
    shared.release([second]);
    assert_eq!(shared.len(), 0);
}

#[test]
fn contents_left_behind_are_swept_once_the_set_has_doubled() {
    let shared = SharedContents::default();
    // Held elsewhere while their pods were released, so left in the set.
    let held: Vec<_> = (0..SWEEP_FLOOR)
        .map(|i| shared.share(i.to_string().into_bytes()))
        .collect();
    shared.release(held.clone());
    drop(held);
    assert_eq!(shared.len(), SWEEP_FLOOR);
    let kept = shared.share(b"new".to_vec());
    assert_eq!(shared.len(), 1, "only what a pod holds is left");
    assert_eq!(&*kept, b"new");
}
