//! The Helm chart `deploy/helm/vk`, checked the way a user meets it: `helm lint --strict` is
//! clean, each value set of `scripts/chart.sh` renders objects that the real apiserver accepts
//! (`kubectl apply --dry-run=server`), values that would give a node two writers or a pod that
//! cannot start are refused at render time, and `vk/deploy/rbac.yaml` is what the chart renders.
//!
//! Helm is built from its Go module the first time (`scripts/cluster/build.sh helm`, cached in
//! `~/.cache/vk/control-plane`).

use std::process::{Command, Output, Stdio};

use vk_tests::{
    cluster::{Cluster, describe},
    helm::{self, helm},
    paths,
};

fn chart_sh(args: &[&str]) -> Command {
    let mut command = Command::new(paths::workspace().join("scripts/chart.sh"));
    command.args(args).stdin(Stdio::null());
    command
}

/// `helm template` of the chart with `sets` (`--set` arguments).
fn template(sets: &[&str]) -> Output {
    let mut command = Command::new(helm());
    command.args(["template", "vk"]).arg(helm::chart());
    for set in sets {
        command.args(["--set", set]);
    }
    command.output().expect("cannot run helm")
}

#[test]
fn helm_lint_is_clean() {
    helm();
    let output = chart_sh(&["lint"]).output().expect("cannot run chart.sh");
    let report = describe("chart.sh lint", &output);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("0 chart(s) failed"), "{report}");
    assert!(!report.contains("[WARNING]"), "{report}");
    eprintln!("{report}");
}

#[test]
fn the_shipped_rbac_is_rendered_from_the_chart() {
    helm();
    let output = chart_sh(&["rbac-check"])
        .output()
        .expect("cannot run chart.sh");
    assert!(
        output.status.success(),
        "{}",
        describe("chart.sh rbac-check", &output)
    );
}

#[test]
fn every_value_set_is_accepted_by_the_apiserver() {
    helm();
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("chart");
    let output = chart_sh(&["dry-run"])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("NAMESPACE", namespace.name())
        .output()
        .expect("cannot run chart.sh");
    let report = describe("chart.sh dry-run", &output);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("deployment.apps/vk created (server dry run)"));
    assert!(report.contains("poddisruptionbudget.policy/vk created (server dry run)"));
    eprintln!("{report}");
}

#[test]
fn the_rbac_is_least_privilege_and_the_pdb_comes_with_replicas() {
    let single = template(&["nodeName=n1"]);
    assert!(
        single.status.success(),
        "{}",
        describe("helm template", &single)
    );
    let single = String::from_utf8_lossy(&single.stdout).into_owned();
    assert!(!single.contains("cluster-admin"), "{single}");
    assert!(
        !single.contains("'*'") && !single.contains("\"*\""),
        "{single}"
    );
    assert!(!single.contains("kind: PodDisruptionBudget"), "{single}");
    assert!(!single.contains("--leader-elect"), "{single}");
    assert!(single.contains("type: Recreate"), "{single}");
    assert!(single.contains("resourceNames: [\"n1\"]"), "{single}");

    let pair = template(&["nodeName=n1", "replicas=2"]);
    assert!(
        pair.status.success(),
        "{}",
        describe("helm template", &pair)
    );
    let pair = String::from_utf8_lossy(&pair.stdout).into_owned();
    assert!(pair.contains("kind: PodDisruptionBudget"), "{pair}");
    assert!(pair.contains("- --leader-elect\n"), "{pair}");
    assert!(pair.contains("resourceNames: [\"vk-n1\"]"), "{pair}");
    assert!(!pair.contains("type: Recreate"), "{pair}");

    // On the host's network a declared port would be a host port, keeping the standby off its
    // leader's host.
    let host = template(&["nodeName=n1", "replicas=2", "hostNetwork=true"]);
    let host = String::from_utf8_lossy(&host.stdout).into_owned();
    assert!(host.contains("hostNetwork: true"), "{host}");
    assert!(!host.contains("containerPort"), "{host}");
}

#[test]
fn values_that_would_break_the_node_are_refused() {
    for (sets, why) in [
        (
            &["replicas=2", "leaderElection.enabled=false"][..],
            "replicas > 1 needs leader election",
        ),
        (
            &["replicas=2", "tls.mode=bootstrap", "tls.bootstrapSecret=b"],
            "NodeRestriction",
        ),
        (&["tls.mode=secret"], "tls.mode secret needs tls.secretName"),
        (&["tls.mode=acme"], "/tls/mode"),
        (&["nodeName=Not_A_Name"], "/nodeName"),
        (&["replicas=0"], "/replicas"),
    ] {
        let output = template(sets);
        let report = describe("helm template", &output);
        assert!(!output.status.success(), "{sets:?} rendered: {report}");
        assert!(report.contains(why), "{sets:?}: {report}");
    }
}
