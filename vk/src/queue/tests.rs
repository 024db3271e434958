use super::*;

#[tokio::test]
async fn keys_are_deduplicated_while_waiting() {
    let queue = WorkQueue::new();
    queue.add("a");
    queue.add("b");
    queue.add("a");
    assert_eq!(queue.len(), 2);
    assert_eq!(queue.next().await, Some("a"));
    assert_eq!(queue.next().await, Some("b"));
    assert_eq!(queue.len(), 0);
}

#[tokio::test]
async fn a_held_key_is_not_handed_out_twice_but_comes_back() {
    let queue = WorkQueue::new();
    queue.add("a");
    let key = queue.next().await.unwrap();
    queue.add("a");
    assert_eq!(
        queue.len(),
        0,
        "a worker holds a; it must not wait in the queue"
    );
    queue.done(&key);
    assert_eq!(queue.next().await, Some("a"));
    queue.done(&"a");
    assert_eq!(queue.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_and_reset() {
    let queue = WorkQueue::new();
    assert_eq!(queue.retry("a"), Duration::from_millis(500));
    assert_eq!(queue.retry("a"), Duration::from_millis(1000));
    assert_eq!(queue.retry("a"), Duration::from_millis(2000));
    queue.succeeded(&"a");
    assert_eq!(queue.retry("a"), Duration::from_millis(500));
    for _ in 0..30 {
        queue.retry("b");
    }
    assert_eq!(queue.retry("b"), MAX_BACKOFF);
    assert_eq!(
        queue.next().await,
        Some("a"),
        "the key comes back after its back-off"
    );
}

#[tokio::test]
async fn close_wakes_workers() {
    let queue = WorkQueue::<&str>::new();
    let worker = tokio::spawn({
        let queue = queue.clone();
        async move { queue.next().await }
    });
    tokio::task::yield_now().await;
    queue.close();
    assert_eq!(worker.await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_key_delayed_twice_comes_back_once_at_the_sooner_time() {
    let queue = WorkQueue::new();
    queue.add_after("a", Duration::from_secs(60));
    queue.add_after("a", Duration::from_secs(10));
    queue.add_after("a", Duration::from_secs(30));
    let start = Instant::now();
    assert_eq!(queue.next().await, Some("a"));
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    queue.done(&"a");
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(queue.len(), 0, "the later times were dropped");
    queue.add_after("a", Duration::from_secs(5));
    assert_eq!(queue.next().await, Some("a"), "and a new delay works");
}
