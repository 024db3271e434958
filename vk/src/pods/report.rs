//! What becomes of what the provider says: its status reports written to the API, its events
//! recorded on their pods, and the statuses vk writes itself when the provider refuses a pod,
//! its configuration cannot be resolved, or its deadline passes.

use k8s_openapi::{
    api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
        PodStatus,
    },
    jiff::Timestamp,
};
use vk_abi::{PodEvent, ProviderError, Refusal};

use tokio::sync::mpsc::UnboundedReceiver;

use super::{PodController, tracked::Tracked};
use crate::{events::EventType, resolve, status::PodKey};

pub(super) const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
pub(super) const DEADLINE_MESSAGE: &str =
    "Pod was active on the node longer than the specified deadline";

impl PodController {
    /// Records the provider's event on its pod, if the API still has that pod.
    pub(super) fn provider_event(&self, event: PodEvent) {
        let key = PodKey {
            namespace: event.namespace,
            name: event.name,
        };
        let Some(pod) = self.inner.store.get(&key) else {
            return;
        };
        if event.uid.is_some() && event.uid != pod.metadata.uid {
            return;
        }
        self.inner.recorder.pod(
            &pod,
            event.type_,
            &event.reason,
            &event.message,
            event.field_path,
        );
    }

    /// A pod status from the provider: written to the API, and wakes the pod's sync when it
    /// matters (a pod IP to resolve, a deletion to finish).
    pub(super) fn provider_reported(&self, pod: Pod) {
        let (Some(key), Some(mut status)) = (PodKey::of(&pod), pod.status) else {
            return;
        };
        let uid = pod.metadata.uid.as_ref();
        let counted = self.inner.tracked.update(&key, |tracked| {
            // A report of a predecessor of the same name is no report of this pod.
            (uid.is_none_or(|uid| *uid == tracked.uid)).then(|| {
                tracked.reports += 1;
                tracked.clone()
            })
        });
        let Some(tracked) = counted.flatten() else {
            return;
        };
        if tracked.deleting {
            // The pod is about to leave the API: finish its deletion rather than write a status
            // that would land on a deleted pod.
            self.inner.queue.add(key);
            return;
        }
        let wake = tracked.waits_for_pod_ip && status.pod_ip.is_some();
        self.decorate(&key, &tracked, &mut status);
        self.inner.status.submit(key.clone(), tracked.uid, status);
        if wake {
            self.inner.queue.add(key);
        }
    }

    /// Lays over a status from the provider what vk adds: the resize's allocation and
    /// conditions, and the probes' results.
    pub(super) fn decorate(&self, key: &PodKey, tracked: &Tracked, status: &mut PodStatus) {
        tracked
            .allocation
            .decorate(status, tracked.last_seen.generation());
        let pod = || tracked.last_seen.without_status();
        self.inner.prober.observe(key, tracked.follows, pod, status);
    }

    /// Writes again the status of each pod whose probe results changed, until `changes` ends.
    /// A pod being deleted is written too: its readiness goes on until its containers stop.
    pub(super) async fn rewrite(self, mut changes: UnboundedReceiver<PodKey>) {
        while let Some(key) = changes.recv().await {
            let Some((uid, _, mut status)) = self.inner.prober.latest(&key) else {
                continue;
            };
            let Some(tracked) = self.inner.tracked.get(&key).filter(|t| t.uid == uid) else {
                continue;
            };
            tracked
                .allocation
                .decorate(&mut status, tracked.last_seen.generation());
            self.inner.status.submit(key, uid, status);
        }
    }

    /// The provider cannot run the pod as written: rejected as the kubelet rejects one at
    /// admission, a Warning event, then, written once, phase Failed with the refusal's reason
    /// and `Pod was rejected: <message>`.
    pub(super) fn report_refusal(&self, key: &PodKey, pod: &Pod, refusal: Refusal) {
        self.inner.recorder.pod(
            pod,
            EventType::Warning,
            &refusal.reason,
            &refusal.message,
            None,
        );
        let mut status = pod.status.clone().unwrap_or_default();
        status.phase = Some("Failed".into());
        status.reason = Some(refusal.reason);
        status.message = Some(format!("Pod was rejected: {}", refusal.message));
        self.inner.status.submit(
            key.clone(),
            pod.metadata.uid.clone().unwrap_or_default(),
            status,
        );
    }

    /// The provider refused the pod: `ProviderFailed` on the pod, and a Warning event.
    pub(super) fn report_provider_error(
        &self,
        key: &PodKey,
        pod: &Pod,
        reason: &str,
        error: &ProviderError,
    ) {
        self.inner
            .recorder
            .pod(pod, EventType::Warning, reason, &error.message, None);
        let never_restarts =
            pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("Never");
        let mut status = pod.status.clone().unwrap_or_default();
        status.phase = Some(if never_restarts { "Failed" } else { "Pending" }.into());
        status.reason = Some("ProviderFailed".into());
        status.message = Some(error.message.clone());
        self.inner.status.submit(
            key.clone(),
            pod.metadata.uid.clone().unwrap_or_default(),
            status,
        );
    }

    /// The pod's configuration cannot be resolved (a missing mandatory ConfigMap or Secret):
    /// containers wait with `CreateContainerConfigError`, or, when a volume cannot be mounted,
    /// with `ContainerCreating` (the error is in the `FailedMount` event), as the kubelet shows it.
    pub(super) fn report_config_error(
        &self,
        key: &PodKey,
        pod: &Pod,
        error: &resolve::ResolveError,
    ) {
        let message = error.to_string();
        self.inner
            .recorder
            .pod(pod, EventType::Warning, error.reason(), &message, None);
        let (reason, detail) = match error.scope() {
            Some(resolve::Scope::Volume(_)) => ("ContainerCreating", None),
            _ => ("CreateContainerConfigError", Some(message.clone())),
        };
        let waiting = |name: &String, image: &Option<String>| ContainerStatus {
            name: name.clone(),
            image: image.clone().unwrap_or_default(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: detail.clone(),
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        };
        let containers = pod.spec.iter().flat_map(|s| &s.containers);
        let mut status = pod.status.clone().unwrap_or_default();
        status.phase = Some("Pending".into());
        status.container_statuses = Some(containers.map(|c| waiting(&c.name, &c.image)).collect());
        self.inner.status.submit(
            key.clone(),
            pod.metadata.uid.clone().unwrap_or_default(),
            status,
        );
    }
}

/// `status` of a pod stopped for its deadline: Failed, its containers terminated (by the
/// kubelet's SIGKILL code) unless they had already, and not ready.
pub(super) fn deadline_exceeded(mut status: PodStatus) -> PodStatus {
    status.phase = Some("Failed".into());
    status.reason = Some(DEADLINE_EXCEEDED.into());
    status.message = Some(DEADLINE_MESSAGE.into());
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now());
    for container in status.container_statuses.iter_mut().flatten() {
        container.ready = false;
        container.started = Some(false);
        let terminated = container
            .state
            .as_ref()
            .is_some_and(|s| s.terminated.is_some());
        if !terminated {
            let started_at = container
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.clone());
            container.state = Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 137,
                    reason: Some("Error".into()),
                    started_at,
                    finished_at: Some(now.clone()),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            });
        }
    }
    for condition in status.conditions.iter_mut().flatten() {
        if matches!(condition.type_.as_str(), "Ready" | "ContainersReady") {
            condition.status = "False".into();
            condition.reason = Some("PodFailed".into());
        }
    }
    status
}

#[cfg(test)]
mod tests;
