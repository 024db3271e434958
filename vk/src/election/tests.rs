use super::*;

fn settings(identity: &str) -> Settings {
    Settings {
        namespace: "ns".into(),
        name: "vk-node".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    }
}

fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.into()),
        lease_duration_seconds: Some(15),
        acquire_time: Some(MicroTime(Timestamp::from_second(1).unwrap())),
        renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
        lease_transitions: Some(3),
        ..LeaseSpec::default()
    }
}

fn wall() -> Timestamp {
    Timestamp::from_second(1_000).unwrap()
}

#[test]
fn client_go_default_timings_are_valid_and_inverted_ones_are_not() {
    assert!(settings("a").validate().is_ok());
    let mut bad = settings("a");
    bad.renew_deadline = Duration::from_secs(15);
    assert!(bad.validate().is_err(), "renew deadline = lease duration");
    let mut bad = settings("a");
    bad.retry_period = Duration::from_secs(9);
    assert!(bad.validate().is_err(), "renew deadline < 1.2 × retry");
}

#[test]
fn another_holder_is_respected_until_its_lease_stays_unchanged_for_a_lease_duration() {
    let me = settings("b");
    let start = Instant::now();
    let mut observed = None;
    let lease = held_by("a", 100);
    assert_eq!(
        verdict(&mut observed, &lease, &me, start, wall()),
        Verdict::HeldBy("a".into())
    );
    // Its renewTime says nothing about our clock: only how long we saw it unchanged counts.
    let later = start + Duration::from_secs(14);
    assert_eq!(
        verdict(&mut observed, &lease, &me, later, wall()),
        Verdict::HeldBy("a".into())
    );
    let expired = start + Duration::from_secs(15);
    let Verdict::Write(taken) = verdict(&mut observed, &lease, &me, expired, wall()) else {
        panic!("an expired lease is taken");
    };
    assert_eq!(taken.holder_identity.as_deref(), Some("b"));
    assert_eq!(
        taken.lease_transitions,
        Some(4),
        "a takeover is a transition"
    );
    assert_eq!(taken.acquire_time, Some(MicroTime(wall())));
    assert_eq!(taken.renew_time, Some(MicroTime(wall())));
    assert_eq!(taken.lease_duration_seconds, Some(15));
}

#[test]
fn a_renewal_seen_restarts_the_expiry_clock() {
    let me = settings("b");
    let start = Instant::now();
    let mut observed = None;
    verdict(&mut observed, &held_by("a", 100), &me, start, wall());
    let renewed = held_by("a", 102);
    let at = start + Duration::from_secs(10);
    verdict(&mut observed, &renewed, &me, at, wall());
    assert_eq!(
        verdict(
            &mut observed,
            &renewed,
            &me,
            at + Duration::from_secs(14),
            wall()
        ),
        Verdict::HeldBy("a".into())
    );
}

#[test]
fn a_released_lease_is_taken_at_once() {
    let me = settings("b");
    let mut observed = None;
    let released = LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        lease_transitions: Some(3),
        ..LeaseSpec::default()
    };
    let Verdict::Write(taken) = verdict(&mut observed, &released, &me, Instant::now(), wall())
    else {
        panic!("a released lease is free");
    };
    assert_eq!(taken.holder_identity.as_deref(), Some("b"));
    assert_eq!(taken.lease_transitions, Some(4));
}

#[test]
fn our_own_lease_is_renewed_keeping_its_acquire_time_and_transitions() {
    let me = settings("a");
    let mut observed = None;
    let ours = held_by("a", 100);
    let Verdict::Write(renewed) = verdict(&mut observed, &ours, &me, Instant::now(), wall()) else {
        panic!("our lease is renewed");
    };
    assert_eq!(renewed.acquire_time, ours.acquire_time);
    assert_eq!(renewed.lease_transitions, Some(3));
    assert_eq!(renewed.renew_time, Some(MicroTime(wall())));
}

#[test]
fn identities_differ_between_processes_of_one_host() {
    let (a, b) = (identity(None), identity(None));
    assert_ne!(a, b);
    assert!(a.contains('_'), "{a}");
    let named = identity(Some("vk-5d8f-abcde"));
    assert!(named.starts_with("vk-5d8f-abcde_"), "{named}");
    assert!(identity(Some("")).starts_with(&a[..a.rfind('_').unwrap() + 1]));
}
