use reqwest::header::{HeaderMap, HeaderValue};

use super::*;

fn answer(status: StatusCode, headers: &[(&'static str, &str)], body: &str) -> Answer {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    Answer {
        status,
        headers: map,
        body: bytes::Bytes::copy_from_slice(body.as_bytes()),
    }
}

#[test]
fn what_to_poll() {
    let resource = "https://arm/group".to_string();
    let started = |a: Answer| Operation::started(&a, resource.clone());
    let async_op = started(answer(
        StatusCode::CREATED,
        &[
            ("azure-asyncoperation", "https://arm/op"),
            ("location", "https://arm/loc"),
            ("retry-after", "7"),
        ],
        "",
    ));
    assert_eq!(async_op.poll, Poll::AsyncOperation("https://arm/op".into()));
    assert_eq!(async_op.wait, Duration::from_secs(7));
    let location = started(answer(
        StatusCode::ACCEPTED,
        &[("location", "https://arm/loc")],
        "",
    ));
    assert_eq!(location.poll, Poll::Location("https://arm/loc".into()));
    assert_eq!(location.wait, DEFAULT_POLL);
    let done = started(answer(
        StatusCode::OK,
        &[],
        r#"{"properties":{"provisioningState":"Succeeded","containers":[]}}"#,
    ));
    assert_eq!(done.poll, Poll::Done);
    let creating = started(answer(
        StatusCode::CREATED,
        &[],
        r#"{"properties":{"provisioningState":"Creating","containers":[]}}"#,
    ));
    assert_eq!(creating.poll, Poll::Resource(resource.clone()));
}
