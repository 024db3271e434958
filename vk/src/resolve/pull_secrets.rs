//! The registry logins of a pod's `imagePullSecrets`. As with the kubelet, a Secret that is
//! missing or unreadable does not stop the pod: it is reported, and the pull may still succeed.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use vk_abi::RegistryCredential;

use super::{ObjectKind, Objects, PodEvent, Resolver};
use crate::events::EventType;

/// The keys of `kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg` Secrets.
const DOCKER_CONFIG_JSON: &str = ".dockerconfigjson";
const DOCKER_CFG: &str = ".dockercfg";

/// `~/.docker/config.json`: logins under `auths`.
#[derive(Deserialize)]
struct DockerConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, DockerLogin>,
}

/// One login; `auth` is `base64(username:password)`, used when the fields are absent.
#[derive(Default, Deserialize)]
#[serde(default)]
struct DockerLogin {
    username: String,
    password: String,
    auth: String,
}

impl<O: Objects> Resolver<'_, O> {
    pub(super) async fn registry_credentials(&mut self) -> Vec<RegistryCredential> {
        let names = self
            .pod
            .spec
            .iter()
            .flat_map(|spec| spec.image_pull_secrets.iter().flatten())
            .map(|reference| reference.name.clone());
        let mut credentials = Vec::new();
        let mut unusable = Vec::new();
        for name in names {
            let read = self
                .cache
                .get(self.objects, ObjectKind::Secret, self.namespace, &name)
                .await;
            let logins = match read {
                Ok(Some(data)) => parse(
                    data.data.get(DOCKER_CONFIG_JSON).map(|value| &value.0[..]),
                    data.data.get(DOCKER_CFG).map(|value| &value.0[..]),
                ),
                Ok(None) | Err(_) => None,
            };
            match logins {
                Some(logins) => credentials.extend(logins),
                None => unusable.push(name),
            }
        }
        if !unusable.is_empty() {
            // The kubelet's words (kuberuntime_image.go).
            self.events.push(PodEvent {
                type_: EventType::Warning,
                reason: "FailedToRetrieveImagePullSecret",
                message: format!(
                    "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                    unusable.join(", ")
                ),
                field_path: None,
            });
        }
        credentials
    }
}

/// The logins of a Secret's `.dockerconfigjson` or `.dockercfg`; `None` when it has neither
/// or they are not valid.
fn parse(config_json: Option<&[u8]>, cfg: Option<&[u8]>) -> Option<Vec<RegistryCredential>> {
    let logins = match (config_json, cfg) {
        (Some(json), _) => serde_json::from_slice::<DockerConfigJson>(json).ok()?.auths,
        (None, Some(cfg)) => serde_json::from_slice(cfg).ok()?,
        (None, None) => return None,
    };
    logins
        .into_iter()
        .map(|(server, login)| {
            let (username, password) = if login.username.is_empty() && !login.auth.is_empty() {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(login.auth.trim())
                    .ok()?;
                let decoded = String::from_utf8(decoded).ok()?;
                let (username, password) = decoded.split_once(':')?;
                (username.to_string(), password.to_string())
            } else {
                (login.username, login.password)
            };
            Some(RegistryCredential {
                server,
                username,
                password,
            })
        })
        .collect()
}
