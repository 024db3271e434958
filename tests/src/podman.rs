//! Podman's Docker-compatible API service, the real engine behind the hyper provider's tests.
//!
//! [`Podman::shared`] runs `scripts/podman.sh up` once per test process (which writes the
//! `containers.conf` these machines need, builds the local image [`IMAGE`] and starts the
//! service unless it already answers). A watchdog of its own removes this run's containers and
//! volumes when the test process ends, however it ends, and stops the service if this process
//! started it.

use std::{
    fs,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{Mutex, OnceLock},
    time::Duration,
};

use crate::{
    cluster::{free_port, mark_for_teardown, run_dir, run_id},
    paths,
    wait::wait_for,
};

/// The local test image: busybox, imported by `scripts/podman.sh` (no registry is reachable).
pub const IMAGE: &str = "localhost/vk-busybox:latest";

/// Arguments: podman.sh, run id, whether this process started the service (1/0).
const WATCHDOG: &str = r#"
set -u
trap '' HUP INT
script=$1 run=$2 started=$3
while read -r _; do :; done
"$script" clean-node "-$run-"
[[ $started == 1 ]] && "$script" down
echo "podman watchdog $run: done"
"#;

/// Starts the watchdog; it acts once its stdin, held by the returned child, is closed (this
/// process is gone).
fn spawn_watchdog(script: &std::path::Path, started: bool) -> Child {
    let log = fs::File::create(run_dir().join("podman-watchdog.log"))
        .expect("cannot create the podman watchdog's log");
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(WATCHDOG)
        .arg("vk-test-podman-watchdog")
        .arg(script)
        .arg(run_id())
        .arg(if started { "1" } else { "0" })
        .stdin(Stdio::piped())
        .stdout(log.try_clone().expect("cannot dup a file"))
        .stderr(log)
        // Its own process group: a Ctrl-C on the terminal must not stop the cleanup.
        .process_group(0);
    command.spawn().expect("cannot start the podman watchdog")
}

#[derive(Debug)]
pub struct Podman {
    dir: PathBuf,
    _watchdog: Mutex<Child>,
    /// The port and process of the TCP service, once started.
    tcp_service: OnceLock<(u16, Mutex<Child>)>,
}

impl Podman {
    /// The service of this test process, started on first use.
    pub fn shared() -> &'static Podman {
        static PODMAN: OnceLock<Podman> = OnceLock::new();
        PODMAN.get_or_init(|| {
            let script = paths::workspace().join("scripts/podman.sh");
            let output = Command::new(&script)
                .arg("up")
                .output()
                .expect("cannot run scripts/podman.sh");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "scripts/podman.sh up failed:\n{stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let started = stdout.contains("service up");
            let watchdog = spawn_watchdog(&script, started);
            let home = std::env::var("HOME").expect("HOME is set");
            Podman {
                dir: std::env::var_os("VK_PODMAN_DIR").map_or_else(
                    || PathBuf::from(home).join(".cache/vk/podman"),
                    PathBuf::from,
                ),
                _watchdog: Mutex::new(watchdog),
                tcp_service: OnceLock::new(),
            }
        })
    }

    /// `unix:///.../podman.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.dir.join("podman.sock").display())
    }

    /// `tcp://127.0.0.1:PORT`: a second API service of the same Podman, on TCP (a remote
    /// engine, as vk sees it), started on first use and stopped with this run's processes.
    pub fn tcp_endpoint(&self) -> String {
        let (port, _) = self.tcp_service.get_or_init(|| {
            let port = free_port();
            let mut command = Command::new("podman");
            command
                .args([
                    "system",
                    "service",
                    "--time=0",
                    &format!("tcp://127.0.0.1:{port}"),
                ])
                .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = mark_for_teardown(&mut command)
                .spawn()
                .expect("cannot start podman system service on TCP");
            wait_for(
                "podman's TCP service to accept connections",
                Duration::from_secs(20),
                || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            );
            (port, Mutex::new(child))
        });
        format!("tcp://127.0.0.1:{port}")
    }

    /// A hyper provider configuration for `endpoint`, with `extra` TOML (top-level keys, or
    /// tables) appended.
    pub fn provider_config(&self, endpoint: &str, extra: &str) -> String {
        format!(
            "endpoint = {endpoint:?}\n{extra}\n[infra]\nimage = {IMAGE:?}\ncommand = [\"sleep\", \"2147483647\"]\n"
        )
    }

    /// Runs the podman CLI against the same storage as the service.
    pub fn podman<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Command::new("podman")
            .args(args)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .output()
            .expect("cannot run podman")
    }

    /// `podman ps -a` of node `node`: (container name, short ID, state) of each container,
    /// sorted by name.
    pub fn containers(&self, node: &str) -> Vec<(String, String, String)> {
        let output = self.podman([
            "ps",
            "-a",
            "--filter",
            &format!("label=io.virtual-kubelet.node={node}"),
            "--format",
            "json",
        ]);
        assert!(output.status.success(), "podman ps failed: {output:?}");
        let listed: Vec<serde_json::Value> =
            serde_json::from_slice(&output.stdout).expect("podman ps prints JSON");
        let mut containers: Vec<_> = listed
            .iter()
            .map(|c| {
                let field =
                    |value: &serde_json::Value| value.as_str().unwrap_or_default().to_string();
                let id = field(&c["Id"]);
                (
                    field(&c["Names"][0]),
                    id[..id.len().min(12)].to_string(),
                    field(&c["State"]),
                )
            })
            .collect();
        containers.sort();
        containers
    }
}
