//! The files of configMap, secret, downwardAPI and projected volumes, by path relative to the
//! volume's root. Writing them (the atomic writer's `..data` layout) and their ownership are the
//! provider's business; the modes given are final, with the group-read bits the kubelet adds
//! when the pod has an fsGroup.
//!
//! An azureFile volume gets the two keys of its Secret that name the storage account and hold
//! its key: the provider mounts the share with them, as the kubelet's plugin would.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::core::v1::{
        DownwardAPIVolumeFile, KeyToPath, ServiceAccountTokenProjection, VolumeProjection,
    },
};
use vk_abi::{VolumeFile, VolumeFiles};

use super::{
    IssuedToken, ObjectKind, Objects, Referrer, ResolveError, Resolver, Scope, TokenFile, fields,
    resources,
};

#[cfg(test)]
mod tests;

/// API defaulting's `defaultMode`, for pods that somehow lack it.
const DEFAULT_MODE: i32 = 0o644;
/// What the kubelet adds to the modes of these read-only volumes' files for an fsGroup.
const FS_GROUP_READ_BITS: i32 = 0o440;
/// A token's mode when the pod has an fsGroup (before the group-read bits: 0640 in the end).
const FS_GROUP_TOKEN_MODE: i32 = 0o600;
/// API defaulting's `expirationSeconds` of a token projection.
const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;
/// What the TokenRequest of a pod without a service account names; admission always sets one.
const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// The atomic writer's limits.
const MAX_PATH_LENGTH: usize = 4096;
const MAX_FILE_NAME_LENGTH: usize = 255;
/// The keys of an azureFile volume's Secret that the in-tree azure_file plugin reads, which are
/// also the names of the volume's files.
const STORAGE_ACCOUNT_KEYS: [&str; 2] = ["azurestorageaccountname", "azurestorageaccountkey"];
/// Credentials for the provider, not files a container reads: owner-read only.
const STORAGE_ACCOUNT_MODE: i32 = 0o400;

/// The files of one volume, as they are gathered.
struct Payload<'s> {
    scope: &'s Scope,
    fs_group: bool,
    files: BTreeMap<String, VolumeFile>,
    /// The token files among them, by path.
    tokens: Vec<(String, IssuedToken)>,
}

impl Payload<'_> {
    fn add(&mut self, path: &str, data: ByteString, mode: i32) -> Result<(), ResolveError> {
        if let Some(problem) = path_problem(path) {
            return Err(ResolveError::InvalidPath {
                scope: self.scope.clone(),
                path: path.to_string(),
                problem,
            });
        }
        let mode = if self.fs_group {
            mode | FS_GROUP_READ_BITS
        } else {
            mode
        };
        self.files
            .insert(path.to_string(), VolumeFile { data, mode });
        Ok(())
    }
}

impl<O: Objects> Resolver<'_, O> {
    /// The files of every volume the kubelet would write, by volume name.
    pub(super) async fn volumes(&mut self) -> Result<BTreeMap<String, VolumeFiles>, ResolveError> {
        let spec = self.pod.spec.as_ref();
        let volumes = spec
            .and_then(|spec| spec.volumes.as_deref())
            .unwrap_or_default();
        let fs_group = spec
            .and_then(|spec| spec.security_context.as_ref())
            .is_some_and(|context| context.fs_group.is_some());
        let mut resolved = BTreeMap::new();
        for volume in volumes {
            let scope = Scope::Volume(volume.name.clone());
            let mut payload = Payload {
                scope: &scope,
                fs_group,
                files: BTreeMap::new(),
                tokens: Vec::new(),
            };
            if let Some(source) = &volume.config_map {
                let mode = source.default_mode.unwrap_or(DEFAULT_MODE);
                let items = source.items.as_deref();
                let object = (ObjectKind::ConfigMap, source.name.as_str(), source.optional);
                self.object_files(&mut payload, object, items, mode).await?;
            } else if let Some(source) = &volume.secret {
                let mode = source.default_mode.unwrap_or(DEFAULT_MODE);
                let items = source.items.as_deref();
                let name = source.secret_name.as_deref().unwrap_or_default();
                let object = (ObjectKind::Secret, name, source.optional);
                self.object_files(&mut payload, object, items, mode).await?;
            } else if let Some(source) = &volume.downward_api {
                let mode = source.default_mode.unwrap_or(DEFAULT_MODE);
                let items = source.items.as_deref().unwrap_or_default();
                self.downward_files(&mut payload, items, mode)?;
            } else if let Some(source) = &volume.projected {
                let mode = source.default_mode.unwrap_or(DEFAULT_MODE);
                for projection in source.sources.iter().flatten() {
                    self.projection(&mut payload, projection, mode).await?;
                }
            } else if let Some(source) = &volume.azure_file {
                self.storage_account_files(&mut payload, &source.secret_name)
                    .await?;
            } else {
                continue;
            }
            let Payload { files, tokens, .. } = payload;
            self.tokens
                .extend(tokens.into_iter().map(|(path, token)| TokenFile {
                    volume: volume.name.clone(),
                    path,
                    token,
                }));
            resolved.insert(volume.name.clone(), VolumeFiles { files });
        }
        Ok(resolved)
    }

    /// One source of a projected volume; they all share the volume's `defaultMode`.
    async fn projection(
        &mut self,
        payload: &mut Payload<'_>,
        projection: &VolumeProjection,
        default_mode: i32,
    ) -> Result<(), ResolveError> {
        let unsupported = |projection| ResolveError::UnsupportedProjection {
            scope: payload.scope.clone(),
            projection,
        };
        if let Some(source) = &projection.config_map {
            let object = (ObjectKind::ConfigMap, source.name.as_str(), source.optional);
            let items = source.items.as_deref();
            self.object_files(payload, object, items, default_mode)
                .await
        } else if let Some(source) = &projection.secret {
            let object = (ObjectKind::Secret, source.name.as_str(), source.optional);
            let items = source.items.as_deref();
            self.object_files(payload, object, items, default_mode)
                .await
        } else if let Some(source) = &projection.downward_api {
            let items = source.items.as_deref().unwrap_or_default();
            self.downward_files(payload, items, default_mode)
        } else if let Some(source) = &projection.service_account_token {
            self.token_file(payload, source, default_mode).await
        } else if projection.cluster_trust_bundle.is_some() {
            Err(unsupported("clusterTrustBundle"))
        } else if projection.pod_certificate.is_some() {
            Err(unsupported("podCertificate"))
        } else {
            Ok(())
        }
    }

    /// The keys of a ConfigMap or Secret: all of them, or the listed `items`. A missing
    /// optional object leaves the volume empty.
    async fn object_files(
        &mut self,
        payload: &mut Payload<'_>,
        (kind, name, optional): (ObjectKind, &str, Option<bool>),
        items: Option<&[KeyToPath]>,
        default_mode: i32,
    ) -> Result<(), ResolveError> {
        let referrer = Referrer {
            scope: payload.scope,
            variable: None,
        };
        let Some(object) = self.object(referrer, kind, name, optional).await? else {
            return Ok(());
        };
        let Some(items) = items.filter(|items| !items.is_empty()) else {
            for (key, data) in object.files() {
                payload.add(key, data.clone(), default_mode)?;
            }
            return Ok(());
        };
        for item in items {
            match object.file(&item.key) {
                Some(data) => {
                    let mode = item.mode.unwrap_or(default_mode);
                    payload.add(&item.path, data.clone(), mode)?;
                }
                None if optional.unwrap_or(false) => {
                    self.skip_missing_key(referrer, kind, name, &item.key);
                }
                None => {
                    return Err(ResolveError::ItemNotFound {
                        scope: payload.scope.clone(),
                        kind,
                        name: name.to_string(),
                        key: item.key.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The storage account of an azureFile volume, from its mandatory Secret `name` in the
    /// pod's namespace. Like the in-tree plugin, an empty value counts as missing.
    async fn storage_account_files(
        &mut self,
        payload: &mut Payload<'_>,
        name: &str,
    ) -> Result<(), ResolveError> {
        let referrer = Referrer {
            scope: payload.scope,
            variable: None,
        };
        // Mandatory: a missing Secret is an error here, so `None` never reaches the keys.
        let secret = self
            .object(referrer, ObjectKind::Secret, name, None)
            .await?;
        for key in STORAGE_ACCOUNT_KEYS {
            let data = (secret.as_deref())
                .and_then(|secret| secret.file(key))
                .filter(|data| !data.0.is_empty())
                .ok_or_else(|| ResolveError::StorageAccount {
                    scope: payload.scope.clone(),
                    namespace: self.namespace.to_string(),
                    name: name.to_string(),
                })?;
            payload.add(key, data.clone(), STORAGE_ACCOUNT_MODE)?;
        }
        Ok(())
    }

    /// downwardAPI items: metadata fields and container resources.
    fn downward_files(
        &self,
        payload: &mut Payload<'_>,
        items: &[DownwardAPIVolumeFile],
        default_mode: i32,
    ) -> Result<(), ResolveError> {
        for item in items {
            let path = clean(&item.path);
            let value = if let Some(selector) = &item.field_ref {
                fields::metadata_value(self.pod, &selector.field_path).map_err(|source| {
                    ResolveError::Field {
                        scope: payload.scope.clone(),
                        item: path.clone(),
                        source,
                    }
                })?
            } else if let Some(selector) = &item.resource_field_ref {
                let container = selector.container_name.as_deref().unwrap_or_default();
                resources::of_container(self.pod, container)
                    .and_then(|resources| {
                        resources::value(self.pod, resources, selector, &self.node.allocatable)
                    })
                    .map_err(|source| ResolveError::Resource {
                        scope: payload.scope.clone(),
                        item: path.clone(),
                        source,
                    })?
            } else {
                String::new()
            };
            let mode = item.mode.unwrap_or(default_mode);
            payload.add(&path, ByteString(value.into_bytes()), mode)?;
        }
        Ok(())
    }

    /// A service-account token bound to the pod; its renewal time becomes a candidate for
    /// [`Resolution::refresh_at`](super::Resolution::refresh_at).
    async fn token_file(
        &mut self,
        payload: &mut Payload<'_>,
        projection: &ServiceAccountTokenProjection,
        default_mode: i32,
    ) -> Result<(), ResolveError> {
        let service_account = (self.pod.spec.as_ref())
            .and_then(|spec| spec.service_account_name.as_deref())
            .filter(|name| !name.is_empty())
            .unwrap_or(DEFAULT_SERVICE_ACCOUNT);
        let audience = projection
            .audience
            .as_deref()
            .filter(|audience| !audience.is_empty());
        let expiration_seconds = projection
            .expiration_seconds
            .unwrap_or(DEFAULT_TOKEN_EXPIRATION_SECONDS);
        let token = self
            .objects
            .service_account_token(self.pod, service_account, audience, expiration_seconds)
            .await
            .map_err(|source| ResolveError::Token {
                scope: payload.scope.clone(),
                service_account: service_account.to_string(),
                source,
            })?;
        let refresh_at = token.refresh_at();
        self.refresh_at = Some(self.refresh_at.map_or(refresh_at, |at| at.min(refresh_at)));
        let mode = if payload.fs_group {
            FS_GROUP_TOKEN_MODE
        } else {
            default_mode
        };
        let stand_in = ByteString(token.stand_in().into_bytes());
        payload.add(&projection.path, stand_in, mode)?;
        payload.tokens.push((projection.path.clone(), token));
        Ok(())
    }
}

/// Go's `filepath.Clean` as far as downwardAPI paths need: no empty or `.` components.
fn clean(path: &str) -> String {
    let components: Vec<&str> = (path.split('/'))
        .filter(|component| !component.is_empty() && *component != ".")
        .collect();
    let relative = components.join("/");
    if path.starts_with('/') {
        format!("/{relative}")
    } else {
        relative
    }
}

/// The atomic writer's path rules: what would let a file escape its volume, or clash with the
/// writer's own `..data` entries.
fn path_problem(path: &str) -> Option<&'static str> {
    let mut components = path.split('/');
    if path.is_empty() {
        Some("must not be empty")
    } else if path.starts_with('/') {
        Some("must be relative path")
    } else if path.len() > MAX_PATH_LENGTH {
        Some("must be less than or equal to 4096 characters")
    } else if components.clone().any(|component| component == "..") {
        Some("must not contain '..'")
    } else if components.clone().any(|c| c.len() > MAX_FILE_NAME_LENGTH) {
        Some("filenames must be less than or equal to 255 characters")
    } else if components
        .next()
        .is_some_and(|first| first.starts_with(".."))
    {
        Some("must not start with '..'")
    } else {
        None
    }
}
