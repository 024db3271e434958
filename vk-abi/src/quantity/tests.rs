use super::*;

fn milli(quantity: &str) -> i64 {
    Amount::parse(quantity).unwrap().ceil_milli()
}

fn units(quantity: &str) -> i64 {
    Amount::parse(quantity).unwrap().ceil_units()
}

#[test]
fn decimal_and_binary_suffixes() {
    assert_eq!(units("1"), 1);
    assert_eq!(units("1k"), 1_000);
    assert_eq!(units("1M"), 1_000_000);
    assert_eq!(units("2G"), 2_000_000_000);
    assert_eq!(units("1T"), 1_000_000_000_000);
    assert_eq!(units("1P"), 1_000_000_000_000_000);
    assert_eq!(units("1E"), 1_000_000_000_000_000_000);
    assert_eq!(units("1Ki"), 1024);
    assert_eq!(units("1Mi"), 1 << 20);
    assert_eq!(units("1.5Gi"), 3 << 29);
    assert_eq!(units("1Ti"), 1 << 40);
    assert_eq!(units("1Pi"), 1 << 50);
    assert_eq!(units("1Ei"), 1 << 60);
    assert_eq!(units("1e3"), 1_000);
    assert_eq!(units("1E3"), 1_000);
    assert_eq!(units("15e-1"), 2);
    assert_eq!(units("+5"), 5);
}

#[test]
fn millis_round_up() {
    assert_eq!(milli("250m"), 250);
    assert_eq!(milli("0.25"), 250);
    assert_eq!(milli("2"), 2_000);
    assert_eq!(milli("1u"), 1);
    assert_eq!(milli("1500000n"), 2);
    assert_eq!(milli("1500n"), 1);
    assert_eq!(milli("0.0001"), 1);
    assert_eq!(milli("0"), 0);
    assert_eq!(milli(".5"), 500);
    assert_eq!(milli("5."), 5_000);
}

#[test]
fn units_round_up() {
    assert_eq!(units("250m"), 1);
    assert_eq!(units("1001m"), 2);
    assert_eq!(units("1e-40"), 1);
    assert_eq!(units("-1500m"), -1);
}

#[test]
fn huge_values_saturate() {
    assert_eq!(units("100E"), i64::MAX);
    assert_eq!(units("16Ei"), i64::MAX);
    assert_eq!(units("1e100"), i64::MAX);
    assert_eq!(units("-1e100"), i64::MIN);
}

#[test]
fn zero_is_recognised() {
    assert!(Amount::parse("0").unwrap().is_zero());
    assert!(Amount::parse("0Gi").unwrap().is_zero());
    assert!(!Amount::parse("1m").unwrap().is_zero());
}

#[test]
fn malformed_quantities_are_refused() {
    for bad in [
        "", "-", ".", "1..2", "1.2.3", "abc", "1 Gi", "1gi", "1KiB", "1e", "1e+", "1e1.5", "1e--1",
        "1x",
    ] {
        assert!(
            matches!(Amount::parse(bad), Err(QuantityError::Malformed(_))),
            "{bad:?} should be refused"
        );
    }
    assert!(matches!(
        Amount::parse("1234567890123456789012345678901234567890"),
        Err(QuantityError::TooPrecise(_))
    ));
}
