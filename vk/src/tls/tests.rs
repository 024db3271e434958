use super::*;

#[test]
fn self_signed_config_builds() {
    let ips = ["127.0.0.1".parse().unwrap()];
    let serving = ServingCert::SelfSigned {
        node_name: "vk",
        ips: &ips,
    };
    let cell = Arc::new(CertCell::new(serving.certified_key().unwrap()));
    let config = server_config(cell, &[]).unwrap();
    assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
}

#[test]
fn missing_files_are_named_in_the_error() {
    let serving = ServingCert::Files {
        cert: Path::new("/nonexistent.crt"),
        key: Path::new("/nonexistent.key"),
    };
    let error = serving.certified_key().unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot read certificate /nonexistent.crt"
    );
}

/// A CA, and a client certificate it issued.
fn ca_and_client() -> (CertificateDer<'static>, CertificateDer<'static>) {
    let mut ca = rcgen::CertificateParams::new(vec![]).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test-ca");
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let mut client = rcgen::CertificateParams::new(vec![]).unwrap();
    client
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver-kubelet-client");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client
        .signed_by(&rcgen::KeyPair::generate().unwrap(), &ca)
        .unwrap();
    (ca.der().clone(), client.der().clone())
}

#[test]
fn client_certificates_are_verified_against_the_client_ca() {
    let (ca, client) = ca_and_client();
    let (other_ca, other_client) = ca_and_client();
    let client_ca = ClientCa::new(&[ca]).unwrap();
    assert_eq!(client_ca.verify(std::slice::from_ref(&client)), Ok(()));
    assert!(client_ca.verify(&[other_client]).is_err());
    assert!(client_ca.verify(&[]).is_err());
    // Without a client CA no certificate is trusted.
    assert!(ClientCa::new(&[]).unwrap().verify(&[client]).is_err());
    // The handshake asks for a certificate, requires none, and takes any chain.
    let handshake = RequestClientCert(ClientCa::new(&[other_ca]).unwrap().0.unwrap());
    assert!(handshake.offer_client_auth() && !handshake.client_auth_mandatory());
    assert!(!handshake.root_hint_subjects().is_empty());
    let (_, stranger) = ca_and_client();
    assert!(
        handshake
            .verify_client_cert(&stranger, &[], UnixTime::now())
            .is_ok()
    );
}

#[test]
fn a_replaced_certificate_is_what_the_next_handshake_gets() {
    let make = |node_name| {
        ServingCert::SelfSigned {
            node_name,
            ips: &[],
        }
        .certified_key()
        .unwrap()
    };
    let cell = CertCell::new(make("first"));
    let held = cell.current();
    cell.replace(make("second"));
    let current = ResolvesClientCert::resolve(&cell, &[], &[]).unwrap();
    assert_ne!(current.cert, held.cert);
    // A connection holding the first keeps it.
    assert_eq!(held.cert.len(), 1);
}
