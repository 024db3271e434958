use super::*;
use crate::aci::schema::Spec;

fn group() -> Group {
    let body = json!({
        "location": "westeurope",
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Always",
            "containers": [{ "name": "c", "properties": {
                "image": "registry.example/app:1",
                "resources": { "requests": { "cpu": 1.0, "memoryInGB": 1.5 } } } }],
        },
    });
    Group::new("/id/g".into(), "g".into(), body, None, Duration::ZERO)
}

/// `(name, count, type)` of the container's events.
fn events(view: &Value) -> Vec<(String, i64, String)> {
    let events = &view["properties"]["containers"][0]["properties"]["instanceView"]["events"];
    (events.as_array().expect("events").iter())
        .map(|e| {
            let text = |field: &str| e[field].as_str().unwrap_or_default().to_string();
            (text("name"), e["count"].as_i64().unwrap_or(0), text("type"))
        })
        .collect()
}

#[test]
fn containers_list_their_events_as_aci_does() {
    let spec = Spec::bundled();
    let mut group = group();
    let owned = |list: &[(&str, i64, &str)]| -> Vec<(String, i64, String)> {
        (list.iter())
            .map(|(n, c, t)| (n.to_string(), *c, t.to_string()))
            .collect()
    };
    assert_eq!(
        events(&group.view(true)),
        owned(&[("Pulling", 1, "Normal")])
    );
    group.advance();
    assert!(group.exit("c", 2));
    record(
        &mut group.events,
        "Maintenance",
        "the host is updated",
        "Warning",
    );
    let view = group.view(true);
    assert_eq!(
        events(&view),
        owned(&[
            ("Pulling", 1, "Normal"),
            ("Pulled", 1, "Normal"),
            ("Started", 2, "Normal"),
            ("Terminated", 1, "Warning"),
        ])
    );
    assert_eq!(
        view["properties"]["instanceView"]["events"][0]["name"],
        "Maintenance"
    );
    let problems = spec.validate("ContainerGroup", &view);
    assert!(problems.is_empty(), "{problems:#?}");
}
