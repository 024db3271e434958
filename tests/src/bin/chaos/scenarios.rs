//! The scenarios. Each starts its own vk (its own node) and Deployment, disturbs them, waits
//! for recovery and fills in an [`Outcome`]: the figures of the report and every bound missed.

use std::{
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use vk_tests::{
    cluster::Cluster,
    fixtures,
    kubelet_client::{Credentials, KubeletClient},
    podman::Podman,
    vk_process::VkProcess,
};

use crate::{
    faults::{self, Component, Frozen, PodmanService, ProcessFigures},
    report::Outcome,
    workload::{Converged, Engine, EngineView, ProviderKind, RestartTracker, Workload, node_ready},
};

/// `--full-resync-period` of every vk: "statuses true again within one resync" is measured
/// against it, and a short one keeps the suite short.
const RESYNC: Duration = Duration::from_secs(20);
/// The bound on vk's resumption after the apiserver answers again.
const VK_RESUME_BOUND: Duration = Duration::from_secs(10);
/// How long a Deployment may take to come up before a fault (a loaded machine is slow).
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(240);
/// The bounds of vk's process while a provider call hangs, for `--pod-sync-workers 10`: each
/// hung call holds a blocking thread until the engine's own 120 s request timeout.
pub const THREAD_BOUND: u64 = 64;
pub const RSS_BOUND_MIB: u64 = 128;

/// A scenario: its name, its provider, the pods of its Deployment, and its body.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub provider: ProviderKind,
    pub pods: u32,
    pub run: fn(&mut Outcome, ProviderKind, u32) -> Result<()>,
}

/// Every scenario, in the order the suite runs them.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "apiserver-freeze",
        provider: ProviderKind::Mock,
        pods: 40,
        run: |o, p, n| control_plane(o, p, n, ControlPlaneFault::ApiserverFreeze),
    },
    Scenario {
        name: "apiserver-restart",
        provider: ProviderKind::Mock,
        pods: 40,
        run: |o, p, n| control_plane(o, p, n, ControlPlaneFault::ApiserverRestart),
    },
    Scenario {
        name: "etcd-restart",
        provider: ProviderKind::Mock,
        pods: 40,
        run: |o, p, n| control_plane(o, p, n, ControlPlaneFault::EtcdRestart),
    },
    Scenario {
        name: "kill9",
        provider: ProviderKind::Hyper,
        pods: 40,
        run: kill9,
    },
    Scenario {
        name: "sigterm",
        provider: ProviderKind::Hyper,
        pods: 20,
        run: sigterm,
    },
    Scenario {
        name: "podman-stop",
        provider: ProviderKind::Hyper,
        pods: 20,
        run: podman_stop,
    },
    Scenario {
        name: "engine-hang",
        provider: ProviderKind::Hyper,
        pods: 10,
        run: engine_hang,
    },
    Scenario {
        name: "apiserver-freeze",
        provider: ProviderKind::Hyper,
        pods: 20,
        run: |o, p, n| control_plane(o, p, n, ControlPlaneFault::ApiserverFreeze),
    },
    Scenario {
        name: "apiserver-restart",
        provider: ProviderKind::Hyper,
        pods: 20,
        run: |o, p, n| control_plane(o, p, n, ControlPlaneFault::ApiserverRestart),
    },
    Scenario {
        name: "etcd-restart",
        provider: ProviderKind::Hyper,
        pods: 20,
        run: |o, p, n| control_plane(o, p, n, ControlPlaneFault::EtcdRestart),
    },
];

impl Scenario {
    /// `NAME/PROVIDER`, as `--scenario` takes it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.provider.name())
    }
}

/// One scenario's vk, Deployment and view of the provider's pods.
struct Stage {
    cluster: &'static Cluster,
    vk: VkProcess,
    workload: Workload,
    engine: Engine,
    restarts: RestartTracker,
}

impl Stage {
    fn start(name: &str, provider: ProviderKind, replicas: u32) -> Result<Stage> {
        let cluster = Cluster::shared();
        let namespace = cluster.namespace(&format!("chaos-{name}"));
        let mut builder = cluster
            .vk()
            .node_prefix(&format!("chaos-{name}"))
            .provider(provider.name())
            .log_level("info")
            .args(["--full-resync-period", &format!("{}s", RESYNC.as_secs())]);
        if provider == ProviderKind::Hyper {
            let podman = Podman::shared();
            // The provider's default capacity of 20 pods is less than a rolling update needs.
            let capacity = "[capacity]\npods = \"110\"\n";
            builder =
                builder.provider_config(&podman.provider_config(&podman.endpoint(), capacity));
        }
        let vk = builder.start_ready(Duration::from_secs(60));
        let engine = Engine::new(provider, cluster, vk.port())?;
        let workload = Workload::new(cluster, namespace, vk.node_name(), provider, replicas);
        Ok(Stage {
            cluster,
            vk,
            workload,
            engine,
            restarts: RestartTracker::default(),
        })
    }

    fn node(&self) -> String {
        self.vk.node_name().to_string()
    }

    /// A look at the API and the engine, which also feeds the restart tracker.
    fn look(&mut self) -> Result<(Vec<Value>, EngineView)> {
        let pods = self.workload.node_pods()?;
        let view = self.engine.view(&self.node())?;
        self.restarts.observe_engine(&view);
        self.restarts.observe_api(&pods);
        Ok((pods, view))
    }

    /// Waits until `count` pods run with the current template; returns how long it took.
    fn wait_running(&mut self, count: u32, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        loop {
            let (pods, _) = self.look()?;
            let running = self.workload.running_current(&pods).len() as u32;
            if running >= count {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                bail!("only {running} of {count} pods Running after {timeout:?}");
            }
            sleep(Duration::from_secs(1));
        }
    }

    fn converge(&mut self, since: Instant, deadline: Duration) -> Converged {
        let node = self.node();
        crate::workload::converge(
            self.cluster,
            &self.workload,
            &self.engine,
            &node,
            &mut self.restarts,
            since,
            deadline,
        )
    }

    /// Creates a pod bound to the node (no scheduler, no controller in the way) and returns
    /// how long after `since` vk had it Running.
    fn probe(&self, name: &str, since: Instant, timeout: Duration) -> Result<Duration> {
        let spec = json!({
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "app",
                "image": match self.engine {
                    Engine::Hyper(_) => vk_tests::podman::IMAGE,
                    Engine::Mock { .. } => fixtures::IMAGE,
                },
                "imagePullPolicy": "Never",
                "command": ["sleep", "2147483647"],
            }],
        });
        let mut pod = fixtures::pod(self.workload.namespace(), name, &self.node(), spec);
        pod["spec"]["nodeName"] = json!(self.node());
        loop {
            let output = self
                .cluster
                .kubectl_input(["create", "-f", "-"], &pod.to_string());
            if output.status.success() {
                break;
            }
            if since.elapsed() > timeout {
                bail!(
                    "cannot create pod {name}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            sleep(Duration::from_millis(200));
        }
        loop {
            let output = self.cluster.kubectl([
                "get",
                "pod",
                name,
                "-n",
                self.workload.namespace(),
                "--request-timeout=5s",
                "-o",
                "json",
            ]);
            let running = output.status.success()
                && serde_json::from_slice::<Value>(&output.stdout)
                    .is_ok_and(|pod| fixtures::running(&pod));
            if running {
                return Ok(since.elapsed());
            }
            if since.elapsed() > timeout {
                bail!("pod {name} not Running {timeout:?} after the fault ended");
            }
            sleep(Duration::from_millis(200));
        }
    }

    /// Puts the last tally of `converged` into `outcome`.
    fn settle(&self, outcome: &mut Outcome, converged: Converged, what: &str) {
        let tally = converged.tally;
        outcome.lost = outcome.lost.max(tally.lost);
        outcome.duplicated = outcome.duplicated.max(tally.duplicated);
        outcome.stuck = outcome.stuck.max(tally.stuck);
        outcome.restarted = self.restarts.restarted();
        outcome.notes.extend(tally.notes.into_iter().take(20));
        outcome.check(converged.node_ready, format!("node not Ready after {what}"));
        outcome.recovered(converged.recovery, what);
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.vk.kill();
        if matches!(self.engine, Engine::Hyper(_)) {
            // The provider's containers outlive vk by design: remove this node's.
            let _ =
                std::process::Command::new(vk_tests::paths::workspace().join("scripts/podman.sh"))
                    .args(["clean-node", &self.node()])
                    .status();
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum ControlPlaneFault {
    /// SIGSTOP of the apiserver for 60 s.
    ApiserverFreeze,
    /// SIGKILL of the apiserver (a SIGTERM holds it for a minute, until watches drain), 30 s
    /// without it (a slow start, long enough for clients' back-off to grow), then `cluster.sh
    /// up` starts it again.
    ApiserverRestart,
    /// SIGTERM of etcd, 5 s without it, then `cluster.sh up` starts it again.
    EtcdRestart,
}

/// A fault of the control plane in the middle of a rolling update: vk must resume within
/// [`VK_RESUME_BOUND`] of the apiserver answering, and the rollout must complete.
fn control_plane(
    outcome: &mut Outcome,
    provider: ProviderKind,
    pods: u32,
    fault: ControlPlaneFault,
) -> Result<()> {
    let mut stage = Stage::start(&outcome.scenario, provider, pods)?;
    let cluster = stage.cluster;
    stage.workload.apply()?;
    let rollout = stage.wait_running(pods, ROLLOUT_TIMEOUT)?;
    outcome.seconds("first_rollout_s", rollout);
    stage.workload.roll()?;
    sleep(Duration::from_secs(2));
    let fault_started = Instant::now();
    let answered = match fault {
        ControlPlaneFault::ApiserverFreeze => {
            let frozen = Frozen::new(Component::Apiserver.pid(cluster)?)?;
            sleep(Duration::from_secs(60));
            drop(frozen);
            faults::apiserver_answers(cluster, Duration::from_secs(60))?
        }
        ControlPlaneFault::ApiserverRestart | ControlPlaneFault::EtcdRestart => {
            let (component, signal) = match fault {
                ControlPlaneFault::EtcdRestart => (Component::Etcd, "TERM"),
                _ => (Component::Apiserver, "KILL"),
            };
            let pid = component.pid(cluster)?;
            faults::signal(pid, signal)?;
            faults::wait_gone(pid, Duration::from_secs(60))?;
            sleep(match fault {
                ControlPlaneFault::EtcdRestart => Duration::from_secs(5),
                _ => Duration::from_secs(30),
            });
            let mut up = faults::start_stopped_components(cluster)?;
            let answered = faults::apiserver_answers(cluster, Duration::from_secs(120));
            let status = up.wait()?;
            outcome.check(status.success(), "cluster.sh up failed after the restart");
            answered?
        }
    };
    outcome.seconds("apiserver_unavailable_s", answered - fault_started);
    let resume = stage.probe("probe", answered, Duration::from_secs(60))?;
    outcome.seconds("vk_resume_s", resume);
    outcome.bound(
        "vk resumed (s after the apiserver answered)",
        resume.as_secs_f64(),
        VK_RESUME_BOUND.as_secs_f64(),
    );
    let converged = stage.converge(answered, Duration::from_secs(120));
    stage.settle(outcome, converged, "the apiserver answered");
    stage.vk.assert_running();
    Ok(())
}

/// `kill -9` of vk ten times during a rollout and a rolling update (started after the seventh
/// kill, so that the last three land in it): within 60 s of the last restart every pod runs the
/// new template, once, unrestarted.
fn kill9(outcome: &mut Outcome, provider: ProviderKind, pods: u32) -> Result<()> {
    /// Seconds between kills: uneven, so kills land in different phases of a pod's creation.
    const PAUSES: [u64; 10] = [4, 6, 3, 7, 5, 4, 8, 3, 6, 5];
    const BOUND: Duration = Duration::from_secs(60);
    let mut stage = Stage::start(&outcome.scenario, provider, pods)?;
    stage.workload.apply()?;
    let mut restarted_at = Instant::now();
    let mut updated_at_last_kill = 0;
    for (kill, pause) in PAUSES.iter().enumerate() {
        sleep(Duration::from_secs(*pause));
        // Before each kill: what vk started so far must survive it untouched.
        let (pods, _) = stage.look()?;
        updated_at_last_kill = stage.workload.running_current(&pods).len();
        stage.vk.kill();
        sleep(Duration::from_millis(500));
        stage.vk.restart();
        restarted_at = Instant::now();
        if kill == 6 {
            stage.workload.roll()?;
        }
    }
    outcome.figure("kills", PAUSES.len());
    // Pods Running with the new template at the last kill: how much of the update was left.
    outcome.figure("updated_pods_at_last_kill", updated_at_last_kill);
    let converged = stage.converge(restarted_at, BOUND + Duration::from_secs(30));
    if let Some(recovery) = converged.recovery {
        outcome.bound(
            "every pod Running with the new template (s after the last restart)",
            recovery.as_secs_f64(),
            BOUND.as_secs_f64(),
        );
    }
    outcome.figure("adoptions_logged", adopted_lines(&stage.vk.log()));
    stage.settle(outcome, converged, "the last restart");
    Ok(())
}

/// How many times vk's log says it adopted pods at start-up.
fn adopted_lines(log: &str) -> usize {
    log.lines().filter(|l| l.contains("adopted")).count()
}

/// SIGTERM to vk during a rollout: the pods keep running while no vk runs, and the next vk
/// adopts them without restarting any.
fn sigterm(outcome: &mut Outcome, provider: ProviderKind, pods: u32) -> Result<()> {
    const PAUSE: Duration = Duration::from_secs(10);
    let mut stage = Stage::start(&outcome.scenario, provider, pods)?;
    stage.workload.apply()?;
    stage.wait_running(pods / 2, ROLLOUT_TIMEOUT)?;
    let stopping = Instant::now();
    let status = stage.vk.stop();
    outcome.seconds("vk_stop_s", stopping.elapsed());
    outcome.check(
        status.success(),
        format!("vk exited with {status} on SIGTERM"),
    );
    let (_, before) = stage.look()?;
    sleep(PAUSE);
    let (_, after) = stage.look()?;
    let kept = before
        .iter()
        .filter(|(uid, units)| {
            after.get(*uid).is_some_and(|a| {
                a.infra == units.infra
                    && a.apps.len() == units.apps.len()
                    && a.apps.iter().zip(&units.apps).all(|(a, b)| a.same_start(b))
            })
        })
        .count();
    outcome.figure("pods_on_engine_at_stop", before.len());
    outcome.figure("pods_kept_while_stopped", kept);
    outcome.check(
        kept == before.len(),
        format!(
            "only {kept} of {} pods' containers lived on while vk was stopped",
            before.len()
        ),
    );
    stage.vk.restart();
    let restarted = Instant::now();
    let converged = stage.converge(restarted, Duration::from_secs(120));
    outcome.figure("adoptions_logged", adopted_lines(&stage.vk.log()));
    stage.settle(outcome, converged, "vk restarted");
    Ok(())
}

/// Pods whose app container status names another container than the engine runs, or does not
/// say it runs.
fn untrue_statuses(workload_pods: &[&Value], engine: &EngineView) -> usize {
    workload_pods
        .iter()
        .filter(|pod| {
            let status = &pod["status"]["containerStatuses"][0];
            let id = status["containerID"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("docker://");
            let on_engine = pod["metadata"]["uid"]
                .as_str()
                .and_then(|uid| engine.get(uid))
                .and_then(|units| units.apps.first());
            let same = on_engine.is_some_and(|app| !id.is_empty() && app.id.starts_with(id));
            !(same && status["state"]["running"].is_object())
        })
        .count()
}

/// The Podman service stopped for 30 s: the containers live on, the node is NotReady while the
/// provider's ping fails and Ready after, and statuses are true within one resync.
fn podman_stop(outcome: &mut Outcome, provider: ProviderKind, pods: u32) -> Result<()> {
    const OUTAGE: Duration = Duration::from_secs(30);
    let mut stage = Stage::start(&outcome.scenario, provider, pods)?;
    let cluster = stage.cluster;
    let node = stage.node();
    stage.workload.apply()?;
    stage.wait_running(pods, ROLLOUT_TIMEOUT)?;
    stage.look()?;
    PodmanService::stop()?;
    let stopped = Instant::now();
    let mut not_ready_after = None;
    while stopped.elapsed() < OUTAGE {
        if not_ready_after.is_none() && node_ready(cluster, &node) == Some(false) {
            not_ready_after = Some(stopped.elapsed());
        }
        sleep(Duration::from_secs(1));
    }
    PodmanService::start()?;
    let back = Instant::now();
    match not_ready_after {
        Some(after) => outcome.seconds("not_ready_after_s", after),
        None => outcome.check(false, "the node stayed Ready while the engine was down"),
    }
    let mut ready_again = None;
    let mut statuses_true = None;
    while back.elapsed() < RESYNC + Duration::from_secs(30)
        && (ready_again.is_none() || statuses_true.is_none())
    {
        if ready_again.is_none() && node_ready(cluster, &node) == Some(true) {
            ready_again = Some(back.elapsed());
        }
        if statuses_true.is_none() {
            let (pods, view) = stage.look()?;
            let mine: Vec<&Value> = pods
                .iter()
                .filter(|p| p["metadata"]["namespace"] == stage.workload.namespace())
                .collect();
            if untrue_statuses(&mine, &view) == 0 {
                statuses_true = Some(back.elapsed());
            }
        }
        sleep(Duration::from_secs(1));
    }
    match ready_again {
        Some(after) => outcome.seconds("ready_again_s", after),
        None => outcome.check(false, "the node was not Ready again"),
    }
    match statuses_true {
        Some(after) => {
            outcome.seconds("statuses_true_s", after);
            outcome.bound(
                "statuses true again (s after Podman answered)",
                after.as_secs_f64(),
                (RESYNC + Duration::from_secs(5)).as_secs_f64(),
            );
        }
        None => outcome.check(false, "pod statuses did not match the engine again"),
    }
    let converged = stage.converge(back, Duration::from_secs(90));
    stage.settle(outcome, converged, "Podman answered");
    Ok(())
}

/// A provider call that hangs: the engine SIGSTOPped for 45 s while pods are added and
/// deleted. vk's kubelet API answers, its watch goes on, its threads and memory stay bounded,
/// and everything converges once the engine answers.
fn engine_hang(outcome: &mut Outcome, provider: ProviderKind, pods: u32) -> Result<()> {
    const FREEZE: Duration = Duration::from_secs(45);
    const HEALTHZ_BOUND: Duration = Duration::from_secs(1);
    const ADDED: u32 = 4;
    let mut stage = Stage::start(&outcome.scenario, provider, pods)?;
    let cluster = stage.cluster;
    stage.workload.apply()?;
    stage.wait_running(pods, ROLLOUT_TIMEOUT)?;
    let (before, _) = stage.look()?;
    let baseline = ProcessFigures::of(stage.vk.pid())?;
    outcome.figure("threads_before", baseline.threads);
    outcome.figure("rss_mib_before", baseline.rss_kib / 1024);
    let kubelet = KubeletClient::new(stage.vk.port(), Credentials::apiserver(cluster));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ask = |path: &'static str| -> Result<(Duration, String)> {
        let client = kubelet.clone();
        let started = Instant::now();
        let answer = runtime.block_on(async move {
            let request = tokio::spawn(async move { client.get(path).await });
            tokio::time::timeout(Duration::from_secs(5), request).await
        });
        match answer {
            Ok(Ok((status, body))) if status.is_success() => Ok((started.elapsed(), body)),
            Ok(Ok((status, _))) => bail!("{path}: {status}"),
            Ok(Err(_)) => bail!("{path}: vk's kubelet port does not answer"),
            Err(_) => bail!("{path}: no answer within 5 s"),
        }
    };

    let frozen = Frozen::new(PodmanService::pid()?)?;
    let froze = Instant::now();
    stage.workload.scale(pods + ADDED)?;
    let deleted: Vec<String> = before
        .iter()
        .filter(|p| p["metadata"]["namespace"] == stage.workload.namespace())
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .take(2)
        .collect();
    for name in &deleted {
        cluster.kubectl_ok([
            "delete",
            "pod",
            name,
            "-n",
            stage.workload.namespace(),
            "--wait=false",
        ]);
    }
    let mut peak = baseline;
    let mut healthz_slowest = Duration::ZERO;
    let mut healthz_failures = 0;
    let mut listed_new_pods = 0;
    while froze.elapsed() < FREEZE {
        match ask("/healthz") {
            Ok((took, _)) => healthz_slowest = healthz_slowest.max(took),
            Err(error) => {
                healthz_failures += 1;
                outcome.notes.push(format!("{error:#}"));
            }
        }
        // vk's own pod list comes from its watch, which must go on while the engine hangs.
        if let Ok((_, body)) = ask("/pods") {
            let list: Value = serde_json::from_str(&body).unwrap_or_default();
            listed_new_pods = list["items"].as_array().map_or(0, |items| {
                items
                    .iter()
                    .filter(|p| p["metadata"]["namespace"] == stage.workload.namespace())
                    .count()
            });
        }
        peak = peak.max(ProcessFigures::of(stage.vk.pid())?);
        sleep(Duration::from_secs(1));
    }
    drop(frozen);
    let resumed = Instant::now();
    outcome.figure("threads_peak", peak.threads);
    outcome.figure("rss_mib_peak", peak.rss_kib / 1024);
    outcome.seconds("healthz_slowest_s", healthz_slowest);
    outcome.figure("healthz_failures", healthz_failures);
    outcome.figure("pods_listed_during_hang", listed_new_pods);
    outcome.check(
        healthz_failures == 0,
        "/healthz failed while the engine hung",
    );
    outcome.bound(
        "/healthz latency during the hang (s)",
        healthz_slowest.as_secs_f64(),
        HEALTHZ_BOUND.as_secs_f64(),
    );
    outcome.bound("vk's threads", peak.threads as f64, THREAD_BOUND as f64);
    outcome.bound(
        "vk's RSS (MiB)",
        (peak.rss_kib / 1024) as f64,
        RSS_BOUND_MIB as f64,
    );
    // The deployment's new pods were bound while the engine hung: vk's store must list them.
    outcome.check(
        listed_new_pods as u32 >= pods + ADDED,
        format!(
            "vk's /pods listed {listed_new_pods} of the workload's pods during the hang, not {}",
            pods + ADDED
        ),
    );
    let converged = stage.converge(resumed, Duration::from_secs(150));
    let after = ProcessFigures::of(stage.vk.pid()).context("vk is gone")?;
    outcome.figure("threads_after", after.threads);
    outcome.figure("rss_mib_after", after.rss_kib / 1024);
    stage.settle(outcome, converged, "the engine resumed");
    Ok(())
}
