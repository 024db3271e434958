//! Pod status kept up to date from ARM at a bounded cost: each tick lists the resource group
//! once, then GETs (for the instance view, which lists lack) only the groups that are new,
//! whose `provisioningState` changed, or that are still settling, plus a small rotating share of
//! the settled ones, so that a container exiting in a Running group is seen within a few ticks
//! without one GET per pod per tick. Every status change is pushed to vk, and the new entries
//! of the groups' and containers' event lists become Kubernetes events (see [`events`]).

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use vk_abi::{
    PodNotifier,
    k8s_openapi::{
        api::core::v1::{
            ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodStatus,
        },
        jiff::Timestamp,
    },
};

use crate::{
    arm::{Arm, ArmError},
    events::{self, Seen},
    group::TAG_NODE,
    model::ContainerGroup,
    status,
};

/// Settled groups are refreshed at one in this many per tick (at least one).
const REFRESH_SHARE: usize = 10;

/// What is known of one group.
#[derive(Debug, Clone)]
struct Tracked {
    provisioning: Option<String>,
    pod: Pod,
    /// The tick of the last GET.
    refreshed: u64,
    /// The group's events as of the last GET.
    events: Seen,
}

impl Tracked {
    /// Running with every container running, or finished: changes are rare from here.
    fn settled(&self) -> bool {
        let status = self.pod.status.clone().unwrap_or_default();
        match status.phase.as_deref() {
            Some("Succeeded" | "Failed") => true,
            Some("Running") => status
                .container_statuses
                .iter()
                .flatten()
                .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some())),
            _ => false,
        }
    }
}

/// The node's groups as last seen, shared by the provider's calls and the polling task.
#[derive(Debug)]
pub struct Poller {
    arm: Arm,
    node_name: String,
    host_ip: String,
    groups: Mutex<HashMap<String, Tracked>>,
    /// The pods vk handed over, by group name: their spec is richer than a group's.
    specs: Mutex<HashMap<String, Pod>>,
    notifier: Mutex<Option<PodNotifier>>,
    /// Why the last list failed, if it did.
    health: Mutex<Option<String>>,
    tick: Mutex<u64>,
    /// Events from before are left to the vk that ran then.
    started: Timestamp,
}

impl Poller {
    pub fn new(arm: Arm, node_name: String, host_ip: String) -> Self {
        Poller {
            arm,
            node_name,
            host_ip,
            groups: Mutex::default(),
            specs: Mutex::default(),
            notifier: Mutex::default(),
            health: Mutex::default(),
            tick: Mutex::default(),
            started: Timestamp::now(),
        }
    }

    pub fn set_notifier(&self, notifier: PodNotifier) {
        *self.notifier.lock() = Some(notifier);
    }

    /// Polls every `interval` for as long as the runtime lives.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.poll().await;
        }
    }

    /// The last list's failure, if the last list failed.
    pub fn health(&self) -> Option<String> {
        self.health.lock().clone()
    }

    /// Whether a group belongs to this node.
    pub fn is_mine(&self, group: &ContainerGroup) -> bool {
        group.tags.get(TAG_NODE) == Some(&self.node_name)
    }

    /// Remembers the pod vk asked for, whose spec is then reported back.
    pub fn remember(&self, group: &str, pod: Pod) {
        self.specs.lock().insert(group.to_string(), pod);
    }

    /// The pod of a group as last seen.
    pub fn pod(&self, group: &str) -> Option<Pod> {
        self.groups.lock().get(group).map(|t| t.pod.clone())
    }

    /// One round: list, then GET what needs it, and notify changes.
    pub async fn poll(&self) {
        let listed = match self.arm.list_groups().await {
            Ok(groups) => {
                *self.health.lock() = None;
                groups
            }
            Err(error) => {
                *self.health.lock() = Some(error.to_string());
                return;
            }
        };
        let tick = {
            let mut tick = self.tick.lock();
            *tick += 1;
            *tick
        };
        let listed: HashMap<String, ContainerGroup> = listed
            .into_iter()
            .filter(|g| self.is_mine(g))
            .filter_map(|g| Some((g.name.clone()?, g)))
            .collect();
        let (mut due, mut settled) = (Vec::new(), Vec::new());
        {
            let groups = self.groups.lock();
            for (name, group) in &listed {
                match groups.get(name) {
                    Some(t)
                        if t.provisioning == group.properties.provisioning_state && t.settled() =>
                    {
                        settled.push((t.refreshed, name.clone()));
                    }
                    _ => due.push(name.clone()),
                }
            }
        }
        settled.sort();
        let budget = (listed.len() / REFRESH_SHARE).max(1);
        due.extend(settled.into_iter().take(budget).map(|(_, name)| name));
        for name in due {
            match self.arm.get_group(&name).await {
                Ok(Some(group)) => self.observe(&name, &group, tick),
                Ok(None) => self.gone(&name),
                // The next tick tries again.
                Err(_) => {}
            }
        }
        let vanished: Vec<String> = self
            .groups
            .lock()
            .keys()
            .filter(|name| !listed.contains_key(*name))
            .cloned()
            .collect();
        for name in vanished {
            self.gone(&name);
        }
    }

    /// Records what a GET returned, notifies vk if the pod's status changed, and passes on the
    /// group's new events.
    pub fn observe(&self, name: &str, group: &ContainerGroup, tick: u64) {
        let spec = self.specs.lock().get(name).cloned();
        let pod = match spec {
            Some(mut pod) => {
                let created = pod.metadata.creation_timestamp.clone();
                pod.status = Some(status::pod_status(group, &self.host_ip, created));
                pod
            }
            None => match status::pod_from_group(group, &self.host_ip) {
                Some(pod) => pod,
                None => return,
            },
        };
        // Decided under the lock, so that concurrent GETs of one group pass each entry on once.
        let (news, previous) = {
            let mut groups = self.groups.lock();
            let seen = groups.get(name).map(|t| &t.events);
            let (news, events) =
                events::news(group, seen.unwrap_or(&Seen::default()), self.started);
            let tracked = Tracked {
                provisioning: group.properties.provisioning_state.clone(),
                pod: pod.clone(),
                refreshed: tick,
                events,
            };
            (news, groups.insert(name.to_string(), tracked))
        };
        if previous.is_none_or(|p| p.pod.status != pod.status) {
            self.notify(&pod);
        }
        if let Some(notifier) = self.notifier.lock().as_ref() {
            news.iter().for_each(|event| notifier.event(event));
        }
    }

    /// Records a GET made outside a tick (after a create).
    pub fn observe_now(&self, name: &str, group: &ContainerGroup) {
        let tick = *self.tick.lock();
        self.observe(name, group, tick);
    }

    /// The group is gone: its containers end as the kubelet reports a vanished container.
    pub fn gone(&self, name: &str) {
        let tracked = self.groups.lock().remove(name);
        let spec = self.specs.lock().remove(name);
        let Some(mut pod) = tracked.map(|t| t.pod).or(spec) else {
            return;
        };
        let mut status = pod.status.take().unwrap_or_default();
        terminate(&mut status);
        pod.status = Some(status);
        self.notify(&pod);
    }

    fn notify(&self, pod: &Pod) {
        if let Some(notifier) = self.notifier.lock().as_ref() {
            notifier.notify(pod);
        }
    }

    /// Looks up one group now (for `get_pod` of a group not seen yet).
    pub async fn refresh(&self, name: &str) -> Result<Option<Pod>, ArmError> {
        match self.arm.get_group(name).await? {
            Some(group) if self.is_mine(&group) => {
                self.observe_now(name, &group);
                Ok(self.pod(name))
            }
            _ => Ok(None),
        }
    }
}

/// Every container not already terminated ends with exit code 0 and reason `NotFound`, as
/// upstream's provider reports groups removed from ACI.
fn terminate(status: &mut PodStatus) {
    let end = |c: &mut ContainerStatus| {
        if c.state.as_ref().is_some_and(|s| s.terminated.is_some()) {
            return;
        }
        let started_at = c
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.clone());
        c.ready = false;
        c.started = Some(false);
        c.state = Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 0,
                reason: Some("NotFound".into()),
                message: Some(
                    "the container group was deleted from Azure Container Instances".into(),
                ),
                started_at,
                ..Default::default()
            }),
            ..Default::default()
        });
    };
    status.container_statuses.iter_mut().flatten().for_each(end);
    for condition in status.conditions.iter_mut().flatten() {
        if condition.type_ == "Ready" || condition.type_ == "ContainersReady" {
            condition.status = "False".into();
        }
    }
}

#[cfg(test)]
mod tests;
