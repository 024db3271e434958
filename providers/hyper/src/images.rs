//! Images as `imagePullPolicy` asks, pulled with the login of the registry they come from.

#[cfg(test)]
mod tests;

use bollard::{auth::DockerCredentials, query_parameters::CreateImageOptionsBuilder};
use futures::StreamExt as _;
use vk_abi::RegistryCredential;

use crate::{engine::Engine, spec::PullPolicy};

/// The registry of images named without one.
const DOCKER_HUB: &str = "docker.io";

/// Why an image is not there; the messages start with the kubelet's reasons.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("ErrImageNeverPull: container image {0:?} is not present with pull policy of Never")]
    NeverPull(String),
    #[error("ErrImagePull: failed to pull image {image:?}: {message}")]
    Pull { image: String, message: String },
    #[error("cannot inspect image {image:?}: {source}")]
    Inspect {
        image: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// How an image came to be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull {
    Present,
    Pulled,
}

/// Makes `image` present according to `policy`.
pub async fn ensure(
    engine: &Engine,
    image: &str,
    policy: PullPolicy,
    credentials: &[RegistryCredential],
) -> Result<Pull, ImageError> {
    if policy != PullPolicy::Always {
        match engine.docker.inspect_image(image).await {
            Ok(_) => return Ok(Pull::Present),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(source) => {
                return Err(ImageError::Inspect {
                    image: image.to_string(),
                    source,
                });
            }
        }
        if policy == PullPolicy::Never {
            return Err(ImageError::NeverPull(image.to_string()));
        }
    }
    pull(engine, image, credentials).await?;
    Ok(Pull::Pulled)
}

async fn pull(
    engine: &Engine,
    image: &str,
    credentials: &[RegistryCredential],
) -> Result<(), ImageError> {
    let failed = |message: String| ImageError::Pull {
        image: image.to_string(),
        message,
    };
    let login = login_for(image, credentials).map(|credential| DockerCredentials {
        username: Some(credential.username.clone()),
        password: Some(credential.password.clone()),
        serveraddress: Some(credential.server.clone()),
        ..DockerCredentials::default()
    });
    let options = CreateImageOptionsBuilder::new().from_image(image).build();
    let mut progress = engine.docker.create_image(Some(options), None, login);
    while let Some(message) = progress.next().await {
        // Failures after the 200 arrive inside the stream.
        let message = message.map_err(|error| failed(error.to_string()))?;
        if let Some(detail) = message.error_detail.and_then(|detail| detail.message) {
            return Err(failed(detail));
        }
    }
    Ok(())
}

/// The registry host of `image`: its first path segment when that looks like a host.
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => DOCKER_HUB,
    }
}

/// The login whose server names `image`'s registry.
fn login_for<'c>(
    image: &str,
    credentials: &'c [RegistryCredential],
) -> Option<&'c RegistryCredential> {
    let registry = registry_of(image);
    credentials.iter().find(|credential| {
        let server = credential
            .server
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let host = server.split('/').next().unwrap_or(server);
        host == registry
            || (registry == DOCKER_HUB
                && matches!(host, "index.docker.io" | "registry-1.docker.io"))
    })
}
