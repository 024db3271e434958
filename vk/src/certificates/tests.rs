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
