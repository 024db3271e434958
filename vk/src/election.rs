//! Leader election among the vk processes of one node (`--leader-elect`), so that a standby
//! takes the node over when its leader dies: client-go's `tools/leaderelection` algorithm on one
//! `coordination.k8s.io/v1` Lease, written with resourceVersion-guarded replaces.
//!
//! A candidate takes the lease when it is free, released, or unchanged for a lease duration as
//! seen on the candidate's own clock (never by comparing the holder's timestamps with ours, so
//! clock skew does not matter). The leader renews it every retry period and counts as having
//! lost it when no renewal succeeded within the renew deadline, or when it finds someone else
//! holding it. There is no fencing: the caller must stop acting at once when [`Leadership::lost`]
//! resolves.
//!
//! Beyond client-go, a standby also watches the lease between its reads (one per retry period):
//! it sees each renewal within milliseconds instead of up to a retry period late, and reads again
//! exactly when the lease would expire. A dead leader is so replaced a lease duration after its
//! last renewal rather than up to two retry periods later. Without the watch (refused, or
//! broken) the standby works as client-go's does.

use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::PostParams,
    runtime::{WatchStreamExt as _, watcher},
};
use tokio::{task::JoinHandle, time::Instant};

/// Candidates wait a retry period stretched by up to this fraction between attempts, so that
/// they do not all ask at once.
const JITTER: f64 = 0.2;

#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error(
        "the leader election's lease duration ({lease:?}) must exceed its renew deadline ({renew:?}), which must exceed 1.2 times its retry period ({retry:?})"
    )]
    Timings {
        lease: Duration,
        renew: Duration,
        retry: Duration,
    },
    #[error("lease {lease} is held by {holder} now")]
    TakenOver { lease: String, holder: String },
    #[error("could not renew lease {lease} within the renew deadline of {deadline:?}")]
    RenewDeadline {
        lease: String,
        deadline: Duration,
        #[source]
        source: Option<kube::Error>,
    },
    #[error("the lease renewal task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Which lease, who we are, and client-go's timings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub namespace: String,
    pub name: String,
    /// Unique among the candidates: written as `holderIdentity`.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Settings {
    /// Refuses timings with which a leader could lose the lease before it knows (client-go's
    /// rule): lease duration > renew deadline > 1.2 × retry period.
    pub fn validate(&self) -> Result<(), ElectionError> {
        if self.lease_duration > self.renew_deadline
            && self.renew_deadline > self.retry_period.mul_f64(1.0 + JITTER)
        {
            Ok(())
        } else {
            Err(ElectionError::Timings {
                lease: self.lease_duration,
                renew: self.renew_deadline,
                retry: self.retry_period,
            })
        }
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A unique identity for this process: `name`, or else the host's name (a pod's name in a
/// cluster, unless on the host's network), and a random suffix, so that a restarted process
/// never mistakes its predecessor's lease for its own.
pub fn identity(name: Option<&str>) -> String {
    let name = name
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
        });
    let name = name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "vk".into());
    format!("{name}_{:08x}", fastrand::u32(..))
}

/// The lease as last read, and when it last changed as seen on our clock.
#[derive(Debug, Clone)]
struct Observed {
    spec: LeaseSpec,
    at: Instant,
}

/// What to do with the lease as read.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Write this spec (take or renew the lease).
    Write(LeaseSpec),
    /// Someone else holds it and it has not expired.
    HeldBy(String),
}

/// client-go's decision: take the lease when it is ours, free, or has not changed for a lease
/// duration since we first saw it that way; keep acquireTime and the transitions count when it
/// is ours already.
fn verdict(
    observed: &mut Option<Observed>,
    current: &LeaseSpec,
    settings: &Settings,
    now: Instant,
    wall: Timestamp,
) -> Verdict {
    observe(observed, current, now);
    let since = observed.as_ref().map_or(now, |o| o.at);
    let holder = current.holder_identity.clone().unwrap_or_default();
    let ours = holder == settings.identity;
    if !holder.is_empty() && !ours && since + settings.lease_duration > now {
        return Verdict::HeldBy(holder);
    }
    let transitions = current.lease_transitions.unwrap_or(0);
    Verdict::Write(LeaseSpec {
        holder_identity: Some(settings.identity.clone()),
        lease_duration_seconds: Some(seconds(settings.lease_duration)),
        acquire_time: if ours {
            current.acquire_time.clone()
        } else {
            Some(MicroTime(wall))
        },
        renew_time: Some(MicroTime(wall)),
        lease_transitions: Some(if ours { transitions } else { transitions + 1 }),
        ..LeaseSpec::default()
    })
}

/// Notes `current` as seen at `now` if it differs from what was seen before: the expiry clock
/// restarts only when the lease changes. Returns whether it did.
fn observe(observed: &mut Option<Observed>, current: &LeaseSpec, now: Instant) -> bool {
    let changed = observed.as_ref().is_none_or(|o| o.spec != *current);
    if changed {
        *observed = Some(Observed {
            spec: current.clone(),
            at: now,
        });
    }
    changed
}

/// What the watch of the lease tells a standby.
#[derive(Debug)]
enum Change {
    /// The lease as written now.
    Written(LeaseSpec),
    /// The lease was deleted.
    Deleted,
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX).max(1)
}

/// A candidate for one lease.
#[derive(Debug)]
pub struct Elector {
    leases: Api<Lease>,
    settings: Settings,
    observed: Option<Observed>,
}

/// The outcome of one attempt.
#[derive(Debug)]
enum Attempt {
    Held,
    HeldBy(String),
    Failed(kube::Error),
}

impl Elector {
    pub fn new(client: Client, settings: Settings) -> Result<Self, ElectionError> {
        settings.validate()?;
        Ok(Elector {
            leases: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
        })
    }

    /// One try to take or renew the lease (client-go's `tryAcquireOrRenew`).
    async fn try_acquire_or_renew(&mut self) -> Attempt {
        let now = Instant::now();
        let wall = Timestamp::now();
        let existing = match self.leases.get_opt(&self.settings.name).await {
            Ok(existing) => existing,
            Err(error) => return Attempt::Failed(error),
        };
        let Some(mut lease) = existing else {
            let spec = LeaseSpec {
                holder_identity: Some(self.settings.identity.clone()),
                lease_duration_seconds: Some(seconds(self.settings.lease_duration)),
                acquire_time: Some(MicroTime(wall)),
                renew_time: Some(MicroTime(wall)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            };
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(created) => self.wrote(created, now),
                Err(error) => Attempt::Failed(error),
            };
        };
        let current = lease.spec.take().unwrap_or_default();
        match verdict(&mut self.observed, &current, &self.settings, now, wall) {
            Verdict::HeldBy(holder) => Attempt::HeldBy(holder),
            Verdict::Write(spec) => {
                lease.spec = Some(spec);
                // The resourceVersion read above makes this a compare-and-swap: of two
                // candidates writing at once, the apiserver refuses one (409).
                match self
                    .leases
                    .replace(&self.settings.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(replaced) => self.wrote(replaced, now),
                    Err(error) => Attempt::Failed(error),
                }
            }
        }
    }

    fn wrote(&mut self, lease: Lease, now: Instant) -> Attempt {
        self.observed = Some(Observed {
            spec: lease.spec.unwrap_or_default(),
            at: now,
        });
        Attempt::Held
    }

    fn pause(&self) -> Duration {
        self.settings
            .retry_period
            .mul_f64(1.0 + JITTER * fastrand::f64())
    }

    /// The lease's changes, from a watch that reconnects with back-off by itself.
    fn changes(&self) -> impl Stream<Item = Change> + use<> {
        let config =
            watcher::Config::default().fields(&format!("metadata.name={}", self.settings.name));
        watcher(self.leases.clone(), config)
            .default_backoff()
            .filter_map(|event| async move {
                match event {
                    Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease)) => {
                        Some(Change::Written(lease.spec.unwrap_or_default()))
                    }
                    Ok(watcher::Event::Delete(_)) => Some(Change::Deleted),
                    // A refused or broken watch leaves the standby polling.
                    Ok(watcher::Event::Init | watcher::Event::InitDone) | Err(_) => None,
                }
            })
    }

    /// When the lease as last seen expires unless it changes.
    fn expiry(&self) -> Instant {
        let seen = self.observed.as_ref().map_or_else(Instant::now, |o| o.at);
        seen + self.settings.lease_duration
    }

    /// Waits until `next_try`, noting each renewal the watch shows when it happens (a read
    /// would see it up to a retry period late); a lease released or deleted is tried at once.
    async fn stand_by(
        &mut self,
        changes: &mut (impl Stream<Item = Change> + Unpin),
        next_try: Instant,
    ) {
        loop {
            let change = tokio::select! {
                () = tokio::time::sleep_until(next_try) => return,
                change = changes.next() => change,
            };
            match change {
                Some(Change::Written(spec))
                    if spec
                        .holder_identity
                        .as_deref()
                        .is_some_and(|h| !h.is_empty()) =>
                {
                    observe(&mut self.observed, &spec, Instant::now());
                }
                Some(Change::Written(_) | Change::Deleted) => return,
                None => {
                    tokio::time::sleep_until(next_try).await;
                    return;
                }
            }
        }
    }

    /// Waits until this candidate holds the lease, however long that takes.
    pub async fn acquire(mut self) -> Leadership {
        let lease = self.settings.lease();
        log::info!(
            "leader election: trying to acquire lease {lease} as {}",
            self.settings.identity
        );
        let mut changes = std::pin::pin!(self.changes());
        let mut last_holder = String::new();
        loop {
            let next_try = match self.try_acquire_or_renew().await {
                Attempt::Held => break,
                Attempt::HeldBy(holder) => {
                    if holder != last_holder {
                        log::info!(
                            "leader election: lease {lease} is held by {holder}; standing by"
                        );
                        last_holder = holder;
                    }
                    self.expiry().min(Instant::now() + self.pause())
                }
                Attempt::Failed(error) => {
                    log::warn!("leader election: cannot acquire lease {lease}: {error}");
                    Instant::now() + self.pause()
                }
            };
            self.stand_by(&mut changes, next_try).await;
        }
        log::info!(
            "leader election: acquired lease {lease} as {}; leading",
            self.settings.identity
        );
        let leases = self.leases.clone();
        let settings = self.settings.clone();
        Leadership {
            renewal: tokio::spawn(self.renew()),
            leases,
            settings,
        }
    }

    /// Renews the lease until it is lost; returns why.
    async fn renew(mut self) -> ElectionError {
        let deadline = self.settings.renew_deadline;
        let mut renewed = Instant::now();
        let mut last_error = None;
        loop {
            tokio::time::sleep(self.settings.retry_period).await;
            let remaining = deadline.saturating_sub(renewed.elapsed());
            // A request that hangs must not outlive the deadline.
            match tokio::time::timeout(remaining, self.try_acquire_or_renew()).await {
                Ok(Attempt::Held) => {
                    renewed = Instant::now();
                    last_error = None;
                }
                Ok(Attempt::HeldBy(holder)) => {
                    return ElectionError::TakenOver {
                        lease: self.settings.lease(),
                        holder,
                    };
                }
                Ok(Attempt::Failed(error)) => {
                    log::warn!(
                        "leader election: cannot renew lease {}: {error}",
                        self.settings.lease()
                    );
                    last_error = Some(error);
                }
                Err(_) => {}
            }
            if renewed.elapsed() >= deadline {
                return ElectionError::RenewDeadline {
                    lease: self.settings.lease(),
                    deadline,
                    source: last_error,
                };
            }
        }
    }
}

/// The lease, held and renewed in the background.
#[derive(Debug)]
pub struct Leadership {
    renewal: JoinHandle<ElectionError>,
    leases: Api<Lease>,
    settings: Settings,
}

impl Leadership {
    /// Resolves when the lease is lost, with why.
    pub async fn lost(&mut self) -> ElectionError {
        match (&mut self.renewal).await {
            Ok(error) => error,
            Err(error) => ElectionError::Task(error),
        }
    }

    /// Stops renewing and hands the lease back (client-go's `ReleaseOnCancel`), so that a
    /// standby takes over within a retry period instead of a lease duration. Call it only once
    /// this process has stopped acting as the leader.
    pub async fn release(self) {
        self.renewal.abort();
        let lease = self.settings.lease();
        let released = async {
            let mut current = self.leases.get(&self.settings.name).await?;
            let spec = current.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(&self.settings.identity) {
                return Ok(false);
            }
            let now = Some(MicroTime(Timestamp::now()));
            *spec = LeaseSpec {
                holder_identity: None,
                lease_duration_seconds: Some(1),
                acquire_time: now.clone(),
                renew_time: now,
                lease_transitions: spec.lease_transitions,
                ..LeaseSpec::default()
            };
            self.leases
                .replace(&self.settings.name, &PostParams::default(), &current)
                .await
                .map(|_| true)
        };
        match released.await {
            Ok(true) => log::info!("leader election: released lease {lease}"),
            Ok(false) => log::info!("leader election: lease {lease} was no longer ours"),
            Err(error) => log::warn!("leader election: cannot release lease {lease}: {error}"),
        }
    }
}

#[cfg(test)]
mod tests;
