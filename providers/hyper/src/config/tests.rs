use std::collections::HashMap;

use super::*;

struct Vars(HashMap<&'static str, &'static str>);

impl Environment for Vars {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|value| value.to_string())
    }
}

fn no_env() -> Vars {
    Vars(HashMap::new())
}

#[test]
fn empty_config_takes_every_default() {
    let config = Config::parse("", &no_env()).unwrap();
    assert_eq!(
        config.endpoint,
        Endpoint::Unix(PathBuf::from("/var/run/docker.sock"))
    );
    assert_eq!(config.capacity["pods"], Quantity("20".into()));
    assert_eq!(config.infra.image, DEFAULT_INFRA_IMAGE);
    assert!(config.credentials.is_none());
}

#[test]
fn docker_host_is_the_fallback_endpoint() {
    let env = Vars(HashMap::from([("DOCKER_HOST", "tcp://engine:2375")]));
    let config = Config::parse("", &env).unwrap();
    assert_eq!(
        config.endpoint,
        Endpoint::Tcp {
            address: "engine:2375".into(),
            tls: None
        }
    );
    let config = Config::parse("endpoint = \"unix:///run/podman.sock\"", &env).unwrap();
    assert_eq!(config.endpoint, Endpoint::Unix("/run/podman.sock".into()));
}

#[test]
fn toml_and_json_say_the_same() {
    let toml = r#"
        endpoint = "unix:///run/podman.sock"
        network = "pods"
        [capacity]
        cpu = "8"
        memory = "16Gi"
        [infra]
        image = "localhost/busybox"
        command = ["sleep", "2147483647"]
    "#;
    let json = r#"{"endpoint": "unix:///run/podman.sock", "network": "pods",
        "capacity": {"cpu": "8", "memory": "16Gi"},
        "infra": {"image": "localhost/busybox", "command": ["sleep", "2147483647"]}}"#;
    let from_toml = Config::parse(toml, &no_env()).unwrap();
    assert_eq!(from_toml, Config::parse(json, &no_env()).unwrap());
    assert_eq!(from_toml.capacity["cpu"], Quantity("8".into()));
    assert_eq!(from_toml.capacity["pods"], Quantity("20".into()));
    assert_eq!(from_toml.network.as_deref(), Some("pods"));
}

#[test]
fn hyper_credentials_come_from_the_file_or_the_original_env_names() {
    let env = Vars(HashMap::from([
        ("HYPERSH_ACCESS_KEY", "AK"),
        ("HYPERSH_SECRET_KEY", "SK"),
        ("HYPERSH_REGION", "eu-central-1"),
    ]));
    let credentials = Config::parse("", &env).unwrap().credentials.unwrap();
    assert_eq!(
        (credentials.access_key.as_str(), credentials.region.as_str()),
        ("AK", "eu-central-1")
    );
    let from_file = Config::parse("[hyper]\naccess_key = \"a\"\nsecret_key = \"s\"", &no_env())
        .unwrap()
        .credentials
        .unwrap();
    assert_eq!(from_file.region, DEFAULT_HYPER_REGION);
    assert!(!format!("{from_file:?}").contains("\"s\""), "{from_file:?}");
}

#[test]
fn bad_configs_say_what_is_wrong() {
    let cases = [
        (
            "endpoint = \"http://x\"",
            "is neither unix:///path nor tcp://host:port",
        ),
        (
            "endpoint = \"tcp://host\"",
            "is neither unix:///path nor tcp://host:port",
        ),
        (
            "[capacity]\ncpu = \"lots\"",
            "capacity.cpu \"lots\" is not a positive quantity",
        ),
        ("[capacity]\nmemory = \"-1Gi\"", "capacity.memory"),
        (
            "[hyper]\naccess_key = \"a\"",
            "need both an access key and a secret key",
        ),
        (
            "endpoint = \"tcp://h:1\"\n[tls]\nca = \"/x\"",
            "tls needs all of ca, cert and key",
        ),
        (
            "endpoint = \"tcp://h:1\"\n[tls]\nca = \"/nonexistent/ca\"\ncert = \"/x\"\nkey = \"/y\"",
            "cannot read tls.ca /nonexistent/ca",
        ),
        ("[tls]\nca = \"/x\"", "tls needs a tcp:// endpoint"),
        (
            "endpoint = 3",
            "cannot parse the provider configuration as TOML",
        ),
        ("{\"endpint\": \"x\"}", "unknown field `endpint`"),
    ];
    for (text, expected) in cases {
        let error = Config::parse(text, &no_env()).unwrap_err().to_string();
        assert!(error.contains(expected), "{text:?}: {error}");
    }
}

#[test]
fn credentials_that_cannot_be_signed_are_refused_without_showing_them() {
    let cases = [
        ("HYPERSH_ACCESS_KEY", "AK\u{7}", "hyper.access_key"),
        ("HYPERSH_ACCESS_KEY", "AK\n", "hyper.access_key"),
        ("HYPERSH_ACCESS_KEY", "", "hyper.access_key"),
        ("HYPERSH_SECRET_KEY", "s3cr\u{1b}t", "hyper.secret_key"),
        ("HYPERSH_SECRET_KEY", " s3cret", "hyper.secret_key"),
        ("HYPERSH_REGION", "eu-\u{e9}", "hyper.region"),
    ];
    for (name, value, setting) in cases {
        let mut vars = HashMap::from([
            ("HYPERSH_ACCESS_KEY", "AK"),
            ("HYPERSH_SECRET_KEY", "s3cret"),
        ]);
        vars.insert(name, value);
        let error = Config::parse("", &Vars(vars)).unwrap_err().to_string();
        assert!(error.starts_with(setting), "{name}={value:?}: {error}");
        assert!(!error.contains('\n'), "{error:?}");
        assert!(!error.contains("s3cr"), "{error:?} shows the secret");
    }
}
