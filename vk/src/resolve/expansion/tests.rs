use std::collections::BTreeMap;

use super::*;

fn expand_with(input: &str, vars: &[(&str, &str)]) -> String {
    let vars: BTreeMap<&str, &str> = vars.iter().copied().collect();
    expand(input, |name| vars.get(name).copied())
}

#[test]
fn references_are_replaced_by_their_values() {
    let vars = [("A", "1"), ("B", "two"), ("EMPTY", "")];
    assert_eq!(expand_with("$(A)", &vars), "1");
    assert_eq!(expand_with("x$(A)y$(B)z", &vars), "x1ytwoz");
    assert_eq!(expand_with("[$(EMPTY)]", &vars), "[]");
    assert_eq!(expand_with("no references", &vars), "no references");
    assert_eq!(expand_with("", &vars), "");
}

#[test]
fn unknown_references_stay_literal() {
    let vars = [("A", "1")];
    // The name runs to the first `)`, so this looks up `$(A`.
    assert_eq!(expand_with("$($(A)", &vars), "$($(A)");
    assert_eq!(expand_with("$(NOPE)", &vars), "$(NOPE)");
    assert_eq!(expand_with("$()", &vars), "$()");
    assert_eq!(expand_with("$(A$(A))", &vars), "$(A$(A))");
}

#[test]
fn dollar_dollar_escapes() {
    let vars = [("A", "1")];
    assert_eq!(expand_with("$$(A)", &vars), "$(A)");
    assert_eq!(expand_with("$$$(A)", &vars), "$1");
    assert_eq!(expand_with("$$$$(A)", &vars), "$$(A)");
    assert_eq!(expand_with("$$", &vars), "$");
}

#[test]
fn other_dollars_are_copied() {
    let vars = [("A", "1")];
    assert_eq!(expand_with("$A", &vars), "$A");
    assert_eq!(expand_with("cost: 5$", &vars), "cost: 5$");
    assert_eq!(expand_with("$", &vars), "$");
    assert_eq!(expand_with("$é$(A)", &vars), "$é1");
    assert_eq!(expand_with("\\$(A)", &vars), "\\1");
}

#[test]
fn unterminated_references_are_text_and_scanning_continues() {
    let vars = [("A", "1")];
    assert_eq!(expand_with("$(A", &vars), "$(A");
    assert_eq!(expand_with("$($$", &vars), "$($");
    assert_eq!(expand_with("$(A $$ $", &vars), "$(A $ $");
    assert_eq!(expand_with("$(", &vars), "$(");
}

#[test]
fn values_are_not_rescanned() {
    let vars = [("A", "$(B)"), ("B", "2")];
    assert_eq!(expand_with("$(A)", &vars), "$(B)");
}
