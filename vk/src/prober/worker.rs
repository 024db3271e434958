//! One probe of one container, run every `periodSeconds` as the kubelet's prober worker runs it
//! (`pkg/kubelet/prober/worker.go`): skipped while the container does not run, during
//! `initialDelaySeconds` and until it has started; a result published after
//! `failureThreshold` failures or `successThreshold` successes in a row; a container whose
//! liveness or startup probe fails killed, to be restarted as its policy says.

use std::{sync::Arc, time::Duration};

use k8s_openapi::{
    api::core::v1::{Container, Probe},
    jiff::Timestamp,
};

use super::{Prober, View, pod_grace};
use crate::{
    events::EventType,
    handler::{Outcome, Purpose},
    status::PodKey,
};

/// A probe that errors (rather than fails) is tried this many times in one tick.
const TRIES_ON_ERROR: u32 = 3;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    pub(super) fn probe(self, container: &Container) -> Option<&Probe> {
        match self {
            Kind::Startup => container.startup_probe.as_ref(),
            Kind::Liveness => container.liveness_probe.as_ref(),
            Kind::Readiness => container.readiness_probe.as_ref(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
}

/// The kubelet's defaults for a probe's fields (the API server fills them in, but a provider's
/// own objects or an old API may not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub(super) fn of(probe: &Probe, kind: Kind) -> Self {
        let seconds = |value: Option<i32>, default: u64| {
            Duration::from_secs(value.map_or(default, |v| u64::try_from(v).unwrap_or(0)))
        };
        let count = |value: Option<i32>, default: u32| {
            value
                .map_or(default, |v| u32::try_from(v).unwrap_or(0))
                .max(1)
        };
        Timing {
            initial_delay: seconds(probe.initial_delay_seconds, 0),
            period: seconds(probe.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: seconds(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
            // Must be 1 for liveness and startup.
            success_threshold: if kind == Kind::Readiness {
                count(probe.success_threshold, 1)
            } else {
                1
            },
            failure_threshold: count(probe.failure_threshold, 3),
        }
    }
}

/// Consecutive results of one container instance, and what they add up to.
#[derive(Debug, Default)]
pub(super) struct Streak {
    successes: u32,
    failures: u32,
}

impl Streak {
    /// Counts one result; the result to publish once a threshold is reached.
    pub(super) fn count(&mut self, success: bool, timing: &Timing) -> Option<bool> {
        if success {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            (self.successes >= timing.success_threshold).then_some(true)
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            (self.failures >= timing.failure_threshold).then_some(false)
        }
    }
}

pub(super) struct Worker {
    prober: Prober,
    key: PodKey,
    uid: String,
    container: String,
    kind: Kind,
    probe: Probe,
    timing: Timing,
}

impl Worker {
    pub(super) fn new(
        prober: Prober,
        key: PodKey,
        uid: String,
        container: String,
        kind: Kind,
        probe: Probe,
    ) -> Self {
        let timing = Timing::of(&probe, kind);
        Worker {
            prober,
            key,
            uid,
            container,
            kind,
            probe,
            timing,
        }
    }

    /// Probes until the pod is no longer followed (or, for liveness and startup, is being
    /// deleted).
    pub(super) async fn run(self) {
        let period = self.timing.period;
        // After a restart of vk every adopted pod's workers start at once: spread them.
        if self.prober.shared.started.elapsed() < period {
            tokio::time::sleep(period.mul_f64(fastrand::f64())).await;
        }
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut instance: Option<String> = None;
        let mut streak = Streak::default();
        // After a liveness failure or any startup result, until a new instance runs.
        let mut holding = false;
        loop {
            ticks.tick().await;
            let Some(view) = self.prober.view(&self.key, &self.uid, &self.container) else {
                return;
            };
            if view.terminating && self.kind != Kind::Readiness {
                return;
            }
            if view.container.instance != instance {
                instance.clone_from(&view.container.instance);
                streak = Streak::default();
                holding = false;
            }
            let Some(current) = instance.clone() else {
                continue;
            };
            if holding || !self.due(&view) {
                continue;
            }
            let outcome = self.attempt(&view).await;
            self.record(&view, &outcome);
            // An error (the check could not be made) is no result, as in the kubelet.
            if matches!(outcome, Outcome::Error(_)) {
                continue;
            }
            let success = outcome == Outcome::Success;
            match (self.kind, streak.count(success, &self.timing)) {
                (Kind::Liveness, Some(false)) => {
                    holding = true;
                    self.kill(&view).await;
                }
                (Kind::Startup, Some(result)) => {
                    holding = true;
                    self.prober
                        .publish(&self.key, &self.container, &current, self.kind, result);
                    if !result {
                        self.kill(&view).await;
                    }
                }
                (Kind::Readiness, Some(result)) => {
                    self.prober
                        .publish(&self.key, &self.container, &current, self.kind, result);
                }
                _ => {}
            }
        }
    }

    /// Whether the probe runs at this tick: past the initial delay, and for liveness and
    /// readiness once the container has started (its startup probe succeeded).
    fn due(&self, view: &View) -> bool {
        let started = view.container.started();
        let waits = match self.kind {
            Kind::Startup => started,
            Kind::Liveness | Kind::Readiness => !started,
        };
        let delay = self.timing.initial_delay;
        let delayed = view.container.started_at.is_some_and(|at| {
            let since = Timestamp::now().duration_since(at);
            since.as_secs_f64() < delay.as_secs_f64()
        });
        !waits && !delayed
    }

    /// One probe, tried again at once when it errors.
    async fn attempt(&self, view: &View) -> Outcome {
        let mut outcome = Outcome::Error("not run".into());
        for _ in 0..TRIES_ON_ERROR {
            outcome = self.run_handler(view).await;
            if !matches!(outcome, Outcome::Error(_)) {
                break;
            }
        }
        outcome
    }

    async fn run_handler(&self, view: &View) -> Outcome {
        let (probe, timeout, target) = (&self.probe, self.timing.timeout, &view.target);
        if let Some(exec) = &probe.exec {
            target.exec(exec, timeout).await
        } else if let Some(http) = &probe.http_get {
            target.http_get(http, timeout, Purpose::Probe).await
        } else if let Some(tcp) = &probe.tcp_socket {
            target.tcp(tcp, timeout).await
        } else if let Some(grpc) = &probe.grpc {
            target.grpc(grpc, timeout).await
        } else {
            Outcome::Error("the probe has no handler".into())
        }
    }

    /// The kubelet's `Unhealthy` event for every failed attempt.
    fn record(&self, view: &View, outcome: &Outcome) {
        let message = match outcome {
            Outcome::Success => return,
            Outcome::Failure(output) => format!("{} probe failed: {output}", self.kind.name()),
            Outcome::Error(error) => format!(
                "{} probe errored and resulted in unknown state: {error}",
                self.kind.name()
            ),
        };
        self.prober.shared.recorder.pod(
            &view.pod,
            EventType::Warning,
            "Unhealthy",
            &message,
            Some(view.container.field_path.clone()),
        );
    }

    /// Kills the container for its failed liveness or startup probe, within the probe's grace
    /// period (else the pod's).
    async fn kill(&self, view: &View) {
        let restarts = restarts(&view.pod, &view.container.spec);
        let message = format!(
            "Container {} failed {} probe{}",
            self.container,
            self.kind.name().to_lowercase(),
            if restarts { ", will be restarted" } else { "" }
        );
        let grace = self
            .probe
            .termination_grace_period_seconds
            .unwrap_or_else(|| pod_grace(&view.pod));
        self.prober.kill(view, message, grace).await;
    }
}

/// Whether a killed container is restarted: by its own restart policy (a sidecar's Always),
/// else the pod's.
fn restarts(pod: &Arc<k8s_openapi::api::core::v1::Pod>, container: &Container) -> bool {
    let policy = container.restart_policy.as_deref().or_else(|| {
        pod.spec
            .as_ref()
            .and_then(|spec| spec.restart_policy.as_deref())
    });
    policy != Some("Never")
}
