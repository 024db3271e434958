//! The TLS client configuration of every connection to Azure (ARM, AAD, exec web sockets):
//! rustls with the ring provider, certificates checked against the operating system's roots.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls_platform_verifier::BuilderVerifierExt;

#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS with the system's certificate roots")]
pub struct TlsError(#[source] rustls::Error);

pub fn client_config() -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError)?
        .with_platform_verifier()
        .map_err(TlsError)?
        .with_no_client_auth();
    Ok(Arc::new(config))
}
