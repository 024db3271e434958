//! How vk's watches retry while the apiserver does not answer. kube-runtime's default backs off
//! up to 30 s and resets only after 120 s without errors, so after an outage of half a minute vk
//! would resume up to 30 s after the apiserver answered again (scripts/chaos.sh measures it).
//! A node has two watches; retrying them every few seconds costs the apiserver nothing.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// The first retry's delay.
pub const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The longest delay between retries: how late vk may resume after the apiserver is back.
pub const MAX_DELAY: Duration = Duration::from_secs(4);

/// Doubling delays from [`FIRST_DELAY`] up to [`MAX_DELAY`]; back to the first once the watch
/// delivers an event again.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff { next: FIRST_DELAY }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (delay * 2).min(MAX_DELAY);
        Some(delay)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST_DELAY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<u128> = backoff.by_ref().take(6).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 4000, 4000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(FIRST_DELAY));
    }
}
