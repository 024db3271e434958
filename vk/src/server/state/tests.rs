use k8s_openapi::api::core::v1::{Container, EphemeralContainer, PodSpec};

use super::*;

fn pod_with(containers: &[&str], init: &[&str], ephemeral: &[&str]) -> Pod {
    let container = |name: &&str| Container {
        name: name.to_string(),
        ..Container::default()
    };
    Pod {
        spec: Some(PodSpec {
            containers: containers.iter().map(container).collect(),
            init_containers: Some(init.iter().map(container).collect()),
            ephemeral_containers: Some(
                ephemeral
                    .iter()
                    .map(|n| EphemeralContainer {
                        name: n.to_string(),
                        ..EphemeralContainer::default()
                    })
                    .collect(),
            ),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

#[test]
fn containers_of_every_kind_are_found() {
    let pod = pod_with(&["app"], &["setup"], &["debug"]);
    for name in ["app", "setup", "debug"] {
        assert!(has_container(&pod, name), "{name}");
    }
    assert!(!has_container(&pod, "other"));
    assert!(!has_container(&Pod::default(), "app"));
}
