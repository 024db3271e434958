//! In-place pod resize (KEP-1287): what vk allocated to a pod's containers, and the status the
//! kubelet writes about it: `containerStatuses[].allocatedResources`, the `PodResizePending`
//! and `PodResizeInProgress` conditions, and `status.observedGeneration`.
//!
//! A resize reaches vk as a spec whose container resources changed (the API server only lets
//! them change through the `resize` subresource). vk admits it at once (the API server already
//! checked it against the node's allocatable), hands it to the provider's `resize_pod`, and
//! reads the outcome from the resources the provider reports in `containerStatuses[].resources`.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Container, Pod, PodCondition, PodSpec, PodStatus, ResourceRequirements},
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::Time},
    jiff::Timestamp,
};
use vk_abi::{ErrorKind, ProviderError, quantity::Amount};

pub const PENDING: &str = "PodResizePending";
pub const IN_PROGRESS: &str = "PodResizeInProgress";

/// A resize vk did not start, and why (the kubelet's `PodResizePending` reasons).
#[derive(Debug, Clone, PartialEq)]
struct Held {
    /// `Infeasible`: it never can be; `Deferred`: it may be later.
    reason: &'static str,
    message: String,
    generation: Option<i64>,
}

/// What vk allocated to a pod's containers, and where the last resize stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allocation {
    /// Requests and limits by container name, as the provider was last asked to apply them;
    /// a list, not a map: a pod has a few containers, and a map's first node takes 1.2 KiB,
    /// 12 MiB at 10,000 pods.
    resources: Vec<(String, ResourceRequirements)>,
    /// The generation whose resize the provider was asked to apply.
    started: Option<i64>,
    /// The provider's error while applying it.
    error: Option<String>,
    held: Option<Held>,
}

fn containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
}

fn resources_of(pod: &Pod) -> Vec<(String, ResourceRequirements)> {
    pod.spec
        .iter()
        .flat_map(containers)
        .map(|c| (c.name.clone(), c.resources.clone().unwrap_or_default()))
        .collect()
}

/// `spec` without what a resize may change, to tell a resize from another change.
fn without_resources(spec: Option<&PodSpec>) -> Option<PodSpec> {
    let mut spec = spec?.clone();
    for container in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        container.resources = None;
        container.resize_policy = None;
    }
    spec.resources = None;
    Some(spec)
}

/// Quantities compared by value ("0.5" is "500m"), as the kubelet does.
fn same_amounts(
    a: Option<&BTreeMap<String, Quantity>>,
    b: Option<&BTreeMap<String, Quantity>>,
) -> bool {
    let milli = |map: Option<&BTreeMap<String, Quantity>>| -> BTreeMap<String, Option<i64>> {
        map.into_iter()
            .flatten()
            .map(|(name, q)| {
                (
                    name.clone(),
                    Amount::parse(&q.0).ok().map(Amount::ceil_milli),
                )
            })
            .collect()
    };
    milli(a) == milli(b)
}

fn same_resources(a: &ResourceRequirements, b: &ResourceRequirements) -> bool {
    same_amounts(a.requests.as_ref(), b.requests.as_ref())
        && same_amounts(a.limits.as_ref(), b.limits.as_ref())
}

impl Allocation {
    /// The resources of `pod` as created (or adopted): nothing to resize.
    pub fn of(pod: &Pod) -> Self {
        Allocation {
            resources: resources_of(pod),
            ..Allocation::default()
        }
    }

    /// Whether `pod` differs from `previous`, the pod last synced, only in what a resize may
    /// change, and a resize is to be started, retried, or dropped from the status. `previous`
    /// is only asked for when the allocation is unsettled: it is decoded from the store.
    pub fn is_resize(&self, previous: impl FnOnce() -> Pod, pod: &Pod) -> bool {
        let unsettled = self.error.is_some() || self.held.is_some() || !self.allocates(pod);
        unsettled
            && without_resources(previous().spec.as_ref()) == without_resources(pod.spec.as_ref())
    }

    /// Whether `pod` asks for the allocated resources.
    fn allocates(&self, pod: &Pod) -> bool {
        let wanted = resources_of(pod);
        wanted.len() == self.resources.len()
            && wanted.iter().all(|(name, resources)| {
                self.allocated(name)
                    .is_some_and(|allocated| same_resources(allocated, resources))
            })
    }

    /// What is allocated to the container `name`.
    fn allocated(&self, name: &str) -> Option<&ResourceRequirements> {
        self.resources
            .iter()
            .find(|(allocated, _)| allocated == name)
            .map(|(_, resources)| resources)
    }

    /// The allocation after the resize to `pod` when the provider need not be asked: the spec
    /// is back at the allocated resources (a held resize is dropped, as the kubelet does), or
    /// the resize was found infeasible already.
    pub fn settled(&self, pod: &Pod) -> Option<Self> {
        if self.allocates(pod) && self.error.is_none() {
            return Some(Allocation {
                held: None,
                ..self.clone()
            });
        }
        let infeasible = self.held.as_ref().is_some_and(|held| {
            held.reason == INFEASIBLE && held.generation == pod.metadata.generation
        });
        infeasible.then(|| self.clone())
    }

    /// `pod`'s resources are allocated and handed to the provider.
    pub fn started(pod: &Pod) -> Self {
        Allocation {
            started: pod.metadata.generation,
            ..Allocation::of(pod)
        }
    }

    /// The allocation after the provider answered the resize of `pod` (`error` if it failed),
    /// and whether the resize should be tried again.
    pub fn after(self, pod: &Pod, error: Option<&ProviderError>) -> (Self, bool) {
        let generation = pod.metadata.generation;
        let held = |reason, message: String| Allocation {
            held: Some(Held {
                reason,
                message,
                generation,
            }),
            ..self.clone()
        };
        match error {
            None => (Allocation::started(pod), false),
            Some(error) => match error.kind {
                ErrorKind::Unsupported | ErrorKind::InvalidInput => (
                    held(
                        INFEASIBLE,
                        format!("the provider cannot resize this pod: {}", error.message),
                    ),
                    false,
                ),
                ErrorKind::Unavailable => (held(DEFERRED, error.message.clone()), true),
                _ => (
                    Allocation {
                        error: Some(error.message.clone()),
                        ..Allocation::started(pod)
                    },
                    true,
                ),
            },
        }
    }

    /// Writes into `status` (the provider's) what the kubelet adds about resources:
    /// allocated requests per container, the resize conditions, and the generation of `pod`,
    /// the pod vk last acted on.
    pub fn decorate(&self, status: &mut PodStatus, generation: Option<i64>) {
        status.observed_generation = generation;
        let mut applying = false;
        let statuses = status
            .container_statuses
            .iter_mut()
            .chain(status.init_container_statuses.iter_mut())
            .flatten();
        for container in statuses {
            let Some(allocated) = self.allocated(&container.name) else {
                continue;
            };
            container.allocated_resources = allocated.requests.clone();
            let running = container
                .state
                .as_ref()
                .is_some_and(|s| s.running.is_some());
            if let Some(actual) = container.resources.as_ref().filter(|_| running) {
                applying |= !same_resources(actual, allocated);
            }
        }
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        conditions.retain(|c| c.type_ != PENDING && c.type_ != IN_PROGRESS);
        if let Some(held) = &self.held {
            conditions.push(condition(
                PENDING,
                held.generation,
                Some(held.reason),
                Some(held.message.clone()),
            ));
        }
        if self.started.is_some() && (applying || self.error.is_some()) {
            let reason = self.error.as_ref().map(|_| "Error");
            conditions.push(condition(
                IN_PROGRESS,
                self.started,
                reason,
                self.error.clone(),
            ));
        }
        for condition in conditions.iter_mut() {
            if condition.type_ != PENDING && condition.type_ != IN_PROGRESS {
                condition.observed_generation = generation;
            }
        }
    }
}

const INFEASIBLE: &str = "Infeasible";
const DEFERRED: &str = "Deferred";

fn condition(
    type_: &str,
    generation: Option<i64>,
    reason: Option<&str>,
    message: Option<String>,
) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: "True".to_string(),
        observed_generation: generation,
        reason: reason.map(str::to_string),
        message,
        // The status writer keeps the first time while the condition stays.
        last_transition_time: Some(Time(Timestamp::now())),
        ..PodCondition::default()
    }
}

#[cfg(test)]
mod tests;
