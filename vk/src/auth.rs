//! Authentication and authorization of kubelet API callers, as the kubelet does them: a client
//! certificate verified against the client CA, or a bearer token checked with a TokenReview;
//! then SubjectAccessReviews on `nodes/<name>` with the kubelet's subresources. Answers are
//! cached briefly (tokens 2 min; allowed 5 min; denied 30 s).

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use base64::Engine;
use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec},
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{Api, Client, api::PostParams};
use parking_lot::Mutex;

const TOKEN_TTL: Duration = Duration::from_secs(120);
const ALLOWED_TTL: Duration = Duration::from_secs(300);
const DENIED_TTL: Duration = Duration::from_secs(30);
/// Entries a cache holds before expired ones are swept.
const CACHE_SWEEP: usize = 4096;
const WEBSOCKET_TOKEN_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    fn new(
        name: String,
        uid: String,
        mut groups: Vec<String>,
        extra: BTreeMap<String, Vec<String>>,
    ) -> Self {
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        User {
            name,
            uid,
            groups,
            extra,
        }
    }

    /// The user named by a verified client certificate: CN is the name, each O a group.
    pub fn from_certificate(der: &[u8]) -> Option<User> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()?
            .as_str()
            .ok()?
            .to_string();
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_string))
            .collect();
        Some(User::new(name, String::new(), groups, BTreeMap::new()))
    }

    fn anonymous() -> User {
        User {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
            extra: BTreeMap::new(),
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No credentials, or credentials the API server does not accept (401).
    #[error("Unauthorized")]
    Unauthorized,
    /// Authenticated, but not allowed (403).
    #[error("Forbidden (user={user}, verb={verb}, resource=nodes, subresource(s)=[{}])", subresources.join(" "))]
    Forbidden {
        user: String,
        verb: String,
        subresources: Vec<String>,
    },
    /// The API server could not be asked (500).
    #[error(
        "Authorization error (user={user}, verb={verb}, resource=nodes, subresource={subresource}): {message}"
    )]
    Unavailable {
        user: String,
        verb: String,
        subresource: String,
        message: String,
    },
}

impl Denial {
    pub fn status(&self) -> u16 {
        match self {
            Denial::Unauthorized => 401,
            Denial::Forbidden { .. } => 403,
            Denial::Unavailable { .. } => 500,
        }
    }
}

/// The kubelet's verb for an HTTP method.
pub fn verb(method: &http::Method) -> &'static str {
    match *method {
        http::Method::POST => "create",
        http::Method::GET => "get",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "",
    }
}

/// The `nodes` subresources a path is authorized as, tried in order.
pub fn subresources(path: &str) -> &'static [&'static str] {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/stats") {
        &["stats"]
    } else if under("/metrics") {
        &["metrics"]
    } else if under("/logs") {
        &["log"]
    } else if under("/pods") || under("/runningpods") {
        &["pods", "proxy"]
    } else if under("/healthz") {
        &["healthz", "proxy"]
    } else {
        &["proxy"]
    }
}

/// The bearer token of a request: `Authorization: Bearer`, or the WebSocket subprotocol that
/// browsers use instead.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<String> {
    if let Some(value) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value
            .strip_prefix("Bearer ")
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
    }
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|protocol| protocol.trim().strip_prefix(WEBSOCKET_TOKEN_PREFIX))
        .and_then(|encoded| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .ok()
        })
        .and_then(|token| String::from_utf8(token).ok())
}

type Cache<K, V> = Mutex<HashMap<K, (Instant, V)>>;

fn cached<K: Eq + std::hash::Hash, V: Clone>(cache: &Cache<K, V>, key: &K) -> Option<V> {
    let cache = cache.lock();
    cache
        .get(key)
        .filter(|(until, _)| *until > Instant::now())
        .map(|(_, v)| v.clone())
}

fn remember<K: Eq + std::hash::Hash, V>(cache: &Cache<K, V>, key: K, value: V, ttl: Duration) {
    let mut cache = cache.lock();
    if cache.len() >= CACHE_SWEEP {
        let now = Instant::now();
        cache.retain(|_, (until, _)| *until > now);
    }
    cache.insert(key, (Instant::now() + ttl, value));
}

/// Authenticates and authorizes kubelet API callers for one node.
pub struct Auth {
    client: Client,
    node_name: String,
    anonymous: bool,
    tokens: Cache<String, Option<User>>,
    decisions: Cache<(User, &'static str, &'static str), bool>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("node_name", &self.node_name)
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

impl Auth {
    pub fn new(client: Client, node_name: String, anonymous: bool) -> Self {
        Auth {
            client,
            node_name,
            anonymous,
            tokens: Mutex::default(),
            decisions: Mutex::default(),
        }
    }

    /// Who the caller is: the certificate's user, else the token's, else anonymous (when allowed).
    pub async fn authenticate(
        &self,
        certificate_user: Option<&User>,
        headers: &http::HeaderMap,
    ) -> Result<User, Denial> {
        if let Some(user) = certificate_user {
            return Ok(user.clone());
        }
        match bearer_token(headers) {
            Some(token) => self.review_token(token).await.ok_or(Denial::Unauthorized),
            None if self.anonymous => Ok(User::anonymous()),
            None => Err(Denial::Unauthorized),
        }
    }

    async fn review_token(&self, token: String) -> Option<User> {
        if let Some(answer) = cached(&self.tokens, &token) {
            return answer;
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.clone(),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let user = match api.create(&PostParams::default(), &review).await {
            Ok(reviewed) => reviewed
                .status
                .filter(|s| s.authenticated == Some(true))
                .and_then(|s| s.user)
                .map(|u| {
                    User::new(
                        u.username.unwrap_or_default(),
                        u.uid.unwrap_or_default(),
                        u.groups.unwrap_or_default(),
                        u.extra.unwrap_or_default(),
                    )
                }),
            Err(error) => {
                // Not cached: the next request asks again.
                log::warn!("TokenReview failed: {error}");
                return None;
            }
        };
        remember(&self.tokens, token, user.clone(), TOKEN_TTL);
        user
    }

    /// Allows the request if any of the path's subresources is allowed for `user`.
    pub async fn authorize(
        &self,
        user: &User,
        method: &http::Method,
        path: &str,
    ) -> Result<(), Denial> {
        let verb = verb(method);
        let subresources = subresources(path);
        for subresource in subresources {
            if self.allowed(user, verb, subresource).await? {
                return Ok(());
            }
        }
        Err(Denial::Forbidden {
            user: user.name.clone(),
            verb: verb.to_string(),
            subresources: subresources.iter().map(|s| s.to_string()).collect(),
        })
    }

    async fn allowed(
        &self,
        user: &User,
        verb: &'static str,
        subresource: &'static str,
    ) -> Result<bool, Denial> {
        let key = (user.clone(), verb, subresource);
        if let Some(allowed) = cached(&self.decisions, &key) {
            return Ok(allowed);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    version: Some("v1".into()),
                    resource: Some("nodes".into()),
                    subresource: Some(subresource.into()),
                    name: Some(self.node_name.clone()),
                    ..ResourceAttributes::default()
                }),
                user: Some(user.name.clone()),
                uid: Some(user.uid.clone()).filter(|uid| !uid.is_empty()),
                groups: Some(user.groups.clone()),
                extra: Some(user.extra.clone()).filter(|extra| !extra.is_empty()),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let status = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|error| Denial::Unavailable {
                user: user.name.clone(),
                verb: verb.to_string(),
                subresource: subresource.to_string(),
                message: error.to_string(),
            })?
            .status
            .unwrap_or_default();
        let allowed = status.allowed && status.denied != Some(true);
        let ttl = if allowed { ALLOWED_TTL } else { DENIED_TTL };
        remember(&self.decisions, key, allowed, ttl);
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests;
