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

#[test]
fn a_packed_value_is_smaller_than_its_json() {
    let json = serde_json::to_vec(&status()).expect("a status serialises");
    let packed = Packed::new(&status());
    assert!(
        packed.bytes.len() < json.len() * 2 / 3,
        "{} bytes packed, {} of JSON",
        packed.bytes.len(),
        json.len()
    );
}
