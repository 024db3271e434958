//! Getting a certificate from the cluster and renewing it, as the kubelet's certificate manager:
//! at a random point between 70 % and 90 % of its lifetime, or at once when it no longer fits
//! the template; failed attempts are retried after 2, 4, 8, 16, then every 32 seconds.

use std::{sync::Arc, time::Duration};

use kube::Client;
use rustls::sign::CertifiedKey;
use vk_abi::error_chain;

use super::{
    CertError, Settings,
    request::{self, Signer, Template},
    store::{Pair, Store},
};

/// Where in a certificate's lifetime it is renewed, as fractions of that lifetime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub low: f64,
    pub high: f64,
}

impl Window {
    /// The kubelet's jitter: 70 % to 90 %.
    pub const KUBELET: Window = Window {
        low: 0.7,
        high: 0.9,
    };
}

/// When to renew a certificate valid from `not_before` to `not_after` (Unix seconds), for a
/// `random` number in [0, 1).
pub fn deadline(not_before: i64, not_after: i64, window: Window, random: f64) -> i64 {
    let lifetime = (not_after - not_before) as f64;
    let fraction = window.low + (window.high - window.low) * random;
    not_before + (lifetime * fraction) as i64
}

/// The delays between failed attempts: 2 s doubling for five steps, then 32 s forever.
#[derive(Debug, Default)]
pub struct RetryDelays {
    failures: u32,
}

impl RetryDelays {
    pub fn next_delay(&mut self) -> Duration {
        let delay = Duration::from_secs(2 << self.failures.min(4));
        self.failures = self.failures.saturating_add(1);
        delay
    }
}

pub fn now() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

pub fn time(unix: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// Asks the cluster for a certificate as the user of `client`, waits for it and stores it.
pub async fn obtain(
    client: Client,
    template: &Template,
    store: &Store,
    settings: &Settings,
    bootstrap: bool,
) -> Result<Pair, CertError> {
    let what = template.signer.what();
    let pending = request::create(client, template, bootstrap, settings.expiration_seconds).await?;
    match template.signer {
        Signer::Client => log::info!("requested a {what} with CSR {}", pending.name),
        // Nothing in the cluster approves serving certificates by itself.
        Signer::Serving => log::info!(
            "requested a {what} with CSR {name}; it waits for approval (kubectl certificate approve {name})",
            name = pending.name
        ),
    }
    let (cert, key) = pending.issued(settings.wait_limit).await?;
    let pair = store.save(&cert, &key)?;
    log::info!(
        "got a {what} from the cluster, valid until {}; stored in {}",
        time(pair.not_after),
        store.current_path().display()
    );
    Ok(pair)
}

/// Keeps one certificate fresh, handing each new one to `install`.
pub struct Rotation {
    pub client: Client,
    pub template: Template,
    pub store: Store,
    pub settings: Settings,
    /// The certificate in use, if it came from the cluster.
    pub current: Option<Pair>,
    pub install: Arc<dyn Fn(CertifiedKey) + Send + Sync>,
}

impl std::fmt::Debug for Rotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotation")
            .field("template", &self.template)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Rotation {
    /// Renews the certificate forever.
    pub async fn run(mut self) {
        let what = self.template.signer.what();
        let mut delays = RetryDelays::default();
        loop {
            if let Some(pair) = &self.current
                && self.template.mismatch(pair, now()).is_none()
            {
                let window = self.settings.window;
                let at = deadline(pair.not_before, pair.not_after, window, fastrand::f64());
                if let Ok(wait @ 1..) = u64::try_from(at - now()) {
                    log::info!(
                        "the {what} is valid until {}; renewing it at {}",
                        time(pair.not_after),
                        time(at)
                    );
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
            }
            match self.renew().await {
                Ok(pair) => {
                    self.current = Some(pair);
                    delays = RetryDelays::default();
                }
                Err(error) => {
                    let delay = delays.next_delay();
                    log::warn!(
                        "cannot get a new {what}: {}; trying again in {}",
                        error_chain(&error),
                        humantime::format_duration(delay)
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn renew(&self) -> Result<Pair, CertError> {
        let pair = obtain(
            self.client.clone(),
            &self.template,
            &self.store,
            &self.settings,
            false,
        )
        .await?;
        (self.install)(pair.certified_key()?);
        Ok(pair)
    }
}

#[cfg(test)]
mod tests;
