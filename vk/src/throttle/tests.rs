use super::*;

#[tokio::test(start_paused = true)]
async fn bursts_then_the_rate() {
    let throttle = Throttle::new(10.0, 5);
    let started = Instant::now();
    for _ in 0..5 {
        throttle.acquire().await;
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "a burst goes at once");
    for _ in 0..10 {
        throttle.acquire().await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        (0.99..1.01).contains(&elapsed),
        "then 10 per second: {elapsed}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_halves_the_rate_and_pauses_for_its_retry_after() {
    let throttle = Throttle::new(100.0, 1);
    throttle.observe(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(2)));
    assert_eq!(throttle.rate(), 50.0);
    let started = Instant::now();
    throttle.acquire().await;
    assert!(started.elapsed() >= Duration::from_secs(2), "held back");
    // Never below the floor, nor a pause past the cap.
    for _ in 0..20 {
        throttle.observe(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(3600)),
        );
    }
    assert_eq!(throttle.rate(), MIN_RATE);
    let started = Instant::now();
    throttle.acquire().await;
    assert!(started.elapsed() <= MAX_PAUSE + Duration::from_millis(300));
    // Answers raise it back to the ceiling, no further.
    for _ in 0..200 {
        throttle.observe(StatusCode::OK, None);
    }
    assert_eq!(throttle.rate(), 100.0);
}

#[test]
fn retry_after_is_read_in_seconds() {
    let response = |value: &str| {
        Response::builder()
            .header(http::header::RETRY_AFTER, value)
            .body(())
            .unwrap()
    };
    assert_eq!(retry_after(&response("1")), Some(Duration::from_secs(1)));
    assert_eq!(retry_after(&response("soon")), None);
    assert_eq!(retry_after(&Response::new(())), None);
}
