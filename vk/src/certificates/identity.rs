//! vk's client certificate while it rotates: every new connection to the API server presents
//! the current one, and connections opened with an older one are closed when it changes (as the
//! kubelet does), since the API server checks a certificate's expiry on every request.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::{
    client::legacy::connect::{Connected, Connection, HttpConnector},
    rt::TokioExecutor,
};
use kube::{Config, client::ConfigExt as _};
use rustls::{RootCertStore, pki_types::CertificateDer, sign::CertifiedKey};
use tokio::sync::watch;
use tower::{Service, ServiceBuilder, util::BoxService};

use super::CertError;
use crate::tls::CertCell;

/// The HTTP stack under a kube client.
pub type ApiService = BoxService<
    http::Request<kube::client::Body>,
    http::Response<hyper::body::Incoming>,
    hyper_util::client::legacy::Error,
>;

/// The current client certificate, and a counter of its replacements.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    cell: Arc<CertCell>,
    generation: Arc<watch::Sender<u64>>,
}

impl ClientIdentity {
    pub fn new(key: CertifiedKey) -> ClientIdentity {
        ClientIdentity {
            cell: Arc::new(CertCell::new(key)),
            generation: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Presents `key` from now on, closing the connections that presented the previous one.
    pub fn replace(&self, key: CertifiedKey) {
        self.cell.replace(key);
        self.generation.send_modify(|g| *g += 1);
    }

    /// A client builder for `config`'s server and CA, authenticating with this identity.
    pub fn client_builder(
        &self,
        config: &Config,
    ) -> Result<kube::client::ClientBuilder<ApiService>, CertError> {
        let mut roots = RootCertStore::empty();
        for der in config.root_cert.iter().flatten() {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(CertError::ClientTls)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(CertError::ClientTls)?
            .with_root_certificates(roots)
            .with_client_cert_resolver(self.cell.clone());
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(config.connect_timeout);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let connector = Closing {
            inner: https,
            generation: self.generation.subscribe(),
        };
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build::<_, kube::client::Body>(connector);
        let service = BoxService::new(
            ServiceBuilder::new()
                .layer(config.base_uri_layer())
                .service(client),
        );
        Ok(kube::client::ClientBuilder::new(
            service,
            config.default_namespace.clone(),
        ))
    }
}

/// A connector whose connections end when the identity changes.
#[derive(Debug, Clone)]
struct Closing<C> {
    inner: C,
    generation: watch::Receiver<u64>,
}

impl<C> Service<Uri> for Closing<C>
where
    C: Service<Uri> + Send,
    C::Future: Send + 'static,
    C::Response: Send,
{
    type Response = ClosingStream<C::Response>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, C::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut generation = self.generation.clone();
        // The identity this connection's handshake will present.
        generation.mark_unchanged();
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            let io = connecting.await?;
            let changed = Box::pin(async move {
                let _ = generation.changed().await;
            });
            Ok(ClosingStream {
                io,
                changed,
                closed: false,
            })
        })
    }
}

/// A connection that reads as ended once the identity it was opened with is replaced.
struct ClosingStream<T> {
    io: T,
    changed: Pin<Box<dyn Future<Output = ()> + Send>>,
    closed: bool,
}

impl<T> ClosingStream<T> {
    fn check(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.closed && self.changed.as_mut().poll(cx).is_ready() {
            log::debug!(
                "closing a connection to the API server made with the previous client certificate"
            );
            self.closed = true;
        }
        self.closed
    }
}

impl<T: Read + Unpin> Read for ClosingStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.check(cx) {
            // End of stream: hyper closes the connection and never reuses it.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for ClosingStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.check(cx) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<T: Connection> Connection for ClosingStream<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}
