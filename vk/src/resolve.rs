//! Resolving a pod as the kubelet would before starting it: every container's environment
//! (`envFrom`, `env`, service links, `$(VAR)` expansion of `command`, `args` and `subPathExpr`)
//! and the contents of configMap, secret, downwardAPI and projected volumes, and the storage
//! account of azureFile volumes.
//!
//! The rules are the kubelet's (1.33–1.36): a missing mandatory ConfigMap, Secret or key is an
//! error whose message reads like the kubelet's; optional misses are skipped, but unlike the
//! kubelet each one is reported as a Warning event with upstream virtual-kubelet's reasons.
//! Nothing here logs values: environment variables and volume files carry secrets.

mod cache;
mod env;
mod expansion;
mod fields;
mod pull_secrets;
mod resources;
mod services;
mod volumes;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::{
    collections::BTreeMap,
    fmt,
    future::Future,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
};

use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Pod, Secret, Service},
    apimachinery::pkg::api::resource::Quantity,
    jiff::{SignedDuration, Timestamp},
};
use vk_abi::ResolvedPod;

use crate::events::EventType;
use cache::{ObjectCache, ObjectData};
use env::ContainerParts;
use fields::Addresses;
pub use fields::FieldError;
pub use resources::ResourceError;

/// What resolution reads from the cluster.
pub trait Objects: Send + Sync {
    /// `Ok(None)` when the ConfigMap does not exist; `Err` for any other failure.
    fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<ConfigMap>, ObjectError>> + Send;

    /// `Ok(None)` when the Secret does not exist; `Err` for any other failure.
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Secret>, ObjectError>> + Send;

    /// The Services of a namespace, for service-link variables. Like the kubelet, fail until
    /// Services have been read at least once, so that `KUBERNETES_SERVICE_HOST` is never missed.
    fn services(
        &self,
        namespace: &str,
    ) -> impl Future<Output = Result<Arc<[Service]>, ObjectError>> + Send;

    /// A token of `service_account` bound to `pod` (a TokenRequest whose `boundObjectRef` names
    /// the pod and its UID), for `audience` (`None`: the API server's) and asking for
    /// `expiration_seconds`. Like the kubelet's token manager, implementations should hand out
    /// the same token again until its [`IssuedToken::refresh_at`], and may then hand it out
    /// without its text (see [`IssuedToken::without_text`]): resolution needs only its digest
    /// to tell whether the provider has it.
    fn service_account_token(
        &self,
        pod: &Pod,
        service_account: &str,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> impl Future<Output = Result<IssuedToken, ObjectError>> + Send;
}

/// Why [`Objects`] could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// `object` names what was asked for, e.g. `ConfigMap ns/name`.
    #[error("cannot read {object}")]
    Api {
        object: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// Not answerable for another reason, e.g. a cache that has not synced yet.
    #[error("{0}")]
    Unavailable(String),
}

impl ObjectError {
    /// A failed request for the `kind` object `namespace/name`.
    pub fn api(kind: &str, namespace: &str, name: &str, source: kube::Error) -> Self {
        ObjectError::Api {
            object: format!("{kind} {namespace}/{name}"),
            source: Box::new(source),
        }
    }
}

/// A service-account token from the TokenRequest API.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token; `None` for one handed out before, known by its digest only.
    text: Option<String>,
    digest: u64,
    /// `status.expirationTimestamp` of the TokenRequest.
    pub expires: Timestamp,
    /// The lifetime the API server granted: `spec.expirationSeconds` of its answer, which may
    /// be shorter than the one asked for.
    pub expiration_seconds: i64,
}

impl IssuedToken {
    pub fn new(text: String, expires: Timestamp, expiration_seconds: i64) -> Self {
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        IssuedToken {
            digest: hasher.finish(),
            text: Some(text),
            expires,
            expiration_seconds,
        }
    }

    /// The same token known by its digest only, as a cache keeps it: a token per pod is a
    /// kilobyte, 10 MiB at 10,000 pods, and is needed again only when the provider must be
    /// given the pod anew, which can use a new token as well.
    pub fn without_text(&self) -> Self {
        IssuedToken {
            text: None,
            ..self.clone()
        }
    }

    /// What a resolved volume holds in place of the token until the provider is given the pod
    /// (see [`Resolution::provider_pod`]): the same for the same token, with or without its
    /// text, so that a pod's fingerprint does not change when only the text is missing.
    fn stand_in(&self) -> String {
        format!("<service-account token {:016x}>", self.digest)
    }

    /// When the kubelet would replace the token: once 80% of its lifetime has passed, or once it
    /// is a day old, whichever comes first.
    pub fn refresh_at(&self) -> Timestamp {
        let lifetime = SignedDuration::from_secs(self.expiration_seconds.max(0));
        let lead = (lifetime / 5).max(lifetime - SignedDuration::from_hours(24));
        // Only an absurd lifetime underflows; renewing at once is then the safe answer.
        self.expires.checked_sub(lead).unwrap_or(Timestamp::MIN)
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("text", &self.text.as_ref().map(|_| "<redacted>"))
            .field("digest", &self.digest)
            .field("expires", &self.expires)
            .field("expiration_seconds", &self.expiration_seconds)
            .finish()
    }
}

/// Facts about the node the pod runs on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFacts {
    /// The node's IPs, primary first, at most one per family (`status.hostIP(s)`).
    pub host_ips: Vec<String>,
    /// The node's `status.allocatable`: the default of unset cpu, memory and ephemeral-storage
    /// limits in `resourceFieldRef`s.
    pub allocatable: BTreeMap<String, Quantity>,
}

/// A resolved pod, and what the caller should know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The pod with every container's `env` replaced by plain name/value pairs (user variables
    /// sorted by name, then the service-link variables they do not shadow), `envFrom` removed,
    /// `command`, `args` and `subPathExpr` expanded (the latter into `subPath`), and the files of
    /// its configMap, secret, downwardAPI and projected volumes and of its azureFile volumes'
    /// storage accounts.
    pub pod: ResolvedPod,
    /// Warning events about skipped optional references.
    pub events: Vec<PodEvent>,
    /// When the earliest service-account token in the volumes should be renewed: resolve again
    /// then.
    pub refresh_at: Option<Timestamp>,
    /// Whether a variable reads `status.podIP(s)` of a pod that has no IP yet: it is empty for
    /// now, so resolve again once the provider reports an IP.
    pub waits_for_pod_ip: bool,
    /// The service-account tokens of the volumes, whose files in [`Resolution::pod`] hold
    /// their stand-ins.
    tokens: Vec<TokenFile>,
}

/// A token file of a resolved volume.
#[derive(Debug, Clone, PartialEq)]
struct TokenFile {
    volume: String,
    path: String,
    token: IssuedToken,
}

impl Resolution {
    /// Whether a token is known by its digest only: the provider cannot be given this pod.
    /// Forget the pod's tokens and resolve it again.
    pub fn lacks_a_token(&self) -> bool {
        self.tokens.iter().any(|file| file.token.text.is_none())
    }

    /// The pod to give the provider: [`Resolution::pod`] with each token written over its
    /// stand-in. A token known by its digest only is left as its stand-in: check
    /// [`Resolution::lacks_a_token`] first.
    pub fn provider_pod(self) -> ResolvedPod {
        let mut pod = self.pod;
        for TokenFile {
            volume,
            path,
            token,
        } in self.tokens
        {
            let file = (pod.volumes.get_mut(&volume)).and_then(|files| files.files.get_mut(&path));
            if let (Some(file), Some(text)) = (file, token.text) {
                file.data = ByteString(text.into_bytes());
            }
        }
        pod
    }
}

/// An event about the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    pub type_: EventType,
    pub reason: &'static str,
    pub message: String,
    /// The container concerned (`spec.containers{app}`), if any.
    pub field_path: Option<String>,
}

/// Which list of the pod spec a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

/// A container of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub kind: ContainerKind,
    pub name: String,
}

impl ContainerRef {
    /// How events name the container: `spec.containers{app}`.
    pub fn field_path(&self) -> String {
        let list = match self.kind {
            ContainerKind::Init => "initContainers",
            ContainerKind::Regular => "containers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        };
        format!("spec.{list}{{{}}}", self.name)
    }
}

/// What a failure stops: a container's start (the kubelet's `CreateContainerConfigError`) or a
/// volume's mount (`FailedMount`, the pod stays `ContainerCreating`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Container(ContainerRef),
    Volume(String),
}

impl Scope {
    /// What the kubelet puts before a volume's error.
    fn prefix(&self) -> String {
        match self {
            Scope::Container(_) => String::new(),
            Scope::Volume(volume) => format!("MountVolume.SetUp failed for volume {volume:?} : "),
        }
    }

    fn field_path(&self) -> Option<String> {
        match self {
            Scope::Container(container) => Some(container.field_path()),
            Scope::Volume(_) => None,
        }
    }
}

/// The two kinds of object a pod takes keys from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    ConfigMap,
    Secret,
}

impl ObjectKind {
    /// As in `configmap "foo" not found`.
    fn lower(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "configmap",
            ObjectKind::Secret => "secret",
        }
    }

    /// As in `couldn't find key K in ConfigMap ns/name`.
    fn title(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "ConfigMap",
            ObjectKind::Secret => "Secret",
        }
    }

    /// The kubelet's words for a volume item whose key is missing.
    fn missing_item(self, key: &str) -> String {
        match self {
            ObjectKind::ConfigMap => format!("configmap references non-existent config key: {key}"),
            ObjectKind::Secret => format!("references non-existent secret key: {key}"),
        }
    }

    fn optional_not_found_reason(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "OptionalConfigMapNotFound",
            ObjectKind::Secret => "OptionalSecretNotFound",
        }
    }

    fn optional_key_not_found_reason(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "OptionalConfigMapKeyNotFound",
            ObjectKind::Secret => "OptionalSecretKeyNotFound",
        }
    }
}

/// Why a pod cannot be resolved (yet). Resolving again later may succeed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("nil pod.spec.enableServiceLinks encountered, cannot construct envvars")]
    NilEnableServiceLinks,
    #[error("failed to list services when setting up env vars")]
    ListServices(#[source] ObjectError),
    /// A mandatory ConfigMap or Secret does not exist.
    #[error("{}{} {name:?} not found", .scope.prefix(), .kind.lower())]
    NotFound {
        scope: Scope,
        kind: ObjectKind,
        name: String,
    },
    /// A ConfigMap or Secret could not be read; optional or not, that is a failure.
    #[error("{}failed to read {} {name:?}", .scope.prefix(), .kind.lower())]
    Read {
        scope: Scope,
        kind: ObjectKind,
        name: String,
        optional: bool,
        #[source]
        source: ObjectError,
    },
    /// A mandatory `configMapKeyRef` or `secretKeyRef` names a missing key.
    #[error("couldn't find key {key} in {} {namespace}/{name}", .kind.title())]
    KeyNotFound {
        scope: Scope,
        kind: ObjectKind,
        namespace: String,
        name: String,
        key: String,
    },
    /// A mandatory volume item names a missing key.
    #[error("{}{}", .scope.prefix(), .kind.missing_item(.key))]
    ItemNotFound {
        scope: Scope,
        kind: ObjectKind,
        name: String,
        key: String,
    },
    /// An azureFile volume's Secret lacks the storage account's name or key (the in-tree
    /// azure_file plugin's words).
    #[error(
        "{}invalid {namespace}/{name}, couldn't extract azurestorageaccountname or azurestorageaccountkey",
        .scope.prefix()
    )]
    StorageAccount {
        scope: Scope,
        namespace: String,
        name: String,
    },
    /// `item` is the variable's name or the file's path.
    #[error("{}cannot resolve fieldRef of {item:?}", .scope.prefix())]
    Field {
        scope: Scope,
        item: String,
        #[source]
        source: FieldError,
    },
    /// `item` is the variable's name or the file's path.
    #[error("{}cannot resolve resourceFieldRef of {item:?}", .scope.prefix())]
    Resource {
        scope: Scope,
        item: String,
        #[source]
        source: ResourceError,
    },
    #[error("{}failed to fetch token for service account {service_account:?}", .scope.prefix())]
    Token {
        scope: Scope,
        service_account: String,
        #[source]
        source: ObjectError,
    },
    #[error("{}invalid path {path:?}: {problem}", .scope.prefix())]
    InvalidPath {
        scope: Scope,
        path: String,
        problem: &'static str,
    },
    /// A projected volume source this resolver cannot produce.
    #[error("{}{projection} projections are not supported", .scope.prefix())]
    UnsupportedProjection {
        scope: Scope,
        projection: &'static str,
    },
    /// `subPathExpr` refers to variables that are missing or empty.
    #[error("missing value for {}", .names.join(", "))]
    SubPathValues { scope: Scope, names: Vec<String> },
    #[error("invalid SubPath `{sub_path}`: {problem}")]
    InvalidSubPath {
        scope: Scope,
        sub_path: String,
        problem: &'static str,
    },
}

impl ResolveError {
    /// The container or volume that cannot start; `None` when every container is concerned.
    pub fn scope(&self) -> Option<&Scope> {
        match self {
            ResolveError::NilEnableServiceLinks | ResolveError::ListServices(_) => None,
            ResolveError::NotFound { scope, .. }
            | ResolveError::Read { scope, .. }
            | ResolveError::KeyNotFound { scope, .. }
            | ResolveError::ItemNotFound { scope, .. }
            | ResolveError::StorageAccount { scope, .. }
            | ResolveError::Field { scope, .. }
            | ResolveError::Resource { scope, .. }
            | ResolveError::Token { scope, .. }
            | ResolveError::InvalidPath { scope, .. }
            | ResolveError::UnsupportedProjection { scope, .. }
            | ResolveError::SubPathValues { scope, .. }
            | ResolveError::InvalidSubPath { scope, .. } => Some(scope),
        }
    }

    /// A token refused with 404 or 403: what NodeRestriction answers for a pod its graph of
    /// bindings has not caught up with yet (under load, seconds after the pod was bound).
    pub fn may_be_unseen_pod(&self) -> bool {
        let ResolveError::Token {
            source: ObjectError::Api { source, .. },
            ..
        } = self
        else {
            return false;
        };
        matches!(source.as_ref(), kube::Error::Api(response) if matches!(response.code, 403 | 404))
    }

    /// The reason of the Warning event to record: the kubelet's `FailedMount` for volumes,
    /// upstream virtual-kubelet's reasons for ConfigMaps and Secrets in the environment, and
    /// the kubelet's `Failed` for the rest.
    pub fn reason(&self) -> &'static str {
        use ObjectKind::{ConfigMap, Secret};
        if let Some(Scope::Volume(_)) = self.scope() {
            return "FailedMount";
        }
        match self {
            ResolveError::NotFound {
                kind: ConfigMap, ..
            } => "MandatoryConfigMapNotFound",
            ResolveError::NotFound { kind: Secret, .. } => "MandatorySecretNotFound",
            ResolveError::KeyNotFound {
                kind: ConfigMap, ..
            } => "MandatoryConfigMapKeyNotFound",
            ResolveError::KeyNotFound { kind: Secret, .. } => "MandatorySecretKeyNotFound",
            ResolveError::Read {
                kind: ConfigMap,
                optional: true,
                ..
            } => "FailedToReadOptionalConfigMap",
            ResolveError::Read {
                kind: ConfigMap,
                optional: false,
                ..
            } => "FailedToReadMandatoryConfigMap",
            ResolveError::Read {
                kind: Secret,
                optional: true,
                ..
            } => "FailedToReadOptionalSecret",
            ResolveError::Read {
                kind: Secret,
                optional: false,
                ..
            } => "FailedToReadMandatorySecret",
            _ => "Failed",
        }
    }
}

/// Resolves `pod` for `node`, reading each ConfigMap, Secret and Service list once.
///
/// Volumes come first, as the kubelet mounts them before starting containers; then init,
/// regular and ephemeral containers. The first failure ends resolution.
pub async fn resolve(
    pod: &Pod,
    node: &NodeFacts,
    objects: &impl Objects,
) -> Result<Resolution, ResolveError> {
    let mut resolver = Resolver {
        pod,
        node,
        namespace: pod.metadata.namespace.as_deref().unwrap_or_default(),
        objects,
        cache: ObjectCache::default(),
        addresses: Addresses::of(pod, &node.host_ips),
        events: Vec::new(),
        refresh_at: None,
        waits_for_pod_ip: false,
        tokens: Vec::new(),
    };
    let volumes = resolver.volumes().await?;
    let registry_credentials = resolver.registry_credentials().await;
    let mut resolved = pod.clone();
    if let Some(spec) = resolved.spec.as_mut() {
        let service_variables = resolver.service_variables().await?;
        let init = spec.init_containers.iter_mut().flatten();
        let regular = spec.containers.iter_mut();
        let containers = init
            .map(|container| ContainerParts::of_container(ContainerKind::Init, container))
            .chain(regular.map(|c| ContainerParts::of_container(ContainerKind::Regular, c)))
            .chain(
                spec.ephemeral_containers
                    .iter_mut()
                    .flatten()
                    .map(ContainerParts::of_ephemeral_container),
            );
        for container in containers {
            resolver.container(container, &service_variables).await?;
        }
    }
    Ok(Resolution {
        pod: ResolvedPod {
            pod: resolved,
            volumes,
            registry_credentials,
        },
        events: resolver.events,
        refresh_at: resolver.refresh_at,
        waits_for_pod_ip: resolver.waits_for_pod_ip,
        tokens: resolver.tokens,
    })
}

/// The state of one resolution.
struct Resolver<'a, O> {
    pod: &'a Pod,
    node: &'a NodeFacts,
    namespace: &'a str,
    objects: &'a O,
    cache: ObjectCache,
    addresses: Addresses,
    events: Vec<PodEvent>,
    refresh_at: Option<Timestamp>,
    waits_for_pod_ip: bool,
    tokens: Vec<TokenFile>,
}

impl<O: Objects> Resolver<'_, O> {
    fn warn(&mut self, scope: &Scope, reason: &'static str, message: String) {
        self.events.push(PodEvent {
            type_: EventType::Warning,
            reason,
            message,
            field_path: scope.field_path(),
        });
    }

    /// The ConfigMap or Secret `name`; `None` when it is optional and missing, which is reported.
    async fn object(
        &mut self,
        referrer: Referrer<'_>,
        kind: ObjectKind,
        name: &str,
        optional: Option<bool>,
    ) -> Result<Option<Arc<ObjectData>>, ResolveError> {
        let optional = optional.unwrap_or(false);
        let read = self
            .cache
            .get(self.objects, kind, self.namespace, name)
            .await
            .map_err(|source| ResolveError::Read {
                scope: referrer.scope.clone(),
                kind,
                name: name.to_string(),
                optional,
                source,
            })?;
        if read.is_none() {
            if !optional {
                return Err(ResolveError::NotFound {
                    scope: referrer.scope.clone(),
                    kind,
                    name: name.to_string(),
                });
            }
            let miss = format!("{} {name:?} not found", kind.lower());
            self.warn(
                referrer.scope,
                kind.optional_not_found_reason(),
                referrer.skip_message(&miss),
            );
        }
        Ok(read)
    }

    /// Reports that an optional reference names a key its object lacks.
    fn skip_missing_key(
        &mut self,
        referrer: Referrer<'_>,
        kind: ObjectKind,
        name: &str,
        key: &str,
    ) {
        let miss = format!("key {key:?} does not exist in {} {name:?}", kind.lower());
        self.warn(
            referrer.scope,
            kind.optional_key_not_found_reason(),
            referrer.skip_message(&miss),
        );
    }
}

/// What refers to a ConfigMap or Secret: a container's `envFrom` or `variable`, or a volume.
#[derive(Debug, Clone, Copy)]
struct Referrer<'r> {
    scope: &'r Scope,
    variable: Option<&'r str>,
}

impl Referrer<'_> {
    /// Upstream virtual-kubelet's wording, extended to volumes.
    fn skip_message(&self, miss: &str) -> String {
        match (self.scope, self.variable) {
            (Scope::Volume(volume), _) => format!("volume {volume:?}: {miss}"),
            (Scope::Container(_), Some(variable)) => {
                format!("skipping optional envvar {variable:?}: {miss}")
            }
            (Scope::Container(_), None) => miss.to_string(),
        }
    }
}
