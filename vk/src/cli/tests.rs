use clap::error::ErrorKind;

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("vk").chain(args.iter().copied()))
}

#[test]
fn defaults_match_upstream() {
    let cli = parse(&[]).unwrap();
    assert_eq!(cli.run.nodename, "virtual-kubelet");
    assert_eq!(cli.run.listen_port, 10250);
    assert_eq!(cli.run.provider, "mock");
    assert_eq!(cli.run.taint_key, "virtual-kubelet.io/provider");
    assert_eq!(cli.run.full_resync_period, Duration::from_secs(60));
    assert!(cli.command.is_none());
}

#[test]
fn providers_subcommand_takes_the_plugin_dir() {
    let cli = parse(&["providers", "--plugin-dir", "/tmp/x"]).unwrap();
    assert!(matches!(cli.command, Some(Command::Providers)));
    assert_eq!(cli.plugin_dir, PathBuf::from("/tmp/x"));
}

#[test]
fn invalid_values_are_refused() {
    for args in [
        &["--listen-port", "0"][..],
        &["--listen-port", "70000"],
        &["--nodename", "Bad_Name"],
        &["--full-resync-period", "soon"],
        &["--kube-api-qps=-1"],
        &["--kube-api-qps", "0"],
        &["--taint-effect", "Sometimes"],
        &["--os", "plan9"],
        &["--node-ip", "not-an-ip"],
        &["--pod-sync-workers", "0"],
        &["--certificate-expiration-seconds", "599"],
        &["--certificate-renewal-fraction", "1"],
        &["--certificate-renewal-fraction", "0"],
    ] {
        let error = parse(args).unwrap_err();
        assert!(
            matches!(
                error.kind(),
                ErrorKind::ValueValidation | ErrorKind::InvalidValue
            ),
            "{args:?}: {error}"
        );
    }
}

#[test]
fn durations_and_names() {
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert!(parse_node_name("vk-1.example").is_ok());
    assert!(parse_node_name("-vk").is_err());
    assert!(parse_node_name(&"a".repeat(64)).is_err());
}

#[test]
fn log_format_is_text_unless_json_is_asked() {
    assert_eq!(parse(&[]).unwrap().run.log_format, LogFormat::Text);
    let cli = parse(&["--log-format", "json"]).unwrap();
    assert_eq!(cli.run.log_format, LogFormat::Json);
    assert!(parse(&["--log-format", "yaml"]).is_err());
}

#[test]
fn generate_is_hidden_and_takes_a_shell() {
    let cli = parse(&["generate", "completions", "fish"]).unwrap();
    assert!(matches!(
        cli.command,
        Some(Command::Generate {
            what: Generated::Completions {
                shell: clap_complete::Shell::Fish
            }
        })
    ));
    assert!(matches!(
        parse(&["generate", "man"]).unwrap().command,
        Some(Command::Generate {
            what: Generated::Man
        })
    ));
    assert!(parse(&["generate", "completions", "cmd.exe"]).is_err());
    // A tool for packagers, not for users: `vk --help` and the man page leave it out.
    let help = <Cli as clap::CommandFactory>::command()
        .render_help()
        .to_string();
    assert!(!help.contains("generate"), "{help}");
    assert!(help.contains("providers"), "{help}");
}

#[test]
fn certificate_flags_are_the_kubelets_and_the_test_ones_are_hidden() {
    let cli = parse(&[]).unwrap();
    assert_eq!(cli.run.cert_dir, PathBuf::from("/var/lib/vk/pki"));
    assert!(!cli.run.rotate_certificates && !cli.run.rotate_server_certificates);
    let cli = parse(&[
        "--bootstrap-kubeconfig",
        "/etc/vk/bootstrap",
        "--rotate-certificates",
        "--rotate-server-certificates",
        "--certificate-expiration-seconds=600",
        "--certificate-renewal-fraction=0.4",
    ])
    .unwrap();
    assert_eq!(
        cli.run.bootstrap_kubeconfig,
        Some(PathBuf::from("/etc/vk/bootstrap"))
    );
    assert!(cli.run.rotate_certificates && cli.run.rotate_server_certificates);
    assert_eq!(cli.run.certificate_expiration_seconds, Some(600));
    assert_eq!(cli.run.certificate_renewal_fraction, Some(0.4));
    let help = <Cli as clap::CommandFactory>::command()
        .render_long_help()
        .to_string();
    assert!(help.contains("--rotate-server-certificates"), "{help}");
    assert!(!help.contains("--certificate-renewal-fraction"), "{help}");
}

#[test]
fn leader_election_is_off_by_default_with_client_gos_timings() {
    let cli = parse(&[]).unwrap();
    assert!(!cli.run.leader_elect);
    assert_eq!(cli.run.leader_elect_resource_namespace, "kube-system");
    assert_eq!(cli.run.leader_elect_resource_name, None);
    assert_eq!(cli.run.leader_elect_lease_duration, Duration::from_secs(15));
    assert_eq!(cli.run.leader_elect_renew_deadline, Duration::from_secs(10));
    assert_eq!(cli.run.leader_elect_retry_period, Duration::from_secs(2));
    let cli = parse(&[
        "--leader-elect",
        "--leader-elect-resource-namespace=vk",
        "--leader-elect-resource-name=vk-a",
        "--leader-elect-lease-duration=30s",
    ])
    .unwrap();
    assert!(cli.run.leader_elect);
    assert_eq!(cli.run.leader_elect_resource_namespace, "vk");
    assert_eq!(cli.run.leader_elect_resource_name.as_deref(), Some("vk-a"));
    assert_eq!(cli.run.leader_elect_lease_duration, Duration::from_secs(30));
    // The lease's place means nothing without the election.
    assert!(parse(&["--leader-elect-resource-namespace=vk"]).is_err());
}
