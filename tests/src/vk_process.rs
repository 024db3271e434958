//! `vk` processes run against the test cluster with node credentials, never left behind.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use vk_tests::cluster::Cluster;
//! let cluster = Cluster::shared();
//! let mut vk = cluster.vk().provider_config("{}").start();
//! vk.wait_ready(Duration::from_secs(30));
//! vk.kill(); // SIGKILL, as a crash
//! vk.restart(); // same node name, port and arguments
//! // dropped: SIGKILLed, its Node object deleted
//! ```
//!
//! Each `vk` runs with `VK_TEST_RUN=RUN` in its environment, so the cluster's watchdog kills it
//! should the test process die without dropping it (see [`crate::cluster`]). Its stdout and
//! stderr go to `target/vk-tests/RUN/NODE.log`; a test that panics while holding a [`VkProcess`]
//! prints that log's tail.

use std::{
    ffi::{OsStr, OsString},
    fmt::Write as _,
    fs,
    io::Write as _,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use crate::{
    cluster::{self, Cluster},
    paths,
    podman::Podman,
    wait,
};

/// How long [`VkProcess::stop`] waits after SIGTERM before it SIGKILLs and panics.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Stands for the node's name in [`VkBuilder::provider_config`].
pub const NODE_PLACEHOLDER: &str = "{node}";
/// Lines of the log printed when a test panics.
const TAIL_LINES: usize = 40;

impl Cluster {
    /// A builder of a `vk` process against this cluster.
    pub fn vk(&'static self) -> VkBuilder {
        VkBuilder::new(self)
    }
}

/// How to start a `vk`: defaults are the mock provider without configuration, log level debug,
/// node name `vk-RUN-N`, node IP 127.0.0.1 (see [`VkBuilder::node_ip`]) and a free port.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until start()"]
pub struct VkBuilder {
    cluster: &'static Cluster,
    node_prefix: String,
    node_name: Option<String>,
    provider: String,
    provider_config: Option<String>,
    log_level: String,
    kubeconfig: Option<PathBuf>,
    node_ip: IpAddr,
    serving_ips: Option<Vec<IpAddr>>,
    cert_dir: Option<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl VkBuilder {
    /// The defaults, for `cluster`.
    pub fn new(cluster: &'static Cluster) -> Self {
        Self {
            cluster,
            node_prefix: "vk".into(),
            node_name: None,
            provider: "mock".into(),
            provider_config: None,
            log_level: "debug".into(),
            kubeconfig: None,
            node_ip: Ipv4Addr::LOCALHOST.into(),
            serving_ips: None,
            cert_dir: None,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The node is named `PREFIX-RUN-N` (default prefix `vk`).
    pub fn node_prefix(mut self, prefix: &str) -> Self {
        self.node_prefix = prefix.into();
        self
    }

    /// The node's name instead of a new one: for several vks of one node (`--leader-elect`).
    pub fn node_name(mut self, name: &str) -> Self {
        self.node_name = Some(name.into());
        self
    }

    /// The provider (`--provider`, a `libvk_NAME.so` of the build directory).
    pub fn provider(mut self, name: &str) -> Self {
        self.provider = name.into();
        self
    }

    /// The hyper provider on the local Podman service.
    pub fn on_podman(self, podman: &Podman) -> Self {
        self.provider("hyper")
            .provider_config(&podman.provider_config(&podman.endpoint(), ""))
    }

    /// The contents of the provider's configuration file (written to the run directory and
    /// passed as `--provider-config`). Every [`NODE_PLACEHOLDER`] in it is replaced by the node's
    /// name, which is only chosen at [`VkBuilder::start`] (the mock provider's configuration is
    /// keyed by node name: `{"{node}": {"cpu": "7"}}`).
    pub fn provider_config(mut self, contents: &str) -> Self {
        self.provider_config = Some(contents.into());
        self
    }

    /// `--log-level` (default debug).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.into();
        self
    }

    /// One more argument, after the harness's own (which must not be repeated: clap refuses).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().into());
        self
    }

    /// More arguments, see [`VkBuilder::arg`].
    pub fn args<I>(mut self, args: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// An environment variable of vk (say `RUST_LOG`). vk's own settings from the test's
    /// environment (`VK_*`, `VKUBELET_*`, `KUBECONFIG`, ...) are not passed on.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// `--node-ip` (default 127.0.0.1); for another address vk also gets a serving certificate
    /// for it signed by the cluster CA ([`Cluster::serving_cert`]), as metrics-server verifies
    /// it (see [`crate::metrics_server`]).
    pub fn node_ip(mut self, ip: IpAddr) -> Self {
        self.node_ip = ip;
        self
    }

    /// The IP SANs of that serving certificate instead of the node IP: a certificate that
    /// does not name the address vk is dialled on.
    pub fn serving_cert_ips(mut self, ips: &[IpAddr]) -> Self {
        self.serving_ips = Some(ips.to_vec());
        self
    }

    /// Runs vk with these credentials instead of the node's own.
    pub fn kubeconfig(mut self, path: PathBuf) -> Self {
        self.kubeconfig = Some(path);
        self
    }

    /// Joins by TLS bootstrap instead: `--bootstrap-kubeconfig` with a new bootstrap token
    /// ([`Cluster::bootstrap_kubeconfig`]), `--cert-dir cert_dir`, and `--kubeconfig` at a path
    /// that vk writes once it has its certificate (`RUN/NODE.kubeconfig`).
    pub fn bootstrap(mut self, cert_dir: &Path) -> Self {
        self.cert_dir = Some(cert_dir.to_path_buf());
        self
    }

    /// Starts vk and waits until its node is Ready.
    pub fn start_ready(self, timeout: Duration) -> VkProcess {
        let mut vk = self.start();
        vk.wait_ready(timeout);
        vk
    }

    /// Starts vk (without waiting for its node: see [`VkProcess::wait_registered`] and
    /// [`VkProcess::wait_ready`]).
    pub fn start(self) -> VkProcess {
        let port = cluster::free_port();
        // vks that share a node keep logs of their own.
        let (node, log_name) = match self.node_name {
            Some(node) => {
                let log_name = format!("{node}-{port}.log");
                (node, log_name)
            }
            None => {
                let node = cluster::unique_name(&self.node_prefix);
                let log_name = format!("{node}.log");
                (node, log_name)
            }
        };
        let run_dir = cluster::run_dir();
        let mut args: Vec<OsString> = Vec::new();
        let kubeconfig = match (self.kubeconfig, self.cert_dir) {
            (Some(path), _) => path,
            (None, Some(cert_dir)) => {
                let bootstrap = self.cluster.bootstrap_kubeconfig(&node);
                args.extend(["--bootstrap-kubeconfig".into(), bootstrap.into()]);
                args.extend(["--cert-dir".into(), cert_dir.into()]);
                run_dir.join(format!("{node}.kubeconfig"))
            }
            (None, None) => self.cluster.node_kubeconfig(&node),
        };
        args.extend::<[OsString; 14]>([
            "--kubeconfig".into(),
            kubeconfig.clone().into(),
            "--nodename".into(),
            node.clone().into(),
            "--provider".into(),
            self.provider.into(),
            "--plugin-dir".into(),
            paths::build_dir().into(),
            "--node-ip".into(),
            self.node_ip.to_string().into(),
            "--listen-port".into(),
            port.to_string().into(),
            "--log-level".into(),
            self.log_level.into(),
        ]);
        if !self.node_ip.is_loopback() || self.serving_ips.is_some() {
            let ips = self.serving_ips.unwrap_or_else(|| vec![self.node_ip]);
            let (cert, key) = self.cluster.serving_cert(&node, &ips);
            args.extend([
                "--tls-cert-file".into(),
                cert.into(),
                "--tls-private-key-file".into(),
                key.into(),
            ]);
        }
        if let Some(contents) = self.provider_config {
            let path = run_dir.join(format!("{node}.provider-config"));
            fs::write(&path, contents.replace(NODE_PLACEHOLDER, &node))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            args.extend(["--provider-config".into(), path.into()]);
        }
        args.extend(self.args);
        let mut vk = VkProcess {
            cluster: self.cluster,
            log_path: run_dir.join(log_name),
            node,
            port,
            kubeconfig,
            args,
            env: self.env,
            child: None,
            starts: 0,
        };
        vk.spawn();
        vk
    }
}

/// A running (or exited) `vk`. Dropping it SIGKILLs it, reaps it, then deletes its Node object
/// (best effort); when the test is panicking it also prints the tail of vk's log.
#[derive(Debug)]
pub struct VkProcess {
    cluster: &'static Cluster,
    node: String,
    port: u16,
    kubeconfig: PathBuf,
    log_path: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    child: Option<Child>,
    starts: u32,
}

impl VkProcess {
    /// A builder, see [`VkBuilder`].
    pub fn builder(cluster: &'static Cluster) -> VkBuilder {
        VkBuilder::new(cluster)
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log_path.display()));
        let command_line = std::iter::once(paths::vk_binary().into_os_string())
            .chain(self.args.iter().cloned())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            log,
            "===== vk-tests: start #{}: {command_line}",
            self.starts
        );
        let stderr = log.try_clone().expect("cannot dup the log file");
        let mut command = Command::new(paths::vk_binary());
        command.args(&self.args);
        // vk reads its settings from the environment too: only the harness's count.
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("VK_")
                || k.starts_with("VKUBELET_")
                || ["KUBECONFIG", "DEFAULT_NODE_NAME", "KUBELET_PORT"].contains(&&*k)
            {
                command.env_remove(&key);
            }
        }
        cluster::mark_for_teardown(&mut command)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", paths::vk_binary().display()));
        self.child = Some(child);
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("vk was started")
    }

    /// The name of vk's node.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// vk's `--listen-port` (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The node's kubeconfig (`system:node:NAME`; with [`VkBuilder::bootstrap`], the one vk
    /// writes).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// vk's log file (stdout and stderr of every start).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The whole log.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The process id of the current (or last) vk process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("vk was started").id()
    }

    /// How often vk was started (1 + restarts).
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The exit status, if vk has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child().try_wait().expect("cannot wait for vk")
    }

    /// Whether vk still runs.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// SIGKILLs vk (a crash) and reaps it; returns its exit status (also if it had exited).
    pub fn kill(&mut self) -> ExitStatus {
        let child = self.child();
        let _ = child.kill();
        child.wait().expect("cannot wait for vk")
    }

    /// SIGTERMs vk and waits for it to exit; returns its exit status. Panics (after SIGKILL) if
    /// it is still running after [`STOP_TIMEOUT`].
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.exit_status() {
            return status;
        }
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.exit_status() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        panic!(
            "vk (node {}, pid {pid}) still ran {STOP_TIMEOUT:?} after SIGTERM; SIGKILLed it\n{}",
            self.node,
            self.tail_report()
        );
    }

    /// Starts vk again with the same node name, port and arguments, after stopping it
    /// ([`VkProcess::stop`]) if it still runs.
    pub fn restart(&mut self) {
        if self.is_running() {
            self.stop();
        }
        self.spawn();
    }

    /// Panics with the log tail if vk has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exit_status() {
            panic!(
                "vk (node {}, pid {}) exited: {status}\n{}",
                self.node,
                self.pid(),
                self.tail_report()
            );
        }
    }

    /// Waits until the Node object exists; panics on timeout or if vk exits.
    pub fn wait_registered(&mut self, timeout: Duration) {
        let what = format!("node {} to be registered", self.node);
        self.wait_node(&what, timeout, |node| {
            if node.is_empty() {
                Err("no Node object".into())
            } else {
                Ok(())
            }
        });
    }

    /// Waits until the Node's Ready condition is True; panics on timeout or if vk exits.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let what = format!("node {} to be Ready", self.node);
        self.wait_node(&what, timeout, |node| {
            let ready = node
                .lines()
                .find_map(|l| l.strip_prefix("Ready="))
                .unwrap_or("");
            if ready == "True" {
                Ok(())
            } else {
                Err(format!("conditions: {}", node.replace('\n', " ")))
            }
        });
    }

    /// Polls the node's conditions (`TYPE=STATUS` lines; empty if there is no Node) until
    /// `check` accepts them, with the log tail in the panic message on timeout or exit.
    fn wait_node(
        &mut self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&str) -> Result<(), String>,
    ) {
        let cluster = self.cluster;
        let node = self.node.clone();
        let template =
            r#"{range .status.conditions[*]}{.type}={.status}{"\n"}{end}{"exists\n"}"#.to_string();
        let start = Instant::now();
        loop {
            self.assert_running();
            let output = cluster.kubectl([
                "get",
                "node",
                &node,
                "--ignore-not-found",
                "-o",
                &format!("jsonpath={template}"),
            ]);
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            let last = match check(if output.status.success() { &text } else { "" }) {
                Ok(()) => return,
                Err(why) => why,
            };
            if start.elapsed() >= timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; last: {last}\n{}",
                    self.tail_report()
                );
            }
            std::thread::sleep(wait::POLL_INTERVAL);
        }
    }

    fn tail_report(&self) -> String {
        let mut report = String::new();
        let _ = writeln!(
            report,
            "--- last {TAIL_LINES} lines of {}:",
            self.log_path.display()
        );
        report.push_str(&self.log_tail(TAIL_LINES));
        report
    }
}

impl Drop for VkProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "vk-tests: vk for node {} (started {} times)\n{}",
                self.node,
                self.starts,
                self.tail_report()
            );
        }
        let args = [
            "delete",
            "node",
            &self.node,
            "--ignore-not-found",
            "--wait=false",
        ];
        if let Err(e) = self.cluster.try_kubectl(&args) {
            eprintln!("vk-tests: cannot delete node {}: {e}", self.node);
        }
    }
}
