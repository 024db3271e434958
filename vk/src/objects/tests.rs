use k8s_openapi::jiff::Timestamp;

use super::*;

fn key(audience: Option<&str>) -> TokenKey {
    TokenKey {
        service_account: "default".into(),
        audience: audience.map(str::to_string),
        expiration_seconds: 3607,
    }
}

fn token(text: &str) -> IssuedToken {
    IssuedToken::new(text.into(), Timestamp::UNIX_EPOCH, 3607)
}

#[test]
fn a_pods_tokens_are_kept_by_what_they_were_asked_for_in_no_more_room_than_they_take() {
    let mut tokens = PodTokens::default();
    tokens.insert(key(None), token("a"));
    assert_eq!(tokens.0.capacity(), 1);
    tokens.insert(key(Some("vault")), token("b"));
    tokens.insert(key(None), token("c"));
    assert_eq!(
        tokens.0.len(),
        2,
        "a token asked for again replaces the first"
    );
    assert_eq!(tokens.get(&key(None)), Some(&token("c")));
    assert_eq!(tokens.get(&key(Some("vault"))), Some(&token("b")));
    assert_eq!(tokens.get(&key(Some("other"))), None);
}
