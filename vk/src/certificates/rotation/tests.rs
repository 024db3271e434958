use super::*;

#[test]
fn the_deadline_falls_between_70_and_90_percent_of_the_lifetime() {
    let (not_before, not_after) = (1_000, 11_000);
    // Within a second: the fractions are binary floating point.
    let at = |random| deadline(not_before, not_after, Window::KUBELET, random);
    assert!((7_999..=8_000).contains(&at(0.0)), "{}", at(0.0));
    assert!((8_999..=9_000).contains(&at(0.5)), "{}", at(0.5));
    assert!(
        (9_998..=9_999).contains(&at(0.999_999)),
        "{}",
        at(0.999_999)
    );
    for _ in 0..1000 {
        let random = fastrand::f64();
        assert!((7_999..10_000).contains(&at(random)), "{}", at(random));
    }
}

#[test]
fn a_fixed_window_renews_at_that_fraction() {
    let window = Window {
        low: 0.4,
        high: 0.4,
    };
    assert_eq!(deadline(0, 900, window, 0.7), 360);
}

#[test]
fn retries_wait_2_4_8_16_then_32_seconds() {
    let mut delays = RetryDelays::default();
    let secs: Vec<u64> = (0..7).map(|_| delays.next_delay().as_secs()).collect();
    assert_eq!(secs, [2, 4, 8, 16, 32, 32, 32]);
}
