//! A real Kubernetes control plane for the integration tests, shared by every test of one test
//! binary, and torn down however the test process ends.
//!
//! # How it works
//!
//! [`Cluster::shared`] starts, on first use, a fresh control plane with `scripts/cluster.sh up
//! --name vk-test-RUN --port-base N` (RUN: this test process's run id, N: five free ports in
//! 20000..30000; started in about 10 s). Before that it spawns a *watchdog*: a `bash` in its own
//! process group whose standard input is a pipe that only the test process holds (close-on-exec,
//! so neither `vk` nor the control plane inherits it). When the test process is gone, whether it
//! returned, panicked, called `exit` or was SIGKILLed, the kernel closes that pipe and the watchdog
//! then
//! 1. SIGKILLs every process whose environment carries `VK_TEST_RUN=RUN` (each `vk` the harness
//!    started, see [`crate::vk_process`], whatever else a test marked with
//!    [`mark_for_teardown`], and anything those started),
//! 2. moves the control plane's logs to the run directory, and runs `cluster.sh down` (for a kept
//!    cluster: deletes this run's namespaces and nodes instead),
//! 3. touches `done` in the run directory.
//!
//! Tests need no teardown of their own for the cluster; [`Namespace`] and
//! [`crate::vk_process::VkProcess`] clean up after themselves on drop (also when a test panics).
//!
//! # Running against a kept cluster
//!
//! Starting a control plane costs ~10 s per test binary. To skip it while iterating, bring one up
//! once and name it in `VK_TEST_CLUSTER`; it is reused (started if it is not up) and never torn
//! down by the tests:
//!
//! ```sh
//! scripts/cluster.sh up --name dev --port-base 16443
//! VK_TEST_CLUSTER=dev cargo test -p vk-tests --test harness
//! scripts/cluster.sh down --name dev            # when done
//! ```
//!
//! Every test works in namespaces and nodes of its own (names carry the run id), so runs do not
//! see each other's objects; cluster-scoped objects a test creates itself are its own business.
//!
//! # Where the logs are
//!
//! * `target/vk-tests/RUN/` (RUN is printed when the cluster starts; the newest directory is the
//!   last run): `NODE.log` for each `vk` (stdout and stderr, every restart appended),
//!   `watchdog.log`, `cluster-up.log` (the output of `cluster.sh up`), and after teardown of a
//!   fresh cluster `cluster-logs/` (etcd, kube-apiserver, kube-controller-manager,
//!   kube-scheduler, and metrics-server if a test started it). The last ten finished runs are
//!   kept.
//! * While the tests run, or for a kept cluster: `~/.cache/vk/clusters/NAME/logs/`.
//! * A test that panics while holding a `VkProcess` prints the tail of that vk's log.

use std::{
    ffi::{OsStr, OsString},
    fs,
    io::Write,
    net::{IpAddr, TcpListener},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{ChildStdin, Command, Output, Stdio},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::{paths, wait};

/// Names an already-up cluster (`cluster.sh --name`) to reuse instead of starting a fresh one.
pub const REUSE_ENV: &str = "VK_TEST_CLUSTER";
/// Set in the environment of every process the harness must not leave behind: its value is the
/// run id, and the watchdog kills every process carrying it.
pub const RUN_ENV: &str = "VK_TEST_RUN";
/// The label on namespaces the harness creates; its value is the run id.
pub const RUN_LABEL: &str = "vk-test-run";

/// cluster.sh settings taken from the environment, which must not leak into a fresh cluster
/// (`VK_CLUSTER_DIR` would point it at someone's cluster directory, which `down` deletes).
pub const CLUSTER_ENV: &[&str] = &[
    "VK_CLUSTER_NAME",
    "VK_CLUSTER_DIR",
    "VK_PORT_BASE",
    "VK_APISERVER_PORT",
    "VK_ETCD_PORT",
    "VK_ETCD_PEER_PORT",
    "VK_CONTROLLER_MANAGER_PORT",
    "VK_SCHEDULER_PORT",
];

/// The run id of this test process: short, lowercase alphanumeric, unique among the runs of a
/// machine (process id and time).
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!(
            "{}{}",
            base36(std::process::id()),
            base36(nanos / 1000 % 1296)
        )
    })
}

fn base36(mut n: u32) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(char::from_digit(n % 36, 36).expect("a base-36 digit"));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// Marks `command`'s process (and whatever it starts) as one the watchdog kills when the test
/// process is gone: sets `VK_TEST_RUN=RUN` in its environment. [`crate::vk_process`] marks every
/// `vk`; mark any other long-lived helper a test starts. Needs [`Cluster::shared`] (and so the
/// watchdog) to be running before the command starts.
pub fn mark_for_teardown(command: &mut Command) -> &mut Command {
    command.env(RUN_ENV, run_id())
}

/// This run's directory, `target/vk-tests/RUN/` (created, and older finished runs pruned, on
/// first use).
pub fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let parent = paths::target_dir().join("vk-tests");
        prune_runs(&parent, 9);
        let dir = parent.join(run_id());
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        dir
    })
}

/// Removes all but the `keep` newest finished run directories (those with `done`).
fn prune_runs(parent: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let mut done: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let modified = fs::metadata(e.path().join("done")).ok()?.modified().ok()?;
            Some((modified, e.path()))
        })
        .collect();
    done.sort();
    let excess = done.len().saturating_sub(keep);
    for (_, dir) in done.into_iter().take(excess) {
        let _ = fs::remove_dir_all(dir);
    }
}

/// A name unique in this run: `PREFIX-RUN-N`, shortened to fit a DNS label (63 characters).
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let suffix = format!("-{}-{}", run_id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let prefix: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63 - suffix.len())
        .collect();
    let prefix = prefix.trim_matches('-');
    format!("{}{suffix}", if prefix.is_empty() { "t" } else { prefix })
}

/// A free TCP port on 127.0.0.1 (bound and released; the kernel hands out ports in its
/// ephemeral range, away from the control plane's).
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("cannot bind a port on 127.0.0.1")
        .port()
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The first N in 20000..30000 (stepping 25, starting at a place that depends on the process id
/// and the attempt) with N..N+5 all free.
fn free_port_base(attempt: u32) -> u16 {
    let slots = 400;
    let start = (std::process::id() + attempt * 97) % slots;
    (0..slots)
        .map(|i| 20000 + ((start + i) % slots) as u16 * 25)
        .find(|&base| (base..base + 5).all(port_free))
        .expect("no five free consecutive ports in 20000..30000")
}

/// What `what` (a command) did: its status and output, for panic messages.
pub fn describe(what: &str, output: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout:\n{}--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn args_text<I>(args: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<OsStr>,
{
    args.into_iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The watchdog (see the module documentation). Arguments: run id, run directory, cluster.sh,
/// cluster name, cluster directory (fresh clusters), keep (1: a reused cluster), test pid.
const WATCHDOG: &str = r#"
set -u
trap '' HUP INT
run=$1 run_dir=$2 script=$3 name=$4 dir=$5 keep=$6 test_pid=$7
say() { printf '%s watchdog %s: %s\n' "$(date +%H:%M:%S.%3N)" "$run" "$*"; }
say "watching test process $test_pid (cluster $name, keep=$keep)"
# Only the test process holds the write end of stdin: EOF means it is gone, however it ended.
while read -r _; do :; done
say "test process $test_pid is gone; tearing down"
marked() { # pids of the processes whose environment carries this run's marker
  local f pid
  for f in $(grep -lzxF "VK_TEST_RUN=$run" /proc/[0-9]*/environ 2>/dev/null); do
    pid=${f#/proc/}; echo "${pid%/environ}"
  done
}
pids=$(marked)
if [[ -n $pids ]]; then
  say "killing leftover processes" $pids
  kill -KILL $pids 2>/dev/null
  for _ in $(seq 100); do pids=$(marked); [[ -z $pids ]] && break; sleep 0.05; done
  [[ -z $pids ]] || say "still running after SIGKILL: $pids"
fi
if [[ $keep == 1 ]]; then
  kubeconfig=$("$script" env --name "$name" 2>/dev/null | sed -n 's/^export KUBECONFIG=//p')
  bin=$("$script" bin 2>/dev/null | tail -n 1)
  if [[ -n $kubeconfig && -x $bin/kubectl ]]; then
    k() { "$bin/kubectl" --kubeconfig "$kubeconfig" --request-timeout=10s "$@"; }
    k delete namespace -l "vk-test-run=$run" --wait=false --ignore-not-found
    nodes=$(k get nodes -o name | grep -F -- "-$run-")
    [[ -z $nodes ]] || k delete $nodes --wait=false --ignore-not-found
  else
    say "cluster $name is not up; nothing to clean in it"
  fi
else
  "$script" stop --name "$name" --dir "$dir"
  if [[ -d $dir/logs ]]; then rm -rf "$run_dir/cluster-logs"; mv "$dir/logs" "$run_dir/cluster-logs"; fi
  "$script" down --name "$name" --dir "$dir"
fi
say "done"
touch "$run_dir/done"
"#;

/// A frozen control-plane component (see [`Cluster::freeze`]); thawed when dropped.
#[derive(Debug)]
pub struct Frozen {
    pid: String,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("CONT", &self.pid);
    }
}

fn signal(name: &str, pid: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), pid])
        .status();
    assert!(
        sent.is_ok_and(|status| status.success()),
        "kill -{name} {pid} failed"
    );
}

/// A control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler; no nodes)
/// shared by the tests of one test binary. See the module documentation.
#[derive(Debug)]
pub struct Cluster {
    name: String,
    dir: PathBuf,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    kept: bool,
    startup: Duration,
    /// The write end of the watchdog's stdin: never written, closed by the kernel at exit.
    _watchdog: Mutex<ChildStdin>,
}

impl Cluster {
    /// The cluster of this test process, started on first use (fresh, or the one named by
    /// `VK_TEST_CLUSTER`). Panics, in every test that asks, if it could not be started.
    pub fn shared() -> &'static Cluster {
        static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
        match CLUSTER.get_or_init(Cluster::start) {
            Ok(cluster) => cluster,
            Err(error) => panic!("the test cluster could not be started: {error}"),
        }
    }

    fn start() -> Result<Cluster, String> {
        let started = Instant::now();
        let reuse = std::env::var(REUSE_ENV).ok().filter(|n| !n.is_empty());
        let kept = reuse.is_some();
        let up_log = run_dir().join("cluster-up.log");
        let (name, dir, kubeconfig, watchdog) = match reuse {
            Some(name) => {
                let watchdog = spawn_watchdog(&name, None)?;
                let output = cluster_sh(false)
                    .args(["up", "--name", &name])
                    .output()
                    .map_err(|e| format!("cannot run cluster.sh: {e}"))?;
                let _ = fs::write(&up_log, &output.stderr);
                if !output.status.success() {
                    return Err(describe(&format!("cluster.sh up --name {name}"), &output));
                }
                let stdout = String::from_utf8_lossy(&output.stdout);
                let kubeconfig = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("export KUBECONFIG="))
                    .map(PathBuf::from)
                    .ok_or_else(|| describe("cluster.sh up printed no export line", &output))?;
                let dir = kubeconfig
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                (name, dir, kubeconfig, watchdog)
            }
            None => {
                let name = format!("vk-test-{}", run_id());
                let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
                let dir = PathBuf::from(home).join(".cache/vk/clusters").join(&name);
                // First the watchdog: a test process killed during `up` leaves nothing either.
                let watchdog = spawn_watchdog(&name, Some(&dir))?;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let base = free_port_base(attempt).to_string();
                    let output = cluster_sh(true)
                        .args(["up", "--name", &name, "--port-base", &base])
                        .arg("--dir")
                        .arg(&dir)
                        .output()
                        .map_err(|e| format!("cannot run cluster.sh: {e}"))?;
                    let _ = fs::write(&up_log, &output.stderr);
                    if output.status.success() {
                        break;
                    }
                    let _ = cluster_sh(true)
                        .args(["down", "--name", &name])
                        .arg("--dir")
                        .arg(&dir)
                        .output();
                    let port_clash = String::from_utf8_lossy(&output.stderr).contains("in use");
                    if !port_clash || attempt == 3 {
                        let what = format!("cluster.sh up --name {name} --port-base {base}");
                        return Err(describe(&what, &output));
                    }
                }
                let kubeconfig = dir.join("admin.kubeconfig");
                (name, dir, kubeconfig, watchdog)
            }
        };
        let output = cluster_sh(false)
            .arg("bin")
            .output()
            .map_err(|e| format!("cannot run cluster.sh bin: {e}"))?;
        if !output.status.success() {
            return Err(describe("cluster.sh bin", &output));
        }
        let bin = String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        let cluster = Cluster {
            kept,
            name,
            dir,
            kubeconfig,
            kubectl: PathBuf::from(bin).join("kubectl"),
            startup: started.elapsed(),
            _watchdog: Mutex::new(watchdog),
        };
        eprintln!(
            "vk-tests: cluster {} ({}) ready in {:.1?}; run {}, logs in {}",
            cluster.name,
            if cluster.kept { "kept" } else { "fresh" },
            cluster.startup,
            run_id(),
            run_dir().display()
        );
        Ok(cluster)
    }

    /// The cluster's name (`cluster.sh --name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster directory (see scripts/cluster.sh).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The control plane's logs (`COMPONENT.log`), while the cluster is up.
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// Freezes a control-plane component (`kube-apiserver`, `etcd`, ...) with SIGSTOP until the
    /// returned guard is dropped: it then answers nothing, as a hung server would.
    pub fn freeze(&self, component: &str) -> Frozen {
        let pid_file = self.dir.join("run").join(format!("{component}.pid"));
        let pid = fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", pid_file.display()))
            .trim()
            .to_string();
        signal("STOP", &pid);
        Frozen { pid }
    }

    /// The cluster-admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Whether this is a reused cluster (`VK_TEST_CLUSTER`) that the tests do not tear down.
    pub fn is_kept(&self) -> bool {
        self.kept
    }

    /// How long getting the cluster ready took.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// The kubectl binary (of the control plane's version).
    pub fn kubectl_path(&self) -> &Path {
        &self.kubectl
    }

    /// A kubectl command using the admin kubeconfig; add arguments and run it.
    pub fn kubectl_command(&self) -> Command {
        let mut command = Command::new(&self.kubectl);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env_remove(RUN_ENV)
            .stdin(Stdio::null());
        command
    }

    /// Runs kubectl as admin, whatever its outcome.
    pub fn kubectl<I>(&self, args: I) -> Output
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.kubectl_command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.kubectl.display()))
    }

    /// Runs kubectl as admin and returns its stdout; panics with stderr if it fails.
    pub fn kubectl_ok<I>(&self, args: I) -> String
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
        let output = self.kubectl(&args);
        assert!(
            output.status.success(),
            "{}",
            describe(&format!("kubectl {}", args_text(&args)), &output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs kubectl as admin with `input` on its stdin (say `apply -f -`), whatever its outcome.
    pub fn kubectl_input<I>(&self, args: I, input: &str) -> Output
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        let mut child = self
            .kubectl_command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.kubectl.display()));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_owned();
        // A thread, so that a kubectl that fails early and fills its stdout cannot deadlock us.
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let output = child.wait_with_output().expect("kubectl's output");
        let _ = writer.join();
        output
    }

    /// Runs `kubectl ARGS -o json` as admin and parses the output; panics if it fails.
    pub fn kubectl_json<I>(&self, args: I) -> serde_json::Value
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args
            .into_iter()
            .map(|a| a.as_ref().into())
            .chain(["-o".into(), "json".into()])
            .collect();
        let stdout = self.kubectl_ok(&args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "kubectl {} printed no JSON ({e}): {stdout}",
                args_text(&args)
            )
        })
    }

    /// `kubectl apply -f -` of `manifest` (one object or a `List`); panics if it fails.
    pub fn apply(&self, manifest: &serde_json::Value) -> String {
        let output = self.kubectl_input(["apply", "-f", "-"], &manifest.to_string());
        assert!(
            output.status.success(),
            "{}",
            describe(&format!("kubectl apply of {manifest}"), &output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// An admin client. Create one per test: a client belongs to the tokio runtime it was made
    /// in, and every `#[tokio::test]` has its own.
    pub async fn client(&self) -> kube::Client {
        client_from(&self.kubeconfig).await
    }

    /// What `cluster.sh COMMAND ARGS...` prints for this cluster; panics if it fails.
    fn cluster_sh_output(&self, command: &str, args: &[String]) -> Vec<u8> {
        let output = cluster_sh(!self.kept)
            .arg(command)
            .args(args)
            .args(["--name", &self.name])
            .arg("--dir")
            .arg(&self.dir)
            .output()
            .expect("cannot run cluster.sh");
        assert!(
            output.status.success(),
            "{}",
            describe(&format!("cluster.sh {command} {}", args.join(" ")), &output)
        );
        output.stdout
    }

    /// The kubeconfig of node `name` (client certificate `system:node:NAME`, group
    /// `system:nodes`), created if missing.
    pub fn node_kubeconfig(&self, name: &str) -> PathBuf {
        let printed = self.cluster_sh_output("node-kubeconfig", &[name.to_string()]);
        PathBuf::from(String::from_utf8_lossy(&printed).trim())
    }

    /// A kubelet serving certificate and key for node `name` with IP SANs `ips`, signed by the
    /// cluster CA (`cluster.sh serving-cert`): what a vk needs that is dialled on another address
    /// than 127.0.0.1 by a client that verifies it, such as metrics-server.
    pub fn serving_cert(&self, name: &str, ips: &[IpAddr]) -> (PathBuf, PathBuf) {
        let args: Vec<String> = std::iter::once(name.to_string())
            .chain(ips.iter().map(ToString::to_string))
            .collect();
        let printed = self.cluster_sh_output("serving-cert", &args);
        let cert = PathBuf::from(String::from_utf8_lossy(&printed).trim());
        let key = cert.with_extension("key");
        (cert, key)
    }

    /// A bootstrap kubeconfig for node `name` (`cluster.sh bootstrap-kubeconfig`: a new bootstrap
    /// token of group `system:bootstrappers:vk`), written to the run directory.
    pub fn bootstrap_kubeconfig(&self, name: &str) -> PathBuf {
        let printed = self.cluster_sh_output("bootstrap-kubeconfig", &[name.to_string()]);
        let path = run_dir().join(format!("{name}.bootstrap-kubeconfig"));
        fs::write(&path, printed)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// A kubeconfig of the ServiceAccount `kube-system/vk` bound by the shipped RBAC manifest
    /// (`vk/deploy/rbac.yaml`, applied here), with a token valid for an hour: vk as it runs in
    /// the cluster, without node credentials. Written to the run directory as `NAME.kubeconfig`.
    pub fn service_account_kubeconfig(&self, name: &str) -> PathBuf {
        let manifest = paths::workspace().join("vk/deploy/rbac.yaml");
        self.kubectl_ok([OsStr::new("apply"), OsStr::new("-f"), manifest.as_os_str()]);
        let token = self.kubectl_ok([
            "create",
            "token",
            "vk",
            "-n",
            "kube-system",
            "--duration=1h",
        ]);
        let cluster_field = |field: &str| {
            let path = format!("jsonpath={{.clusters[0].cluster.{field}}}");
            self.kubectl_ok(["config", "view", "--raw", "-o", &path])
                .trim()
                .to_string()
        };
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": "c", "cluster": {
                "server": cluster_field("server"),
                "certificate-authority-data": cluster_field("certificate-authority-data"),
            }}],
            "users": [{ "name": "vk", "user": { "token": token.trim() } }],
            "contexts": [{ "name": "c", "context": { "cluster": "c", "user": "vk" } }],
            "current-context": "c",
        });
        let path = run_dir().join(format!("{name}.kubeconfig"));
        fs::write(&path, kubeconfig.to_string())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// The cluster CA, which also signs the certificates of CSRs.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("pki/ca.crt")
    }

    /// A new namespace `PREFIX-RUN-N`, labelled `vk-test-run=RUN`, whose `default` service
    /// account exists (pods can be created at once); deleted when the guard is dropped.
    pub fn namespace(&'static self, prefix: &str) -> Namespace {
        let name = unique_name(prefix);
        let manifest = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": name, "labels": { RUN_LABEL: run_id() } },
        });
        let output = self.kubectl_input(["create", "-f", "-"], &manifest.to_string());
        assert!(
            output.status.success(),
            "{}",
            describe(&format!("creating namespace {name}"), &output)
        );
        let namespace = Namespace {
            cluster: self,
            name,
        };
        // The controller-manager makes the service account a moment after the namespace; until
        // then pods are refused.
        wait::wait_for(
            &format!("service account default in namespace {}", namespace.name),
            Duration::from_secs(30),
            || {
                self.kubectl(["get", "serviceaccount", "default", "-n", &namespace.name])
                    .status
                    .success()
            },
        );
        namespace
    }

    /// kubectl as admin, without panicking if it cannot run (for `Drop`).
    pub(crate) fn try_kubectl(&self, args: &[&str]) -> std::io::Result<Output> {
        self.kubectl_command().args(args).output()
    }
}

/// A client from a kubeconfig file (say a node's, from [`Cluster::node_kubeconfig`]).
pub async fn client_from(kubeconfig: &Path) -> kube::Client {
    let file = kube::config::Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", kubeconfig.display()));
    let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("bad kubeconfig {}: {e}", kubeconfig.display()));
    kube::Client::try_from(config).expect("cannot make a client")
}

/// scripts/cluster.sh, without this run's marker; for a fresh cluster also without the
/// cluster.sh settings of the environment.
pub(crate) fn cluster_sh(fresh: bool) -> Command {
    let mut command = Command::new(paths::workspace().join("scripts/cluster.sh"));
    command.env_remove(RUN_ENV).stdin(Stdio::null());
    if fresh {
        for var in CLUSTER_ENV {
            command.env_remove(var);
        }
    }
    command
}

/// Starts the watchdog for cluster `name` (`dir`: a fresh cluster to tear down; `None`: a kept
/// one) and returns the write end of its stdin.
fn spawn_watchdog(name: &str, dir: Option<&Path>) -> Result<ChildStdin, String> {
    let log_path = run_dir().join("watchdog.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("cannot dup a file: {e}"))?;
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(WATCHDOG)
        .arg("vk-test-watchdog")
        .arg(run_id())
        .arg(run_dir())
        .arg(paths::workspace().join("scripts/cluster.sh"))
        .arg(name)
        .arg(dir.unwrap_or(Path::new("")))
        .arg(if dir.is_some() { "0" } else { "1" })
        .arg(std::process::id().to_string())
        .env_remove(RUN_ENV)
        .stdin(Stdio::piped())
        .stdout(log)
        .stderr(log2)
        // Its own process group: a Ctrl-C on the terminal must not stop the teardown.
        .process_group(0);
    if dir.is_some() {
        for var in CLUSTER_ENV {
            command.env_remove(var);
        }
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start the watchdog: {e}"))?;
    Ok(child.stdin.take().expect("piped stdin"))
}

/// A namespace of one test, deleted (without waiting for it to go) when dropped.
#[derive(Debug)]
pub struct Namespace {
    cluster: &'static Cluster,
    name: String,
}

impl Namespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster it is in.
    pub fn cluster(&self) -> &'static Cluster {
        self.cluster
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl AsRef<str> for Namespace {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl AsRef<OsStr> for Namespace {
    fn as_ref(&self) -> &OsStr {
        self.name.as_ref()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let args = [
            "delete",
            "namespace",
            &self.name,
            "--wait=false",
            "--ignore-not-found",
        ];
        match self.cluster.try_kubectl(&args) {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "vk-tests: {}",
                describe(&format!("deleting namespace {}", self.name), &output)
            ),
            Err(e) => eprintln!("vk-tests: cannot delete namespace {}: {e}", self.name),
        }
    }
}
