//! Runs the virtual kubelet: loads the provider, then the node and pod controllers, until
//! SIGTERM or SIGINT. Stopping leaves the provider's pods running for the next vk to adopt.

use std::{
    collections::BTreeMap,
    net::{IpAddr, UdpSocket},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use futures::{FutureExt as _, future::BoxFuture};
use k8s_openapi::{
    api::core::v1::{Node, Taint},
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
};
use rustls::pki_types::CertificateDer;
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
    sync::watch,
};
use vk_abi::ProviderInit;

use crate::{
    auth::Auth,
    certificates,
    cli::RunArgs,
    client,
    election::{self, ElectionError, Elector, Leadership},
    events::Recorder,
    node::{NodeController, NodeSettings},
    pods::{PodController, PodSettings},
    provider::{self, Provider},
    resolve::NodeFacts,
    server::{self, ServerState},
    store::PodStore,
    streams, tls,
};

/// Events have their own, lower budget so that they never slow pods down (the kubelet's
/// defaults: 50 per second, bursts of 100).
const EVENT_QPS: f64 = 50.0;
const EVENT_BURST: u32 = 100;
/// The leader election has its own budget too, so that busy pods cannot delay a renewal.
const ELECTION_QPS: f64 = 5.0;
const ELECTION_BURST: u32 = 10;

pub async fn run(args: RunArgs, plugin_dir: PathBuf) -> anyhow::Result<()> {
    let module = provider::load(&plugin_dir, &args.provider)?;
    let certificates = certificate_settings(&args);
    let credentials = certificates::credentials(
        &certificates,
        args.kubeconfig.as_deref(),
        args.bootstrap_kubeconfig.as_deref(),
    )
    .await?;
    let config = credentials.config;
    let identity = credentials.identity;
    let client_identity = identity.as_ref().map(|i| i.identity.clone());
    // A standby waits here, before it loads anything or listens: it has nothing to do until
    // it leads.
    let mut leadership = match election_settings(&args) {
        Some(settings) => {
            let client = client::rate_limited(
                config.clone(),
                client_identity.as_ref(),
                ELECTION_QPS,
                ELECTION_BURST,
            )?;
            Some(Elector::new(client, settings)?.acquire().await)
        }
        None => None,
    };
    let node_ip = match args.node_ip {
        Some(ip) => ip,
        None => local_ip_towards(&config.cluster_url).with_context(|| {
            format!(
                "cannot tell this host's IP towards {}; set --node-ip",
                config.cluster_url
            )
        })?,
    };
    let provider = Provider::new(
        module,
        provider_init(&args, node_ip)?,
        args.provider_call_timeout,
    )
    .await?;
    log::info!(
        "loaded provider {} for node {} ({node_ip})",
        provider.name,
        args.nodename
    );

    let client_ca = match &args.client_ca_file {
        Some(path) => tls::read_certs("client CA", path)?,
        None => config
            .root_cert
            .iter()
            .flatten()
            .map(|der| CertificateDer::from(der.clone()))
            .collect(),
    };
    let api = client::rate_limited(
        config.clone(),
        client_identity.as_ref(),
        args.kube_api_qps,
        args.kube_api_burst,
    )?;
    let mut certificate_tasks = Vec::new();
    match identity {
        Some(identity) if args.rotate_certificates => {
            certificate_tasks.push(tokio::spawn(identity.rotation(api.clone(), &certificates)))
        }
        None if args.rotate_certificates => log::warn!(
            "--rotate-certificates renews only the client certificate of --cert-dir that TLS bootstrap (--bootstrap-kubeconfig) got; not the one of the kubeconfig"
        ),
        _ => {}
    }
    let recorder = Recorder::spawn(
        client::rate_limited(config, client_identity.as_ref(), EVENT_QPS, EVENT_BURST)?,
        args.nodename.clone(),
    );
    let (synced_sender, synced) = watch::channel(false);
    let (shutdown_sender, shutdown) = watch::channel(false);
    let stopped = |mut shutdown: watch::Receiver<bool>| async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };

    let node_settings = NodeSettings {
        name: args.nodename.clone(),
        operating_system: args.os.label().to_string(),
        internal_ip: Some(node_ip.to_string()),
        kubelet_port: args.listen_port,
        taint: (!args.disable_taint).then(|| Taint {
            key: args.taint_key.clone(),
            value: Some(
                args.taint_value
                    .clone()
                    .unwrap_or_else(|| provider.name.clone()),
            ),
            effect: args.taint_effect.clone(),
            ..Taint::default()
        }),
    };
    let node = NodeController::new(
        api.clone(),
        provider.clone(),
        node_settings,
        recorder.clone(),
        synced.clone(),
    );
    let (store, writer) = PodStore::new();
    let capabilities = match provider.call("capabilities", |p| p.capabilities()).await {
        Ok(capabilities) => capabilities,
        Err(error) => {
            log::warn!("cannot ask the provider what it does itself ({error}); assuming nothing");
            vk_abi::Capabilities::default()
        }
    };
    log::info!(
        "probes: {}",
        if capabilities.runs_probes {
            "run by the provider's backend"
        } else if capabilities.pod_ips_reachable {
            "run by vk, network probes dialling pod IPs"
        } else {
            "run by vk, network probes through the provider's port-forward"
        }
    );
    let pod_settings = PodSettings {
        capabilities,
        node_name: args.nodename.clone(),
        workers: usize::from(args.pod_sync_workers),
        resync_period: args.full_resync_period,
        node: NodeFacts {
            host_ips: vec![node_ip.to_string()],
            allocatable: allocatable(&provider, &args.nodename).await,
        },
    };
    let (api_for_server, provider_for_server, store_for_server) =
        (api.clone(), provider.clone(), store.clone());
    let (tls, renewal) = serving_tls(&args, &certificates, api.clone(), node_ip, &client_ca)?;
    certificate_tasks.extend(renewal.map(tokio::spawn));
    let pods = PodController::new(pod_settings, api, provider, recorder, store);

    let server = server_state(
        &args,
        api_for_server,
        provider_for_server,
        store_for_server,
        &client_ca,
    )?;
    let listener = TcpListener::bind((node_ip, args.listen_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {node_ip}:{} for the kubelet API",
                args.listen_port
            )
        })?;
    log::info!(
        "kubelet API listening on https://{node_ip}:{}",
        args.listen_port
    );
    let server_task = tokio::spawn(server::serve(listener, tls, Arc::new(server)));

    let mut node_task = tokio::spawn(node.run(stopped(shutdown.clone())));
    let mut pod_task = tokio::spawn(pods.run(writer, synced_sender, stopped(shutdown.clone())));
    let startup = wait_until_synced(synced, args.startup_timeout);
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::pin!(startup);
    let outcome = loop {
        tokio::select! {
            _ = terminate.recv() => break Ok(()),
            _ = interrupt.recv() => break Ok(()),
            result = &mut startup => if let Err(error) = result { break Err(error) },
            result = &mut node_task => break result.context("the node controller crashed")?.context("the node controller stopped"),
            result = &mut pod_task => break result.context("the pod controller crashed")?.context("the pod controller stopped"),
            error = lost(&mut leadership) => {
                // No fencing exists: another vk may lead already, so stop acting before any
                // other write (client-go's leaders exit too). The supervisor restarts this
                // process, as a standby.
                log::error!("leader election lost: {error:#}; exiting at once");
                std::process::exit(1);
            }
        }
    };
    log::info!("stopping; the provider's pods keep running for the next vk to adopt");
    server_task.abort();
    certificate_tasks.iter().for_each(|task| task.abort());
    let _ = shutdown_sender.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        // A task the loop above saw finish has been consumed: awaiting it again would panic.
        if !node_task.is_finished() {
            let _ = node_task.await;
        }
        if !pod_task.is_finished() {
            let _ = pod_task.await;
        }
    })
    .await;
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    outcome
}

/// `--leader-elect`'s lease and timings, when it is given.
fn election_settings(args: &RunArgs) -> Option<election::Settings> {
    args.leader_elect.then(|| election::Settings {
        namespace: args.leader_elect_resource_namespace.clone(),
        name: args
            .leader_elect_resource_name
            .clone()
            .unwrap_or_else(|| format!("vk-{}", args.nodename)),
        identity: election::identity(args.leader_elect_identity.as_deref()),
        lease_duration: args.leader_elect_lease_duration,
        renew_deadline: args.leader_elect_renew_deadline,
        retry_period: args.leader_elect_retry_period,
    })
}

/// Resolves when `leadership` is lost; never without leader election.
async fn lost(leadership: &mut Option<Leadership>) -> ElectionError {
    match leadership {
        Some(leadership) => leadership.lost().await,
        None => std::future::pending().await,
    }
}

/// The node's allocatable resources as the provider describes them: the default limits that
/// `resourceFieldRef`s read.
async fn allocatable(provider: &Provider, node_name: &str) -> BTreeMap<String, Quantity> {
    let node = Node {
        metadata: ObjectMeta {
            name: Some(node_name.to_string()),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    match provider
        .call("configure_node", move |p| p.configure_node(&node))
        .await
    {
        Ok(node) => node.status.and_then(|s| s.allocatable).unwrap_or_default(),
        Err(error) => {
            log::warn!("the provider cannot describe the node yet: {error}");
            BTreeMap::new()
        }
    }
}

fn server_state(
    args: &RunArgs,
    api: kube::Client,
    provider: Provider,
    pods: PodStore,
    client_ca: &[CertificateDer<'static>],
) -> anyhow::Result<ServerState> {
    Ok(ServerState {
        auth: Auth::new(api, args.nodename.clone(), args.anonymous_auth),
        provider,
        pods,
        streams: streams::Limits {
            creation: args.stream_creation_timeout,
            idle: args.streaming_connection_idle_timeout,
        },
        client_ca: tls::ClientCa::new(client_ca)?,
    })
}

fn certificate_settings(args: &RunArgs) -> certificates::Settings {
    let mut settings = certificates::Settings::new(&args.nodename, &args.cert_dir);
    settings.expiration_seconds = args.certificate_expiration_seconds;
    if let Some(fraction) = args.certificate_renewal_fraction {
        settings.window = certificates::Window {
            low: fraction,
            high: fraction,
        };
    }
    settings
}

/// The kubelet API's TLS: the given certificate, one from the cluster (renewed by the returned
/// task), or a self-signed one (with a warning).
fn serving_tls(
    args: &RunArgs,
    settings: &certificates::Settings,
    api: kube::Client,
    node_ip: IpAddr,
    client_ca: &[CertificateDer<'static>],
) -> anyhow::Result<(Arc<rustls::ServerConfig>, Option<BoxFuture<'static, ()>>)> {
    let ips = [node_ip];
    let (cell, renewal) = match (&args.tls_cert_file, &args.tls_private_key_file) {
        (Some(cert), Some(key)) => {
            let files = tls::ServingCert::Files { cert, key };
            (Arc::new(tls::CertCell::new(files.certified_key()?)), None)
        }
        _ if args.rotate_server_certificates => {
            let (cell, renewal) = certificates::serving(settings, api, &ips)?;
            (cell, Some(renewal.boxed()))
        }
        _ => {
            log::warn!(
                "no --tls-cert-file given: serving the kubelet API with a self-signed certificate"
            );
            let self_signed = tls::ServingCert::SelfSigned {
                node_name: &args.nodename,
                ips: &ips,
            };
            (
                Arc::new(tls::CertCell::new(self_signed.certified_key()?)),
                None,
            )
        }
    };
    if client_ca.is_empty() {
        log::warn!(
            "no client CA (--client-ca-file or the kubeconfig's CA): client certificates are not accepted"
        );
    }
    Ok((tls::server_config(cell, client_ca)?, renewal))
}

fn provider_init(args: &RunArgs, node_ip: IpAddr) -> anyhow::Result<ProviderInit> {
    let config = match &args.provider_config {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read provider config {}", path.display()))?,
        None => String::new(),
    };
    Ok(ProviderInit {
        config_path: args
            .provider_config
            .as_ref()
            .map(|p| p.display().to_string()),
        config,
        node_name: args.nodename.clone(),
        operating_system: args.os.name().to_string(),
        internal_ip: Some(node_ip.to_string()),
        daemon_port: i32::from(args.listen_port),
    })
}

/// The address this host uses to reach the API server: the one the API server can reach back.
/// (Connecting a UDP socket sends nothing.)
fn local_ip_towards(url: &http::Uri) -> anyhow::Result<IpAddr> {
    let host = url
        .host()
        .context("the cluster URL has no host")?
        .trim_matches(['[', ']']);
    let port = url.port_u16().unwrap_or(443);
    let socket = UdpSocket::bind(("0.0.0.0", 0))?;
    socket.connect((host, port))?;
    Ok(socket.local_addr()?.ip())
}

/// Waits for the pod controller's first sync; an error after `limit` (zero: no limit).
async fn wait_until_synced(
    mut synced: watch::Receiver<bool>,
    limit: Duration,
) -> anyhow::Result<()> {
    let wait = synced.wait_for(|synced| *synced);
    if limit.is_zero() {
        let _ = wait.await;
        return std::future::pending().await;
    }
    match tokio::time::timeout(limit, wait).await {
        Ok(_) => std::future::pending().await,
        Err(_) => anyhow::bail!(
            "the node was not ready within the --startup-timeout of {}s",
            limit.as_secs()
        ),
    }
}
