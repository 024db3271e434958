use super::*;

#[test]
fn pod_event_type_crosses_as_the_kubernetes_string() {
    let event = PodEvent {
        namespace: "default".into(),
        name: "web".into(),
        type_: EventType::Warning,
        reason: "BackOff".into(),
        message: "back-off restarting".into(),
        ..PodEvent::default()
    };
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], "Warning");
    assert_eq!(json["type"], EventType::Warning.as_str());
    let normal: PodEvent = serde_json::from_value(serde_json::json!({
        "namespace": "default", "name": "web", "type": "Normal", "reason": "Pulled", "message": ""
    }))
    .unwrap();
    assert_eq!(normal.type_, EventType::Normal);
    let unknown = serde_json::from_value::<PodEvent>(serde_json::json!({
        "namespace": "default", "name": "web", "type": "Weird", "reason": "R", "message": ""
    }));
    assert!(unknown.is_err(), "{unknown:?}");
}
