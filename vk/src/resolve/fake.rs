//! An in-memory [`Objects`] and pod fixtures for the tests of resolution.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Pod, Secret, Service},
    jiff::{SignedDuration, Timestamp},
};
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::{IssuedToken, NodeFacts, ObjectError, Objects, Resolution, ResolveError, resolve};

/// When every fake token is issued.
pub(super) const ISSUED: Timestamp = Timestamp::constant(1_900_000_000, 0);

/// A TokenRequest the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TokenRequest {
    pub(super) pod: String,
    pub(super) pod_uid: String,
    pub(super) service_account: String,
    pub(super) audience: Option<String>,
    pub(super) expiration_seconds: i64,
}

/// ConfigMaps, Secrets and Services by namespace and name, and a token issuer.
#[derive(Debug, Default)]
pub(super) struct FakeObjects {
    config_maps: BTreeMap<(String, String), ConfigMap>,
    secrets: BTreeMap<(String, String), Secret>,
    services: BTreeMap<String, Vec<Service>>,
    /// Names of objects (of any kind) whose reads fail as a 403 would.
    pub(super) forbidden: BTreeSet<String>,
    pub(super) services_unavailable: bool,
    pub(super) tokens_unavailable: bool,
    /// Tokens are handed out as a cache that keeps their digests only would.
    pub(super) tokens_without_text: bool,
    /// Every ConfigMap and Secret read, as `kind ns/name`.
    pub(super) reads: Mutex<Vec<String>>,
    pub(super) token_requests: Mutex<Vec<TokenRequest>>,
}

impl FakeObjects {
    /// With the API server's Service, `default/kubernetes` at 10.96.0.1:443.
    pub(super) fn new() -> Self {
        FakeObjects::default().with_service(
            "default",
            "kubernetes",
            "10.96.0.1",
            json!([{"name": "https", "port": 443}]),
        )
    }

    pub(super) fn with_config_map(
        mut self,
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
    ) -> Self {
        let config_map = ConfigMap {
            data: Some(pairs(data, |value| value.to_string())),
            ..ConfigMap::default()
        };
        self.config_maps.insert(
            (namespace.into(), name.into()),
            named(config_map, namespace, name),
        );
        self
    }

    pub(super) fn with_binary_config_map(
        mut self,
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
        binary_data: &[(&str, &[u8])],
    ) -> Self {
        let config_map = ConfigMap {
            data: Some(pairs(data, |value| value.to_string())),
            binary_data: Some(pairs(binary_data, |value| ByteString(value.to_vec()))),
            ..ConfigMap::default()
        };
        self.config_maps.insert(
            (namespace.into(), name.into()),
            named(config_map, namespace, name),
        );
        self
    }

    pub(super) fn with_secret(
        mut self,
        namespace: &str,
        name: &str,
        data: &[(&str, &[u8])],
    ) -> Self {
        let secret = Secret {
            data: Some(pairs(data, |value| ByteString(value.to_vec()))),
            ..Secret::default()
        };
        self.secrets.insert(
            (namespace.into(), name.into()),
            named(secret, namespace, name),
        );
        self
    }

    /// `ports` as in a Service spec; `cluster_ip` may be `None` or empty.
    pub(super) fn with_service(
        mut self,
        namespace: &str,
        name: &str,
        cluster_ip: &str,
        ports: Value,
    ) -> Self {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"namespace": namespace, "name": name},
            "spec": {"clusterIP": cluster_ip, "ports": ports},
        }))
        .expect("a valid Service");
        self.services
            .entry(namespace.into())
            .or_default()
            .push(service);
        self
    }

    pub(super) fn forbidding(mut self, name: &str) -> Self {
        self.forbidden.insert(name.into());
        self
    }

    pub(super) fn reads(&self) -> Vec<String> {
        self.reads.lock().clone()
    }

    pub(super) fn token_requests(&self) -> Vec<TokenRequest> {
        self.token_requests.lock().clone()
    }

    fn read<T: Clone>(
        &self,
        kind: &str,
        objects: &BTreeMap<(String, String), T>,
        namespace: &str,
        name: &str,
    ) -> Result<Option<T>, ObjectError> {
        self.reads.lock().push(format!("{kind} {namespace}/{name}"));
        if self.forbidden.contains(name) {
            return Err(ObjectError::Unavailable(format!(
                "{kind} {name} is forbidden"
            )));
        }
        Ok(objects.get(&(namespace.into(), name.into())).cloned())
    }
}

impl Objects for FakeObjects {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ObjectError> {
        self.read("configmap", &self.config_maps, namespace, name)
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ObjectError> {
        self.read("secret", &self.secrets, namespace, name)
    }

    async fn services(&self, namespace: &str) -> Result<Arc<[Service]>, ObjectError> {
        if self.services_unavailable {
            return Err(ObjectError::Unavailable(
                "services have not yet been read".into(),
            ));
        }
        Ok(self
            .services
            .get(namespace)
            .cloned()
            .unwrap_or_default()
            .into())
    }

    async fn service_account_token(
        &self,
        pod: &Pod,
        service_account: &str,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<IssuedToken, ObjectError> {
        if self.tokens_unavailable {
            return Err(ObjectError::Unavailable(
                "token requests are refused".into(),
            ));
        }
        self.token_requests.lock().push(TokenRequest {
            pod: pod.metadata.name.clone().unwrap_or_default(),
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
            service_account: service_account.into(),
            audience: audience.map(Into::into),
            expiration_seconds,
        });
        let token = IssuedToken::new(
            format!(
                "token-of-{service_account}-for-{}",
                audience.unwrap_or("api")
            ),
            ISSUED + SignedDuration::from_secs(expiration_seconds),
            expiration_seconds,
        );
        Ok(if self.tokens_without_text {
            token.without_text()
        } else {
            token
        })
    }
}

fn pairs<V: ?Sized, T>(entries: &[(&str, &V)], value: impl Fn(&V) -> T) -> BTreeMap<String, T> {
    entries
        .iter()
        .map(|(key, entry)| (key.to_string(), value(entry)))
        .collect()
}

fn named<
    T: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
>(
    mut object: T,
    namespace: &str,
    name: &str,
) -> T {
    let metadata = object.metadata_mut();
    metadata.namespace = Some(namespace.into());
    metadata.name = Some(name.into());
    object
}

/// The node every test pod runs on: 192.0.2.10, with 4 CPUs, 8Gi of memory, 100Gi of disk.
pub(super) fn node() -> NodeFacts {
    let allocatable = json!({"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi"});
    NodeFacts {
        host_ips: vec!["192.0.2.10".into()],
        allocatable: serde_json::from_value(allocatable).unwrap(),
    }
}

/// Pod `ns/web` (UID `uid-1`, service account `sa`, on `vk-node`, labelled and annotated) with
/// `spec` merged over a spec with service links enabled and one container, `app`.
pub(super) fn pod(spec: Value) -> Pod {
    let mut pod = json!({
        "metadata": {
            "namespace": "ns",
            "name": "web",
            "uid": "uid-1",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"example.com/note": "say \"hi\"\n", "owner": "team-a"},
        },
        "spec": {
            "nodeName": "vk-node",
            "serviceAccountName": "sa",
            "enableServiceLinks": true,
            "containers": [{"name": "app", "image": "app:1"}],
        },
    });
    let Value::Object(overrides) = spec else {
        panic!("the spec must be an object");
    };
    pod["spec"].as_object_mut().unwrap().extend(overrides);
    serde_json::from_value(pod).expect("a valid Pod")
}

/// A pod whose one container, `app`, has `container` merged in.
pub(super) fn pod_with_container(container: Value) -> Pod {
    let mut app = json!({"name": "app", "image": "app:1"});
    let Value::Object(overrides) = container else {
        panic!("the container must be an object");
    };
    app.as_object_mut().unwrap().extend(overrides);
    pod(json!({"containers": [app]}))
}

/// Resolves `pod` on [`node`] with `objects`.
pub(super) fn resolve_now(pod: &Pod, objects: &FakeObjects) -> Result<Resolution, ResolveError> {
    futures::executor::block_on(resolve(pod, &node(), objects))
}

/// The resolved environment of the container `name` (of any kind).
pub(super) fn env_of(resolution: &Resolution, name: &str) -> BTreeMap<String, String> {
    let spec = resolution.pod.pod.spec.as_ref().unwrap();
    let env = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|container| container.name == name)
        .map(|container| container.env.clone())
        .or_else(|| {
            (spec.ephemeral_containers.iter().flatten())
                .find(|container| container.name == name)
                .map(|container| container.env.clone())
        })
        .expect("a container of that name")
        .unwrap_or_default();
    env.into_iter()
        .map(|variable| (variable.name, variable.value.expect("a plain value")))
        .collect()
}
