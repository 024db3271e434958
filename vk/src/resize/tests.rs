//! Resize detection, the provider's answers, and the status written about them.

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerState, ContainerStateRunning, ContainerStatus, Pod, PodSpec, PodStatus,
        ResourceRequirements,
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
};
use vk_abi::ProviderError;

use super::{Allocation, IN_PROGRESS, PENDING};

fn limits(cpu: &str) -> ResourceRequirements {
    ResourceRequirements {
        limits: Some([("cpu".to_string(), Quantity(cpu.into()))].into()),
        requests: Some([("cpu".to_string(), Quantity(cpu.into()))].into()),
        ..ResourceRequirements::default()
    }
}

fn pod(cpu: &str, generation: i64) -> Pod {
    Pod {
        metadata: ObjectMeta {
            generation: Some(generation),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                resources: Some(limits(cpu)),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// A running container `c` whose actual resources are `cpu`.
fn reported(cpu: &str) -> PodStatus {
    PodStatus {
        container_statuses: Some(vec![ContainerStatus {
            name: "c".into(),
            resources: Some(limits(cpu)),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]),
        ..PodStatus::default()
    }
}

fn condition<'s>(
    status: &'s PodStatus,
    type_: &str,
) -> Option<&'s k8s_openapi::api::core::v1::PodCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

#[test]
fn only_a_change_of_resources_is_a_resize() {
    let allocation = Allocation::of(&pod("200m", 1));
    assert!(allocation.is_resize(|| pod("200m", 1), &pod("300m", 2)));
    // The same amount written otherwise is no change.
    assert!(!allocation.is_resize(|| pod("200m", 1), &pod("0.2", 2)));
    let mut other = pod("300m", 2);
    other.spec.as_mut().unwrap().containers[0].image = Some("other".into());
    assert!(
        !allocation.is_resize(|| pod("200m", 1), &other),
        "an update"
    );
}

#[test]
fn a_resize_shows_in_progress_until_the_provider_reports_it() {
    let (allocation, again) = Allocation::of(&pod("200m", 1)).after(&pod("300m", 2), None);
    assert!(!again);
    let mut status = reported("200m");
    allocation.decorate(&mut status, Some(2));
    assert_eq!(status.observed_generation, Some(2));
    let in_progress = condition(&status, IN_PROGRESS).expect("in progress");
    assert_eq!(in_progress.observed_generation, Some(2));
    assert_eq!(in_progress.reason, None);
    let allocated = status.container_statuses.as_ref().unwrap()[0]
        .allocated_resources
        .clone();
    assert_eq!(allocated, limits("300m").requests);

    let mut status = reported("300m");
    allocation.decorate(&mut status, Some(2));
    assert!(condition(&status, IN_PROGRESS).is_none(), "done");
}

#[test]
fn a_provider_that_cannot_resize_leaves_it_pending_infeasible() {
    let before = Allocation::of(&pod("200m", 1));
    let unsupported = ProviderError::unsupported("in-place pod resize is not supported");
    let (allocation, again) = before.after(&pod("300m", 2), Some(&unsupported));
    assert!(!again, "never tried again");
    assert!(
        allocation.settled(&pod("300m", 2)).is_some(),
        "not asked again"
    );
    let mut status = reported("200m");
    allocation.decorate(&mut status, Some(2));
    let pending = condition(&status, PENDING).expect("pending");
    assert_eq!(pending.reason.as_deref(), Some("Infeasible"));
    assert!(
        pending
            .message
            .as_deref()
            .unwrap()
            .contains("cannot resize")
    );
    assert!(condition(&status, IN_PROGRESS).is_none());
    let allocated = status.container_statuses.as_ref().unwrap()[0]
        .allocated_resources
        .clone();
    assert_eq!(
        allocated,
        limits("200m").requests,
        "the old allocation stays"
    );

    // Back at the allocated resources, the pending resize is dropped.
    let settled = allocation.settled(&pod("200m", 3)).expect("settled");
    let mut status = reported("200m");
    settled.decorate(&mut status, Some(3));
    assert!(condition(&status, PENDING).is_none());
}

#[test]
fn an_unavailable_provider_defers_and_an_error_is_retried() {
    let before = Allocation::of(&pod("200m", 1));
    let busy = ProviderError::unavailable("no room");
    let (deferred, again) = before.clone().after(&pod("300m", 2), Some(&busy));
    assert!(again);
    let mut status = reported("200m");
    deferred.decorate(&mut status, Some(2));
    assert_eq!(
        condition(&status, PENDING).unwrap().reason.as_deref(),
        Some("Deferred")
    );

    let failed = ProviderError::other("engine said no");
    let (errored, again) = before.after(&pod("300m", 2), Some(&failed));
    assert!(again && errored.is_resize(|| pod("300m", 2), &pod("300m", 2)));
    let mut status = reported("200m");
    errored.decorate(&mut status, Some(2));
    let in_progress = condition(&status, IN_PROGRESS).unwrap();
    assert_eq!(in_progress.reason.as_deref(), Some("Error"));
    assert_eq!(in_progress.message.as_deref(), Some("engine said no"));
}
