use std::collections::BTreeMap;

use k8s_openapi::jiff::SignedDuration;
use serde_json::{Value, json};
use vk_abi::VolumeFile;

use crate::{
    events::EventType,
    resolve::{
        PodEvent, Resolution, ResolveError,
        fake::{FakeObjects, ISSUED, TokenRequest, pod, resolve_now},
    },
};

fn objects() -> FakeObjects {
    FakeObjects::new()
        .with_binary_config_map(
            "ns",
            "config",
            &[("app.yaml", "a: 1"), ("extra", "x")],
            &[("logo.png", b"\x89PNG")],
        )
        .with_config_map("ns", "kube-root-ca.crt", &[("ca.crt", "CA")])
        .with_secret("ns", "tls", &[("tls.crt", b"CERT"), ("tls.key", b"KEY")])
        .with_secret(
            "ns",
            "storage",
            &[
                ("azurestorageaccountname", b"account"),
                ("azurestorageaccountkey", b"c2VjcmV0"),
                ("other", b"x"),
            ],
        )
        .with_secret("ns", "no-key", &[("azurestorageaccountname", b"account")])
        .with_secret(
            "ns",
            "empty-key",
            &[
                ("azurestorageaccountname", b"account"),
                ("azurestorageaccountkey", b""),
            ],
        )
}

/// The files of volume `name` as the provider is given them, as `path → (contents, mode)`.
fn files(resolution: &Resolution, name: &str) -> BTreeMap<String, (String, i32)> {
    let pod = resolution.clone().provider_pod();
    let volume = &pod.volumes[name];
    (volume.files.iter())
        .map(|(path, VolumeFile { data, mode })| {
            (
                path.clone(),
                (String::from_utf8_lossy(&data.0).into_owned(), *mode),
            )
        })
        .collect()
}

fn expected(files: &[(&str, &str, i32)]) -> BTreeMap<String, (String, i32)> {
    (files.iter())
        .map(|(path, data, mode)| (path.to_string(), (data.to_string(), *mode)))
        .collect()
}

fn with_volumes(volumes: Value) -> k8s_openapi::api::core::v1::Pod {
    pod(json!({"volumes": volumes}))
}

fn resolve_volume(volume: Value) -> Result<Resolution, ResolveError> {
    resolve_now(&with_volumes(json!([volume])), &objects())
}

fn volume_warning(reason: &'static str, message: &str) -> PodEvent {
    PodEvent {
        type_: EventType::Warning,
        reason,
        message: message.into(),
        field_path: None,
    }
}

#[test]
fn config_maps_give_every_key_or_the_listed_items() {
    let pod = with_volumes(json!([
        {"name": "all", "configMap": {"name": "config", "defaultMode": 0o640}},
        {"name": "some", "configMap": {"name": "config", "items": [
            {"key": "app.yaml", "path": "conf/app.yaml", "mode": 0o600},
            {"key": "logo.png", "path": "logo"},
        ]}},
        {"name": "scratch", "emptyDir": {}},
    ]));
    let resolution = resolve_now(&pod, &objects()).unwrap();
    assert_eq!(
        files(&resolution, "all"),
        expected(&[
            ("app.yaml", "a: 1", 0o640),
            ("extra", "x", 0o640),
            ("logo.png", "\u{fffd}PNG", 0o640)
        ])
    );
    assert_eq!(
        resolution.pod.volumes["all"].files["logo.png"].data.0,
        b"\x89PNG"
    );
    assert_eq!(
        files(&resolution, "some"),
        expected(&[
            ("conf/app.yaml", "a: 1", 0o600),
            ("logo", "\u{fffd}PNG", 0o644)
        ])
    );
    assert!(
        !resolution.pod.volumes.contains_key("scratch"),
        "other volumes are the provider's"
    );
}

#[test]
fn secrets_give_every_key_or_the_listed_items() {
    let pod = with_volumes(json!([
        {"name": "all", "secret": {"secretName": "tls"}},
        {"name": "key", "secret": {"secretName": "tls", "defaultMode": 0o400, "items": [{"key": "tls.key", "path": "private/key"}]}},
    ]));
    let resolution = resolve_now(&pod, &objects()).unwrap();
    assert_eq!(
        files(&resolution, "all"),
        expected(&[("tls.crt", "CERT", 0o644), ("tls.key", "KEY", 0o644)])
    );
    assert_eq!(
        files(&resolution, "key"),
        expected(&[("private/key", "KEY", 0o400)])
    );
}

#[test]
fn azure_files_get_the_storage_account_of_their_secret() {
    let objects = objects();
    let pod = with_volumes(json!([
        {"name": "share", "azureFile": {"shareName": "data", "secretName": "storage", "readOnly": true}},
        {"name": "logs", "azureFile": {"shareName": "logs", "secretName": "storage"}},
    ]));
    let resolution = resolve_now(&pod, &objects).unwrap();
    let account = expected(&[
        ("azurestorageaccountname", "account", 0o400),
        ("azurestorageaccountkey", "c2VjcmV0", 0o400),
    ]);
    assert_eq!(files(&resolution, "share"), account, "only the two keys");
    assert_eq!(files(&resolution, "logs"), account);
    assert_eq!(objects.reads(), ["secret ns/storage"], "read once");
}

#[test]
fn optional_misses_leave_volumes_empty_or_short() {
    let pod = with_volumes(json!([
        {"name": "no-map", "configMap": {"name": "gone", "optional": true}},
        {"name": "no-secret", "secret": {"secretName": "gone", "optional": true}},
        {"name": "short", "configMap": {"name": "config", "optional": true, "items": [
            {"key": "nope", "path": "nope"},
            {"key": "extra", "path": "extra"},
        ]}},
        {"name": "short-secret", "secret": {"secretName": "tls", "optional": true, "items": [{"key": "nope", "path": "nope"}]}},
    ]));
    let resolution = resolve_now(&pod, &objects()).unwrap();
    assert!(resolution.pod.volumes["no-map"].files.is_empty());
    assert!(resolution.pod.volumes["no-secret"].files.is_empty());
    assert_eq!(
        files(&resolution, "short"),
        expected(&[("extra", "x", 0o644)])
    );
    assert!(resolution.pod.volumes["short-secret"].files.is_empty());
    assert_eq!(
        resolution.events,
        [
            volume_warning(
                "OptionalConfigMapNotFound",
                "volume \"no-map\": configmap \"gone\" not found"
            ),
            volume_warning(
                "OptionalSecretNotFound",
                "volume \"no-secret\": secret \"gone\" not found"
            ),
            volume_warning(
                "OptionalConfigMapKeyNotFound",
                "volume \"short\": key \"nope\" does not exist in configmap \"config\"",
            ),
            volume_warning(
                "OptionalSecretKeyNotFound",
                "volume \"short-secret\": key \"nope\" does not exist in secret \"tls\"",
            ),
        ]
    );
}

#[test]
fn mandatory_misses_fail_the_mount() {
    let cases = [
        (
            json!({"name": "v", "configMap": {"name": "gone"}}),
            "MountVolume.SetUp failed for volume \"v\" : configmap \"gone\" not found",
        ),
        (
            json!({"name": "v", "secret": {"secretName": "gone", "optional": false}}),
            "MountVolume.SetUp failed for volume \"v\" : secret \"gone\" not found",
        ),
        (
            json!({"name": "v", "configMap": {"name": "config", "items": [{"key": "nope", "path": "p"}]}}),
            "MountVolume.SetUp failed for volume \"v\" : configmap references non-existent config key: nope",
        ),
        (
            json!({"name": "v", "secret": {"secretName": "tls", "items": [{"key": "nope", "path": "p"}]}}),
            "MountVolume.SetUp failed for volume \"v\" : references non-existent secret key: nope",
        ),
        (
            json!({"name": "v", "projected": {"sources": [{"configMap": {"name": "gone"}}]}}),
            "MountVolume.SetUp failed for volume \"v\" : configmap \"gone\" not found",
        ),
        (
            json!({"name": "v", "azureFile": {"shareName": "data", "secretName": "gone"}}),
            "MountVolume.SetUp failed for volume \"v\" : secret \"gone\" not found",
        ),
        (
            json!({"name": "v", "azureFile": {"shareName": "data", "secretName": "no-key"}}),
            "MountVolume.SetUp failed for volume \"v\" : invalid ns/no-key, couldn't extract azurestorageaccountname or azurestorageaccountkey",
        ),
        (
            json!({"name": "v", "azureFile": {"shareName": "data", "secretName": "empty-key"}}),
            "MountVolume.SetUp failed for volume \"v\" : invalid ns/empty-key, couldn't extract azurestorageaccountname or azurestorageaccountkey",
        ),
    ];
    for (volume, message) in cases {
        let error = resolve_volume(volume).unwrap_err();
        assert_eq!(error.to_string(), message);
        assert_eq!(error.reason(), "FailedMount");
        assert_eq!(
            error.scope(),
            Some(&crate::resolve::Scope::Volume("v".into()))
        );
    }
}

#[test]
fn read_failures_fail_the_mount() {
    let objects = objects().forbidding("config");
    let pod =
        with_volumes(json!([{"name": "v", "configMap": {"name": "config", "optional": true}}]));
    let error = resolve_now(&pod, &objects).unwrap_err();
    assert_eq!(
        error.to_string(),
        "MountVolume.SetUp failed for volume \"v\" : failed to read configmap \"config\""
    );
    assert_eq!(error.reason(), "FailedMount");
}

#[test]
fn downward_api_files_hold_metadata_and_resources() {
    let item = |path: &str, field: &str| json!({"path": path, "fieldRef": {"fieldPath": field}});
    let pod = pod(json!({
        "containers": [{"name": "app", "resources": {"limits": {"memory": "64Mi"}}}],
        "volumes": [{"name": "info", "downwardAPI": {"defaultMode": 0o444, "items": [
            item("name", "metadata.name"),
            item("./meta//namespace", "metadata.namespace"),
            item("uid", "metadata.uid"),
            item("labels", "metadata.labels"),
            item("annotations", "metadata.annotations"),
            item("owner", "metadata.annotations['owner']"),
            {"path": "mem", "mode": 0o400, "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}},
        ]}}],
    }));
    let resolution = resolve_now(&pod, &objects()).unwrap();
    assert_eq!(
        files(&resolution, "info"),
        expected(&[
            ("name", "web", 0o444),
            ("meta/namespace", "ns", 0o444),
            ("uid", "uid-1", 0o444),
            ("labels", "app=\"web\"\ntier=\"front\"", 0o444),
            (
                "annotations",
                "example.com/note=\"say \\\"hi\\\"\\n\"\nowner=\"team-a\"",
                0o444
            ),
            ("owner", "team-a", 0o444),
            ("mem", "64", 0o400),
            ("cpu", "4000", 0o444),
        ])
    );
}

#[test]
fn downward_api_files_refuse_env_only_fields() {
    for (item, detail) in [
        (
            json!({"path": "node", "fieldRef": {"fieldPath": "spec.nodeName"}}),
            "unsupported fieldPath: spec.nodeName",
        ),
        (
            json!({"path": "cpu", "resourceFieldRef": {"containerName": "ghost", "resource": "limits.cpu"}}),
            "container ghost not found",
        ),
    ] {
        let error =
            resolve_volume(json!({"name": "v", "downwardAPI": {"items": [item]}})).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("MountVolume.SetUp failed for volume \"v\" : cannot resolve"),
            "{error}"
        );
        assert_eq!(
            std::error::Error::source(&error).unwrap().to_string(),
            detail
        );
    }
}

/// The volume ServiceAccount admission adds to every pod.
fn kube_api_access() -> Value {
    json!({"name": "kube-api-access-x2b4z", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}})
}

#[test]
fn the_service_account_volume_has_a_bound_token() {
    let objects = objects();
    let resolution = resolve_now(&with_volumes(json!([kube_api_access()])), &objects).unwrap();
    assert_eq!(
        files(&resolution, "kube-api-access-x2b4z"),
        expected(&[
            ("token", "token-of-sa-for-api", 0o644),
            ("ca.crt", "CA", 0o644),
            ("namespace", "ns", 0o644)
        ])
    );
    assert_eq!(
        objects.token_requests(),
        [TokenRequest {
            pod: "web".into(),
            pod_uid: "uid-1".into(),
            service_account: "sa".into(),
            audience: None,
            expiration_seconds: 3607,
        }]
    );
    // 80% of 3607 seconds.
    let refresh_at = ISSUED + SignedDuration::from_millis(2_885_600);
    assert_eq!(resolution.refresh_at, Some(refresh_at));
}

#[test]
fn a_token_known_by_its_digest_only_stands_in_for_itself() {
    let pod = with_volumes(json!([kube_api_access()]));
    let mut objects = objects();
    let fresh = resolve_now(&pod, &objects).unwrap();
    objects.tokens_without_text = true;
    let known = resolve_now(&pod, &objects).unwrap();
    // The same pod to fingerprint, but only the fresh token can be given to the provider.
    assert_eq!(fresh.pod, known.pod);
    assert!(!fresh.lacks_a_token());
    assert!(known.lacks_a_token());
    let stand_in = &fresh.pod.volumes["kube-api-access-x2b4z"].files["token"]
        .data
        .0;
    assert!(!String::from_utf8_lossy(stand_in).contains("token-of-sa"));
    let token = &files(&fresh, "kube-api-access-x2b4z")["token"];
    assert_eq!(token, &("token-of-sa-for-api".to_string(), 0o644));
}

#[test]
fn the_earliest_token_renewal_wins() {
    let pod = with_volumes(json!([
        {"name": "vault", "projected": {"sources": [
            {"serviceAccountToken": {"path": "vault/token", "audience": "vault", "expirationSeconds": 600}},
            {"serviceAccountToken": {"path": "default-expiry", "audience": ""}},
        ]}},
    ]));
    let objects = objects();
    let resolution = resolve_now(&pod, &objects).unwrap();
    assert_eq!(
        files(&resolution, "vault"),
        expected(&[
            ("vault/token", "token-of-sa-for-vault", 0o644),
            ("default-expiry", "token-of-sa-for-api", 0o644)
        ])
    );
    let requests = objects.token_requests();
    assert_eq!(
        (
            requests[0].audience.as_deref(),
            requests[0].expiration_seconds
        ),
        (Some("vault"), 600)
    );
    assert_eq!(
        (
            requests[1].audience.as_deref(),
            requests[1].expiration_seconds
        ),
        (None, 3600)
    );
    assert_eq!(
        resolution.refresh_at,
        Some(ISSUED + SignedDuration::from_secs(480))
    );
}

#[test]
fn pods_without_tokens_need_no_refresh() {
    let resolution = resolve_volume(json!({"name": "v", "secret": {"secretName": "tls"}})).unwrap();
    assert_eq!(resolution.refresh_at, None);
}

#[test]
fn an_fs_group_adds_group_read_and_restricts_tokens() {
    let mut pod = with_volumes(json!([
        kube_api_access(),
        {"name": "key", "secret": {"secretName": "tls", "items": [{"key": "tls.key", "path": "key", "mode": 0o400}]}},
    ]));
    pod.spec.as_mut().unwrap().security_context =
        serde_json::from_value(json!({"fsGroup": 2000})).unwrap();
    let resolution = resolve_now(&pod, &objects()).unwrap();
    assert_eq!(
        files(&resolution, "kube-api-access-x2b4z"),
        expected(&[
            ("token", "token-of-sa-for-api", 0o640),
            ("ca.crt", "CA", 0o644),
            ("namespace", "ns", 0o644)
        ])
    );
    assert_eq!(
        files(&resolution, "key"),
        expected(&[("key", "KEY", 0o440)])
    );
}

#[test]
fn token_failures_fail_the_mount() {
    let mut objects = objects();
    objects.tokens_unavailable = true;
    let error = resolve_now(&with_volumes(json!([kube_api_access()])), &objects).unwrap_err();
    assert_eq!(
        error.to_string(),
        "MountVolume.SetUp failed for volume \"kube-api-access-x2b4z\" : failed to fetch token for service account \"sa\""
    );
    assert_eq!(error.reason(), "FailedMount");
}

#[test]
fn unsupported_projections_fail_the_mount() {
    let volume = json!({"name": "v", "projected": {"sources": [
        {"clusterTrustBundle": {"signerName": "example.com/signer", "path": "bundle.pem"}},
    ]}});
    let error = resolve_volume(volume).unwrap_err();
    assert_eq!(
        error.to_string(),
        "MountVolume.SetUp failed for volume \"v\" : clusterTrustBundle projections are not supported"
    );
}

#[test]
fn paths_may_not_leave_the_volume() {
    let item = |path: &str| json!({"name": "v", "configMap": {"name": "config", "items": [{"key": "extra", "path": path}]}});
    for (path, problem) in [
        ("../etc/passwd", "must not contain '..'"),
        ("a/../../b", "must not contain '..'"),
        ("/etc/passwd", "must be relative path"),
        ("..data", "must not start with '..'"),
        ("", "must not be empty"),
    ] {
        let error = resolve_volume(item(path)).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("MountVolume.SetUp failed for volume \"v\" : invalid path {path:?}: {problem}")
        );
    }
    let long = "x".repeat(256);
    let error = resolve_volume(item(&long)).unwrap_err();
    assert!(matches!(error, ResolveError::InvalidPath { problem, .. } if problem.contains("255")));
}
