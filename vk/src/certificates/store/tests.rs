use super::*;

use std::os::unix::fs::PermissionsExt as _;

use crate::certificates::request::Template;

/// A scratch directory of this test process, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vk-store-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// A certificate for `cn` valid from `not_before` to `not_after` (Unix seconds), signed by a
/// throwaway CA, and its key; both PEM.
fn issued(cn: &str, not_before: i64, not_after: i64) -> (String, String) {
    let mut ca = rcgen::CertificateParams::new(vec![]).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn a_saved_pair_is_private_linked_as_current_and_loaded_again() {
    let dir = scratch("save");
    let store = Store::new(&dir, "kubelet-client");
    assert!(store.load().unwrap().is_none());
    let now = crate::certificates::rotation::now();
    let (cert, key) = issued("system:node:vk-1", now - 60, now + 3600);
    let saved = store.save(&cert, &key).unwrap();

    let current = store.current_path();
    let target = fs::read_link(&current).unwrap();
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("kubelet-client-20") && name.ends_with(".pem"),
        "{name}"
    );
    let mode = fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let loaded = store.load().unwrap().unwrap();
    assert_eq!(loaded.certs, saved.certs);
    assert_eq!(loaded.common_name, "system:node:vk-1");
    assert_eq!(loaded.organizations, ["system:nodes"]);
    assert_eq!(loaded.not_after, now + 3600);
    assert_eq!(Template::client("vk-1").mismatch(&loaded, now), None);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pairs_saved_in_the_same_second_keep_files_of_their_own() {
    let dir = scratch("same-second");
    let store = Store::new(&dir, "kubelet-client");
    let now = crate::certificates::rotation::now();
    let (first_cert, first_key) = issued("system:node:vk-1", now - 60, now + 3600);
    let (second_cert, second_key) = issued("system:node:vk-2", now - 60, now + 3600);
    store.save(&first_cert, &first_key).unwrap();
    let first = fs::read_link(store.current_path()).unwrap();
    store.save(&second_cert, &second_key).unwrap();
    let second = fs::read_link(store.current_path()).unwrap();

    assert_ne!(first, second);
    assert!(
        fs::read_to_string(&first)
            .unwrap()
            .starts_with(first_cert.trim_end())
    );
    assert_eq!(
        store.load().unwrap().unwrap().common_name,
        "system:node:vk-2"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_expired_or_foreign_certificate_is_not_reused() {
    let dir = scratch("expired");
    let store = Store::new(&dir, "kubelet-client");
    let now = crate::certificates::rotation::now();
    let (cert, key) = issued("system:node:vk-1", now - 7200, now - 60);
    store.save(&cert, &key).unwrap();
    let pair = store.load().unwrap().unwrap();
    assert_eq!(
        Template::client("vk-1").mismatch(&pair, now).as_deref(),
        Some("it has expired")
    );
    let (cert, key) = issued("system:node:other", now - 60, now + 3600);
    let pair = Pair::from_pem(format!("{cert}{key}").as_bytes()).unwrap();
    assert_eq!(
        Template::client("vk-1").mismatch(&pair, now).as_deref(),
        Some("it is for system:node:other")
    );
    let serving = Template::serving("vk-1", &["127.0.0.1".parse().unwrap()]);
    let (cert, key) = issued("system:node:vk-1", now - 60, now + 3600);
    let pair = Pair::from_pem(format!("{cert}{key}").as_bytes()).unwrap();
    assert_eq!(
        serving.mismatch(&pair, now).as_deref(),
        Some("it lacks the DNS name vk-1")
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unparsable_current_file_is_an_error() {
    let dir = scratch("garbage");
    fs::create_dir_all(&dir).unwrap();
    let store = Store::new(&dir, "kubelet-client");
    fs::write(store.current_path(), "not a certificate").unwrap();
    assert!(matches!(store.load(), Err(StoreError::NoCertificate)));
    fs::remove_dir_all(&dir).unwrap();
}
