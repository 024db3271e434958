use super::*;

#[test]
fn arm_error_bodies_become_messages() {
    let answer = Answer {
        status: StatusCode::BAD_REQUEST,
        headers: HeaderMap::new(),
        body: bytes::Bytes::from_static(
            br#"{"error":{"code":"InvalidContainerGroupName","message":"bad name","details":[{"code":"Inner","message":"why"}]}}"#,
        ),
    };
    let error = status_error(&Method::PUT, "/subscriptions/s/x", &answer);
    assert_eq!(
        error.to_string(),
        "azure answered PUT /subscriptions/s/x with HTTP 400: InvalidContainerGroupName: bad name; Inner: why"
    );
    assert!(!error.is_transient());
    let throttled = Answer {
        status: StatusCode::TOO_MANY_REQUESTS,
        headers: HeaderMap::new(),
        body: bytes::Bytes::new(),
    };
    let error = status_error(&Method::GET, "/p", &throttled);
    assert!(error.is_transient());
    assert!(error.to_string().ends_with("Too Many Requests"), "{error}");
}

#[test]
fn paths_for_messages() {
    assert_eq!(
        display_path("https://management.azure.com/subscriptions/s?api-version=1"),
        "/subscriptions/s"
    );
    assert_eq!(display_path("subscriptions/s/x"), "/subscriptions/s/x");
}
