//! The kubelet API's TLS: the serving certificate (from files, self-signed for the node's names
//! and IPs, or issued by the cluster and replaced while vk runs: [`CertCell`]) and client
//! certificates, asked for but not required. As the kubelet does (Go's
//! `tls.RequestClientCert`), the handshake only checks that the client holds the certificate's
//! key; the authenticator then verifies the chain against the client CA ([`ClientCa`]), so that
//! a certificate of another CA, or an expired one, is ignored (401, or the bearer token counts)
//! instead of failing the handshake.

use std::{net::IpAddr, path::Path, sync::Arc};

use parking_lot::RwLock;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    client::{ResolvesClientCert, danger::HandshakeSignatureValid},
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject},
    server::{
        ClientHello, ResolvesServerCert, WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}")]
    Read {
        what: &'static str,
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no {what}")]
    Empty { what: &'static str, path: String },
    #[error("cannot generate a self-signed serving certificate")]
    Generate(#[source] rcgen::Error),
    #[error("the TLS configuration is invalid")]
    Config(#[source] rustls::Error),
    #[error("the client CA is invalid")]
    ClientCa(#[source] rustls::server::VerifierBuilderError),
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum ServingCert<'a> {
    Files {
        cert: &'a Path,
        key: &'a Path,
    },
    SelfSigned {
        node_name: &'a str,
        ips: &'a [IpAddr],
    },
}

pub fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

fn self_signed(
    node_name: &str,
    ips: &[IpAddr],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let mut names = vec![node_name.to_string(), "localhost".to_string()];
    names.extend(ips.iter().map(ToString::to_string));
    let certified = rcgen::generate_simple_self_signed(names).map_err(TlsError::Generate)?;
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der())
        .map_err(|_| TlsError::Generate(rcgen::Error::CouldNotParseKeyPair))?;
    Ok((vec![certified.cert.der().clone()], key))
}

impl ServingCert<'_> {
    /// The certificate and its signing key, read or made.
    pub fn certified_key(&self) -> Result<CertifiedKey, TlsError> {
        let (certs, key) = match self {
            ServingCert::Files { cert, key } => {
                let certs = read_certs("certificate", cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Read {
                    what: "private key",
                    path: key.display().to_string(),
                    source,
                })?;
                (certs, key)
            }
            ServingCert::SelfSigned { node_name, ips } => self_signed(node_name, ips)?,
        };
        certified_key(certs, key)
    }
}

/// A chain and its private key, checked to belong together.
pub fn certified_key(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, TlsError> {
    CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider())
        .map_err(TlsError::Config)
}

/// A certificate that can be replaced while in use: each TLS handshake takes the one current at
/// that moment, so connections already open (exec or log streams) keep theirs.
#[derive(Debug)]
pub struct CertCell(RwLock<Arc<CertifiedKey>>);

impl CertCell {
    pub fn new(key: CertifiedKey) -> Self {
        CertCell(RwLock::new(Arc::new(key)))
    }

    pub fn replace(&self, key: CertifiedKey) {
        *self.0.write() = Arc::new(key);
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.0.read().clone()
    }
}

impl ResolvesServerCert for CertCell {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for CertCell {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The server configuration: HTTP/1.1 only (exec, attach and port-forward upgrade the
/// connection), the serving certificate `serving` holds at each handshake, client certificates
/// verified against `client_ca` when one is given.
pub fn server_config(
    serving: Arc<CertCell>,
    client_ca: &[CertificateDer<'static>],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = match ClientCa::new(client_ca)?.0 {
        None => builder.with_no_client_auth(),
        Some(verifier) => builder.with_client_cert_verifier(Arc::new(RequestClientCert(verifier))),
    };
    let mut config = builder.with_cert_resolver(serving);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Verifies client certificate chains against the client CA, after the handshake.
#[derive(Debug, Clone)]
pub struct ClientCa(Option<Arc<dyn ClientCertVerifier>>);

impl ClientCa {
    /// A verifier for `certs` (none: no client certificate is ever trusted).
    pub fn new(certs: &[CertificateDer<'static>]) -> Result<Self, TlsError> {
        if certs.is_empty() {
            return Ok(ClientCa(None));
        }
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots.add(cert.clone()).map_err(TlsError::Config)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(TlsError::ClientCa)?;
        Ok(ClientCa(Some(verifier)))
    }

    /// Checks that `chain` (the end entity first) is a valid client certificate of the CA.
    pub fn verify(&self, chain: &[CertificateDer<'_>]) -> Result<(), String> {
        let Some(verifier) = &self.0 else {
            return Err("no client CA is configured".into());
        };
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return Err("no certificate".into());
        };
        verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map(drop)
            .map_err(|error| error.to_string())
    }
}

/// Asks for a client certificate (offering the client CA's names), checks the handshake
/// signatures with it, and leaves the chain to [`ClientCa::verify`].
#[derive(Debug)]
struct RequestClientCert(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for RequestClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests;
