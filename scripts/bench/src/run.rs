//! `run`: N pods started on a vk node (bound directly, or through a Deployment and the
//! scheduler), watched until all are Running, deleted, watched until all are gone.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{
    cli::{Mode, RunArgs},
    cluster::{
        bench_pod, client, container, create_namespace, delete_namespace, fan_out, pod_name,
        pod_spec,
    },
    measure::{
        apiserver_requests, audit_requests, cpu_delta, cpu_snapshot, diff, file_len, latency,
        loadavg, per_pod, proc_status_kib, proc_ticks, round3, unix_now,
    },
    progress::log,
    results::{Measured, RunResult, VkUsage, write_json},
    watch::{spawn_watch, wait_for},
};

pub async fn run(args: RunArgs) -> Result<()> {
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
        "{}: creating {n} pods ({:?}, automount {}, provider {}, {})",
        args.label,
        args.mode,
        args.automount,
        args.provider,
        args.rate
            .map_or("as fast as possible".into(), |rate| format!(
                "{rate} per second"
            ))
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
            create_failures = fan_out(n, c.concurrency, args.rate, |i| {
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
    let cpu_start_phase = cpu_delta(&cpu_before, &cpu_started, c.clk_tck);

    // Hold.
    let (cpu_hold, rss_after_hold, cpu_before_delete) = if args.hold > 0 {
        log(format!(
            "{}: holding the pods for {} s",
            args.label, args.hold
        ));
        tokio::time::sleep(Duration::from_secs(args.hold)).await;
        let held = cpu_snapshot(&procs);
        let cpu = cpu_delta(&cpu_started, &held, c.clk_tck);
        (Some(cpu), proc_status_kib(args.vk_pid, "VmRSS:"), held)
    } else {
        (None, None, cpu_started)
    };

    // Delete.
    let delete_start = Instant::now();
    let delete_method;
    match args.mode {
        Mode::Direct => {
            delete_method = "one DELETE per pod, same concurrency as the creates";
            let failures = fan_out(n, c.concurrency, None, |i| {
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
    let mib = |kib: u64| round3(kib as f64 / 1024.0);
    let result = RunResult {
        label: args.label.clone(),
        provider: args.provider.clone(),
        container: container(&args.pod),
        termination_grace_period_seconds: args.pod.grace,
        mode: args.mode,
        automount_token: args.automount,
        pods: n,
        concurrency: c.concurrency,
        node: c.node.clone(),
        complete: all_running && all_gone && create_failures == 0,
        create_failures,
        pods_seen: seen,
        pods_running: running,
        watch_errors,
        creates_done_seconds: creates_done.map(round3),
        all_running_seconds: start_seconds.map(round3),
        pods_per_second: start_seconds.map(|s| round3(running as f64 / s)),
        start_latency: latency(latencies),
        start_latency_basis: match args.mode {
            Mode::Direct => "this client's create request sent -> first watch event with phase Running",
            Mode::Deployment => "first watch event showing the pod -> first watch event with phase Running",
        }
        .into(),
        delete_method: delete_method.into(),
        delete_seconds: delete_seconds.map(round3),
        delete_latency: latency(delete_latencies),
        vk: VkUsage {
            pid: args.vk_pid,
            peak_rss_mib: proc_status_kib(args.vk_pid, "VmHWM:").map(mib),
            rss_mib_at_end: proc_status_kib(args.vk_pid, "VmRSS:").map(mib),
            cpu_seconds_total: proc_ticks(&args.vk_pid.to_string()).map(|t| round3(t as f64 / tck)),
        },
        cpu_seconds_start_phase: cpu_start_phase,
        create_rate: args.rate,
        hold_seconds: args.hold,
        cpu_seconds_hold_phase: cpu_hold,
        rss_mib_after_hold: rss_after_hold.map(mib),
        cpu_seconds_delete_phase: cpu_delta(&cpu_before_delete, &cpu_after, c.clk_tck),
        vk_requests: node_requests.as_ref().map(|(r, _)| per_pod(r, n)),
        vk_failed_requests: node_requests.as_ref().map(|(_, e)| per_pod(e, n)),
        vk_requests_method: "apiserver audit log (level Metadata for group system:nodes only): requests by user system:node:NODE from just before the first create until all pods were gone; watches counted when they start".into(),
        apiserver_requests: per_pod(&diff(&metrics_before, &metrics_after), n),
        apiserver_requests_method: "delta of apiserver_request_total over the same window, all clients (vk, this client, controllers, scheduler)".into(),
        loadavg_before: load_before,
        unix_time: unix_now(),
        ratio_to_ceiling: None,
    };
    write_json(&c.out, &Measured::Run(Box::new(result)))
}
