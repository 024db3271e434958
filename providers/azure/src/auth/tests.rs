use std::collections::HashMap;

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |key| map.get(key).cloned()
}

const FILE: &str = r#"{
  "clientId": "app",
  "clientSecret": "s3cret",
  "subscriptionId": "sub",
  "tenantId": "tenant",
  "activeDirectoryEndpointUrl": "http://127.0.0.1:1/",
  "resourceManagerEndpointUrl": "http://127.0.0.1:2",
  "activeDirectoryGraphResourceId": "https://graph.windows.net/"
}"#;

fn write(name: &str, bytes: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("vk-azure-auth-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn reads_the_sdk_auth_file_in_utf8_and_utf16() {
    let utf16le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(FILE.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let utf16be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(FILE.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    let bom8: Vec<u8> = [0xEF, 0xBB, 0xBF].into_iter().chain(FILE.bytes()).collect();
    for (name, bytes) in [
        ("plain", FILE.as_bytes().to_vec()),
        ("le", utf16le),
        ("be", utf16be),
        ("bom8", bom8),
    ] {
        let path = write(name, &bytes);
        let credentials = Credentials::load(env_of(&[("AZURE_AUTH_LOCATION", &path)])).unwrap();
        assert_eq!(credentials.client_id, "app", "{name}");
        assert_eq!(credentials.client_secret.expose(), "s3cret");
        assert_eq!(credentials.active_directory_endpoint, "http://127.0.0.1:1");
        assert_eq!(credentials.resource_manager_endpoint, "http://127.0.0.1:2/");
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn variables_override_the_file_and_suffice_alone() {
    let path = write("override", FILE.as_bytes());
    let credentials = Credentials::load(env_of(&[
        ("AZURE_AUTH_LOCATION", &path),
        ("AZURE_CLIENT_SECRET", "other"),
    ]))
    .unwrap();
    assert_eq!(credentials.client_secret.expose(), "other");
    assert_eq!(credentials.tenant_id, "tenant");
    std::fs::remove_file(path).unwrap();

    let credentials = Credentials::load(env_of(&[
        ("AZURE_CLIENT_ID", "a"),
        ("AZURE_CLIENT_SECRET", "b"),
        ("AZURE_TENANT_ID", "c"),
        ("AZURE_SUBSCRIPTION_ID", "d"),
    ]))
    .unwrap();
    assert_eq!(credentials.resource_manager_endpoint, PUBLIC_ARM);
    assert_eq!(credentials.active_directory_endpoint, PUBLIC_AD);
}

#[test]
fn missing_fields_are_named_and_the_secret_is_never_printed() {
    let error = Credentials::load(env_of(&[("AZURE_CLIENT_ID", "a")])).unwrap_err();
    assert_eq!(
        error.to_string().split(':').nth(1).unwrap().trim(),
        "clientSecret, tenantId, subscriptionId not set (in the AZURE_AUTH_LOCATION file or AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID, AZURE_SUBSCRIPTION_ID)"
    );
    let path = write("debug", FILE.as_bytes());
    let credentials = Credentials::load(env_of(&[("AZURE_AUTH_LOCATION", &path)])).unwrap();
    assert!(!format!("{credentials:?}").contains("s3cret"));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn token_responses_of_both_flows() {
    let now = UNIX_EPOCH + Duration::from_secs(1_000);
    let v1: TokenResponse = serde_json::from_str(
        r#"{"token_type":"Bearer","expires_in":"3599","expires_on":"4600","access_token":"t"}"#,
    )
    .unwrap();
    let token = v1.into_token(now).unwrap();
    assert_eq!(token.expires, UNIX_EPOCH + Duration::from_secs(4600));
    let v2: TokenResponse =
        serde_json::from_str(r#"{"token_type":"Bearer","expires_in":3599,"access_token":"t"}"#)
            .unwrap();
    let token = v2.into_token(now).unwrap();
    assert_eq!(token.expires, now + Duration::from_secs(3599));
    assert!(needs_no_renewal(&token, now));
    assert!(!needs_no_renewal(&token, now + Duration::from_secs(3400)));
    assert!(!format!("{token:?}").contains("\"t\""));
}
