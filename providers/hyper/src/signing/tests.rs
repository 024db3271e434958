use super::*;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SIGNED: &str = "content-type;host;x-hyper-content-sha256;x-hyper-date";

fn credentials(access_key: &str, secret_key: &str) -> Credentials {
    Credentials {
        access_key: access_key.into(),
        secret_key: secret_key.into(),
        region: DEFAULT_HYPER_REGION.into(),
    }
}

/// The published vector of the hyperb client (`spec/request_spec.rb`). That client signs the
/// path `v1.23/` (it does not normalise), so the canonical request is built here by hand.
#[test]
fn published_hyperb_vector() {
    let canonical_request = format!(
        "GET\nv1.23/\n\ncontent-type:application/json\nhost:us-west-1.hyper.sh\n\
         x-hyper-content-sha256:{EMPTY_SHA256}\nx-hyper-date:20170729T230845Z\n\n{SIGNED}\n{EMPTY_SHA256}"
    );
    assert_eq!(
        authorization(
            &credentials("ak", "sk"),
            "20170729T230845Z",
            "us-west-1",
            SIGNED,
            &canonical_request
        ),
        "HYPER-HMAC-SHA256 Credential=ak/20170729/us-west-1/hyper/hyper_request, \
         SignedHeaders=content-type;host;x-hyper-content-sha256;x-hyper-date, \
         Signature=3a923718db713abc7b851712a434343eb7887298ab5f48113a7b291f261c037a"
    );
}

/// A request signed end to end: a body, an unsorted query with a space, a default port, and the
/// region taken from the host. The expected values were computed independently (Python's
/// hashlib/hmac following the algorithm, which reproduces the published vector above).
#[test]
fn worked_example_post_with_body_and_query() {
    let uri: Uri = "https://eu-central-1.hyper.sh:443/v1.23/containers/create?name=my+pod&b=2&a=1"
        .parse()
        .unwrap();
    let mut headers = HeaderMap::new();
    let now: jiff::Timestamp = "2019-01-16T12:00:00Z".parse().unwrap();
    sign(
        &credentials("AKID", "SECRET"),
        &Method::POST,
        &uri,
        &mut headers,
        br#"{"Image":"busybox"}"#,
        now,
    );
    assert_eq!(headers["x-hyper-date"], "20190116T120000Z");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["x-hyper-content-sha256"],
        "ceb41829508a3bb5e4da1d1ddc827df6e9042efa48ac2ea5bf9d1c253ea86c19"
    );
    assert_eq!(
        headers["authorization"],
        "HYPER-HMAC-SHA256 Credential=AKID/20190116/eu-central-1/hyper/hyper_request, \
         SignedHeaders=content-type;host;x-hyper-content-sha256;x-hyper-date, \
         Signature=6f1b022ff6d1f0e1047de119db7a2a944722062a0aca74163de65ee85e6fb50a"
    );
}

#[test]
fn canonical_parts() {
    assert_eq!(
        canonical_path("/v1.23/containers/json"),
        "v1.23/containers/json"
    );
    assert_eq!(canonical_path("//a b/ü/"), "a%20b/%C3%BC");
    assert_eq!(canonical_path("/"), "");
    assert_eq!(
        canonical_query("filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D&all=1"),
        "all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"
    );
    assert_eq!(canonical_query("k=2&j=x+y&k=1"), "j=x%20y&k=2&k=1");
    assert_eq!(canonical_host(&"http://h:80/x".parse().unwrap()), "h");
    assert_eq!(
        canonical_host(&"http://h:2376/x".parse().unwrap()),
        "h:2376"
    );
    assert_eq!(region_of("eu-central-1.hyper.sh"), Some("eu-central-1"));
    assert_eq!(region_of("engine.example:2376"), None);
}

#[test]
fn configured_region_and_existing_date_are_used() {
    let mut headers = HeaderMap::new();
    headers.insert("x-hyper-date", HeaderValue::from_static("20200101T000000Z"));
    headers.insert("x-hyper-extra", HeaderValue::from_static("  spaced  "));
    let mut credentials = credentials("a", "s");
    credentials.region = "ap-1".into();
    let uri: Uri = "http://engine.example:2376/_ping".parse().unwrap();
    sign(
        &credentials,
        &Method::GET,
        &uri,
        &mut headers,
        b"",
        jiff::Timestamp::now(),
    );
    let authorization = headers["authorization"].to_str().unwrap();
    assert!(
        authorization.starts_with("HYPER-HMAC-SHA256 Credential=a/20200101/ap-1/hyper/hyper_request, SignedHeaders=content-type;host;x-hyper-content-sha256;x-hyper-date;x-hyper-extra, Signature="),
        "{authorization}"
    );
}
