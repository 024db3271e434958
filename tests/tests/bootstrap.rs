//! vk's identity from the cluster, as a kubelet gets it: it joins with only a bootstrap token
//! (`cluster.sh bootstrap-kubeconfig`), keeps the issued client certificate in `--cert-dir` and
//! reuses it (another node does not); a refused token is retried; with
//! `--rotate-server-certificates` it serves a self-signed certificate until someone approves its
//! serving CSR (`kubectl certificate approve`), then `openssl s_client` verifies it against the
//! cluster CA; short-lived certificates are renewed while an exec stream stays open.
//!
//! Needs `cargo build --workspace` (for `vk` and `libvk_mock.so`).

use std::{
    fs,
    io::{BufRead as _, BufReader, Write as _},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::Duration,
};

use serde_json::{Value, json};
use vk_tests::{
    cluster::{self, Cluster},
    fixtures,
    vk_process::VkProcess,
    wait::{wait_for, wait_for_ok},
};

/// Joining includes the CSR round trip.
const READY: Duration = Duration::from_secs(60);
const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
const SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

fn openssl(args: &[&str], input: Option<&[u8]>) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    if let Some(input) = input {
        stdin.write_all(input).expect("openssl reads its input");
    }
    drop(stdin);
    let output = child.wait_with_output().expect("openssl ends");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// What `openssl s_client -CAfile CA` says of vk's kubelet API: its verification line and the
/// serial number of the certificate it was shown.
fn s_client(cluster: &Cluster, port: u16) -> (String, String) {
    let ca = cluster.ca_file();
    let connect = format!("127.0.0.1:{port}");
    let (_, text) = openssl(
        &[
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            &ca.to_string_lossy(),
        ],
        Some(b""),
    );
    let verify = text
        .lines()
        .find(|l| l.trim_start().starts_with("Verify return code"))
        .unwrap_or("no verification line")
        .trim()
        .to_string();
    let (_, serial) = openssl(
        &["x509", "-noout", "-serial", "-subject"],
        Some(text.as_bytes()),
    );
    (verify, serial.trim().to_string())
}

/// The CSRs of `signer` that `username` made: (name, pending?).
fn csrs(cluster: &Cluster, signer: &str, username: &str) -> Vec<(String, bool)> {
    let list = cluster.kubectl_json(["get", "csr"]);
    list["items"]
        .as_array()
        .expect("a CSR list")
        .iter()
        .filter(|csr| csr["spec"]["signerName"] == signer && csr["spec"]["username"] == username)
        .map(|csr| {
            let pending = csr["status"]["conditions"]
                .as_array()
                .is_none_or(|c| c.is_empty());
            (
                csr["metadata"]["name"].as_str().unwrap().to_string(),
                pending,
            )
        })
        .collect()
}

fn pending_serving_csr(cluster: &Cluster, node: &str, except: &[String]) -> Result<String, String> {
    let all = csrs(cluster, SERVING_SIGNER, &format!("system:node:{node}"));
    all.iter()
        .find(|(name, pending)| *pending && !except.contains(name))
        .map(|(name, _)| name.clone())
        .ok_or_else(|| format!("serving CSRs: {all:?}"))
}

/// The `kubelet-client-<time>.pem` (or server) files of the certificate directory.
fn pair_files(cert_dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(cert_dir)
        .expect("the certificate directory exists")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("{prefix}-20")) && name.ends_with(".pem")
        })
        .collect();
    files.sort();
    files
}

fn cert_dir() -> PathBuf {
    cluster::run_dir().join(cluster::unique_name("pki"))
}

#[test]
fn a_node_joins_with_a_bootstrap_token_and_reuses_its_certificate() {
    let cluster = Cluster::shared();
    let cert_dir = cert_dir();
    let mut vk = cluster
        .vk()
        .node_prefix("boot")
        .bootstrap(&cert_dir)
        .start_ready(READY);
    let node = vk.node_name().to_string();

    // Issued by the cluster CA, for this node.
    let current = cert_dir.join("kubelet-client-current.pem");
    let current_arg = current.to_string_lossy().into_owned();
    let ca = cluster.ca_file().to_string_lossy().into_owned();
    let (ok, text) = openssl(&["verify", "-CAfile", &ca, &current_arg], None);
    assert!(ok && text.contains(": OK"), "{text}");
    let (_, subject) = openssl(&["x509", "-in", &current_arg, "-noout", "-subject"], None);
    assert_eq!(
        subject.trim(),
        format!("subject=O = system:nodes, CN = system:node:{node}")
    );

    // One private file, and the link to it.
    let files = pair_files(&cert_dir, "kubelet-client");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        fs::symlink_metadata(&current)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_link(&current).unwrap(), files[0]);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&files[0]), 0o600);
    assert_eq!(mode(&cert_dir), 0o700);

    // The kubeconfig vk wrote is the node's identity for kubectl too.
    let whoami = Command::new(cluster.kubectl_path())
        .arg("--kubeconfig")
        .arg(vk.kubeconfig())
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()
        .expect("kubectl runs");
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        format!("system:node:{node}"),
        "{}",
        String::from_utf8_lossy(&whoami.stderr)
    );

    // A restart reuses the certificate: no new CSR, no new file.
    vk.restart();
    vk.wait_ready(READY);
    assert_eq!(pair_files(&cert_dir, "kubelet-client"), files);
    let log = vk.log();
    assert_eq!(
        log.matches("requested a client certificate").count(),
        1,
        "{}",
        vk.log_tail(40)
    );
    assert!(
        log.contains("using the client certificate"),
        "{}",
        vk.log_tail(40)
    );

    // Another node does not take this node's certificate: it bootstraps its own.
    vk.stop();
    let other = cluster
        .vk()
        .node_prefix("boot")
        .bootstrap(&cert_dir)
        .start_ready(READY);
    assert!(
        other
            .log()
            .contains(&format!("it is for system:node:{node}")),
        "{}",
        other.log_tail(40)
    );
    assert_eq!(pair_files(&cert_dir, "kubelet-client").len(), 2);
}

#[test]
fn the_serving_certificate_is_self_signed_until_an_approved_csr_is_issued() {
    let cluster = Cluster::shared();
    let cert_dir = cert_dir();
    let mut vk = cluster
        .vk()
        .node_prefix("serving")
        .bootstrap(&cert_dir)
        .arg("--rotate-server-certificates")
        .start_ready(READY);
    let node = vk.node_name().to_string();
    let port = vk.port();

    // The node registered and is Ready while its serving CSR waits; openssl cannot verify
    // the self-signed certificate.
    let (verify, _) = s_client(cluster, port);
    assert!(verify.starts_with("Verify return code: 18"), "{verify}");

    // A denied CSR: vk says so and asks again.
    let first = wait_for_ok("vk's serving CSR", Duration::from_secs(30), || {
        pending_serving_csr(cluster, &node, &[])
    });
    cluster.kubectl_ok(["certificate", "deny", &first]);
    wait_for("vk to log the denial", Duration::from_secs(30), || {
        vk.log().contains(&format!("CSR {first} was denied"))
    });
    let second = wait_for_ok("vk's second serving CSR", Duration::from_secs(30), || {
        pending_serving_csr(cluster, &node, std::slice::from_ref(&first))
    });
    vk.assert_running();

    cluster.kubectl_ok(["certificate", "approve", &second]);
    let serial = wait_for_ok(
        "openssl to verify vk's certificate",
        Duration::from_secs(30),
        || match s_client(cluster, port) {
            (verify, serial) if verify == "Verify return code: 0 (ok)" => Ok(serial),
            (verify, _) => Err(verify),
        },
    );
    assert!(
        serial.contains(&format!("CN = system:node:{node}")),
        "{serial}"
    );
    assert_eq!(
        vk.log().matches("with a self-signed certificate").count(),
        1,
        "{}",
        vk.log_tail(40)
    );
    let files = pair_files(&cert_dir, "kubelet-server");
    assert_eq!(files.len(), 1, "{files:?}");
    vk.assert_running();
}

#[test]
fn a_refused_bootstrap_token_is_retried_without_crashing_or_logging_it() {
    let cluster = Cluster::shared();
    let good = fs::read_to_string(cluster.bootstrap_kubeconfig(&cluster::unique_name("refused")))
        .expect("the bootstrap kubeconfig");
    let token = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("a token in the bootstrap kubeconfig");
    let (id, _) = token.split_once('.').expect("ID.SECRET");
    let wrong = format!("{id}.0123456789abcdef");
    let bad = cluster::run_dir().join(cluster::unique_name("refused.bootstrap-kubeconfig"));
    fs::write(&bad, good.replace(token, &wrong)).unwrap();
    let unwritten = cluster::run_dir().join(cluster::unique_name("refused.kubeconfig"));
    let mut vk = cluster
        .vk()
        .node_prefix("refused")
        .kubeconfig(unwritten.clone())
        .arg("--bootstrap-kubeconfig")
        .arg(&bad)
        .arg("--cert-dir")
        .arg(cert_dir())
        .start();
    wait_for(
        "vk to retry the refused token",
        Duration::from_secs(30),
        || {
            vk.assert_running();
            vk.log()
                .matches("TLS bootstrap: the API server refused the credentials (401)")
                .count()
                >= 2
        },
    );
    let log = vk.log();
    assert!(!log.contains("0123456789abcdef"), "{}", vk.log_tail(20));
    assert!(!log.contains(token), "{}", vk.log_tail(20));
    let node = cluster.kubectl(["get", "node", vk.node_name()]);
    assert!(
        !node.status.success(),
        "the node registered without a certificate"
    );
    assert!(!unwritten.exists());
}

/// Approves the node's pending serving CSRs until `stop`, as an operator (or an approving
/// controller) would.
fn approve_serving_csrs(cluster: &Cluster, node: &str, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(name) = pending_serving_csr(cluster, node, &[]) {
            let _ = cluster.kubectl(["certificate", "approve", &name]);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Reads lines of `reader` into a channel, so that the test can wait with a time limit.
fn lines(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

#[test]
fn short_lived_certificates_are_renewed_without_dropping_streams() {
    let cluster = Cluster::shared();
    let namespace = cluster.namespace("rotate");
    let cert_dir = cert_dir();
    // 600 s certificates (the API's minimum), backdated 5 min by the signer: renewed at 40 % of
    // 900 s, one minute after they are issued.
    let mut vk = cluster
        .vk()
        .node_prefix("rotate")
        .bootstrap(&cert_dir)
        .args([
            "--rotate-certificates",
            "--rotate-server-certificates",
            "--certificate-expiration-seconds=600",
            "--certificate-renewal-fraction=0.4",
        ])
        .start_ready(READY);
    let node = vk.node_name().to_string();
    let user = format!("system:node:{node}");
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| approve_serving_csrs(cluster, &node, &stop));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rotate_with_an_open_stream(cluster, &namespace, &mut vk, &user, &cert_dir)
        }));
        stop.store(true, Ordering::Relaxed);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}

fn rotate_with_an_open_stream(
    cluster: &Cluster,
    namespace: &cluster::Namespace,
    vk: &mut VkProcess,
    user: &str,
    cert_dir: &Path,
) {
    let node = vk.node_name().to_string();
    let serving = wait_for_ok(
        "the first cluster-signed serving certificate",
        Duration::from_secs(30),
        || match s_client(cluster, vk.port()) {
            (verify, serial) if verify == "Verify return code: 0 (ok)" => Ok(serial),
            (verify, _) => Err(verify),
        },
    );
    let ns = namespace.name();
    cluster.apply(&fixtures::pod(ns, "before", &node, json!({})));
    cluster.kubectl_ok([
        "wait",
        "-n",
        ns,
        "--for=condition=Ready",
        "pod/before",
        "--timeout=30s",
    ]);

    // An exec stream opened with the first certificates.
    let mut exec = cluster
        .kubectl_command()
        .args(["exec", "-i", "-n", ns, "before", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl exec runs");
    let mut stdin = exec.stdin.take().expect("piped stdin");
    let output = lines(exec.stdout.take().expect("piped stdout"));
    stdin.write_all(b"before rotation\n").unwrap();
    let echoed = output.recv_timeout(Duration::from_secs(30));
    assert_eq!(echoed.as_deref(), Ok("before rotation"));

    // Both certificates renewed by new CSRs (the client one approved by the cluster itself).
    wait_for(
        "both certificates renewed",
        Duration::from_secs(150),
        || {
            vk.assert_running();
            let log = vk.log();
            let got = |what: &str| {
                log.matches(&format!("got a {what} from the cluster"))
                    .count()
            };
            got("client certificate") >= 2 && got("serving certificate") >= 2
        },
    );
    let renewals = csrs(cluster, CLIENT_SIGNER, user);
    assert!(!renewals.is_empty(), "no client CSR of {user}");
    assert!(csrs(cluster, SERVING_SIGNER, user).len() >= 2);
    assert!(pair_files(cert_dir, "kubelet-client").len() >= 2);
    assert!(pair_files(cert_dir, "kubelet-server").len() >= 2);

    // New handshakes get the new serving certificate...
    let (verify, renewed) = s_client(cluster, vk.port());
    assert_eq!(verify, "Verify return code: 0 (ok)");
    assert_ne!(renewed, serving);
    // ...the stream opened before still works...
    stdin.write_all(b"after rotation\n").unwrap();
    let echoed = output.recv_timeout(Duration::from_secs(30));
    assert_eq!(echoed.as_deref(), Ok("after rotation"));
    drop(stdin);
    let status = exec.wait().expect("kubectl exec ends");
    assert!(status.success(), "{status}");
    // ...and vk keeps working with its new client certificate.
    cluster.apply(&fixtures::pod(ns, "after", &node, json!({})));
    cluster.kubectl_ok([
        "wait",
        "-n",
        ns,
        "--for=condition=Ready",
        "pod/after",
        "--timeout=30s",
    ]);
    vk.wait_ready(READY);
    let _: Value = cluster.kubectl_json(["get", "node", &node]);
}
