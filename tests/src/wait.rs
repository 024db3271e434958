//! Polling until a condition holds, with a time limit whose expiry panics with what was awaited
//! (and, for the `_ok` variants, the last reason it was not there yet).

use std::{
    fmt::Display,
    time::{Duration, Instant},
};

/// How often conditions are checked again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Polls `ready` until it returns true; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    wait_for_ok(
        what,
        timeout,
        || if ready() { Ok(()) } else { Err("not yet") },
    )
}

/// Polls `check` until it returns `Ok`, and returns that value; panics after `timeout` naming
/// `what` and the last `Err` (say, the state seen instead).
pub fn wait_for_ok<T, E: Display>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, E>,
) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(POLL_INTERVAL),
        }
    }
}

/// [`wait_for`] for async conditions: `wait_for_async("x", t, async || ...).await`.
pub async fn wait_for_async(what: &str, timeout: Duration, mut ready: impl AsyncFnMut() -> bool) {
    wait_for_ok_async(what, timeout, async || {
        if ready().await {
            Ok(())
        } else {
            Err("not yet")
        }
    })
    .await
}

/// [`wait_for_ok`] for async checks.
pub async fn wait_for_ok_async<T, E: Display>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let start = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}
