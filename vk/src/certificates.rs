//! vk's certificates from the cluster, as the kubelet gets them: TLS bootstrap of the client
//! certificate with a bootstrap token (`--bootstrap-kubeconfig`), kept in `--cert-dir` and reused
//! at the next start; renewal of it (`--rotate-certificates`); and a serving certificate for the
//! kubelet API from the `kubernetes.io/kubelet-serving` signer (`--rotate-server-certificates`),
//! replaced without touching open connections.

mod identity;
mod request;
mod rotation;
mod store;

use std::{
    io::Write as _,
    net::IpAddr,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use base64::{Engine as _, prelude::BASE64_STANDARD};
use kube::{
    Config,
    config::{AuthInfo, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedContext},
};
use rustls::pki_types::{CertificateDer, pem::PemObject as _};
use vk_abi::error_chain;

pub use identity::ClientIdentity;
pub use rotation::Window;

use crate::{client, tls};
use request::{RequestError, Template};
use rotation::{RetryDelays, Rotation};
use store::{Store, StoreError};

/// How long a CSR may stay unanswered before vk asks again: the kubelet's limit for renewals
/// (its bootstrap waits an hour; vk asks again sooner, which costs only a CSR).
const WAIT_LIMIT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("cannot use the certificate directory")]
    Store(#[from] StoreError),
    #[error("cannot build the TLS configuration of the client certificate")]
    ClientTls(#[source] rustls::Error),
    #[error("the certificate is unusable")]
    Certified(#[from] tls::TlsError),
    #[error("cannot read the bootstrap kubeconfig")]
    Bootstrap(#[source] client::ClientError),
    #[error(transparent)]
    Client(client::ClientError),
    #[error("cannot write kubeconfig {path}")]
    WriteKubeconfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the bootstrap kubeconfig {path} names no cluster")]
    NoCluster { path: String },
}

/// What the flags say about certificates.
#[derive(Debug, Clone)]
pub struct Settings {
    pub node_name: String,
    pub cert_dir: PathBuf,
    /// `spec.expirationSeconds` of vk's CSRs (the kubelet sets none).
    pub expiration_seconds: Option<i32>,
    pub window: Window,
    pub wait_limit: Duration,
}

impl Settings {
    pub fn new(node_name: &str, cert_dir: &Path) -> Settings {
        Settings {
            node_name: node_name.to_string(),
            cert_dir: cert_dir.to_path_buf(),
            expiration_seconds: None,
            window: Window::KUBELET,
            wait_limit: WAIT_LIMIT,
        }
    }
}

/// How vk reaches the API server.
#[derive(Debug)]
pub struct Credentials {
    pub config: Config,
    /// The client certificate of `--cert-dir`, when vk uses it.
    pub identity: Option<StoreIdentity>,
}

/// The client certificate of the certificate directory, in use.
#[derive(Debug)]
pub struct StoreIdentity {
    pub identity: ClientIdentity,
    pair: store::Pair,
}

/// vk's credentials: `--kubeconfig` when there is no bootstrap kubeconfig or when it holds
/// valid credentials of its own; otherwise the client certificate of `--cert-dir`, got first
/// through TLS bootstrap if there is none valid for this node (waiting, retrying, until the
/// cluster issues it). After a bootstrap `--kubeconfig`, when given, is written to use it.
pub async fn credentials(
    settings: &Settings,
    kubeconfig: Option<&Path>,
    bootstrap: Option<&Path>,
) -> Result<Credentials, CertError> {
    let Some(bootstrap) = bootstrap else {
        return Ok(Credentials {
            config: client::config(kubeconfig)
                .await
                .map_err(CertError::Client)?,
            identity: None,
        });
    };
    let store = Store::new(&settings.cert_dir, request::Signer::Client.prefix());
    if let Some(path) = kubeconfig
        && let Some(config) = own_kubeconfig(path, &store).await
    {
        log::info!("using the credentials of {}", path.display());
        return Ok(Credentials {
            config,
            identity: None,
        });
    }
    let bootstrap_config = client::config(Some(bootstrap))
        .await
        .map_err(CertError::Bootstrap)?;
    let template = Template::client(&settings.node_name);
    let pair = stored(&store, &template);
    let (pair, bootstrapped) = match pair {
        Some(pair) => {
            log::info!(
                "using the client certificate {}, valid until {}",
                store.current_path().display(),
                rotation::time(pair.not_after)
            );
            (pair, false)
        }
        None => (
            bootstrap_client(settings, &bootstrap_config, &template, &store).await,
            true,
        ),
    };
    let mut config = bootstrap_config;
    config.auth_info = AuthInfo::default();
    if let Some(path) = kubeconfig
        && (bootstrapped || !path.exists())
        && let Err(error) = write_kubeconfig(path, bootstrap, &store.current_path())
    {
        // Only other programs read it: vk goes on with the certificate.
        log::warn!("{}", error_chain(&error));
    }
    let identity = ClientIdentity::new(pair.certified_key()?);
    Ok(Credentials {
        config,
        identity: Some(StoreIdentity { identity, pair }),
    })
}

/// The configuration of `path` if it exists, loads, and (when it names a client certificate
/// other than the store's) that certificate is unexpired.
async fn own_kubeconfig(path: &Path, store: &Store) -> Option<Config> {
    let file = Kubeconfig::read_from(path).ok()?;
    let context = file.current_context.as_deref()?;
    let user = file
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .user
        .clone()?;
    let auth = file
        .auth_infos
        .iter()
        .find(|a| a.name == user)?
        .auth_info
        .clone()?;
    let pem = match (&auth.client_certificate, &auth.client_certificate_data) {
        (Some(cert), _) if Path::new(cert) == store.current_path() => return None,
        (Some(cert), _) => Some(std::fs::read(cert).ok()?),
        (None, Some(data)) => Some(BASE64_STANDARD.decode(data).ok()?),
        (None, None) => None,
    };
    if let Some(pem) = pem
        && !unexpired(&pem)
    {
        return None;
    }
    Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .ok()
}

/// Whether the first certificate of `pem` is still valid.
fn unexpired(pem: &[u8]) -> bool {
    use x509_parser::prelude::FromDer as _;
    let Some(Ok(cert)) = CertificateDer::pem_slice_iter(pem).next() else {
        return false;
    };
    x509_parser::certificate::X509Certificate::from_der(&cert)
        .is_ok_and(|(_, c)| c.validity().not_after.timestamp() > rotation::now())
}

/// The stored pair if it still fits `template` (why not is logged).
fn stored(store: &Store, template: &Template) -> Option<store::Pair> {
    let what = template.signer.what();
    let path = store.current_path();
    match store.load() {
        Ok(Some(pair)) => match template.mismatch(&pair, rotation::now()) {
            None => Some(pair),
            Some(why) => {
                log::info!("not using the {what} {}: {why}", path.display());
                None
            }
        },
        Ok(None) => None,
        Err(error) => {
            log::warn!(
                "not using the {what} {}: {}",
                path.display(),
                error_chain(&error)
            );
            None
        }
    }
}

/// TLS bootstrap: a client certificate requested with the bootstrap credentials, retried until
/// the cluster issues one.
async fn bootstrap_client(
    settings: &Settings,
    bootstrap: &Config,
    template: &Template,
    store: &Store,
) -> store::Pair {
    log::info!(
        "no valid client certificate in {}: requesting one with the bootstrap credentials; the node registers once it is issued",
        settings.cert_dir.display()
    );
    let mut delays = RetryDelays::default();
    loop {
        let attempt = async {
            let client = client::rate_limited(bootstrap.clone(), None, 5.0, 10)
                .map_err(CertError::Client)?;
            rotation::obtain(client, template, store, settings, true).await
        };
        match attempt.await {
            Ok(pair) => return pair,
            Err(error) => {
                let delay = delays.next_delay();
                log::warn!(
                    "TLS bootstrap: {}; trying again in {}",
                    error_chain(&error),
                    humantime::format_duration(delay)
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// `--kubeconfig` for the certificate directory's client certificate, as the kubelet writes it:
/// the bootstrap kubeconfig's cluster, user `default-auth` with `kubelet-client-current.pem` as
/// certificate and key.
fn write_kubeconfig(path: &Path, bootstrap: &Path, current: &Path) -> Result<(), CertError> {
    let source = Kubeconfig::read_from(bootstrap)
        .map_err(|source| client::ClientError::Kubeconfig {
            path: bootstrap.display().to_string(),
            source,
        })
        .map_err(CertError::Bootstrap)?;
    let context = source
        .current_context
        .as_deref()
        .and_then(|name| source.contexts.iter().find(|c| c.name == name))
        .or(source.contexts.first())
        .and_then(|c| c.context.as_ref());
    let mut cluster = context
        .and_then(|c| source.clusters.iter().find(|n| n.name == c.cluster))
        .or(source.clusters.first())
        .cloned()
        .ok_or_else(|| CertError::NoCluster {
            path: bootstrap.display().to_string(),
        })?;
    cluster.name = "default-cluster".into();
    let current = current.display().to_string();
    let file = Kubeconfig {
        clusters: vec![cluster],
        auth_infos: vec![NamedAuthInfo {
            name: "default-auth".into(),
            auth_info: Some(AuthInfo {
                client_certificate: Some(current.clone()),
                client_key: Some(current),
                ..AuthInfo::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: "default-context".into(),
            context: Some(Context {
                cluster: "default-cluster".into(),
                user: Some("default-auth".into()),
                ..Context::default()
            }),
            other: Default::default(),
        }],
        current_context: Some("default-context".into()),
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        ..Kubeconfig::default()
    };
    // JSON is YAML, which every kubeconfig reader accepts.
    let text = serde_json::to_string_pretty(&file).expect("a kubeconfig serializes");
    let write_error = |source| CertError::WriteKubeconfig {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(write_error)?;
    log::info!("wrote {} for the client certificate", path.display());
    Ok(())
}

impl StoreIdentity {
    /// Renews the client certificate for as long as vk runs (`--rotate-certificates`).
    pub fn rotation(
        self,
        client: kube::Client,
        settings: &Settings,
    ) -> impl Future<Output = ()> + use<> {
        let identity = self.identity;
        Rotation {
            client,
            template: Template::client(&settings.node_name),
            store: Store::new(&settings.cert_dir, request::Signer::Client.prefix()),
            settings: settings.clone(),
            current: Some(self.pair),
            install: Arc::new(move |key| identity.replace(key)),
        }
        .run()
    }
}

/// The kubelet API's serving certificate from the cluster (`--rotate-server-certificates`): the
/// stored one if it still fits the node, else a self-signed one until a CSR is approved. Returns
/// the cell the server reads and the task that keeps it fresh.
pub fn serving(
    settings: &Settings,
    client: kube::Client,
    ips: &[IpAddr],
) -> Result<(Arc<tls::CertCell>, impl Future<Output = ()> + use<>), CertError> {
    let template = Template::serving(&settings.node_name, ips);
    let store = Store::new(&settings.cert_dir, request::Signer::Serving.prefix());
    let stored = stored(&store, &template);
    let cell = match &stored {
        Some(pair) => {
            log::info!(
                "serving the kubelet API with {}, valid until {}",
                store.current_path().display(),
                rotation::time(pair.not_after)
            );
            tls::CertCell::new(pair.certified_key()?)
        }
        None => {
            log::warn!(
                "serving the kubelet API with a self-signed certificate until the cluster issues one (a kubelet-serving CSR needs approval)"
            );
            tls::CertCell::new(
                tls::ServingCert::SelfSigned {
                    node_name: &settings.node_name,
                    ips,
                }
                .certified_key()?,
            )
        }
    };
    let cell = Arc::new(cell);
    let target = cell.clone();
    let rotation = Rotation {
        client,
        template,
        store,
        settings: settings.clone(),
        current: stored,
        install: Arc::new(move |key| target.replace(key)),
    };
    Ok((cell, rotation.run()))
}

#[cfg(test)]
mod tests;
