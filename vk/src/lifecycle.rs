//! Lifecycle hooks: a container's `postStart` and `preStop` handlers (exec, httpGet, sleep),
//! run as the kubelet runs them (`pkg/kubelet/lifecycle/handlers.go`).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{LifecycleHandler, Pod};

use crate::{
    events::{EventType, Recorder},
    handler::{Outcome, Purpose, Target},
};

/// Every container stop keeps at least this much of its grace after the preStop hook.
pub const MIN_STOP_GRACE: i64 = 2;

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    PostStart,
    PreStop,
}

impl Hook {
    fn handler(self, target: &Target) -> Option<LifecycleHandler> {
        let lifecycle = target.container.lifecycle.as_ref()?;
        match self {
            Hook::PostStart => lifecycle.post_start.clone(),
            Hook::PreStop => lifecycle.pre_stop.clone(),
        }
    }
}

/// Whether the container has `hook`.
pub fn has(target: &Target, hook: Hook) -> bool {
    hook.handler(target).is_some()
}

/// Runs `hook` of the target's container, for at most `limit` (none: postStart has no time
/// limit). Failures become the kubelet's `FailedPostStartHook` / `FailedPreStopHook` events on
/// `pod`, without the handler's output, which goes to the log. Answers whether it succeeded.
pub async fn run(
    target: &Target,
    pod: &Pod,
    hook: Hook,
    limit: Option<Duration>,
    recorder: &Recorder,
    field_path: Option<String>,
) -> bool {
    let Some(handler) = hook.handler(target) else {
        return true;
    };
    // exec hooks, like any exec, need some limit for the provider call: the grace period, or
    // for postStart a day (the kubelet waits without end).
    let timeout = limit.unwrap_or(Duration::from_secs(24 * 3600));
    let action = async {
        if let Some(exec) = &handler.exec {
            target.exec(exec, timeout).await
        } else if let Some(http) = &handler.http_get {
            target.http_get(http, timeout, Purpose::Hook).await
        } else if let Some(sleep) = &handler.sleep {
            tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0).unsigned_abs())).await;
            Outcome::Success
        } else if handler.tcp_socket.is_some() {
            // Deprecated and, as in the kubelet, a no-op.
            Outcome::Success
        } else {
            Outcome::Error("the hook has no handler".into())
        }
    };
    let outcome = match limit {
        Some(limit) => tokio::time::timeout(limit, action)
            .await
            .unwrap_or_else(|_| Outcome::Failure(format!("did not end within {limit:?}"))),
        None => action.await,
    };
    let (reason, message, name) = match hook {
        Hook::PostStart => ("FailedPostStartHook", "PostStartHook failed", "PostStart"),
        Hook::PreStop => ("FailedPreStopHook", "PreStopHook failed", "PreStop"),
    };
    match outcome {
        Outcome::Success => true,
        Outcome::Failure(detail) | Outcome::Error(detail) => {
            log::info!(
                pod:% = format!("{}/{}", target.namespace, target.pod);
                "{name} hook of container {} in pod {}/{} failed: {detail}",
                target.container.name, target.namespace, target.pod
            );
            recorder.pod(pod, EventType::Warning, reason, message, field_path);
            false
        }
    }
}

/// Runs the preStop hooks of `targets` in parallel within `grace` seconds, as the kubelet
/// does for a pod being deleted; the grace left for stopping the containers, at least
/// [`MIN_STOP_GRACE`].
pub async fn pre_stop_all(
    targets: &[(Target, Option<String>)],
    pod: &Pod,
    grace: i64,
    recorder: &Recorder,
) -> i64 {
    let hooked: Vec<_> = targets
        .iter()
        .filter(|(target, _)| has(target, Hook::PreStop))
        .collect();
    if hooked.is_empty() || grace <= 0 {
        return grace;
    }
    let started = Instant::now();
    let limit = Duration::from_secs(grace.unsigned_abs());
    futures::future::join_all(hooked.into_iter().map(|(target, field_path)| {
        run(
            target,
            pod,
            Hook::PreStop,
            Some(limit),
            recorder,
            field_path.clone(),
        )
    }))
    .await;
    let used = i64::try_from(started.elapsed().as_secs()).unwrap_or(i64::MAX);
    (grace - used).max(MIN_STOP_GRACE)
}
