//! The faults: signals to the control plane's processes (by the pid files of
//! `scripts/cluster.sh`), to the Podman service (by the pid file of `scripts/podman.sh`), and
//! what vk's process looks like from `/proc` while they last.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use vk_tests::{
    cluster::{CLUSTER_ENV, Cluster},
    paths,
};

/// Sends `signal` (a `kill` name: STOP, CONT, TERM, KILL) to `pid`.
pub fn signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .context("cannot run kill")?;
    if !status.success() {
        bail!("kill -{signal} {pid} failed");
    }
    Ok(())
}

fn alive(pid: u32) -> bool {
    // A zombie has no command line left; cluster.sh's reaper and podman.sh's nohup reap theirs.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

/// Waits until process `pid` is gone.
pub fn wait_gone(pid: u32, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    while alive(pid) {
        if started.elapsed() > timeout {
            bail!("process {pid} still runs {timeout:?} after it was told to stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn read_pid(file: PathBuf) -> Result<u32> {
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("{} holds no pid", file.display()))
}

/// A SIGSTOPped process, SIGCONTed when dropped (also when a scenario panics).
#[derive(Debug)]
pub struct Frozen {
    pid: u32,
}

impl Frozen {
    pub fn new(pid: u32) -> Result<Self> {
        signal(pid, "STOP")?;
        Ok(Frozen { pid })
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = signal(self.pid, "CONT");
    }
}

/// A component of the control plane, as cluster.sh names its pid file.
#[derive(Debug, Clone, Copy)]
pub enum Component {
    Apiserver,
    Etcd,
}

impl Component {
    fn name(self) -> &'static str {
        match self {
            Component::Apiserver => "kube-apiserver",
            Component::Etcd => "etcd",
        }
    }

    pub fn pid(self, cluster: &Cluster) -> Result<u32> {
        read_pid(cluster.dir().join(format!("run/{}.pid", self.name())))
    }
}

/// `scripts/cluster.sh up` of the shared cluster: starts whatever component is not running.
/// Returns the running command; [`apiserver_answers`] tells when it serves again.
pub fn start_stopped_components(cluster: &Cluster) -> Result<Child> {
    let log_path = vk_tests::cluster::run_dir().join("cluster-restarts.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut command = Command::new(paths::workspace().join("scripts/cluster.sh"));
    command
        .args(["up", "--name", cluster.name()])
        .arg("--dir")
        .arg(cluster.dir())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    for var in CLUSTER_ENV {
        command.env_remove(var);
    }
    command.spawn().context("cannot run scripts/cluster.sh up")
}

/// Whether the apiserver answers `/readyz` (with etcd behind it) within a second.
pub fn apiserver_ready(cluster: &Cluster) -> bool {
    cluster
        .kubectl(["get", "--raw=/readyz", "--request-timeout=1s"])
        .status
        .success()
}

/// Polls `/readyz` until it answers; returns the moment it did.
pub fn apiserver_answers(cluster: &Cluster, timeout: Duration) -> Result<Instant> {
    let started = Instant::now();
    loop {
        if apiserver_ready(cluster) {
            return Ok(Instant::now());
        }
        if started.elapsed() > timeout {
            bail!("the apiserver did not answer /readyz within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Podman API service of `scripts/podman.sh` (its state directory is `VK_PODMAN_DIR`).
#[derive(Debug, Clone, Copy)]
pub struct PodmanService;

impl PodmanService {
    fn script() -> PathBuf {
        paths::workspace().join("scripts/podman.sh")
    }

    fn run(command: &str) -> Result<String> {
        let output = Command::new(Self::script())
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .context("cannot run scripts/podman.sh")?;
        if !output.status.success() {
            bail!(
                "scripts/podman.sh {command}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The service's pid, if podman.sh started it (it cannot stop one it did not start).
    pub fn pid() -> Result<u32> {
        let dir = std::env::var_os("VK_PODMAN_DIR").map_or_else(
            || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/vk/podman"),
            PathBuf::from,
        );
        read_pid(dir.join("service.pid")).context(
            "the Podman service was not started by scripts/podman.sh (set VK_PODMAN_DIR to a \
             directory of your own, as scripts/chaos.sh does)",
        )
    }

    /// Stops the service (containers live on: conmon keeps them).
    pub fn stop() -> Result<()> {
        let pid = Self::pid()?;
        Self::run("down")?;
        wait_gone(pid, Duration::from_secs(20))
    }

    /// Starts the service again; returns when it answers.
    pub fn start() -> Result<()> {
        Self::run("up").map(drop)
    }
}

/// What `/proc/PID/status` says of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessFigures {
    pub threads: u64,
    pub rss_kib: u64,
}

impl ProcessFigures {
    pub fn of(pid: u32) -> Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("process {pid} is gone"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Ok(ProcessFigures {
            threads: field("Threads:"),
            rss_kib: field("VmRSS:"),
        })
    }

    /// The larger of each figure.
    pub fn max(self, other: Self) -> Self {
        ProcessFigures {
            threads: self.threads.max(other.threads),
            rss_kib: self.rss_kib.max(other.rss_kib),
        }
    }
}

/// The machine's load average over one minute.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}
