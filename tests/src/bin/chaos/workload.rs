//! The workload every scenario disturbs: one Deployment on the scenario's vk node, and what the
//! API and the provider's engine show of it, reduced to the figures of the report.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use vk_tests::{
    cluster::{Cluster, Namespace},
    fixtures,
    kubelet_client::{Credentials, KubeletClient},
    podman::{self, Podman},
};

/// The Deployment's name and its pods' `app` label.
const APP: &str = "chaos";
/// The template label that tells one rollout's pods from the next one's.
const GENERATION_LABEL: &str = "chaos-generation";
/// How long a clean state must hold before a scenario counts as recovered: a container that a
/// call abandoned by vk creates late shows up within this time.
const SETTLE: Duration = Duration::from_secs(5);

/// Which provider runs the pods, and so where their containers are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Pods live in vk's memory; the provider's view is vk's `/runningpods/`.
    Mock,
    /// Pods are containers on the Podman service; the view is `podman ps` by label.
    Hyper,
}

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Mock => "mock",
            ProviderKind::Hyper => "hyper",
        }
    }
}

/// A Deployment of `replicas` pods pinned to one node, rolled by bumping a template label.
#[derive(Debug)]
pub struct Workload {
    cluster: &'static Cluster,
    namespace: Namespace,
    node: String,
    provider: ProviderKind,
    replicas: u32,
    generation: u32,
}

impl Workload {
    pub fn new(
        cluster: &'static Cluster,
        namespace: Namespace,
        node: &str,
        provider: ProviderKind,
        replicas: u32,
    ) -> Self {
        Workload {
            cluster,
            namespace,
            node: node.to_string(),
            provider,
            replicas,
            generation: 1,
        }
    }

    pub fn namespace(&self) -> &str {
        self.namespace.name()
    }

    fn container(&self) -> Value {
        // `sleep` as PID 1 ignores SIGTERM: the short grace period of the template ends it.
        let image = match self.provider {
            ProviderKind::Mock => fixtures::IMAGE,
            ProviderKind::Hyper => podman::IMAGE,
        };
        json!({
            "name": "app",
            "image": image,
            "imagePullPolicy": "Never",
            "command": ["sleep", "2147483647"],
        })
    }

    fn manifest(&self) -> Value {
        let mut deployment =
            fixtures::deployment(self.namespace.name(), APP, &self.node, self.replicas);
        let template = &mut deployment["spec"]["template"];
        template["metadata"]["labels"][GENERATION_LABEL] = json!(self.generation.to_string());
        let spec = &mut template["spec"];
        spec["terminationGracePeriodSeconds"] = json!(1);
        spec["automountServiceAccountToken"] = json!(false);
        spec["containers"] = json!([self.container()]);
        deployment
    }

    /// Applies the Deployment as it stands (retrying while the API does not answer).
    pub fn apply(&self) -> Result<()> {
        let manifest = self.manifest().to_string();
        let started = Instant::now();
        loop {
            let output = self.cluster.kubectl_input(["apply", "-f", "-"], &manifest);
            if output.status.success() {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "kubectl apply of the Deployment failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Starts a rolling update: a new template generation.
    pub fn roll(&mut self) -> Result<()> {
        self.generation += 1;
        self.apply()
    }

    /// Scales the Deployment to `replicas`.
    pub fn scale(&mut self, replicas: u32) -> Result<()> {
        self.replicas = replicas;
        self.apply()
    }

    /// Every pod bound to the node, any namespace (the probe pods of a scenario included).
    pub fn node_pods(&self) -> Result<Vec<Value>> {
        let output = self.cluster.kubectl([
            "get",
            "pods",
            "--all-namespaces",
            "--request-timeout=5s",
            "--field-selector",
            &format!("spec.nodeName={}", self.node),
            "-o",
            "json",
        ]);
        if !output.status.success() {
            bail!(
                "kubectl get pods: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let list: Value = serde_json::from_slice(&output.stdout).context("kubectl's JSON")?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    fn is_mine(&self, pod: &Value) -> bool {
        pod["metadata"]["namespace"] == self.namespace.name()
            && pod["metadata"]["labels"]["app"] == APP
    }

    fn is_current(&self, pod: &Value) -> bool {
        let label = pod["metadata"]["labels"][GENERATION_LABEL].as_str();
        label.and_then(|g| g.parse().ok()) == Some(self.generation)
    }

    /// Names of the workload's pods that are Running, with the current template.
    pub fn running_current(&self, pods: &[Value]) -> Vec<String> {
        pods.iter()
            .filter(|p| self.is_mine(p) && self.is_current(p) && fixtures::running(p))
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    /// The figures of the report for one look at the API (`pods`: every pod on the node) and at
    /// the provider's engine.
    pub fn tally(&self, pods: &[Value], engine: &EngineView) -> Tally {
        let mut tally = Tally::default();
        let uids: BTreeSet<&str> = pods.iter().filter_map(|p| uid(p)).collect();
        let mut running_current = 0u32;
        for pod in pods.iter().filter(|p| self.is_mine(p)) {
            let name = pod["metadata"]["name"].as_str().unwrap_or("?");
            let units = uid(pod).and_then(|u| engine.get(u));
            let complete = units.is_some_and(|u| u.infra >= 1 && !u.apps.is_empty());
            if !pod["metadata"]["deletionTimestamp"].is_null() {
                tally.stuck += 1;
                tally.notes.push(format!("{name}: still terminating"));
            } else if fixtures::running(pod) && !complete {
                tally.lost += 1;
                tally
                    .notes
                    .push(format!("{name}: Running in the API, containers gone"));
            } else if fixtures::running(pod) && self.is_current(pod) {
                running_current += 1;
            } else if self.is_current(pod) {
                let units = units.map_or_else(
                    || "none".to_string(),
                    |u| format!("{} infra, {} app", u.infra, u.apps.len()),
                );
                tally.notes.push(format!(
                    "{} (containers on the engine: {units})",
                    fixtures::describe_pods(std::slice::from_ref(pod)).trim()
                ));
            }
        }
        let wanted = self.replicas.saturating_sub(running_current);
        tally.stuck += wanted;
        if wanted > 0 {
            tally.notes.push(format!(
                "{wanted} of {} wanted pods not Running with the current template",
                self.replicas
            ));
        }
        for (pod_uid, units) in engine {
            if !uids.contains(pod_uid.as_str()) {
                tally.duplicated += 1;
                tally
                    .notes
                    .push(format!("containers of pod {pod_uid}, which the API lacks"));
                continue;
            }
            let extra = units.infra.saturating_sub(1) + units.apps.len().saturating_sub(1);
            if extra > 0 {
                tally.duplicated += 1;
                tally.notes.push(format!(
                    "pod {pod_uid}: {} infra and {} app containers",
                    units.infra,
                    units.apps.len()
                ));
            }
        }
        tally
    }
}

fn uid(pod: &Value) -> Option<&str> {
    pod["metadata"]["uid"].as_str()
}

/// What one look at the API and the engine counts against a scenario.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Pods the API shows Running whose containers are gone.
    pub lost: u32,
    /// Pods with more than one infra or app container, or containers of pods the API lacks.
    pub duplicated: u32,
    /// Wanted pods not Running with the current template, and pods stuck terminating.
    pub stuck: u32,
    /// One line per problem, for the log.
    pub notes: Vec<String>,
}

impl Tally {
    pub fn clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.stuck == 0
    }
}

/// One app container as the engine shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppContainer {
    pub id: String,
    pub started_at: String,
    pub running: bool,
}

impl AppContainer {
    /// Whether `other` is this container, started the same time (not restarted).
    pub fn same_start(&self, other: &AppContainer) -> bool {
        self.id == other.id && self.started_at == other.started_at
    }
}

/// A pod's containers on the engine.
#[derive(Debug, Default, Clone)]
pub struct PodUnits {
    pub infra: usize,
    pub apps: Vec<AppContainer>,
}

/// The provider's pods by pod UID.
pub type EngineView = BTreeMap<String, PodUnits>;

/// Where a scenario looks for the provider's pods.
#[derive(Debug)]
pub enum Engine {
    Hyper(&'static Podman),
    /// vk's `/runningpods/` (the mock provider's own list), as the apiserver would ask it.
    Mock {
        client: KubeletClient,
        runtime: tokio::runtime::Runtime,
    },
}

impl Engine {
    pub fn new(provider: ProviderKind, cluster: &'static Cluster, vk_port: u16) -> Result<Self> {
        Ok(match provider {
            ProviderKind::Hyper => Engine::Hyper(Podman::shared()),
            ProviderKind::Mock => Engine::Mock {
                client: KubeletClient::new(vk_port, Credentials::apiserver(cluster)),
                runtime: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
            },
        })
    }

    /// The provider's pods on `node` now.
    pub fn view(&self, node: &str) -> Result<EngineView> {
        match self {
            Engine::Hyper(podman) => podman_view(podman, node),
            Engine::Mock { client, runtime } => {
                let client = client.clone();
                let answer = runtime.block_on(async move {
                    let request = tokio::spawn(async move { client.get("/runningpods/").await });
                    tokio::time::timeout(Duration::from_secs(10), request).await
                });
                let (status, body) = match answer {
                    Ok(Ok(answer)) => answer,
                    Ok(Err(_)) => bail!("vk's kubelet port does not answer"),
                    Err(_) => bail!("/runningpods/ took over 10 s"),
                };
                if !status.is_success() {
                    bail!("/runningpods/: {status} {body}");
                }
                let list: Value = serde_json::from_str(&body)?;
                let mut view = EngineView::new();
                for pod in list["items"].as_array().into_iter().flatten() {
                    let units = view
                        .entry(uid(pod).unwrap_or_default().to_string())
                        .or_default();
                    units.infra += 1;
                    for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
                        units.apps.push(AppContainer {
                            id: container["name"].as_str().unwrap_or_default().to_string(),
                            started_at: String::new(),
                            running: true,
                        });
                    }
                }
                Ok(view)
            }
        }
    }
}

/// `podman ps -a` of the node's containers, grouped by the provider's labels.
fn podman_view(podman: &Podman, node: &str) -> Result<EngineView> {
    let output = podman.podman([
        "ps",
        "-a",
        "--filter",
        &format!("label=io.virtual-kubelet.node={node}"),
        "--format",
        "json",
    ]);
    if !output.status.success() {
        bail!("podman ps: {}", String::from_utf8_lossy(&output.stderr));
    }
    let listed: Vec<Value> = serde_json::from_slice(&output.stdout).context("podman's JSON")?;
    let mut view = EngineView::new();
    for container in listed {
        let labels = &container["Labels"];
        let Some(pod_uid) = labels["io.kubernetes.pod.uid"].as_str() else {
            continue;
        };
        let units = view.entry(pod_uid.to_string()).or_default();
        match labels["io.virtual-kubelet.role"].as_str() {
            Some("infra") => units.infra += 1,
            Some("app") => units.apps.push(AppContainer {
                id: container["Id"].as_str().unwrap_or_default().to_string(),
                started_at: container["StartedAt"].to_string(),
                running: container["State"] == "running",
            }),
            _ => {}
        }
    }
    Ok(view)
}

/// Notices app containers that were replaced or started again: the first (ID, start time) seen
/// for each pod must hold for as long as the pod lives.
#[derive(Debug, Default)]
pub struct RestartTracker {
    first_seen: HashMap<String, AppContainer>,
    restarted: BTreeSet<String>,
}

impl RestartTracker {
    /// Compares a look at the engine with the first one of each pod.
    pub fn observe_engine(&mut self, engine: &EngineView) {
        for (pod_uid, units) in engine {
            // A container created but not started yet (vk killed in between) is not tracked
            // until it runs: starting it then is no restart.
            let [app] = units.apps.as_slice() else {
                continue;
            };
            if !app.running {
                continue;
            }
            match self.first_seen.get(pod_uid) {
                Some(first) if !first.same_start(app) => {
                    self.restarted.insert(pod_uid.clone());
                }
                Some(_) => {}
                None => {
                    self.first_seen.insert(pod_uid.clone(), app.clone());
                }
            }
        }
    }

    /// Counts pods whose status reports a container restart.
    pub fn observe_api(&mut self, pods: &[Value]) {
        for pod in pods {
            let restarted = pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["restartCount"].as_i64().unwrap_or(0) > 0);
            if restarted && let Some(pod_uid) = uid(pod) {
                self.restarted.insert(pod_uid.to_string());
            }
        }
    }

    pub fn restarted(&self) -> u32 {
        self.restarted.len() as u32
    }
}

/// How a scenario ended: the last tally, when it first became clean with the Node Ready (and
/// stayed so for [`SETTLE`]) counted from `since`, and whether the Node was Ready at the end.
#[derive(Debug)]
pub struct Converged {
    pub tally: Tally,
    pub recovery: Option<Duration>,
    pub node_ready: bool,
}

/// Whether node `node` is Ready (None: the API did not answer).
pub fn node_ready(cluster: &Cluster, node: &str) -> Option<bool> {
    let output = cluster.kubectl([
        "get",
        "node",
        node,
        "--request-timeout=5s",
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
    ]);
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim() == "True")
}

/// Looks at the API and the engine every second until the workload is clean and the Node
/// Ready for [`SETTLE`], or until `deadline` after `since`; each look feeds `restarts`.
pub fn converge(
    cluster: &Cluster,
    workload: &Workload,
    engine: &Engine,
    node: &str,
    restarts: &mut RestartTracker,
    since: Instant,
    deadline: Duration,
) -> Converged {
    let mut clean_since: Option<Duration> = None;
    let mut last = Tally::default();
    let mut ready;
    loop {
        let look = workload
            .node_pods()
            .and_then(|pods| Ok((engine.view(node)?, pods)));
        match look {
            Ok((view, pods)) => {
                restarts.observe_engine(&view);
                restarts.observe_api(&pods);
                last = workload.tally(&pods, &view);
                ready = node_ready(cluster, node) == Some(true);
                if !ready {
                    last.notes.push(format!("node {node} is not Ready"));
                }
                if last.clean() && ready {
                    let first_clean = *clean_since.get_or_insert(since.elapsed());
                    if since.elapsed() >= first_clean + SETTLE {
                        return Converged {
                            tally: last,
                            recovery: Some(first_clean),
                            node_ready: ready,
                        };
                    }
                } else {
                    clean_since = None;
                }
            }
            Err(error) => {
                clean_since = None;
                ready = false;
                last.notes = vec![format!("cannot look: {error:#}")];
            }
        }
        if since.elapsed() >= deadline {
            return Converged {
                tally: last,
                recovery: None,
                node_ready: ready,
            };
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
