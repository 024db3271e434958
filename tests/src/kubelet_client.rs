//! A minimal HTTPS client of vk's kubelet API, for calling it directly as the API server or
//! metrics-server would (the API server refuses to proxy to loopback node addresses).
//!
//! ```no_run
//! # async fn f(port: u16) {
//! # use vk_tests::{cluster::Cluster, kubelet_client::{Credentials, KubeletClient}};
//! let cluster = Cluster::shared();
//! let apiserver = KubeletClient::new(port, Credentials::apiserver(cluster));
//! let (status, body) = apiserver.get("/healthz").await;
//! # }
//! ```
//!
//! Like the API server without `--kubelet-certificate-authority`, it does not verify vk's serving
//! certificate (self-signed).

use std::{path::PathBuf, sync::Arc};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};
use tokio_rustls::TlsConnector;

use crate::cluster::Cluster;

/// What a request authenticates with.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Nothing: anonymous.
    None,
    /// A client certificate and its key (PEM files).
    Certificate { cert: PathBuf, key: PathBuf },
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
}

impl Credentials {
    /// The API server's identity toward kubelets (`pki/apiserver-kubelet-client.{crt,key}`:
    /// `CN=kube-apiserver-kubelet-client`, `O=system:masters`).
    pub fn apiserver(cluster: &Cluster) -> Self {
        let pki = cluster.dir().join("pki");
        Credentials::Certificate {
            cert: pki.join("apiserver-kubelet-client.crt"),
            key: pki.join("apiserver-kubelet-client.key"),
        }
    }
}

/// Accepts any serving certificate, checking only that the handshake is signed by its key.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// An HTTPS client of one vk's kubelet port on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct KubeletClient {
    port: u16,
    tls: Arc<ClientConfig>,
    bearer: Option<String>,
}

impl KubeletClient {
    /// A client of `https://127.0.0.1:PORT` that authenticates with `credentials`.
    pub fn new(port: u16, credentials: Credentials) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("rustls's default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)));
        let (tls, bearer) = match credentials {
            Credentials::None => (builder.with_no_client_auth(), None),
            Credentials::Bearer(token) => (builder.with_no_client_auth(), Some(token)),
            Credentials::Certificate { cert, key } => {
                let certs = CertificateDer::pem_file_iter(&cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", cert.display()));
                let key = PrivateKeyDer::from_pem_file(&key)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", key.display()));
                let config = builder
                    .with_client_auth_cert(certs, key)
                    .expect("a usable client certificate");
                (config, None)
            }
        };
        KubeletClient {
            port,
            tls: Arc::new(tls),
            bearer,
        }
    }

    /// Sends `Authorization: Bearer TOKEN` too (say, besides a client certificate).
    pub fn with_bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_string());
        self
    }

    /// `GET PATH` on a fresh connection: the status and the whole body as text. Panics if the
    /// connection or the exchange fails.
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to vk on port {}: {e}", self.port));
        let name = ServerName::try_from("localhost").expect("a valid server name");
        let stream = TlsConnector::from(self.tls.clone())
            .connect(name, stream)
            .await
            .unwrap_or_else(|e| panic!("TLS handshake with vk on port {} failed: {e}", self.port));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("an HTTP/1.1 connection");
        let connection = tokio::spawn(connection);
        let mut request = Request::get(path)
            .header(header::HOST, format!("127.0.0.1:{}", self.port))
            .header(header::CONNECTION, "close");
        if let Some(token) = &self.bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .expect("a valid request");
        let response = sender
            .send_request(request)
            .await
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("reading the body of GET {path} failed: {e}"))
            .to_bytes();
        connection.abort();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}
