use http_body_util::BodyExt as _;

use super::*;

fn credentials() -> Credentials {
    Credentials {
        access_key: "AKID".into(),
        secret_key: "SECRET".into(),
        region: "us-west-1".into(),
    }
}

#[test]
fn requests_are_signed_over_their_whole_body() {
    let body = br#"{"Image":"busybox"}"#;
    let request: BollardRequest = http::Request::builder()
        .method("POST")
        .uri("https://eu-central-1.hyper.sh/v1.23/containers/create?name=p")
        .body(Either::Left(Full::new(Bytes::from_static(body))))
        .unwrap();
    let signed = signed(&credentials(), request);
    let headers = signed.headers();
    assert_eq!(
        headers["x-hyper-content-sha256"],
        "ceb41829508a3bb5e4da1d1ddc827df6e9042efa48ac2ea5bf9d1c253ea86c19"
    );
    let authorization = headers["authorization"].to_str().unwrap();
    assert!(
        authorization.starts_with("HYPER-HMAC-SHA256 Credential=AKID/")
            && authorization.contains("/eu-central-1/hyper/hyper_request, SignedHeaders=content-type;host;x-hyper-content-sha256;x-hyper-date, Signature="),
        "{authorization}"
    );
    // The body still goes out, unchanged.
    let sent = futures::executor::block_on(signed.into_body().collect())
        .unwrap()
        .to_bytes();
    assert_eq!(&sent[..], body);
}
