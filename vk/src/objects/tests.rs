use std::sync::atomic::{AtomicUsize, Ordering};

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

#[tokio::test]
async fn misses_of_one_key_at_once_make_one_fetch() {
    let cache = Cache::<String>::new();
    let fetches = AtomicUsize::new(0);
    let fetches = &fetches;
    let get = |name: &'static str| {
        cache.get_or_fetch((String::from("default"), name.to_string()), async move {
            fetches.fetch_add(1, Ordering::Relaxed);
            tokio::task::yield_now().await;
            Ok::<_, ()>(Some(format!("{name} fetched")))
        })
    };
    let found = futures::future::join_all((0..10).map(|_| get("a"))).await;
    assert!(
        found.iter().all(|f| f == &Ok(Some("a fetched".into()))),
        "{found:?}"
    );
    assert_eq!(fetches.load(Ordering::Relaxed), 1);
    assert!(cache.fetches.lock().is_empty(), "no fetch is left waiting");
    // Another key is fetched on its own.
    assert_eq!(get("b").await, Ok(Some("b fetched".into())));
    assert_eq!(fetches.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_failed_fetch_is_not_cached() {
    let cache = Cache::<String>::new();
    let key = || (String::from("default"), String::from("a"));
    let failed = cache.get_or_fetch(key(), async { Err::<Option<String>, _>("down") });
    assert_eq!(failed.await, Err("down"));
    let fetched = cache.get_or_fetch(key(), async { Ok::<_, &str>(Some("a".to_string())) });
    assert_eq!(fetched.await, Ok(Some("a".into())));
}
