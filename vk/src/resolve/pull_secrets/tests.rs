use super::*;

#[test]
fn dockerconfigjson_with_fields_or_auth() {
    let json = br#"{"auths": {
        "registry.example:5000": {"username": "u", "password": "p"},
        "https://index.docker.io/v1/": {"auth": "YWxpY2U6czNjcjN0"}
    }}"#;
    let credentials = parse(Some(json), None).unwrap();
    assert_eq!(
        credentials,
        vec![
            RegistryCredential {
                server: "https://index.docker.io/v1/".into(),
                username: "alice".into(),
                password: "s3cr3t".into(),
            },
            RegistryCredential {
                server: "registry.example:5000".into(),
                username: "u".into(),
                password: "p".into(),
            },
        ]
    );
}

#[test]
fn legacy_dockercfg() {
    let cfg = br#"{"quay.io": {"username": "robot", "password": "token", "email": "x@y"}}"#;
    let credentials = parse(None, Some(cfg)).unwrap();
    assert_eq!(credentials[0].server, "quay.io");
    assert_eq!(credentials[0].username, "robot");
}

#[test]
fn unusable_secrets() {
    assert_eq!(parse(None, None), None);
    assert_eq!(parse(Some(b"not json"), None), None);
    assert_eq!(
        parse(Some(br#"{"auths": {"r": {"auth": "!!"}}}"#), None),
        None
    );
}
