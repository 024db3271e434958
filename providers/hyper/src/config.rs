//! The provider's configuration: the `--provider-config` file (TOML, or JSON when it starts with
//! `{`) with environment fallbacks, validated once at load.

#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;
use vk_abi::{k8s_openapi::apimachinery::pkg::api::resource::Quantity, quantity::Amount};

/// Where the engine listens when neither the file nor `DOCKER_HOST` says.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";
/// The image of the container that holds a pod's network namespace.
pub const DEFAULT_INFRA_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// Hyper.sh's region when none is given.
pub const DEFAULT_HYPER_REGION: &str = "us-west-1";

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot parse the provider configuration as TOML: {0}")]
    Toml(#[source] toml::de::Error),
    #[error("cannot parse the provider configuration as JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("endpoint {0:?} is neither unix:///path nor tcp://host:port")]
    Endpoint(String),
    #[error("tls needs a tcp:// endpoint, not {0:?}")]
    TlsWithoutTcp(String),
    #[error("tls needs all of ca, cert and key")]
    TlsIncomplete,
    #[error("cannot read {what} {path}: {source}")]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("capacity.{resource} {value:?} is not a positive quantity")]
    Capacity { resource: String, value: String },
    #[error("Hyper.sh credentials need both an access key and a secret key")]
    HalfCredentials,
    /// The value itself is never shown: it may be the secret key.
    #[error("{setting} may hold only printable ASCII characters (no spaces at either end)")]
    UnsignableCredential { setting: &'static str },
}

/// The file as written; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    endpoint: Option<String>,
    tls: Option<TlsFile>,
    #[serde(default)]
    capacity: BTreeMap<String, String>,
    hyper: Option<HyperFile>,
    infra: Option<InfraFile>,
    network: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HyperFile {
    access_key: Option<String>,
    secret_key: Option<String>,
    region: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InfraFile {
    image: Option<String>,
    command: Option<Vec<String>>,
}

/// How to reach the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp { address: String, tls: Option<Tls> },
}

/// Client certificate, key and CA of a TLS endpoint (Docker's `--tlsverify` layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Hyper.sh's request-signing credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl std::fmt::Debug for Credentials {
    // The secret key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The container that owns a pod's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Infra {
    pub image: String,
    /// Overrides the image's command (`None`: the image's own, as for `pause`).
    pub command: Option<Vec<String>>,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub endpoint: Endpoint,
    /// The node's capacity, by resource name (`cpu`, `memory`, `pods`, ...).
    pub capacity: BTreeMap<String, Quantity>,
    pub credentials: Option<Credentials>,
    pub infra: Infra,
    /// The network infra containers join (`None`: the engine's default).
    pub network: Option<String>,
}

/// The environment the configuration falls back to; a function so tests need not set real
/// variables.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }
}

impl Config {
    /// Parses and validates `text` (empty: every default).
    pub fn parse(text: &str, env: &dyn Environment) -> Result<Config, ConfigError> {
        let file: File = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(ConfigError::Json)?
        } else {
            toml::from_str(text).map_err(ConfigError::Toml)?
        };
        let endpoint_text = file
            .endpoint
            .or_else(|| env.var("DOCKER_HOST"))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let endpoint = parse_endpoint(&endpoint_text, file.tls)?;
        let credentials = credentials(file.hyper.unwrap_or_default(), env)?;
        let infra = file.infra.unwrap_or_default();
        Ok(Config {
            endpoint,
            capacity: capacity(file.capacity)?,
            credentials,
            infra: Infra {
                image: infra
                    .image
                    .unwrap_or_else(|| DEFAULT_INFRA_IMAGE.to_string()),
                command: infra.command,
            },
            network: file.network,
        })
    }
}

fn parse_endpoint(text: &str, tls: Option<TlsFile>) -> Result<Endpoint, ConfigError> {
    if let Some(path) = text.strip_prefix("unix://") {
        if tls.is_some() {
            return Err(ConfigError::TlsWithoutTcp(text.to_string()));
        }
        if !path.starts_with('/') {
            return Err(ConfigError::Endpoint(text.to_string()));
        }
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    let address = text
        .strip_prefix("tcp://")
        .filter(|address| {
            address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        })
        .ok_or_else(|| ConfigError::Endpoint(text.to_string()))?;
    let tls = match tls {
        None => None,
        Some(TlsFile {
            ca: Some(ca),
            cert: Some(cert),
            key: Some(key),
        }) => {
            for (what, path) in [("tls.ca", &ca), ("tls.cert", &cert), ("tls.key", &key)] {
                std::fs::metadata(path).map_err(|source| ConfigError::Unreadable {
                    what,
                    path: path.clone(),
                    source,
                })?;
            }
            Some(Tls { ca, cert, key })
        }
        Some(_) => return Err(ConfigError::TlsIncomplete),
    };
    Ok(Endpoint::Tcp {
        address: address.to_string(),
        tls,
    })
}

fn capacity(given: BTreeMap<String, String>) -> Result<BTreeMap<String, Quantity>, ConfigError> {
    let mut capacity: BTreeMap<String, Quantity> =
        [("cpu", "20"), ("memory", "100Gi"), ("pods", "20")]
            .into_iter()
            .map(|(resource, value)| (resource.to_string(), Quantity(value.to_string())))
            .collect();
    for (resource, value) in given {
        if !is_positive_quantity(&value) {
            return Err(ConfigError::Capacity { resource, value });
        }
        capacity.insert(resource, Quantity(value));
    }
    Ok(capacity)
}

/// A quantity above zero (`500m`, `16Gi`, `2`).
fn is_positive_quantity(value: &str) -> bool {
    Amount::parse(value).is_ok_and(|amount| amount.ceil_milli() > 0)
}

fn credentials(file: HyperFile, env: &dyn Environment) -> Result<Option<Credentials>, ConfigError> {
    let access_key = file.access_key.or_else(|| env.var("HYPERSH_ACCESS_KEY"));
    let secret_key = file.secret_key.or_else(|| env.var("HYPERSH_SECRET_KEY"));
    let (access_key, secret_key) = match (access_key, secret_key) {
        (None, None) => return Ok(None),
        (Some(access_key), Some(secret_key)) => (access_key, secret_key),
        _ => return Err(ConfigError::HalfCredentials),
    };
    let region = file
        .region
        .or_else(|| env.var("HYPERSH_REGION"))
        .unwrap_or_else(|| DEFAULT_HYPER_REGION.to_string());
    for (setting, value) in [
        ("hyper.access_key (HYPERSH_ACCESS_KEY)", &access_key),
        ("hyper.secret_key (HYPERSH_SECRET_KEY)", &secret_key),
        ("hyper.region (HYPERSH_REGION)", &region),
    ] {
        if !is_signable(value) {
            return Err(ConfigError::UnsignableCredential { setting });
        }
    }
    Ok(Some(Credentials {
        access_key,
        secret_key,
        region,
    }))
}

/// Whether `value` can go into a signed request: the access key and region are written into
/// the `Authorization` header, which holds only visible ASCII, and a control character or a
/// space at either end of any key is a copy-and-paste slip (a trailing newline from a file)
/// that would only show later as refused signatures.
fn is_signable(value: &str) -> bool {
    !value.is_empty() && value.trim() == value && value.bytes().all(|b| (b' '..=b'~').contains(&b))
}
