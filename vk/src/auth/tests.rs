use super::*;

#[test]
fn subresources_follow_the_kubelet() {
    assert_eq!(subresources("/stats/summary"), ["stats"]);
    assert_eq!(subresources("/metrics/resource"), ["metrics"]);
    assert_eq!(subresources("/metrics"), ["metrics"]);
    assert_eq!(subresources("/pods"), ["pods", "proxy"]);
    assert_eq!(subresources("/runningpods/"), ["pods", "proxy"]);
    assert_eq!(subresources("/healthz"), ["healthz", "proxy"]);
    assert_eq!(subresources("/containerLogs/ns/p/c"), ["proxy"]);
    assert_eq!(subresources("/exec/ns/p/c"), ["proxy"]);
    assert_eq!(
        subresources("/statsx"),
        ["proxy"],
        "only whole path segments count"
    );
}

#[test]
fn verbs_follow_the_method() {
    assert_eq!(verb(&http::Method::GET), "get");
    assert_eq!(verb(&http::Method::POST), "create");
    assert_eq!(verb(&http::Method::HEAD), "");
}

#[test]
fn bearer_tokens_come_from_the_header_or_the_websocket_protocol() {
    let mut headers = http::HeaderMap::new();
    assert_eq!(bearer_token(&headers), None);
    headers.insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        "v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.c2VjcmV0"
            .parse()
            .unwrap(),
    );
    assert_eq!(bearer_token(&headers).as_deref(), Some("secret"));
    headers.insert(http::header::AUTHORIZATION, "Bearer abc".parse().unwrap());
    assert_eq!(bearer_token(&headers).as_deref(), Some("abc"));
}

#[test]
fn denials_map_to_status_codes() {
    assert_eq!(Denial::Unauthorized.status(), 401);
    let forbidden = Denial::Forbidden {
        user: "u".into(),
        verb: "get".into(),
        subresources: vec!["pods".into(), "proxy".into()],
    };
    assert_eq!(forbidden.status(), 403);
    assert_eq!(
        forbidden.to_string(),
        "Forbidden (user=u, verb=get, resource=nodes, subresource(s)=[pods proxy])"
    );
}

#[test]
fn users_from_certificates() {
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "system:node:vk");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let user = User::from_certificate(cert.der()).unwrap();
    assert_eq!(user.name, "system:node:vk");
    assert_eq!(user.groups, ["system:nodes", "system:authenticated"]);
}
