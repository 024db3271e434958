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

#[tokio::test(start_paused = true)]
async fn delayed_keys_come_back_in_due_order_even_when_a_sooner_one_comes_later() {
    let queue = WorkQueue::new();
    queue.add_after("late", Duration::from_secs(60));
    tokio::time::sleep(Duration::from_secs(1)).await;
    queue.add_after("soon", Duration::from_secs(5));
    queue.add_after("middle", Duration::from_secs(30));
    let start = Instant::now();
    for (key, after) in [("soon", 5), ("middle", 30), ("late", 59)] {
        assert_eq!(queue.next().await, Some(key));
        assert_eq!(start.elapsed(), Duration::from_secs(after), "{key}");
        queue.done(&key);
    }
}

#[tokio::test(start_paused = true)]
async fn keys_due_together_all_come_back() {
    let queue = WorkQueue::new();
    for key in 0..100 {
        queue.add_after(key, Duration::from_secs(10));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut keys = Vec::new();
    for _ in 0..100 {
        keys.push(queue.next().await.unwrap());
    }
    keys.sort();
    assert_eq!(keys, (0..100).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn close_stops_the_timer() {
    let queue = WorkQueue::new();
    queue.add_after("a", Duration::from_secs(10));
    queue.close();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(queue.len(), 0, "a closed queue fires no timer");
    assert_eq!(
        Arc::strong_count(&queue.shared),
        1,
        "the timer task has ended"
    );
}
