use super::*;

#[test]
fn protocols_are_negotiated_in_the_clients_order() {
    let mut headers = HeaderMap::new();
    headers.append(PROTOCOL_HEADER, "v5.channel.k8s.io".parse().unwrap());
    headers.append(
        PROTOCOL_HEADER,
        "v4.channel.k8s.io, v3.channel.k8s.io".parse().unwrap(),
    );
    headers.insert(header::CONNECTION, "Upgrade".parse().unwrap());
    headers.insert(header::UPGRADE, "SPDY/3.1".parse().unwrap());
    assert_eq!(
        negotiate(&headers, &REMOTE_COMMAND_PROTOCOLS).unwrap(),
        "v4.channel.k8s.io"
    );
    let refused = negotiate(&headers, &[PORT_FORWARD_PROTOCOL]).unwrap_err();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refused.headers()["x-accepted-stream-protocol-versions"],
        PORT_FORWARD_PROTOCOL
    );
    assert_eq!(
        negotiate(&HeaderMap::new(), &REMOTE_COMMAND_PROTOCOLS)
            .unwrap_err()
            .status(),
        StatusCode::BAD_REQUEST
    );
}
