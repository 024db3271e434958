use k8s_openapi::{
    api::core::v1::{Container, Pod, PodSpec, PodStatus},
    apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta, Time},
    jiff::Timestamp,
};
use kube::runtime::watcher;
use serde_json::json;

use super::*;

fn pod(name: &str, uid: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            resource_version: Some("7".into()),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            managed_fields: Some(vec![ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                ..ManagedFieldsEntry::default()
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("busybox".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            ..PodStatus::default()
        }),
    }
}

fn key(name: &str) -> PodKey {
    PodKey {
        namespace: "default".into(),
        name: name.into(),
    }
}

#[test]
fn a_stored_pod_decodes_to_the_pod_without_its_managed_fields() {
    let stored = StoredPod::new(pod("web", "u1"));
    let mut expected = pod("web", "u1");
    expected.metadata.managed_fields = None;
    assert_eq!(stored.pod(), expected);
    assert_eq!(stored.key(), Some(key("web")));
    assert_eq!(stored.uid(), Some("u1"));
    assert_eq!(stored.phase(), Some("Running"));
    assert_eq!(stored.status(), expected.status);
}

#[test]
fn a_pod_from_the_watch_is_stored_as_its_json_without_managed_fields() {
    // As the API server sends a list's items: without apiVersion and kind.
    let received = r#"{"metadata":{"namespace":"default","name":"web","uid":"u1","resourceVersion":"7",
        "labels":{"app":"web"},"managedFields":[{"manager":"kube-scheduler","fieldsV1":{"f:spec":{}}}]},
        "spec":{"containers":[{"name":"app","image":"busybox"}],"futureField":{"x":1}},
        "status":{"phase":"Pending","podIP":"10.0.0.1"}}"#;
    let stored: StoredPod = serde_json::from_str(received).expect("a pod");
    assert_eq!(stored.key(), Some(key("web")));
    assert_eq!(stored.uid(), Some("u1"));
    assert_eq!(stored.metadata.resource_version.as_deref(), Some("7"));
    assert_eq!(stored.phase(), Some("Pending"));
    let kept: serde_json::Value = stored.pod.unpack_part();
    assert_eq!(kept["metadata"].get("managedFields"), None, "{kept}");
    assert_eq!(
        kept["spec"]["futureField"],
        json!({"x": 1}),
        "what vk does not know is kept"
    );
    // And given to the provider as it came, whose admission names what it does not know.
    let given: serde_json::Value = serde_json::from_slice(stored.json().0).expect("JSON");
    assert_eq!(given, kept);
    let (_, refusal) = vk_abi::admission::understand(stored.json().0).expect("a pod");
    let refusal = refusal.expect("a refusal");
    assert!(
        refusal.message.starts_with("spec.futureField: "),
        "{}",
        refusal.message
    );
    let decoded = stored.pod();
    assert_eq!(decoded.metadata.managed_fields, None);
    assert_eq!(
        decoded.metadata.labels,
        Some([("app".into(), "web".into())].into())
    );
    assert_eq!(decoded.spec.expect("a spec").containers[0].name, "app");
    assert_eq!(
        stored.status().and_then(|s| s.pod_ip).as_deref(),
        Some("10.0.0.1")
    );
}

#[test]
fn a_pod_without_status_or_metadata_is_stored_too() {
    let stored: StoredPod = serde_json::from_str(r#"{"spec":{"containers":[]}}"#).expect("a pod");
    assert_eq!(stored.key(), None);
    assert_eq!(stored.phase(), None);
    assert_eq!(stored.status(), None);
    let stored: StoredPod =
        serde_json::from_str(r#"{"metadata":{"name":"a","namespace":"b"},"status":null}"#)
            .expect("a pod");
    assert_eq!(stored.phase(), None);
    assert!(serde_json::from_str::<StoredPod>("[1]").is_err());
}

#[test]
fn without_its_status_a_stored_pod_keeps_its_metadata_and_spec() {
    let stored = StoredPod::new(pod("web", "u1"));
    let mut expected = pod("web", "u1");
    expected.metadata.managed_fields = None;
    expected.status = None;
    assert_eq!(stored.without_status(), expected);
}

#[test]
fn the_store_finds_pods_by_key() {
    let (store, mut writer) = PodStore::new();
    writer.apply_watcher_event(&watcher::Event::Apply(StoredPod::new(pod("web", "u1"))));
    writer.apply_watcher_event(&watcher::Event::Apply(StoredPod::new(pod("db", "u2"))));
    assert_eq!(
        store.get(&key("web")).and_then(|p| p.metadata.uid.clone()),
        Some("u1".into())
    );
    assert_eq!(
        store.stored(&key("db")).and_then(|p| p.key()),
        Some(key("db"))
    );
    assert!(store.get(&key("cache")).is_none());
    assert_eq!(store.state().len(), 2);
    writer.apply_watcher_event(&watcher::Event::Delete(StoredPod::new(pod("web", "u1"))));
    assert!(store.stored(&key("web")).is_none());
}

#[test]
fn a_new_status_or_resource_version_alone_is_told_apart_from_any_other_change() {
    let earlier = StoredPod::new(pod("web", "u1"));
    let mut written = pod("web", "u1");
    written.metadata.resource_version = Some("8".into());
    written.metadata.managed_fields = None;
    written.status = Some(PodStatus {
        phase: Some("Succeeded".into()),
        pod_ip: Some("10.0.0.1".into()),
        ..PodStatus::default()
    });
    assert!(StoredPod::new(written).differs_only_in_status(&earlier));

    let mut labelled = pod("web", "u1");
    labelled.metadata.labels = Some([("app".to_string(), "db".to_string())].into());
    let mut deleted = pod("web", "u1");
    deleted.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    let mut respecced = pod("web", "u1");
    respecced.spec.as_mut().unwrap().containers[0].image = Some("nginx".into());
    for (what, changed) in [
        ("a label", labelled),
        ("a deletion timestamp", deleted),
        ("the spec", respecced),
        ("the UID", pod("web", "u2")),
    ] {
        assert!(
            !StoredPod::new(changed).differs_only_in_status(&earlier),
            "{what} changed"
        );
    }
}
