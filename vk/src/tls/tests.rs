use super::*;

#[test]
fn self_signed_config_builds() {
    let ips = ["127.0.0.1".parse().unwrap()];
    let config = server_config(
        ServingCert::SelfSigned {
            node_name: "vk",
            ips: &ips,
        },
        &[],
    )
    .unwrap();
    assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
}

#[test]
fn missing_files_are_named_in_the_error() {
    let serving = ServingCert::Files {
        cert: Path::new("/nonexistent.crt"),
        key: Path::new("/nonexistent.key"),
    };
    let error = server_config(serving, &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot read certificate /nonexistent.crt"
    );
}
