//! Port-forward: the SPDY session of `portforward.k8s.io` (over an upgraded connection or
//! tunnelled in WebSocket messages), each data and error stream pair relayed to the pod's port
//! through the provider.

use std::{collections::HashMap, sync::Arc};

use k8s_openapi::api::core::v1::Pod;
use tokio::io::AsyncWriteExt;
use vk_abi::PortForwardOptions;

use super::bridge;
use crate::{
    provider::Provider,
    spdy::{Connection, Stream},
};

/// The two streams of one forwarded connection.
#[derive(Default)]
struct PortPair {
    port: u16,
    data: Option<Stream>,
    error: Option<Stream>,
}

pub(super) async fn forward_ports(provider: Provider, pod: Arc<Pod>, mut connection: Connection) {
    let mut pairs: HashMap<String, PortPair> = HashMap::new();
    let mut forwards = tokio::task::JoinSet::new();
    while let Some(incoming) = connection.accept().await {
        let headers = incoming.headers();
        let port = headers
            .get("port")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p > 0);
        let kind = headers.get("streamtype").unwrap_or_default().to_string();
        let (Some(port), "data" | "error") = (port, kind.as_str()) else {
            incoming.refuse();
            continue;
        };
        // Old clients send no request id: pair by stream id (the data stream follows its error
        // stream, two ids later).
        let request_id = match headers.get("requestid") {
            Some(id) => id.to_string(),
            None if kind == "error" => incoming.id().to_string(),
            None => incoming.id().saturating_sub(2).to_string(),
        };
        let stream = incoming.reply();
        let pair = pairs.entry(request_id.clone()).or_default();
        pair.port = port;
        let slot = if kind == "data" {
            &mut pair.data
        } else {
            &mut pair.error
        };
        if slot.replace(stream).is_some() {
            log::debug!("port-forward: a second {kind} stream for request {request_id}");
        }
        if pair.data.is_some() && pair.error.is_some() {
            let pair = pairs.remove(&request_id).expect("the pair is there");
            forwards.spawn(forward_one(provider.clone(), pod.clone(), pair));
        }
    }
    forwards.shutdown().await;
    connection.close().await;
}

/// Relays one connection to the pod's port through the provider.
async fn forward_one(provider: Provider, pod: Arc<Pod>, pair: PortPair) {
    let (Some(data), Some(error)) = (pair.data, pair.error) else {
        return;
    };
    let options = PortForwardOptions {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        port: pair.port,
    };
    let (reader, writer) = data.split();
    let mut pumps = bridge::Pumps::default();
    let input = bridge::source(reader, &mut pumps);
    let output = bridge::sink(writer, &mut pumps);
    let forwarding = options.clone();
    let result = provider
        .stream("port_forward", move |p| {
            p.port_forward(&forwarding, input, output)
        })
        .await;
    pumps.finish().await;
    let (_, mut error_writer) = error.split();
    if let Err(error) = result {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let message = format!(
            "error forwarding port {} to pod {}, uid {uid}: {}",
            options.port, options.pod, error.message
        );
        let _ = error_writer.write_all(message.as_bytes()).await;
    }
    let _ = error_writer.shutdown().await;
}
