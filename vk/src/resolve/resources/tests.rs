use serde_json::json;

use super::*;

fn selector(resource: &str, divisor: Option<&str>) -> ResourceFieldSelector {
    ResourceFieldSelector {
        resource: resource.into(),
        divisor: divisor.map(|divisor| Quantity(divisor.into())),
        container_name: None,
    }
}

fn allocatable() -> BTreeMap<String, Quantity> {
    serde_json::from_value(json!({"cpu": "3500m", "memory": "2Gi"})).unwrap()
}

#[test]
fn unset_limits_default_to_the_pod_then_the_node() {
    let pod: Pod = serde_json::from_value(json!({"spec": {
        "resources": {"limits": {"memory": "1Gi", "cpu": "0"}},
        "containers": [{"name": "app"}],
    }}))
    .unwrap();
    let value = |resource, divisor| {
        value(&pod, None, &selector(resource, divisor), &allocatable()).unwrap()
    };
    assert_eq!(value("limits.memory", Some("1Mi")), "1024");
    assert_eq!(value("limits.cpu", None), "4", "3.5 CPUs round up");
    assert_eq!(
        value("limits.cpu", Some("0")),
        "4",
        "a zero divisor means 1"
    );
    assert_eq!(
        value("limits.ephemeral-storage", None),
        "0",
        "the node has none to give"
    );
    assert_eq!(value("requests.memory", None), "0");
}

#[test]
fn containers_are_found_by_name_among_init_containers_too() {
    let pod: Pod = serde_json::from_value(json!({"spec": {
        "initContainers": [{"name": "setup", "resources": {"requests": {"memory": "10M"}}}],
        "containers": [{"name": "app"}],
    }}))
    .unwrap();
    let resources = of_container(&pod, "setup").unwrap();
    let memory = value(
        &pod,
        resources,
        &selector("requests.memory", Some("1k")),
        &allocatable(),
    );
    assert_eq!(memory.unwrap(), "10000");
    assert_eq!(of_container(&pod, "app").unwrap(), None);
    assert!(matches!(
        of_container(&pod, "nope"),
        Err(ResourceError::UnknownContainer(_))
    ));
}

#[test]
fn malformed_quantities_are_reported_with_their_field() {
    let pod = Pod::default();
    let resources: ResourceRequirements =
        serde_json::from_value(json!({"requests": {"cpu": "a lot"}})).unwrap();
    let error = value(
        &pod,
        Some(&resources),
        &selector("requests.cpu", None),
        &allocatable(),
    );
    assert_eq!(
        error.unwrap_err().to_string(),
        "invalid quantity for requests.cpu"
    );
}
