use vk_abi::k8s_openapi::api::core::v1::ContainerResizePolicy;

use super::*;

#[test]
fn a_resize_that_the_policy_restarts_for_is_named() {
    let policy = |resource: &str, restart: &str| ContainerResizePolicy {
        resource_name: resource.into(),
        restart_policy: restart.into(),
    };
    let container = Container {
        name: "c".into(),
        resize_policy: Some(vec![
            policy("cpu", "NotRequired"),
            policy("memory", "RestartContainer"),
        ]),
        ..Container::default()
    };
    let resources = |cpus: i64, memory: i64| Resources {
        nano_cpus: Some(cpus),
        memory: Some(memory),
        ..Resources::default()
    };
    let before = resources(200_000_000, 64 << 20);
    let more_cpu = resources(300_000_000, 64 << 20);
    assert_eq!(restart_asked(&container, &before, &more_cpu), None);
    let more_memory = resources(200_000_000, 96 << 20);
    assert_eq!(
        restart_asked(&container, &before, &more_memory).as_deref(),
        Some("memory")
    );
}
