//! Termination messages as the kubelet writes them: with `terminationMessagePolicy:
//! FallbackToLogsOnError`, a container that failed without a message gets the end of its log
//! (80 lines, at most 2048 bytes), and every message is cut to the pod's share of 12 KiB.
//! The message file itself (`terminationMessagePath`) is read by the provider, which alone can
//! reach into the container.

use std::{collections::HashMap, sync::Arc};

use k8s_openapi::api::core::v1::{Container, ContainerStateTerminated, Pod, PodStatus};
use parking_lot::Mutex;
use vk_abi::LogOptions;

use super::Prober;
use crate::status::PodKey;

/// What all the messages of one pod may take together.
const POD_BUDGET: usize = 12 * 1024;
/// The log lines and bytes a message falls back to.
const LOG_LINES: i64 = 80;
const LOG_BYTES: usize = 2048;

/// Whether the container's message falls back to its log.
pub(super) fn falls_back_to_logs(container: &Container) -> bool {
    container.termination_message_policy.as_deref() == Some("FallbackToLogsOnError")
}

/// Cuts every terminated state's message to its share of the pod's budget (12 KiB divided by
/// the number of containers), as the kubelet's status manager does.
pub fn limit_messages(pod: &Pod, status: &mut PodStatus) {
    let count = pod.spec.as_ref().map_or(1, |spec| {
        spec.containers.len()
            + spec.init_containers.as_ref().map_or(0, Vec::len)
            + spec.ephemeral_containers.as_ref().map_or(0, Vec::len)
    });
    let share = POD_BUDGET / count.max(1);
    for terminated in terminated_states(status) {
        if let Some(message) = &mut terminated.message
            && message.len() > share
        {
            let mut end = share;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
    }
}

/// Puts the messages taken from the logs (by container ID) into the terminated states.
pub(super) fn fill_in(messages: &HashMap<String, String>, status: &mut PodStatus) {
    if messages.is_empty() {
        return;
    }
    for terminated in terminated_states(status) {
        let from_log = terminated
            .container_id
            .as_ref()
            .and_then(|id| messages.get(id));
        if let Some(text) = from_log
            && terminated.message.as_deref().unwrap_or_default().is_empty()
        {
            terminated.message = Some(text.clone());
        }
    }
}

/// Whether a container's termination in `status` has a message.
pub(super) fn has_messages(status: &PodStatus) -> bool {
    let statuses = status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten());
    statuses
        .flat_map(|s| [s.state.as_ref(), s.last_state.as_ref()])
        .flatten()
        .any(|state| {
            state
                .terminated
                .as_ref()
                .is_some_and(|terminated| terminated.message.is_some())
        })
}

fn terminated_states(
    status: &mut PodStatus,
) -> impl Iterator<Item = &mut ContainerStateTerminated> {
    let statuses = status
        .container_statuses
        .iter_mut()
        .flatten()
        .chain(status.init_container_statuses.iter_mut().flatten());
    statuses.flat_map(|s| {
        let current = s.state.as_mut().and_then(|state| state.terminated.as_mut());
        let last = s
            .last_state
            .as_mut()
            .and_then(|state| state.terminated.as_mut());
        current.into_iter().chain(last)
    })
}

/// A container that failed without a message, and whose policy takes the log instead.
fn needs_log(container: &Container, terminated: &ContainerStateTerminated) -> bool {
    falls_back_to_logs(container)
        && terminated.exit_code != 0
        && terminated.reason.as_deref() != Some("ContainerCannotRun")
        && terminated.message.as_deref().unwrap_or_default().is_empty()
        && terminated.container_id.is_some()
}

impl Prober {
    /// Reads the log of every container in `status` that failed without a message and falls
    /// back to its log; the pod's status is written again with it.
    pub(super) fn complete_messages(&self, key: &PodKey, pod: &Arc<Pod>, status: &PodStatus) {
        let spec = pod.spec.iter();
        let containers: Vec<&Container> = spec
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .collect();
        for container_status in super::all_statuses(status) {
            let Some(container) = containers.iter().find(|c| c.name == container_status.name)
            else {
                continue;
            };
            let current = container_status
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| (t, false));
            let last = container_status
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| (t, true));
            for (terminated, previous) in current.into_iter().chain(last) {
                if needs_log(container, terminated) {
                    let id = terminated.container_id.clone().unwrap_or_default();
                    self.read_log_message(key, &container.name, id, previous);
                }
            }
        }
    }

    /// Reads the end of one container's log into the pod's messages, once per container ID.
    fn read_log_message(&self, key: &PodKey, container: &str, id: String, previous: bool) {
        {
            let mut pods = self.shared.pods.lock();
            let Some(followed) = pods.get_mut(key) else {
                return;
            };
            if followed.messages.contains_key(&id) {
                return;
            }
            // Taken now, so that one read runs per container ID.
            followed.messages.insert(id.clone(), String::new());
        }
        let options = LogOptions {
            namespace: key.namespace.clone(),
            pod: key.name.clone(),
            container: container.to_string(),
            tail_lines: Some(LOG_LINES),
            previous,
            ..LogOptions::default()
        };
        let this = self.clone();
        let key = key.clone();
        self.shared.runtime.spawn(async move {
            let log = Arc::new(Mutex::new(Vec::new()));
            let sink = {
                let log = log.clone();
                vk_abi::host::byte_sink(move |data| {
                    log.lock().extend_from_slice(data);
                    Ok(())
                })
            };
            let read = this
                .shared
                .provider
                .call("container_logs", move |p| p.container_logs(&options, sink))
                .await;
            if let Err(error) = read {
                log::debug!(pod:% = key; "no log for the termination message of {key}: {error}");
                return;
            }
            let text = tail_bytes(&log.lock(), LOG_BYTES);
            if text.is_empty() {
                return;
            }
            if let Some(followed) = this.shared.pods.lock().get_mut(&key) {
                followed.messages.insert(id, text);
            }
            let _ = this.shared.changed.send(key);
        });
    }
}

/// The last `limit` bytes of `log`, as text.
pub(super) fn tail_bytes(log: &[u8], limit: usize) -> String {
    let start = log.len().saturating_sub(limit);
    String::from_utf8_lossy(&log[start..]).into_owned()
}
