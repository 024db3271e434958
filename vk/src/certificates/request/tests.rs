use super::*;

use x509_parser::{certification_request::X509CertificationRequest, prelude::FromDer as _};

fn parse(pem: &str) -> Vec<u8> {
    let pem = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap().1;
    assert_eq!(pem.label, "CERTIFICATE REQUEST");
    pem.contents
}

#[test]
fn a_client_csr_names_the_node_and_carries_no_san() {
    let template = Template::client("vk-1");
    let (_, pem) = template.csr().unwrap();
    let der = parse(&pem);
    let (_, csr) = X509CertificationRequest::from_der(&der).unwrap();
    let subject = &csr.certification_request_info.subject;
    assert_eq!(subject.to_string(), "O=system:nodes, CN=system:node:vk-1");
    assert!(
        csr.requested_extensions()
            .is_none_or(|mut e| e.next().is_none())
    );
    // ECDSA P-256.
    let key = &csr.certification_request_info.subject_pki;
    assert_eq!(key.algorithm.algorithm.to_id_string(), "1.2.840.10045.2.1");

    let object = template.object(&pem, true, None);
    assert_eq!(object.metadata.generate_name.as_deref(), Some("node-csr-"));
    assert_eq!(
        object.spec.signer_name,
        "kubernetes.io/kube-apiserver-client-kubelet"
    );
    assert_eq!(
        object.spec.usages.unwrap(),
        ["digital signature", "client auth"]
    );
    assert_eq!(object.spec.expiration_seconds, None);
    assert_eq!(object.spec.request.0, pem.as_bytes());
}

#[test]
fn a_serving_csr_carries_the_node_addresses() {
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let template = Template::serving("vk-1", &[ip]);
    let (_, pem) = template.csr().unwrap();
    let der = parse(&pem);
    let (_, csr) = X509CertificationRequest::from_der(&der).unwrap();
    let sans: Vec<String> = csr
        .requested_extensions()
        .unwrap()
        .filter_map(|e| match e {
            x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) => Some(
                san.general_names
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(sans, ["DNSName(vk-1)", "IPAddress(7f:00:00:01)"]);
    let object = template.object(&pem, false, Some(600));
    assert_eq!(object.metadata.generate_name.as_deref(), Some("csr-"));
    assert_eq!(object.spec.signer_name, "kubernetes.io/kubelet-serving");
    assert_eq!(
        object.spec.usages.unwrap(),
        ["digital signature", "server auth"]
    );
    assert_eq!(object.spec.expiration_seconds, Some(600));
}

#[test]
fn the_outcome_reads_the_conditions_before_the_certificate() {
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestCondition;
    let condition = |type_: &str| CertificateSigningRequestCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some("Because".into()),
        ..CertificateSigningRequestCondition::default()
    };
    let status = |conditions: Vec<_>, certificate: Option<&[u8]>| CertificateSigningRequestStatus {
        conditions: Some(conditions),
        certificate: certificate.map(|c| ByteString(c.to_vec())),
    };
    assert!(matches!(outcome(None), Outcome::Pending));
    assert!(matches!(
        outcome(Some(&status(vec![condition("Approved")], None))),
        Outcome::Pending
    ));
    assert!(matches!(
        outcome(Some(&status(vec![condition("Approved")], Some(b"PEM")))),
        Outcome::Issued(c) if c == b"PEM"
    ));
    assert!(matches!(
        outcome(Some(&status(vec![condition("Denied")], None))),
        Outcome::Refused { denied: true, .. }
    ));
    assert!(matches!(
        outcome(Some(&status(
            vec![condition("Approved"), condition("Failed")],
            None
        ))),
        Outcome::Refused { denied: false, .. }
    ));
}
