//! `ceiling`: what a plain kube-rs client reaches against the same apiserver with the same
//! concurrency and no vk: pod creates, service-account tokens bound to those pods, pod status
//! patches and pod deletes per second.

use std::time::Instant;

use anyhow::Result;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::{
    authentication::v1::TokenRequest,
    core::v1::{Node, Pod, ServiceAccount},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use crate::{
    cli::{CeilingArgs, PodOptions},
    cluster::{bench_pod, client, create_namespace, delete_namespace, fan_out, pod_name},
    measure::{cpu_delta, cpu_snapshot, loadavg, round3, unix_now},
    progress::log,
    results::{CeilingFailures, CeilingResult, Measured, write_json},
};

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

/// A token for the namespace's default service account, bound to pod `name` as the kubelet's
/// are: it is valid only while that pod exists.
fn bound_token_request(name: &str) -> Result<TokenRequest> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": 3607,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": name},
        },
    }))?)
}

pub async fn ceiling(args: CeilingArgs) -> Result<()> {
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
    let create_failures = fan_out(n, c.concurrency, None, |i| {
        let (pods, object) = (&pods, &objects[i]);
        async move { pods.create(&PostParams::default(), object).await }
    })
    .await;
    let create_seconds = t.elapsed().as_secs_f64();
    let cpu_1 = cpu_snapshot(&c.procs);

    log(format!(
        "ceiling: requesting {n} service-account tokens bound to the pods, {} in flight",
        c.concurrency
    ));
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &c.namespace);
    let requests: Vec<TokenRequest> = (0..n)
        .map(|i| bound_token_request(&pod_name(i)))
        .collect::<Result<_>>()?;
    let t = Instant::now();
    let token_failures = fan_out(n, c.concurrency, None, |i| {
        let (accounts, request) = (&accounts, &requests[i]);
        async move {
            accounts
                .create_subresource::<_, TokenRequest>(
                    "token",
                    "default",
                    &PostParams::default(),
                    request,
                )
                .await
        }
    })
    .await;
    let token_seconds = t.elapsed().as_secs_f64();
    let cpu_token = cpu_snapshot(&c.procs);

    log(format!(
        "ceiling: patching {n} pod statuses, {} in flight",
        c.concurrency
    ));
    let t = Instant::now();
    let patch_failures = fan_out(n, c.concurrency, None, |i| {
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
    let delete_failures = fan_out(n, c.concurrency, None, |i| {
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

    // None when the phase took no measurable time.
    let rate = |seconds: f64, failures: usize| {
        Some(round3((n - failures) as f64 / seconds)).filter(|rate| rate.is_finite())
    };
    let result = CeilingResult {
        pods: n,
        concurrency: c.concurrency,
        method: "a plain kube-rs client (admin credentials, no rate limit) against the same apiserver, no vk running: N pod creates bound to a Node object without a kubelet, N TokenRequests for the default service account bound to those pods (as for the default token volume), N merge patches of pods/status to Running (a status like vk's), N deletes with grace period 0".into(),
        creates_per_second: rate(create_seconds, create_failures),
        token_requests_per_second: rate(token_seconds, token_failures),
        status_patches_per_second: rate(patch_seconds, patch_failures),
        deletes_per_second: rate(delete_seconds, delete_failures),
        failures: CeilingFailures {
            create: create_failures,
            token: Some(token_failures),
            patch: patch_failures,
            delete: delete_failures,
        },
        cpu_seconds_create: cpu_delta(&cpu_0, &cpu_1, c.clk_tck),
        cpu_seconds_token: Some(cpu_delta(&cpu_1, &cpu_token, c.clk_tck)),
        cpu_seconds_patch: cpu_delta(&cpu_token, &cpu_2, c.clk_tck),
        cpu_seconds_delete: cpu_delta(&cpu_2, &cpu_3, c.clk_tck),
        loadavg_before: load_before,
        unix_time: unix_now(),
    };
    let shown = |rate: Option<f64>| rate.map_or("null".into(), |rate| format!("{rate:?}"));
    log(format!(
        "ceiling: {} creates/s, {} token requests/s, {} status patches/s, {} deletes/s",
        shown(result.creates_per_second),
        shown(result.token_requests_per_second),
        shown(result.status_patches_per_second),
        shown(result.deletes_per_second)
    ));
    write_json(&c.out, &Measured::Ceiling(Box::new(result)))
}
