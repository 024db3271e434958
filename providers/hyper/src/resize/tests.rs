//! Reading a container's resources back from its engine settings.

use bollard::models::HostConfig;
use vk_abi::k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::reported;
use crate::spec::Resources;

#[test]
fn engine_settings_read_back_as_the_requests_and_limits_they_came_from() {
    let wanted = vk_abi::k8s_openapi::api::core::v1::ResourceRequirements {
        limits: Some(
            [
                ("cpu".to_string(), Quantity("300m".into())),
                ("memory".to_string(), Quantity("96Mi".into())),
            ]
            .into(),
        ),
        requests: Some([("cpu".to_string(), Quantity("100m".into()))].into()),
        ..Default::default()
    };
    let resources = Resources::of(Some(&wanted)).unwrap();
    let host = HostConfig {
        nano_cpus: resources.nano_cpus,
        cpu_shares: resources.cpu_shares,
        memory: resources.memory,
        ..HostConfig::default()
    };
    let read = reported(Some(&host));
    let limits = read.limits.unwrap();
    assert_eq!(limits["cpu"], Quantity("300m".into()));
    assert_eq!(limits["memory"], Quantity((96 * 1024 * 1024).to_string()));
    assert_eq!(read.requests.unwrap()["cpu"], Quantity("100m".into()));
}

#[test]
fn a_quota_per_period_reads_as_a_cpu_limit() {
    let host = HostConfig {
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        ..HostConfig::default()
    };
    let limits = reported(Some(&host)).limits.unwrap();
    assert_eq!(limits["cpu"], Quantity("500m".into()));
    assert!(reported(None).limits.is_none());
}
