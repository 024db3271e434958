//! `vk-bench`, the client side of `scripts/bench.sh`.
//!
//! - `run`: creates N pods (bound directly to the node, or through a Deployment and the
//!   scheduler), watches them until all are Running, deletes them, watches until all are gone,
//!   and writes the timings, the requests vk made (from the apiserver's audit log), the requests
//!   the apiserver served (from its metrics) and the CPU each process used, as JSON.
//! - `ceiling`: what a plain kube-rs client reaches against the same apiserver with the same
//!   concurrency and no vk: pod creates, pod status patches and pod deletes per second.
//! - `report`: prints the results of a bench run compactly and writes them as one JSON file.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fs,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace, Node, Pod, ServiceAccount},
};
use kube::{
    Api, Client, Config, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "The benchmark client of scripts/bench.sh")]
enum Command {
    /// Start N pods on a vk node, measure, delete them, measure.
    Run(RunArgs),
    /// The apiserver's ceiling for a plain client: creates, status patches, deletes per second.
    Ceiling(CeilingArgs),
    /// Print result files compactly and combine them into one JSON file.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
struct Common {
    /// An admin kubeconfig.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The namespace to create, use and delete.
    #[arg(long)]
    namespace: String,
    /// The node the pods go to.
    #[arg(long)]
    node: String,
    #[arg(long, default_value_t = 1000)]
    pods: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Where to write the result (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Processes whose CPU time to report, as NAME=PID (repeatable).
    #[arg(long = "proc", value_parser = parse_proc)]
    procs: Vec<(String, u32)>,
    /// Clock ticks per second of /proc/*/stat (getconf CLK_TCK).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Direct,
    Deployment,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, value_enum)]
    mode: Mode,
    /// automountServiceAccountToken: true keeps the default (a projected token volume).
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    automount: bool,
    /// vk's process id (its peak RSS and CPU time are reported).
    #[arg(long)]
    vk_pid: u32,
    /// The apiserver's audit log (only node users' requests are in it).
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// A name for this run in the report.
    #[arg(long)]
    label: String,
    /// The provider vk runs (recorded in the report).
    #[arg(long, default_value = "mock")]
    provider: String,
    #[command(flatten)]
    pod: PodOptions,
}

/// What the bench pods' container runs; unset options keep the defaults (busybox running
/// `sleep infinity`, the apiserver's pull policy and grace period).
#[derive(Debug, Default, clap::Args)]
struct PodOptions {
    /// The container image.
    #[arg(long)]
    image: Option<String>,
    /// The container's imagePullPolicy.
    #[arg(long)]
    pull_policy: Option<String>,
    /// The container's command, words separated by spaces.
    #[arg(long, value_delimiter = ' ')]
    command: Option<Vec<String>>,
    /// terminationGracePeriodSeconds.
    #[arg(long)]
    grace: Option<i64>,
}

#[derive(Debug, clap::Args)]
struct CeilingArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Where to write the combined JSON.
    #[arg(long)]
    out: PathBuf,
    /// Free-form facts about the bench (JSON object), copied into the combined JSON.
    #[arg(long, default_value = "{}")]
    meta: String,
    /// Result files of `run` and `ceiling`.
    inputs: Vec<PathBuf>,
}

fn parse_proc(value: &str) -> Result<(String, u32), String> {
    let (name, pid) = value.split_once('=').ok_or("expected NAME=PID")?;
    let pid = pid
        .parse()
        .map_err(|error| format!("bad pid {pid:?}: {error}"))?;
    Ok((name.to_owned(), pid))
}

#[tokio::main]
async fn main() -> Result<()> {
    match Command::parse() {
        Command::Run(args) => run(args).await,
        Command::Ceiling(args) => ceiling(args).await,
        Command::Report(args) => report(&args),
    }
}

async fn client(kubeconfig: &Path) -> Result<Client> {
    let file = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

fn log(message: impl AsRef<str>) {
    eprintln!("bench: {}", message.as_ref());
}

// ---------------------------------------------------------------- pods

const TAINT_KEY: &str = "virtual-kubelet.io/provider";

fn container(pod: &PodOptions) -> Value {
    let mut container = json!({
        "name": "c",
        "image": pod.image.as_deref().unwrap_or("busybox"),
        "command": pod.command.as_deref().map_or(json!(["sleep", "infinity"]), |c| json!(c)),
    });
    if let Some(policy) = &pod.pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }
    container
}

fn pod_spec(
    node_name: Option<&str>,
    node_selector: Option<&str>,
    automount: bool,
    pod: &PodOptions,
) -> Value {
    let mut spec = json!({
        "containers": [container(pod)],
        "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    });
    if let Some(grace) = pod.grace {
        spec["terminationGracePeriodSeconds"] = json!(grace);
    }
    if let Some(node) = node_name {
        spec["nodeName"] = json!(node);
    }
    if let Some(node) = node_selector {
        spec["nodeSelector"] = json!({"kubernetes.io/hostname": node});
    }
    if !automount {
        spec["automountServiceAccountToken"] = json!(false);
    }
    spec
}

fn bench_pod(name: &str, node: &str, automount: bool, pod: &PodOptions) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "vk-bench"}},
        "spec": pod_spec(Some(node), None, automount, pod),
    }))?)
}

fn pod_name(index: usize) -> String {
    format!("bench-{index:05}")
}

/// Creates the namespace and waits until pods can be created in it and vk can resolve their
/// token volumes (the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap exist).
async fn create_namespace(client: &Client, namespace: &str) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}}))?;
    match namespaces.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {
            bail!("namespace {namespace} exists already (a previous bench left it?)")
        }
        Err(error) => return Err(error.into()),
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if accounts.get_opt("default").await?.is_some()
            && maps.get_opt("kube-root-ca.crt").await?.is_some()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "namespace {namespace}: no default ServiceAccount or kube-root-ca.crt after 60 s"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn delete_namespace(client: &Client, namespace: &str) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.delete(namespace, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(error) => return Err(error.into()),
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while namespaces.get_opt(namespace).await?.is_some() {
        if Instant::now() > deadline {
            bail!("namespace {namespace} still there after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// Runs `count` requests made by `request(index)`, `concurrency` at a time; returns how many
/// failed (the first few errors are logged).
async fn fan_out<F, Fut, T>(count: usize, concurrency: usize, request: F) -> usize
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let results: Vec<_> = stream::iter(0..count)
        .map(request)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut failures = 0;
    for error in results.into_iter().filter_map(Result::err) {
        if failures < 5 {
            log(format!("request failed: {error}"));
        }
        failures += 1;
    }
    failures
}

// ---------------------------------------------------------------- the watch

#[derive(Debug, Default, Clone, Copy)]
struct PodTimes {
    /// When this client sent the create request (direct mode).
    created: Option<Instant>,
    /// When the watch first showed the pod.
    seen: Option<Instant>,
    /// When the watch first showed it Running.
    running: Option<Instant>,
    /// When the watch showed it deleted.
    gone: Option<Instant>,
}

#[derive(Debug, Default)]
struct Tracker {
    pods: HashMap<String, PodTimes>,
    running: usize,
    live: usize,
    gone: usize,
    synced: bool,
    /// Names listed again after the watch restarted (the others were deleted meanwhile).
    relist: Option<HashSet<String>>,
    watch_errors: usize,
}

impl Tracker {
    fn apply(&mut self, pod: &Pod, now: Instant) {
        let name = pod.name_any();
        if let Some(relist) = &mut self.relist {
            relist.insert(name.clone());
        }
        let times = self.pods.entry(name).or_default();
        if times.seen.is_none() {
            times.seen = Some(now);
            self.live += 1;
        }
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if running && times.running.is_none() {
            times.running = Some(now);
            self.running += 1;
        }
    }

    fn delete(&mut self, name: &str, now: Instant) {
        if let Some(times) = self.pods.get_mut(name)
            && times.seen.is_some()
            && times.gone.is_none()
        {
            times.gone = Some(now);
            self.live -= 1;
            self.gone += 1;
        }
    }

    fn relisted(&mut self, now: Instant) {
        let Some(listed) = self.relist.take() else {
            return;
        };
        let missing: Vec<String> = self
            .pods
            .keys()
            .filter(|name| !listed.contains(*name))
            .cloned()
            .collect();
        for name in missing {
            self.delete(&name, now);
        }
    }
}

type Shared = Arc<Mutex<Tracker>>;

fn spawn_watch(client: &Client, namespace: &str) -> (Shared, tokio::task::JoinHandle<()>) {
    let tracker = Shared::default();
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let shared = tracker.clone();
    let task = tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            let now = Instant::now();
            let mut tracker = shared.lock().expect("tracker lock");
            match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    tracker.apply(&pod, now);
                }
                Ok(watcher::Event::Delete(pod)) => tracker.delete(&pod.name_any(), now),
                Ok(watcher::Event::Init) => {
                    if tracker.synced {
                        tracker.relist = Some(HashSet::new());
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    tracker.relisted(now);
                    tracker.synced = true;
                }
                Err(error) => {
                    tracker.watch_errors += 1;
                    drop(tracker);
                    log(format!("watch: {error}"));
                }
            }
        }
    });
    (tracker, task)
}

/// Polls the tracker until `done` holds or the time is up; returns whether it held.
async fn wait_for(
    tracker: &Shared,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Tracker) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    let mut next_log = Instant::now() + Duration::from_secs(10);
    loop {
        {
            let tracker = tracker.lock().expect("tracker lock");
            if done(&tracker) {
                return true;
            }
            if Instant::now() >= next_log {
                log(format!(
                    "{what}: {} seen, {} running, {} gone",
                    tracker.pods.len(),
                    tracker.running,
                    tracker.gone
                ));
                next_log += Duration::from_secs(10);
            }
        }
        if Instant::now() >= deadline {
            log(format!("{what}: timed out after {} s", timeout.as_secs()));
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- measurements

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = (p / 100.0 * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

fn latency_summary(mut values: Vec<f64>) -> Value {
    values.sort_by(f64::total_cmp);
    let ms = |p| percentile(&values, p).map(|v| (v * 1e4).round() / 10.0);
    json!({
        "count": values.len(),
        "p50_ms": ms(50.0), "p90_ms": ms(90.0), "p99_ms": ms(99.0), "max_ms": ms(100.0),
    })
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// utime + stime of a process, in clock ticks.
fn proc_ticks(pid: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The machine's CPU time so far, in ticks: (busy, of which niced).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    let busy = v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4)?;
    Some((busy, *v.get(1)?))
}

#[derive(Debug)]
struct CpuSnapshot {
    procs: Vec<(String, Option<u64>)>,
    machine: Option<(u64, u64)>,
    at: Instant,
}

fn cpu_snapshot(procs: &[(String, u32)]) -> CpuSnapshot {
    let mut all: Vec<(String, Option<u64>)> = procs
        .iter()
        .map(|(name, pid)| (name.clone(), proc_ticks(&pid.to_string())))
        .collect();
    all.push(("bench-client".into(), proc_ticks("self")));
    CpuSnapshot {
        procs: all,
        machine: machine_ticks(),
        at: Instant::now(),
    }
}

/// CPU seconds each process used between two snapshots, and the machine's.
fn cpu_delta(before: &CpuSnapshot, after: &CpuSnapshot, clk_tck: u64) -> Value {
    let seconds = |ticks: u64| round3(ticks as f64 / clk_tck as f64);
    let mut out = serde_json::Map::new();
    for ((name, b), (_, a)) in before.procs.iter().zip(&after.procs) {
        if let (Some(b), Some(a)) = (b, a) {
            out.insert(name.clone(), json!(seconds(a.saturating_sub(*b))));
        }
    }
    if let (Some((b, bn)), Some((a, an))) = (before.machine, after.machine) {
        let known: u64 = before
            .procs
            .iter()
            .zip(&after.procs)
            .filter_map(|((_, b), (_, a))| Some(a.as_ref()?.saturating_sub(*b.as_ref()?)))
            .sum();
        out.insert(
            "other_processes".into(),
            json!(seconds((a - b).saturating_sub(known))),
        );
        out.insert("machine_busy".into(), json!(seconds(a - b)));
        out.insert("machine_niced".into(), json!(seconds(an - bn)));
    }
    let wall = after.at.duration_since(before.at).as_secs_f64();
    out.insert("wall".into(), json!(round3(wall)));
    out.insert("cores".into(), json!(num_cpus()));
    Value::Object(out)
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Request counts per "VERB resource[/subresource]".
type Counts = BTreeMap<String, f64>;

/// `apiserver_request_total`, summed per "VERB resource[/subresource]".
async fn apiserver_requests(client: &Client) -> Result<Counts> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let mut verb = "";
        let mut resource = "";
        let mut subresource = "";
        for pair in labels.split("\",") {
            let Some((key, val)) = pair.split_once("=\"") else {
                continue;
            };
            let val = val.trim_end_matches('"');
            match key {
                "verb" => verb = val,
                "resource" => resource = val,
                "subresource" => subresource = val,
                _ => {}
            }
        }
        *counts
            .entry(kind(verb, resource, subresource))
            .or_insert(0.0) += value;
    }
    Ok(counts)
}

fn kind(verb: &str, resource: &str, subresource: &str) -> String {
    if subresource.is_empty() {
        format!("{} {resource}", verb.to_uppercase())
    } else {
        format!("{} {resource}/{subresource}", verb.to_uppercase())
    }
}

fn per_pod(counts: &Counts, pods: usize) -> Value {
    let total: f64 = counts.values().sum();
    let mut by_kind: Vec<(&String, &f64)> = counts.iter().filter(|(_, v)| **v > 0.0).collect();
    by_kind.sort_by(|a, b| b.1.total_cmp(a.1));
    let by_kind: serde_json::Map<String, Value> = by_kind
        .into_iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "total": total,
        "per_pod": round3(total / pods.max(1) as f64),
        "by_kind": by_kind,
    })
}

fn diff(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// Requests of `user` in the audit log after byte `offset`, per "VERB resource[/subresource]".
/// Watches are counted when they start, everything else when it completes.
fn audit_requests(path: &Path, offset: u64, user: &str) -> Result<(Counts, Counts)> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    file.seek(SeekFrom::Start(offset))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let mut counts = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["user"]["username"].as_str() != Some(user) {
            continue;
        }
        let verb = event["verb"].as_str().unwrap_or("");
        let stage = event["stage"].as_str().unwrap_or("");
        let counted = if verb == "watch" {
            stage == "ResponseStarted"
        } else {
            stage == "ResponseComplete"
        };
        if !counted {
            continue;
        }
        let object = &event["objectRef"];
        let resource = object["resource"].as_str().unwrap_or("-");
        let subresource = object["subresource"].as_str().unwrap_or("");
        let kind = kind(verb, resource, subresource);
        let code = event["responseStatus"]["code"].as_i64().unwrap_or(0);
        if code >= 400 {
            *errors.entry(format!("{kind} {code}")).or_insert(0.0) += 1.0;
        }
        *counts.entry(kind).or_insert(0.0) += 1.0;
    }
    Ok((counts, errors))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------- run

async fn run(args: RunArgs) -> Result<()> {
    let c = &args.common;
    let client = client(&c.kubeconfig).await?;
    let n = c.pods;
    let timeout = Duration::from_secs(c.timeout);
    create_namespace(&client, &c.namespace).await?;
    let (tracker, watch) = spawn_watch(&client, &c.namespace);
    if !wait_for(&tracker, Duration::from_secs(60), "watch sync", |t| {
        t.synced
    })
    .await
    {
        bail!("the pod watch did not sync");
    }

    let load_before = loadavg();
    let audit_offset = args.audit_log.as_deref().map(file_len);
    let metrics_before = apiserver_requests(&client).await?;
    let mut procs = c.procs.clone();
    procs.insert(0, ("vk".into(), args.vk_pid));
    let cpu_before = cpu_snapshot(&procs);
    log(format!(
        "{}: creating {n} pods ({:?}, automount {}, provider {})",
        args.label, args.mode, args.automount, args.provider
    ));

    // Create.
    let start = Instant::now();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &c.namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &c.namespace);
    let mut create_failures = 0;
    let mut creates_done = None;
    match args.mode {
        Mode::Direct => {
            let objects: Vec<Pod> = (0..n)
                .map(|i| bench_pod(&pod_name(i), &c.node, args.automount, &args.pod))
                .collect::<Result<_>>()?;
            create_failures = fan_out(n, c.concurrency, |i| {
                let (pods, tracker, object) = (&pods, &tracker, &objects[i]);
                async move {
                    let now = Instant::now();
                    tracker
                        .lock()
                        .expect("tracker lock")
                        .pods
                        .entry(pod_name(i))
                        .or_default()
                        .created = Some(now);
                    pods.create(&PostParams::default(), object).await
                }
            })
            .await;
            creates_done = Some(start.elapsed().as_secs_f64());
        }
        Mode::Deployment => {
            let object: Deployment = serde_json::from_value(json!({
                "metadata": {"name": "bench"},
                "spec": {
                    "replicas": n,
                    "selector": {"matchLabels": {"app": "vk-bench"}},
                    "template": {
                        "metadata": {"labels": {"app": "vk-bench"}},
                        "spec": pod_spec(None, Some(&c.node), args.automount, &args.pod),
                    },
                },
            }))?;
            deployments.create(&PostParams::default(), &object).await?;
        }
    }
    let expected = n - create_failures;
    let all_running = wait_for(&tracker, timeout, "start", |t| t.running >= expected).await;
    let (running_at, latencies, running) = {
        let t = tracker.lock().expect("tracker lock");
        let running_at = t.pods.values().filter_map(|p| p.running).max();
        let latencies: Vec<f64> = t
            .pods
            .values()
            .filter_map(|p| {
                let from = match args.mode {
                    Mode::Direct => p.created,
                    Mode::Deployment => p.seen,
                }?;
                Some(p.running?.duration_since(from).as_secs_f64())
            })
            .collect();
        (running_at, latencies, t.running)
    };
    let start_seconds = running_at.map(|at| at.duration_since(start).as_secs_f64());
    log(format!(
        "{}: {running}/{n} running after {:.2} s",
        args.label,
        start_seconds.unwrap_or(f64::NAN)
    ));
    let cpu_started = cpu_snapshot(&procs);

    // Delete.
    let delete_start = Instant::now();
    let delete_method;
    match args.mode {
        Mode::Direct => {
            delete_method = "one DELETE per pod, same concurrency as the creates";
            let failures = fan_out(n, c.concurrency, |i| {
                let pods = &pods;
                async move { pods.delete(&pod_name(i), &DeleteParams::default()).await }
            })
            .await;
            if failures > 0 {
                log(format!("{failures} deletes failed"));
            }
        }
        Mode::Deployment => {
            delete_method = "Deployment scaled to 0 (the ReplicaSet controller deletes the pods)";
            let patch = json!({"spec": {"replicas": 0}});
            deployments
                .patch("bench", &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    let all_gone = wait_for(&tracker, timeout, "delete", |t| t.live == 0).await;
    let (gone_at, delete_latencies, watch_errors, seen) = {
        let t = tracker.lock().expect("tracker lock");
        let gone_at = t.pods.values().filter_map(|p| p.gone).max();
        let latencies: Vec<f64> = t
            .pods
            .values()
            .filter_map(|p| Some(p.gone?.duration_since(delete_start).as_secs_f64()))
            .collect();
        (gone_at, latencies, t.watch_errors, t.pods.len())
    };
    let delete_seconds = gone_at.map(|at| at.duration_since(delete_start).as_secs_f64());
    log(format!(
        "{}: all gone after {:.2} s",
        args.label,
        delete_seconds.unwrap_or(f64::NAN)
    ));
    let cpu_after = cpu_snapshot(&procs);
    // The audit log is written as requests complete; let the last ones land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let metrics_after = apiserver_requests(&client).await?;
    let node_requests = match (&args.audit_log, audit_offset) {
        (Some(path), Some(offset)) => Some(audit_requests(
            path,
            offset,
            &format!("system:node:{}", c.node),
        )?),
        _ => None,
    };
    watch.abort();
    delete_namespace(&client, &c.namespace).await?;

    let tck = c.clk_tck as f64;
    let vk_total_cpu = proc_ticks(&args.vk_pid.to_string()).map(|t| round3(t as f64 / tck));
    let result = json!({
        "kind": "run",
        "label": args.label,
        "provider": args.provider,
        "container": container(&args.pod),
        "termination_grace_period_seconds": args.pod.grace,
        "mode": args.mode.to_possible_value().map(|v| v.get_name().to_owned()),
        "automount_token": args.automount,
        "pods": n,
        "concurrency": c.concurrency,
        "node": c.node,
        "complete": all_running && all_gone && create_failures == 0,
        "create_failures": create_failures,
        "pods_seen": seen,
        "pods_running": running,
        "watch_errors": watch_errors,
        "creates_done_seconds": creates_done.map(round3),
        "all_running_seconds": start_seconds.map(round3),
        "pods_per_second": start_seconds.map(|s| round3(running as f64 / s)),
        "start_latency": latency_summary(latencies),
        "start_latency_basis": match args.mode {
            Mode::Direct => "this client's create request sent -> first watch event with phase Running",
            Mode::Deployment => "first watch event showing the pod -> first watch event with phase Running",
        },
        "delete_method": delete_method,
        "delete_seconds": delete_seconds.map(round3),
        "delete_latency": latency_summary(delete_latencies),
        "vk": {
            "pid": args.vk_pid,
            "peak_rss_mib": proc_status_kib(args.vk_pid, "VmHWM:").map(|k| round3(k as f64 / 1024.0)),
            "rss_mib_at_end": proc_status_kib(args.vk_pid, "VmRSS:").map(|k| round3(k as f64 / 1024.0)),
            "cpu_seconds_total": vk_total_cpu,
        },
        "cpu_seconds_start_phase": cpu_delta(&cpu_before, &cpu_started, c.clk_tck),
        "cpu_seconds_delete_phase": cpu_delta(&cpu_started, &cpu_after, c.clk_tck),
        "vk_requests": node_requests.as_ref().map(|(r, _)| per_pod(r, n)),
        "vk_failed_requests": node_requests.as_ref().map(|(_, e)| per_pod(e, n)),
        "vk_requests_method": "apiserver audit log (level Metadata for group system:nodes only): requests by user system:node:NODE from just before the first create until all pods were gone; watches counted when they start",
        "apiserver_requests": per_pod(&diff(&metrics_before, &metrics_after), n),
        "apiserver_requests_method": "delta of apiserver_request_total over the same window, all clients (vk, this client, controllers, scheduler)",
        "loadavg_before": load_before,
        "unix_time": unix_now(),
    });
    write_json(&c.out, &result)
}

// ---------------------------------------------------------------- ceiling

fn running_status(index: usize, node_ip: &str) -> Value {
    let now = "2024-01-01T00:00:00Z";
    let ip = format!(
        "10.{}.{}.{}",
        200 + index / 65536,
        (index / 256) % 256,
        index % 256
    );
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now});
    json!({"status": {
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers"), condition("Initialized"), condition("Ready"),
            condition("ContainersReady"), condition("PodScheduled"),
        ],
        "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
        "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": now,
        "containerStatuses": [{
            "name": "c", "image": "busybox", "imageID": "", "ready": true, "started": true,
            "restartCount": 0, "containerID": format!("mock://{index}"),
            "state": {"running": {"startedAt": now}},
        }],
    }})
}

async fn ceiling(args: CeilingArgs) -> Result<()> {
    let c = &args.common;
    let client = client(&c.kubeconfig).await?;
    let n = c.pods;
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": c.node, "labels": {"vk-bench": "ceiling"}},
    }))?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => return Err(error.into()),
    }
    create_namespace(&client, &c.namespace).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &c.namespace);
    let objects: Vec<Pod> = (0..n)
        .map(|i| bench_pod(&pod_name(i), &c.node, false, &PodOptions::default()))
        .collect::<Result<_>>()?;
    let load_before = loadavg();
    let cpu_0 = cpu_snapshot(&c.procs);

    log(format!(
        "ceiling: creating {n} pods on node {} (no vk)",
        c.node
    ));
    let t = Instant::now();
    let create_failures = fan_out(n, c.concurrency, |i| {
        let (pods, object) = (&pods, &objects[i]);
        async move { pods.create(&PostParams::default(), object).await }
    })
    .await;
    let create_seconds = t.elapsed().as_secs_f64();
    let cpu_1 = cpu_snapshot(&c.procs);

    log(format!(
        "ceiling: patching {n} pod statuses, {} in flight",
        c.concurrency
    ));
    let t = Instant::now();
    let patch_failures = fan_out(n, c.concurrency, |i| {
        let pods = &pods;
        async move {
            let body = running_status(i, "127.0.0.1");
            pods.patch_status(&pod_name(i), &PatchParams::default(), &Patch::Merge(&body))
                .await
        }
    })
    .await;
    let patch_seconds = t.elapsed().as_secs_f64();
    let cpu_2 = cpu_snapshot(&c.procs);

    log(format!("ceiling: deleting {n} pods (grace period 0)"));
    let t = Instant::now();
    let delete_failures = fan_out(n, c.concurrency, |i| {
        let pods = &pods;
        async move {
            pods.delete(&pod_name(i), &DeleteParams::default().grace_period(0))
                .await
        }
    })
    .await;
    let delete_seconds = t.elapsed().as_secs_f64();
    let cpu_3 = cpu_snapshot(&c.procs);

    // Pods that are left (failures) would keep the namespace terminating: clear them first.
    let leftovers: Vec<String> = pods
        .list(&Default::default())
        .await?
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    stream::iter(leftovers)
        .map(|name| {
            let pods = &pods;
            async move {
                pods.delete(&name, &DeleteParams::default().grace_period(0))
                    .await
            }
        })
        .buffer_unordered(c.concurrency)
        .try_collect::<Vec<_>>()
        .await
        .ok();
    delete_namespace(&client, &c.namespace).await?;
    nodes.delete(&c.node, &DeleteParams::default()).await.ok();

    let rate = |seconds: f64, failures: usize| round3((n - failures) as f64 / seconds);
    let result = json!({
        "kind": "ceiling",
        "pods": n,
        "concurrency": c.concurrency,
        "method": "a plain kube-rs client (admin credentials, no rate limit) against the same apiserver, no vk running: N pod creates bound to a Node object without a kubelet, N merge patches of pods/status to Running (a status like vk's), N deletes with grace period 0",
        "creates_per_second": rate(create_seconds, create_failures),
        "status_patches_per_second": rate(patch_seconds, patch_failures),
        "deletes_per_second": rate(delete_seconds, delete_failures),
        "failures": {"create": create_failures, "patch": patch_failures, "delete": delete_failures},
        "cpu_seconds_create": cpu_delta(&cpu_0, &cpu_1, c.clk_tck),
        "cpu_seconds_patch": cpu_delta(&cpu_1, &cpu_2, c.clk_tck),
        "cpu_seconds_delete": cpu_delta(&cpu_2, &cpu_3, c.clk_tck),
        "loadavg_before": load_before,
        "unix_time": unix_now(),
    });
    log(format!(
        "ceiling: {} creates/s, {} status patches/s, {} deletes/s",
        result["creates_per_second"],
        result["status_patches_per_second"],
        result["deletes_per_second"]
    ));
    write_json(&c.out, &result)
}

// ---------------------------------------------------------------- report

fn num(value: &Value) -> String {
    match value.as_f64() {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
        None => "-".into(),
    }
}

fn report(args: &ReportArgs) -> Result<()> {
    let mut runs = Vec::new();
    let mut ceiling = Value::Null;
    for path in &args.inputs {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: Value = serde_json::from_str(&text)?;
        if value["kind"] == "ceiling" {
            ceiling = value;
        } else {
            runs.push(value);
        }
    }
    let ceiling_rate = ceiling["status_patches_per_second"].as_f64();
    for run in &mut runs {
        if let (Some(rate), Some(ceiling)) = (run["pods_per_second"].as_f64(), ceiling_rate) {
            run["ratio_to_ceiling"] = json!(round3(rate / ceiling));
        }
    }

    let mut out = String::new();
    if !ceiling.is_null() {
        out += &format!(
            "ceiling (plain kube-rs client, {} in flight, no vk): {} pod creates/s, {} status patches/s, {} deletes/s\n",
            ceiling["concurrency"],
            num(&ceiling["creates_per_second"]),
            num(&ceiling["status_patches_per_second"]),
            num(&ceiling["deletes_per_second"]),
        );
    }
    out += &format!(
        "{:<24} {:<8} {:>6} {:>8} {:>7} {:>6} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}\n",
        "run",
        "provider",
        "pods",
        "running",
        "pods/s",
        "ratio",
        "p50 ms",
        "p99 ms",
        "del s",
        "RSS MiB",
        "CPU s",
        "vk r/p",
        "api r/p"
    );
    for run in &runs {
        out += &format!(
            "{:<24} {:<8} {:>6} {:>8} {:>7} {:>6} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}{}\n",
            run["label"].as_str().unwrap_or("?"),
            run["provider"].as_str().unwrap_or("?"),
            num(&run["pods"]),
            num(&run["all_running_seconds"]),
            num(&run["pods_per_second"]),
            num(&run["ratio_to_ceiling"]),
            num(&run["start_latency"]["p50_ms"]),
            num(&run["start_latency"]["p99_ms"]),
            num(&run["delete_seconds"]),
            num(&run["vk"]["peak_rss_mib"]),
            num(&run["vk"]["cpu_seconds_total"]),
            num(&run["vk_requests"]["per_pod"]),
            num(&run["apiserver_requests"]["per_pod"]),
            if run["complete"] == true {
                ""
            } else {
                "  (INCOMPLETE)"
            },
        );
    }
    for run in &runs {
        out += &format!("{}:\n", run["label"].as_str().unwrap_or("?"));
        if let Some(kinds) = run["vk_requests"]["by_kind"].as_object() {
            let n = run["pods"].as_f64().unwrap_or(1.0).max(1.0);
            let list: Vec<String> = kinds
                .iter()
                .map(|(k, v)| format!("{k} {}", num(&json!(v.as_f64().unwrap_or(0.0) / n))))
                .collect();
            out += &format!("  vk requests per pod: {}\n", list.join(", "));
        }
        if let Some(kinds) = run["vk_failed_requests"]["by_kind"].as_object()
            && !kinds.is_empty()
        {
            let list: Vec<String> = kinds
                .iter()
                .map(|(k, v)| format!("{k} x{}", num(v)))
                .collect();
            out += &format!("  vk requests that failed: {}\n", list.join(", "));
        }
        for phase in ["cpu_seconds_start_phase", "cpu_seconds_delete_phase"] {
            if let Some(cpu) = run[phase].as_object() {
                let list: Vec<String> = cpu
                    .iter()
                    .filter(|(k, _)| k.as_str() != "cores")
                    .map(|(k, v)| format!("{k} {}", num(v)))
                    .collect();
                out += &format!("  {}: {}\n", phase.replace('_', " "), list.join(", "));
            }
        }
    }
    out += "columns: provider = the provider vk ran; running = seconds from the first create to all pods Running (watch); pods/s = pods / that; \
ratio = pods/s / ceiling status patches/s; p50/p99 = pod start latency; del s = seconds from the delete to \
all pods gone (watch); RSS = vk's VmHWM; CPU s = vk's utime+stime since it started; vk r/p = requests by \
the node's user per pod (apiserver audit log); api r/p = all apiserver requests per pod (apiserver_request_total)\n";
    print!("{out}");

    let meta: Value = serde_json::from_str(&args.meta).context("--meta is not JSON")?;
    write_json(
        &args.out,
        &json!({"meta": meta, "ceiling": ceiling, "runs": runs, "summary": out}),
    )?;
    eprintln!("bench: wrote {}", args.out.display());
    Ok(())
}
