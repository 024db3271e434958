//! The cluster side of a bench: the client, the bench namespace, the bench pods, and requests
//! fanned out at a fixed concurrency.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::{
    Api, Client, Config,
    api::{DeleteParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::{Value, json};

use crate::{cli::PodOptions, progress::log};

pub async fn client(kubeconfig: &Path) -> Result<Client> {
    let file = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

const TAINT_KEY: &str = "virtual-kubelet.io/provider";

pub fn container(pod: &PodOptions) -> Value {
    let mut container = json!({
        "name": "c",
        "image": pod.image.as_deref().unwrap_or("busybox"),
        "command": pod.command.as_deref().map_or(json!(["sleep", "infinity"]), |c| json!(c)),
    });
    if let Some(policy) = &pod.pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }
    if let Some(command) = &pod.readiness_exec {
        container["readinessProbe"] = json!({
            "exec": {"command": command},
            "periodSeconds": pod.probe_period,
        });
    }
    container
}

pub fn pod_spec(
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

pub fn bench_pod(name: &str, node: &str, automount: bool, pod: &PodOptions) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "vk-bench"}},
        "spec": pod_spec(Some(node), None, automount, pod),
    }))?)
}

pub fn pod_name(index: usize) -> String {
    format!("bench-{index:05}")
}

/// Creates the namespace and waits until pods can be created in it and vk can resolve their
/// token volumes (the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap exist).
pub async fn create_namespace(client: &Client, namespace: &str) -> Result<()> {
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

pub async fn delete_namespace(client: &Client, namespace: &str) -> Result<()> {
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

/// Runs `count` requests made by `request(index)`, `concurrency` at a time (started at a steady
/// `rate` per second when given); returns how many
/// failed (the first few errors are logged).
pub async fn fan_out<F, Fut, T>(
    count: usize,
    concurrency: usize,
    rate: Option<f64>,
    request: F,
) -> usize
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let start = tokio::time::Instant::now();
    let results: Vec<_> = stream::iter(0..count)
        // At a steady `rate`, request i starts i / rate seconds in.
        .then(|i| async move {
            if let Some(rate) = rate {
                let at = start + std::time::Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(at).await;
            }
            i
        })
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
