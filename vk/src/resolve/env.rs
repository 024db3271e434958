//! A container's environment as the kubelet builds it (`envFrom`, then `env`, then the
//! service-link variables nobody shadows), and the `$(VAR)` expansion of its command,
//! arguments and `subPathExpr`s with that environment.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use k8s_openapi::{
    ByteString,
    api::core::v1::{
        Container, EnvFromSource, EnvVar, EnvVarSource, EphemeralContainer, ResourceRequirements,
        SecretKeySelector, VolumeMount,
    },
};

use super::{
    ContainerKind, ContainerRef, ObjectKind, Objects, Referrer, ResolveError, Resolver, Scope,
    expansion::expand,
    fields, resources,
    services::{self, MASTER_NAMESPACE},
};

#[cfg(test)]
mod tests;

/// The parts of a container that resolution reads or rewrites, whatever list it is in.
#[derive(Debug)]
pub(super) struct ContainerParts<'c> {
    reference: ContainerRef,
    env: &'c mut Option<Vec<EnvVar>>,
    env_from: &'c mut Option<Vec<EnvFromSource>>,
    command: &'c mut Option<Vec<String>>,
    args: &'c mut Option<Vec<String>>,
    volume_mounts: &'c mut Option<Vec<VolumeMount>>,
    resources: Option<&'c ResourceRequirements>,
}

impl<'c> ContainerParts<'c> {
    pub(super) fn of_container(kind: ContainerKind, container: &'c mut Container) -> Self {
        let Container {
            name,
            env,
            env_from,
            command,
            args,
            volume_mounts,
            resources,
            ..
        } = container;
        ContainerParts {
            reference: ContainerRef {
                kind,
                name: name.clone(),
            },
            env,
            env_from,
            command,
            args,
            volume_mounts,
            resources: resources.as_ref(),
        }
    }

    pub(super) fn of_ephemeral_container(container: &'c mut EphemeralContainer) -> Self {
        let EphemeralContainer {
            name,
            env,
            env_from,
            command,
            args,
            volume_mounts,
            resources,
            ..
        } = container;
        ContainerParts {
            reference: ContainerRef {
                kind: ContainerKind::Ephemeral,
                name: name.clone(),
            },
            env,
            env_from,
            command,
            args,
            volume_mounts,
            resources: resources.as_ref(),
        }
    }
}

impl<O: Objects> Resolver<'_, O> {
    /// The service-link variables every container of the pod gets.
    pub(super) async fn service_variables(&self) -> Result<BTreeMap<String, String>, ResolveError> {
        let enable_service_links = self
            .pod
            .spec
            .as_ref()
            .and_then(|spec| spec.enable_service_links)
            .ok_or(ResolveError::NilEnableServiceLinks)?;
        let list = |namespace| async move {
            (self.objects.services(namespace).await).map_err(ResolveError::ListServices)
        };
        let master_namespace_services = list(MASTER_NAMESPACE).await?;
        let namespace_services = if enable_service_links && self.namespace != MASTER_NAMESPACE {
            list(self.namespace).await?
        } else {
            Arc::new([])
        };
        let linked = if self.namespace == MASTER_NAMESPACE {
            &master_namespace_services
        } else {
            &namespace_services
        };
        Ok(services::link_variables(
            &master_namespace_services,
            linked,
            enable_service_links,
        ))
    }

    /// Resolves the container's environment and expands its command, arguments and
    /// `subPathExpr`s with it.
    pub(super) async fn container(
        &mut self,
        parts: ContainerParts<'_>,
        service_variables: &BTreeMap<String, String>,
    ) -> Result<(), ResolveError> {
        let scope = Scope::Container(parts.reference);
        let env = self
            .environment(
                &scope,
                parts.env_from.as_deref().unwrap_or_default(),
                parts.env.as_deref().unwrap_or_default(),
                parts.resources,
                service_variables,
            )
            .await?;
        {
            let values: HashMap<&str, &str> = env
                .iter()
                .filter_map(|variable| Some((variable.name.as_str(), variable.value.as_deref()?)))
                .collect();
            for text in [&mut *parts.command, &mut *parts.args]
                .into_iter()
                .flatten()
                .flatten()
            {
                *text = expand(text, |name| values.get(name).copied());
            }
            for mount in parts.volume_mounts.iter_mut().flatten() {
                if let Some(expression) = mount.sub_path_expr.take_if(|expr| !expr.is_empty()) {
                    mount.sub_path = Some(sub_path(&scope, &expression, &values)?);
                }
            }
        }
        *parts.env = (!env.is_empty()).then_some(env);
        *parts.env_from = None;
        Ok(())
    }

    async fn environment(
        &mut self,
        scope: &Scope,
        env_from: &[EnvFromSource],
        env: &[EnvVar],
        own_resources: Option<&ResourceRequirements>,
        service_variables: &BTreeMap<String, String>,
    ) -> Result<Vec<EnvVar>, ResolveError> {
        let mut declared: BTreeMap<String, EnvVar> = BTreeMap::new();
        for source in env_from {
            let (kind, name, optional) = match (&source.config_map_ref, &source.secret_ref) {
                (Some(config_map), _) => {
                    (ObjectKind::ConfigMap, &config_map.name, config_map.optional)
                }
                (None, Some(secret)) => (ObjectKind::Secret, &secret.name, secret.optional),
                (None, None) => continue,
            };
            let referrer = Referrer {
                scope,
                variable: None,
            };
            let Some(object) = self.object(referrer, kind, name, optional).await? else {
                continue;
            };
            let prefix = source.prefix.as_deref().unwrap_or_default();
            for (key, value) in &object.data {
                let variable = format!("{prefix}{key}");
                let mut resolved = plain(variable.clone(), text(value));
                if kind == ObjectKind::Secret {
                    resolved.value_from = Some(from_secret(name, key));
                }
                declared.insert(variable, resolved);
            }
        }
        for variable in env {
            let resolved = self
                .variable(scope, variable, own_resources, &declared, service_variables)
                .await?;
            // An optional reference to a missing object or key leaves the name as it was.
            if let Some(resolved) = resolved {
                declared.insert(variable.name.clone(), resolved);
            }
        }
        let unshadowed: Vec<EnvVar> = service_variables
            .iter()
            .filter(|(name, _)| !declared.contains_key(*name))
            .map(|(name, value)| plain(name.clone(), value.clone()))
            .collect();
        Ok(declared.into_values().chain(unshadowed).collect())
    }

    /// The entry of one `env` item; `None` when it is an optional reference to something missing.
    async fn variable(
        &mut self,
        scope: &Scope,
        variable: &EnvVar,
        own_resources: Option<&ResourceRequirements>,
        declared: &BTreeMap<String, EnvVar>,
        service_variables: &BTreeMap<String, String>,
    ) -> Result<Option<EnvVar>, ResolveError> {
        let name = &variable.name;
        if let Some(value) = variable.value.as_deref().filter(|value| !value.is_empty()) {
            // Only variables declared before this one are visible, then the service links.
            let expanded = expand(value, |reference| {
                (declared.get(reference))
                    .and_then(|declared| declared.value.as_deref())
                    .or_else(|| service_variables.get(reference).map(String::as_str))
            });
            return Ok(Some(plain(name.clone(), expanded)));
        }
        let Some(source) = &variable.value_from else {
            return Ok(Some(plain(name.clone(), String::new())));
        };
        let value = if let Some(selector) = &source.field_ref {
            if fields::reads_pod_ips(selector) && self.addresses.pod_ips.is_empty() {
                self.waits_for_pod_ip = true;
            }
            fields::env_value(self.pod, selector, &self.addresses).map_err(|source| {
                ResolveError::Field {
                    scope: scope.clone(),
                    item: name.clone(),
                    source,
                }
            })?
        } else if let Some(selector) = &source.resource_field_ref {
            match selector.container_name.as_deref() {
                None | Some("") => Ok(own_resources),
                Some(container) => resources::of_container(self.pod, container),
            }
            .and_then(|resources| {
                resources::value(self.pod, resources, selector, &self.node.allocatable)
            })
            .map_err(|source| ResolveError::Resource {
                scope: scope.clone(),
                item: name.clone(),
                source,
            })?
        } else if let Some(selector) = &source.config_map_key_ref {
            let key = (selector.key.as_str(), selector.optional);
            match self
                .key(scope, name, ObjectKind::ConfigMap, &selector.name, key)
                .await?
            {
                Some(value) => value,
                None => return Ok(None),
            }
        } else if let Some(selector) = &source.secret_key_ref {
            let key = (selector.key.as_str(), selector.optional);
            let Some(value) = self
                .key(scope, name, ObjectKind::Secret, &selector.name, key)
                .await?
            else {
                return Ok(None);
            };
            // Where the value came from stays, so that providers can keep it secret.
            return Ok(Some(EnvVar {
                value_from: Some(from_secret(&selector.name, &selector.key)),
                ..plain(name.clone(), value)
            }));
        } else if source.file_key_ref.is_some() {
            // The kubelet reads the file from a volume after the init containers ran: only the
            // provider can, so the reference is passed on as it is.
            return Ok(Some(variable.clone()));
        } else {
            String::new()
        };
        Ok(Some(plain(name.clone(), value)))
    }

    /// The value of `key` in an object for `variable`; `None` when optional and missing.
    async fn key(
        &mut self,
        scope: &Scope,
        variable: &str,
        kind: ObjectKind,
        object: &str,
        (key, optional): (&str, Option<bool>),
    ) -> Result<Option<String>, ResolveError> {
        let referrer = Referrer {
            scope,
            variable: Some(variable),
        };
        let Some(data) = self.object(referrer, kind, object, optional).await? else {
            return Ok(None);
        };
        if let Some(value) = data.data.get(key) {
            return Ok(Some(text(value)));
        }
        if optional.unwrap_or(false) {
            self.skip_missing_key(referrer, kind, object, key);
            return Ok(None);
        }
        Err(ResolveError::KeyNotFound {
            scope: scope.clone(),
            kind,
            namespace: self.namespace.to_string(),
            name: object.to_string(),
            key: key.to_string(),
        })
    }
}

/// The kubelet's `subPathExpr` expansion: unlike elsewhere, a missing or empty variable is an
/// error, and the result must stay inside the volume.
fn sub_path(
    scope: &Scope,
    expression: &str,
    values: &HashMap<&str, &str>,
) -> Result<String, ResolveError> {
    let mut missing = BTreeSet::new();
    let sub_path = expand(expression, |name| {
        let value = values.get(name).copied().unwrap_or_default();
        if value.is_empty() {
            missing.insert(name.to_string());
        }
        Some(value)
    });
    if !missing.is_empty() {
        return Err(ResolveError::SubPathValues {
            scope: scope.clone(),
            names: missing.into_iter().collect(),
        });
    }
    let problem = if sub_path.starts_with('/') {
        "must not be an absolute path"
    } else if sub_path.split('/').any(|component| component == "..") {
        "must not contain '..'"
    } else {
        return Ok(sub_path);
    };
    Err(ResolveError::InvalidSubPath {
        scope: scope.clone(),
        sub_path,
        problem,
    })
}

fn plain(name: String, value: String) -> EnvVar {
    EnvVar {
        name,
        value: Some(value),
        value_from: None,
    }
}

/// `secretKeyRef` to `key` of Secret `secret`.
fn from_secret(secret: &str, key: &str) -> EnvVarSource {
    EnvVarSource {
        secret_key_ref: Some(SecretKeySelector {
            name: secret.to_string(),
            key: key.to_string(),
            optional: None,
        }),
        ..EnvVarSource::default()
    }
}

/// A Secret's bytes as a variable's value. Go passes them on verbatim; bytes that are not UTF-8
/// become U+FFFD here.
fn text(value: &ByteString) -> String {
    String::from_utf8_lossy(&value.0).into_owned()
}
