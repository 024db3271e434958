use k8s_openapi::{
    api::core::v1::Pod,
    jiff::{SignedDuration, Timestamp},
};
use serde_json::json;

use super::{
    ContainerKind, ContainerRef, IssuedToken, ResolveError, Scope,
    fake::{FakeObjects, env_of, node, pod, resolve_now},
    resolve,
};

fn objects() -> FakeObjects {
    FakeObjects::new().with_config_map("ns", "settings", &[("A", "1")])
}

#[test]
fn every_kind_of_container_is_resolved() {
    let optional = json!([{"configMapRef": {"name": "gone", "optional": true}}]);
    let env = json!([{"name": "X", "value": "$(A)"}]);
    let mut pod = pod(json!({
        "initContainers": [{"name": "setup", "envFrom": [{"configMapRef": {"name": "settings"}}], "env": env}],
        "containers": [{"name": "app", "envFrom": optional, "args": ["$(KUBERNETES_SERVICE_PORT)"]}],
    }));
    pod.spec.as_mut().unwrap().ephemeral_containers = serde_json::from_value(json!([
        {"name": "debug", "envFrom": optional, "command": ["$(KUBERNETES_SERVICE_HOST)"]},
    ]))
    .unwrap();
    let resolution = resolve_now(&pod, &objects()).unwrap();
    assert_eq!(env_of(&resolution, "setup")["X"], "1");
    assert_eq!(
        env_of(&resolution, "debug")["KUBERNETES_SERVICE_PORT"],
        "443"
    );
    let spec = resolution.pod.pod.spec.as_ref().unwrap();
    assert_eq!(spec.init_containers.as_ref().unwrap()[0].env_from, None);
    assert_eq!(spec.containers[0].args.as_deref().unwrap(), ["443"]);
    let debug = &spec.ephemeral_containers.as_ref().unwrap()[0];
    assert_eq!(debug.command.as_deref().unwrap(), ["10.96.0.1"]);
    let field_paths: Vec<_> = (resolution.events.iter())
        .map(|event| event.field_path.as_deref().unwrap())
        .collect();
    assert_eq!(
        field_paths,
        ["spec.containers{app}", "spec.ephemeralContainers{debug}"]
    );
}

#[test]
fn each_object_is_read_once() {
    let objects = objects();
    let from = json!([
        {"configMapRef": {"name": "settings"}},
        {"configMapRef": {"name": "gone", "optional": true}},
    ]);
    let pod = pod(json!({
        "containers": [
            {"name": "a", "envFrom": from, "env": [{"name": "B", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "A"}}}]},
            {"name": "b", "envFrom": from},
        ],
        "volumes": [
            {"name": "v", "configMap": {"name": "settings"}},
            {"name": "w", "projected": {"sources": [{"configMap": {"name": "gone", "optional": true}}]}},
        ],
    }));
    let resolution = resolve_now(&pod, &objects).unwrap();
    assert_eq!(
        objects.reads(),
        ["configmap ns/settings", "configmap ns/gone"]
    );
    assert_eq!(
        resolution.events.len(),
        3,
        "each optional miss is still reported"
    );
}

#[test]
fn volumes_are_resolved_before_containers() {
    let pod = pod(json!({
        "containers": [{"name": "app", "envFrom": [{"secretRef": {"name": "gone"}}]}],
        "volumes": [{"name": "v", "configMap": {"name": "gone"}}],
    }));
    let error = resolve_now(&pod, &objects()).unwrap_err();
    assert_eq!(error.scope(), Some(&Scope::Volume("v".into())));
}

#[test]
fn environments_need_enable_service_links_and_services() {
    let mut pod = pod(json!({}));
    pod.spec.as_mut().unwrap().enable_service_links = None;
    let error = resolve_now(&pod, &objects()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "nil pod.spec.enableServiceLinks encountered, cannot construct envvars"
    );
    assert_eq!((error.scope(), error.reason()), (None, "Failed"));

    let mut objects = objects();
    objects.services_unavailable = true;
    let error = resolve_now(&self::pod(json!({})), &objects).unwrap_err();
    assert!(matches!(error, ResolveError::ListServices(_)));
    assert_eq!(
        error.to_string(),
        "failed to list services when setting up env vars"
    );
    assert_eq!((error.scope(), error.reason()), (None, "Failed"));
}

#[test]
fn a_pod_without_spec_resolves_to_itself() {
    let pod = Pod::default();
    let resolution = resolve_now(&pod, &objects()).unwrap();
    assert_eq!(resolution.pod.pod, pod);
    assert!(resolution.pod.volumes.is_empty());
}

#[test]
fn resolution_can_run_on_any_thread() {
    fn assert_send<T: Send>(_: &T) {}
    let (pod, node, objects) = (pod(json!({})), node(), objects());
    assert_send(&resolve(&pod, &node, &objects));
}

#[test]
fn containers_are_named_by_their_list() {
    let reference = |kind| ContainerRef {
        kind,
        name: "c".into(),
    };
    assert_eq!(
        reference(ContainerKind::Init).field_path(),
        "spec.initContainers{c}"
    );
    assert_eq!(
        reference(ContainerKind::Regular).field_path(),
        "spec.containers{c}"
    );
    assert_eq!(
        reference(ContainerKind::Ephemeral).field_path(),
        "spec.ephemeralContainers{c}"
    );
}

#[test]
fn tokens_are_renewed_like_the_kubelet_does() {
    let expires: Timestamp = "2030-01-01T12:00:00Z".parse().unwrap();
    let token =
        |expiration_seconds| IssuedToken::new("secret-jwt".into(), expires, expiration_seconds);
    assert_eq!(
        token(3600).refresh_at(),
        expires - SignedDuration::from_secs(720)
    );
    // At most a day after being issued.
    let two_days = token(2 * 86_400);
    assert_eq!(
        two_days.refresh_at(),
        expires - SignedDuration::from_hours(24)
    );
    assert_eq!(token(0).refresh_at(), expires);
    assert_eq!(token(i64::MAX).refresh_at(), Timestamp::MIN);
    for token in [token(3600), token(3600).without_text()] {
        let debug = format!("{token:?}");
        assert!(!debug.contains("secret-jwt"), "{debug}");
    }
}

#[test]
fn a_refused_token_may_be_for_a_pod_not_seen_yet() {
    let refused = |code: u16| ResolveError::Token {
        scope: Scope::Volume("token".into()),
        service_account: "default".into(),
        source: crate::resolve::ObjectError::api(
            "ServiceAccount token",
            "ns",
            "default",
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..Default::default()
            })),
        ),
    };
    assert!(refused(404).may_be_unseen_pod());
    assert!(refused(403).may_be_unseen_pod());
    assert!(!refused(500).may_be_unseen_pod());
    let missing = ResolveError::NotFound {
        scope: Scope::Volume("config".into()),
        kind: super::ObjectKind::ConfigMap,
        name: "c".into(),
    };
    assert!(!missing.may_be_unseen_pod());
}
