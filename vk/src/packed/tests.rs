use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

use super::*;

fn status() -> PodStatus {
    PodStatus {
        phase: Some("Running".into()),
        conditions: Some(
            ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
                .map(|type_| PodCondition {
                    type_: type_.into(),
                    status: "True".into(),
                    ..PodCondition::default()
                })
                .into(),
        ),
        ..PodStatus::default()
    }
}

#[test]
fn a_packed_value_unpacks_to_itself() {
    let packed = Packed::new(&status());
    assert_eq!(packed.unpack(), status());
    assert_eq!(packed.clone().unpack(), status());
}
