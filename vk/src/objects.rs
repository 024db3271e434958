//! The cluster objects a pod references (ConfigMaps, Secrets, Services, service-account
//! tokens), fetched one by one as a node identity may, and cached briefly so that a burst of
//! pods sharing one ConfigMap costs one request, while changes still show within seconds.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec},
        core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount},
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource,
    api::{ListParams, PostParams},
};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use crate::resolve::{IssuedToken, ObjectError, Objects};

/// How long a fetched ConfigMap, Secret or Service list is reused.
const FRESH_FOR: Duration = Duration::from_secs(10);

type Key = (String, String);

/// A small time-bounded cache of one kind of object (`None`: known not to exist).
#[derive(Debug)]
struct Cache<T> {
    entries: Mutex<HashMap<Key, (Instant, Option<T>)>>,
    /// One per key being fetched: who misses while it is held waits for that fetch.
    fetches: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl<T: Clone> Cache<T> {
    fn new() -> Self {
        Cache {
            entries: Mutex::default(),
            fetches: Mutex::default(),
        }
    }

    fn get(&self, key: &Key) -> Option<Option<T>> {
        let entries = self.entries.lock();
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < FRESH_FOR)
            .map(|(_, value)| value.clone())
    }

    fn put(&self, key: Key, value: Option<T>) {
        let mut entries = self.entries.lock();
        entries.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
        entries.insert(key, (Instant::now(), value));
    }

    /// The cached value, or the one `fetch` gets. Misses of one key at once make one fetch:
    /// in a burst, every sync worker missed when an entry expired, and each asked the API
    /// server (400 Service lists in a run of 10,000 pods).
    async fn get_or_fetch<E>(
        &self,
        key: Key,
        fetch: impl Future<Output = Result<Option<T>, E>>,
    ) -> Result<Option<T>, E> {
        if let Some(cached) = self.get(&key) {
            return Ok(cached);
        }
        let turn = self.fetches.lock().entry(key.clone()).or_default().clone();
        let found = {
            let _turn = turn.lock().await;
            match self.get(&key) {
                Some(cached) => Ok(cached),
                None => {
                    let found = fetch.await;
                    if let Ok(found) = &found {
                        self.put(key.clone(), found.clone());
                    }
                    found
                }
            }
        };
        let mut fetches = self.fetches.lock();
        // Held by the map and this call only: nobody waits for it.
        if Arc::strong_count(&turn) == 2 {
            fetches.remove(&key);
        }
        found
    }
}

/// Which of a pod's tokens a projection asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    service_account: String,
    audience: Option<String>,
    expiration_seconds: i64,
}

/// A pod's tokens by what they were asked for: a list, as a pod has one or two, where a map's
/// first table took 460 bytes (4.4 MB at 10,000 pods).
#[derive(Debug, Default)]
struct PodTokens(Vec<(TokenKey, IssuedToken)>);

impl PodTokens {
    fn get(&self, key: &TokenKey) -> Option<&IssuedToken> {
        self.0
            .iter()
            .find(|(held, _)| held == key)
            .map(|(_, token)| token)
    }

    fn insert(&mut self, key: TokenKey, token: IssuedToken) {
        match self.0.iter_mut().find(|(held, _)| *held == key) {
            Some((_, held)) => *held = token,
            None => {
                // Room for this one only: a first push would make room for four.
                self.0.reserve_exact(1);
                self.0.push((key, token));
            }
        }
    }
}

/// [`Objects`] backed by the API server.
pub struct ApiObjects {
    client: Client,
    config_maps: Cache<ConfigMap>,
    secrets: Cache<Secret>,
    services: Cache<Arc<[Service]>>,
    /// By pod UID, so that a pod's tokens are forgotten without a look at the others'; known
    /// by their digests only (see [`IssuedToken::without_text`]).
    tokens: Mutex<HashMap<String, PodTokens>>,
}

impl std::fmt::Debug for ApiObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiObjects").finish_non_exhaustive()
    }
}

impl ApiObjects {
    pub fn new(client: Client) -> Self {
        ApiObjects {
            client,
            config_maps: Cache::new(),
            secrets: Cache::new(),
            services: Cache::new(),
            tokens: Mutex::default(),
        }
    }

    async fn fetch<T>(
        &self,
        kind: &'static str,
        cache: &Cache<T>,
        namespace: &str,
        name: &str,
    ) -> Result<Option<T>, ObjectError>
    where
        T: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let key = (namespace.to_string(), name.to_string());
        // Built only on a miss: an async block does nothing until awaited.
        let fetch = async {
            let api: Api<T> = Api::namespaced(self.client.clone(), namespace);
            (api.get_opt(name).await)
                .map_err(|source| ObjectError::api(kind, namespace, name, source))
        };
        cache.get_or_fetch(key, fetch).await
    }

    /// Forgets tokens of pods that are gone.
    pub fn forget_pod(&self, uid: &str) {
        self.tokens.lock().remove(uid);
    }
}

impl Objects for ApiObjects {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ObjectError> {
        self.fetch("ConfigMap", &self.config_maps, namespace, name)
            .await
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ObjectError> {
        self.fetch("Secret", &self.secrets, namespace, name).await
    }

    async fn services(&self, namespace: &str) -> Result<Arc<[Service]>, ObjectError> {
        let key = (namespace.to_string(), String::new());
        let list = async {
            let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
            let list = (api.list(&ListParams::default()).await)
                .map_err(|source| ObjectError::api("Service", namespace, "*", source))?;
            Ok(Some(list.items.into()))
        };
        let services = self.services.get_or_fetch(key, list).await?;
        Ok(services.unwrap_or_else(|| Arc::new([])))
    }

    async fn service_account_token(
        &self,
        pod: &Pod,
        service_account: &str,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<IssuedToken, ObjectError> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = TokenKey {
            service_account: service_account.to_string(),
            audience: audience.map(str::to_string),
            expiration_seconds,
        };
        if let Some(cached) = self.tokens.lock().get(&pod_uid).and_then(|t| t.get(&key))
            && cached.refresh_at() > Timestamp::now()
        {
            return Ok(cached.clone());
        }
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_string()]),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            }),
            ..TokenRequest::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &namespace);
        let issued: TokenRequest = api
            .create_subresource("token", service_account, &PostParams::default(), &request)
            .await
            .map_err(|source| {
                ObjectError::api("ServiceAccount token", &namespace, service_account, source)
            })?;
        let issued_token = issued
            .status
            .and_then(|status| Some((status.token?, status.expiration_timestamp?)));
        let Some((token, expires)) = issued_token else {
            return Err(ObjectError::Unavailable(format!(
                "the API server issued no token for {namespace}/{service_account}"
            )));
        };
        let granted = issued.spec.and_then(|spec| spec.expiration_seconds);
        let token = IssuedToken::new(token, expires.0, granted.unwrap_or(expiration_seconds));
        let mut tokens = self.tokens.lock();
        tokens
            .entry(pod_uid)
            .or_default()
            .insert(key, token.without_text());
        Ok(token)
    }
}

#[cfg(test)]
mod tests;
