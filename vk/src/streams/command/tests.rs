use super::*;

#[test]
fn stream_options_follow_the_kubelet() {
    let options = StreamOptions::parse("command=echo&command=hi&input=1&output=1&error=1").unwrap();
    assert_eq!(options.command, ["echo", "hi"]);
    assert!(options.stdin && options.stdout && options.stderr && !options.tty);
    let tty = StreamOptions::parse("output=1&error=1&tty=1").unwrap();
    assert!(tty.tty && !tty.stderr, "a tty has no separate stderr");
    assert!(
        StreamOptions::parse("output=true").is_err(),
        "only 1 means yes"
    );
}

#[test]
fn exit_codes_reach_the_client() {
    let v4 = "v4.channel.k8s.io";
    assert_eq!(
        status_message(v4, &Ok(0)).unwrap(),
        r#"{"metadata":{},"status":"Success"}"#
    );
    let failed: serde_json::Value =
        serde_json::from_str(&status_message(v4, &Ok(3)).unwrap()).unwrap();
    assert_eq!(failed["reason"], "NonZeroExitCode");
    assert_eq!(failed["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(failed["details"]["causes"][0]["message"], "3");
    assert_eq!(status_message("v3.channel.k8s.io", &Ok(0)), None);
    let error = vk_abi::ProviderError::not_found("no such container");
    let internal: serde_json::Value =
        serde_json::from_str(&status_message(v4, &Err(error)).unwrap()).unwrap();
    assert_eq!(internal["reason"], "InternalError");
}
