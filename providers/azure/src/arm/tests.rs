use super::*;

#[test]
fn retry_after_wins_and_backoff_grows_with_jitter() {
    let policy = RetryPolicy::default();
    assert_eq!(
        policy.delay(0, Some(Duration::from_secs(3))),
        Duration::from_secs(3)
    );
    assert_eq!(
        policy.delay(0, Some(Duration::from_secs(3600))),
        policy.max_delay
    );
    for attempt in 0..10 {
        let step = policy
            .base_delay
            .saturating_mul(1 << attempt)
            .min(policy.max_delay);
        let delay = policy.delay(attempt, None);
        assert!(delay >= step / 2 && delay <= step, "{attempt}: {delay:?}");
    }
}
