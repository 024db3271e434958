//! Azure AD client credentials and the ARM bearer tokens made from them.
//!
//! Credentials come from the SDK auth file named by `AZURE_AUTH_LOCATION` (as written by
//! `az ad sp create-for-rbac --sdk-auth`, possibly UTF-16 with a BOM), then the variables
//! `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_TENANT_ID` and `AZURE_SUBSCRIPTION_ID`
//! override it field by field. Tokens come from the AAD v1 token endpoint of the file's
//! `activeDirectoryEndpointUrl` for the file's `resourceManagerEndpointUrl`, and are renewed
//! five minutes before they expire. The secret and the tokens are never printed.

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Deserialize;
use tokio::sync::Mutex;

const PUBLIC_AD: &str = "https://login.microsoftonline.com";
const PUBLIC_ARM: &str = "https://management.azure.com/";
/// How long before its expiry a token is replaced (go-autorest's `defaultRefresh`).
const RENEW_BEFORE: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the azure auth file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the azure auth file {path} is not valid: {why}")]
    File { path: String, why: String },
    #[error(
        "azure credentials are incomplete: {missing} not set (in the AZURE_AUTH_LOCATION file or AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID, AZURE_SUBSCRIPTION_ID)"
    )]
    Incomplete { missing: String },
    #[error("cannot reach azure ad at {endpoint}")]
    Unreachable {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "azure ad refused the credentials of client {client_id} in tenant {tenant_id} (HTTP {status}): {error}: {description}"
    )]
    Refused {
        client_id: String,
        tenant_id: String,
        status: u16,
        error: String,
        description: String,
    },
    #[error("azure ad answered with a token response that cannot be read: {0}")]
    Malformed(String),
}

impl AuthError {
    /// Whether trying again later may help (the endpoint is down) rather than the credentials
    /// being wrong.
    pub fn is_transient(&self) -> bool {
        match self {
            AuthError::Unreachable { .. } => true,
            AuthError::Refused { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// A string that prints as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A service principal and the cloud it lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: Secret,
    pub tenant_id: String,
    pub subscription_id: String,
    /// The AAD authority, without a trailing slash.
    pub active_directory_endpoint: String,
    /// ARM's base URL, with a trailing slash: also the token's resource.
    pub resource_manager_endpoint: String,
}

/// The fields of an SDK auth file that matter here.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    client_id: Option<String>,
    client_secret: Option<Secret>,
    subscription_id: Option<String>,
    tenant_id: Option<String>,
    active_directory_endpoint_url: Option<String>,
    resource_manager_endpoint_url: Option<String>,
}

impl Credentials {
    /// Reads the credentials from the auth file and variables in `env`.
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, AuthError> {
        let file = match env("AZURE_AUTH_LOCATION").filter(|p| !p.is_empty()) {
            Some(path) => {
                let bytes = std::fs::read(&path).map_err(|source| AuthError::Read {
                    path: path.clone(),
                    source,
                })?;
                let text = decode(&bytes).map_err(|why| AuthError::File {
                    path: path.clone(),
                    why,
                })?;
                serde_json::from_str(&text).map_err(|error| AuthError::File {
                    path,
                    why: error.to_string(),
                })?
            }
            None => AuthFile::default(),
        };
        let pick =
            |key: &str, from_file: Option<String>| env(key).filter(|v| !v.is_empty()).or(from_file);
        let client_id = pick("AZURE_CLIENT_ID", file.client_id);
        let client_secret = pick(
            "AZURE_CLIENT_SECRET",
            file.client_secret.map(|s| s.expose().to_string()),
        );
        let tenant_id = pick("AZURE_TENANT_ID", file.tenant_id);
        let subscription_id = pick("AZURE_SUBSCRIPTION_ID", file.subscription_id);
        let missing: Vec<&str> = [
            ("clientId", client_id.is_none()),
            ("clientSecret", client_secret.is_none()),
            ("tenantId", tenant_id.is_none()),
            ("subscriptionId", subscription_id.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        if !missing.is_empty() {
            return Err(AuthError::Incomplete {
                missing: missing.join(", "),
            });
        }
        let ad = file
            .active_directory_endpoint_url
            .unwrap_or_else(|| PUBLIC_AD.into());
        let arm = file
            .resource_manager_endpoint_url
            .unwrap_or_else(|| PUBLIC_ARM.into());
        Ok(Credentials {
            client_id: client_id.unwrap_or_default(),
            client_secret: Secret(client_secret.unwrap_or_default()),
            tenant_id: tenant_id.unwrap_or_default(),
            subscription_id: subscription_id.unwrap_or_default(),
            active_directory_endpoint: ad.trim_end_matches('/').to_string(),
            resource_manager_endpoint: format!("{}/", arm.trim_end_matches('/')),
        })
    }
}

/// The file's text: UTF-8 (with or without a BOM) or UTF-16 with a BOM, as PowerShell writes it.
fn decode(bytes: &[u8]) -> Result<String, String> {
    let utf16 = |rest: &[u8], from: fn([u8; 2]) -> u16| {
        if !rest.len().is_multiple_of(2) {
            return Err("odd number of bytes in UTF-16 text".to_string());
        }
        let units: Vec<u16> = rest.chunks_exact(2).map(|c| from([c[0], c[1]])).collect();
        String::from_utf16(&units).map_err(|e| e.to_string())
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        [0xEF, 0xBB, 0xBF, rest @ ..] => {
            String::from_utf8(rest.to_vec()).map_err(|e| e.to_string())
        }
        _ => String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string()),
    }
}

/// A bearer token and when it stops being good.
#[derive(Clone)]
struct Token {
    access: Secret,
    expires: SystemTime,
}

/// The token endpoint's answer; AAD v1 sends numbers as strings, v2 as numbers.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<Number>,
    #[serde(default)]
    expires_on: Option<Number>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Integer(u64),
    Text(String),
}

impl Number {
    fn value(&self) -> Option<u64> {
        match self {
            Number::Integer(n) => Some(*n),
            Number::Text(text) => text.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct TokenErrorResponse {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl TokenResponse {
    fn into_token(self, now: SystemTime) -> Result<Token, AuthError> {
        let expires = match (self.expires_on.as_ref(), self.expires_in.as_ref()) {
            (Some(on), _) if on.value().is_some() => {
                UNIX_EPOCH + Duration::from_secs(on.value().unwrap_or_default())
            }
            (_, Some(within)) => {
                let seconds = within
                    .value()
                    .ok_or_else(|| AuthError::Malformed("expires_in is not a number".into()))?;
                now + Duration::from_secs(seconds)
            }
            _ => return Err(AuthError::Malformed("no expires_in or expires_on".into())),
        };
        Ok(Token {
            access: self.access_token,
            expires,
        })
    }
}

/// Fetches tokens and keeps the current one.
#[derive(Debug)]
pub struct TokenSource {
    http: reqwest::Client,
    credentials: Credentials,
    current: Mutex<Option<Token>>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub fn new(http: reqwest::Client, credentials: Credentials) -> Self {
        TokenSource {
            http,
            credentials,
            current: Mutex::new(None),
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// A token good for at least a few more minutes; one fetch at a time.
    pub async fn token(&self) -> Result<Secret, AuthError> {
        let mut current = self.current.lock().await;
        let now = SystemTime::now();
        if let Some(token) = current.as_ref()
            && needs_no_renewal(token, now)
        {
            return Ok(token.access.clone());
        }
        let token = self.fetch(now).await?;
        let access = token.access.clone();
        *current = Some(token);
        Ok(access)
    }

    /// Drops the current token (ARM refused it).
    pub async fn forget(&self) {
        *self.current.lock().await = None;
    }

    async fn fetch(&self, now: SystemTime) -> Result<Token, AuthError> {
        let c = &self.credentials;
        let endpoint = format!(
            "{}/{}/oauth2/token?api-version=1.0",
            c.active_directory_endpoint, c.tenant_id
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose()),
            ("resource", c.resource_manager_endpoint.as_str()),
        ];
        let unreachable = |source| AuthError::Unreachable {
            endpoint: c.active_directory_endpoint.clone(),
            source,
        };
        let response = self
            .http
            .post(&endpoint)
            .form(&form)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            let refusal: TokenErrorResponse =
                serde_json::from_slice(&body).unwrap_or(TokenErrorResponse {
                    error: status.canonical_reason().unwrap_or("error").into(),
                    error_description: String::new(),
                });
            return Err(AuthError::Refused {
                client_id: c.client_id.clone(),
                tenant_id: c.tenant_id.clone(),
                status: status.as_u16(),
                error: refusal.error,
                description: refusal.error_description,
            });
        }
        let response: TokenResponse = serde_json::from_slice(&body)
            .map_err(|error| AuthError::Malformed(error.to_string()))?;
        response.into_token(now)
    }
}

/// A token is replaced `RENEW_BEFORE` its expiry.
fn needs_no_renewal(token: &Token, now: SystemTime) -> bool {
    token
        .expires
        .duration_since(now)
        .is_ok_and(|left| left > RENEW_BEFORE)
}

#[cfg(test)]
mod tests;
