use k8s_openapi::api::core::v1::{ContainerPort, HTTPHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A server on 127.0.0.1 that answers one connection with `response`; what it was sent.
async fn answer_once(response: &'static str) -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = vec![0; 4096];
        let read = stream.read(&mut request).await.unwrap();
        stream.write_all(response.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
        String::from_utf8_lossy(&request[..read]).into_owned()
    });
    (port, served)
}

async fn direct(port: u16) -> Connection {
    Box::new(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn a_get_sends_the_kubelets_headers_and_reads_the_status() {
    let (port, served) =
        answer_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy").await;
    let action = HTTPGetAction {
        path: Some("healthz".into()),
        http_headers: Some(vec![
            HTTPHeader {
                name: "X-Probe".into(),
                value: "yes".into(),
            },
            HTTPHeader {
                name: "Accept".into(),
                value: "text/plain".into(),
            },
        ]),
        ..HTTPGetAction::default()
    };
    let answer = get(direct(port).await, &action, "10.0.0.1:8080", Purpose::Probe)
        .await
        .unwrap();
    assert_eq!(answer, (503, "busy".to_string()));
    let request = served.await.unwrap().to_lowercase();
    assert!(
        request.starts_with("get /healthz http/1.1\r\n"),
        "{request}"
    );
    for header in [
        "host: 10.0.0.1:8080",
        "user-agent: kube-probe/1.36",
        "accept: text/plain",
        "x-probe: yes",
        "connection: close",
    ] {
        assert!(request.contains(header), "{header} missing in {request}");
    }
    assert!(!request.contains("accept: */*"), "{request}");
}

#[tokio::test]
async fn an_empty_accept_header_removes_it() {
    let (port, served) = answer_once("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let action = HTTPGetAction {
        http_headers: Some(vec![HTTPHeader {
            name: "Accept".into(),
            value: String::new(),
        }]),
        ..HTTPGetAction::default()
    };
    get(direct(port).await, &action, "h", Purpose::Hook)
        .await
        .unwrap();
    let request = served.await.unwrap().to_lowercase();
    assert!(!request.contains("accept:"), "{request}");
    assert!(
        request.contains("user-agent: kube-lifecycle/1.36"),
        "{request}"
    );
}

#[test]
fn ports_are_numbers_or_the_containers_named_ports() {
    let container = Container {
        name: "app".into(),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            ..ContainerPort::default()
        }]),
        ..Container::default()
    };
    assert_eq!(container_port(&container, &IntOrString::Int(80)), Ok(80));
    assert_eq!(
        container_port(&container, &IntOrString::String("http".into())),
        Ok(8080)
    );
    assert!(container_port(&container, &IntOrString::String("grpc".into())).is_err());
    assert!(container_port(&container, &IntOrString::Int(70000)).is_err());
}

#[test]
fn health_messages_are_protobuf() {
    assert!(health_request("").is_empty());
    assert_eq!(health_request("db"), b"\x0a\x02db");
    let long = "s".repeat(200);
    assert_eq!(&health_request(&long)[..3], &[0x0a, 0xc8, 0x01]);
    assert_eq!(grpc_frame(b"\x0a\x02db"), b"\x00\x00\x00\x00\x04\x0a\x02db");
    assert_eq!(health_status(b"\x08\x01"), 1);
    assert_eq!(health_status(b"\x08\x02"), 2);
    assert_eq!(health_status(b""), 0);
    assert_eq!(serving_status(3), "SERVICE_UNKNOWN");
}

/// A gRPC health server on 127.0.0.1 answering every Check with `status`.
async fn health_server(status: u8) -> u16 {
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(move |request: http::Request<_>| async move {
            assert_eq!(request.uri().path(), "/grpc.health.v1.Health/Check");
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = vec![
                Ok(Frame::data(Bytes::from(grpc_frame(&[0x08, status])))),
                Ok(Frame::trailers(trailers)),
            ];
            let body = StreamBody::new(futures::stream::iter(frames));
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .header("content-type", "application/grpc")
                    .body(body)
                    .unwrap(),
            )
        });
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await
            .unwrap();
    });
    port
}

#[tokio::test]
async fn grpc_health_checks_read_the_serving_status() {
    let port = health_server(1).await;
    assert_eq!(grpc_health(direct(port).await, "db").await, Ok(1));
    let port = health_server(2).await;
    assert_eq!(grpc_health(direct(port).await, "").await, Ok(2));
}
