use super::*;

#[test]
fn the_written_kubeconfig_uses_the_current_pair_and_the_bootstrap_cluster() {
    let dir = std::env::temp_dir().join(format!("vk-kubeconfig-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bootstrap = dir.join("bootstrap.kubeconfig");
    std::fs::write(
        &bootstrap,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: Q0E=\nusers:\n- name: u\n  user:\n    token: abcdef.0123456789abcdef\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
    )
    .unwrap();
    let path = dir.join("node.kubeconfig");
    let current = dir.join("pki/kubelet-client-current.pem");
    write_kubeconfig(&path, &bootstrap, &current).unwrap();

    let written = std::fs::read_to_string(&path).unwrap();
    assert!(!written.contains("0123456789abcdef"), "{written}");
    let file = Kubeconfig::read_from(&path).unwrap();
    assert_eq!(file.current_context.as_deref(), Some("default-context"));
    let cluster = file.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
    assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
    let user = file.auth_infos[0].auth_info.as_ref().unwrap();
    let current = current.display().to_string();
    assert_eq!(user.client_certificate.as_deref(), Some(current.as_str()));
    assert_eq!(user.client_key.as_deref(), Some(current.as_str()));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A kubeconfig in `dir` whose client certificate (embedded) expires at `not_after`.
fn kubeconfig_with_certificate(dir: &Path, not_after: i64) -> PathBuf {
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_after - 7200).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let data = |pem: String| BASE64_STANDARD.encode(pem);
    let path = dir.join(format!("node-{not_after}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\nusers:\n- name: u\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
            data(cert.pem()),
            data(key.serialize_pem()),
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn a_kubeconfig_with_a_valid_certificate_wins_over_the_bootstrap() {
    let dir = std::env::temp_dir().join(format!("vk-own-kubeconfig-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::new(&dir.join("pki"), "kubelet-client");
    let now = rotation::now();

    let valid = kubeconfig_with_certificate(&dir, now + 3600);
    assert!(own_kubeconfig(&valid, &store).await.is_some());
    let expired = kubeconfig_with_certificate(&dir, now - 60);
    assert!(own_kubeconfig(&expired, &store).await.is_none());
    assert!(own_kubeconfig(&dir.join("missing"), &store).await.is_none());
    // The kubeconfig vk wrote after a bootstrap stands for the store, which vk checks itself.
    let written = dir.join("written.kubeconfig");
    let bootstrap = kubeconfig_with_certificate(&dir, now + 3600);
    write_kubeconfig(&written, &bootstrap, &store.current_path()).unwrap();
    assert!(own_kubeconfig(&written, &store).await.is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}
