//! Kubernetes events about pods and the node, written as core/v1 Events (the only event API a
//! node identity may use). Recording never blocks the caller: events go through a bounded queue
//! and are dropped, with a log line, when the API cannot keep up.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use futures::StreamExt;
use k8s_openapi::{
    api::core::v1::{Event, EventSource, ObjectReference, Pod},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time},
    jiff::Timestamp,
};
use kube::{Api, Client, api::PostParams};

use crate::metrics::METRICS;
use tokio::sync::mpsc;

/// Events waiting to be written before new ones are dropped.
const BACKLOG: usize = 1024;
/// What vk reports as the event's source component.
const COMPONENT: &str = "vk";

pub use vk_abi::EventType;

/// Records events for one node; cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    sender: mpsc::Sender<Event>,
    node_name: String,
    dropped: Arc<AtomicU64>,
}

impl Recorder {
    /// Starts the task that writes events with `client`.
    pub fn spawn(client: Client, node_name: String) -> Self {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        tokio::spawn(write_events(client, receiver));
        Recorder {
            sender,
            node_name,
            dropped: Arc::default(),
        }
    }

    /// Records an event about `pod`; `field_path` names a container (`spec.containers{app}`).
    pub fn pod(
        &self,
        pod: &Pod,
        kind: EventType,
        reason: &str,
        message: &str,
        field_path: Option<String>,
    ) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path,
        };
        self.record(reference, kind, reason, message);
    }

    /// Records an event about the node (in namespace `default`, with the node's name as its UID,
    /// as the kubelet does).
    pub fn node(&self, kind: EventType, reason: &str, message: &str) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(self.node_name.clone()),
            uid: Some(self.node_name.clone()),
            ..ObjectReference::default()
        };
        self.record(reference, kind, reason, message);
    }

    fn record(&self, involved: ObjectReference, kind: EventType, reason: &str, message: &str) {
        let now = Timestamp::now();
        let namespace = involved
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = format!(
            "{}.{:x}",
            involved.name.as_deref().unwrap_or("unknown"),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            involved_object: involved,
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(kind.as_str().to_string()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: None::<MicroTime>,
            source: Some(EventSource {
                component: Some(COMPONENT.into()),
                host: Some(self.node_name.clone()),
            }),
            reporting_component: Some(COMPONENT.into()),
            reporting_instance: Some(self.node_name.clone()),
            ..Event::default()
        };
        if self.sender.try_send(event).is_err() {
            // Like the kubelet's event spam filter, drop rather than slow pods down; say so
            // once per thousand drops.
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed);
            if dropped.is_multiple_of(1000) {
                log::warn!(
                    "dropping events: the event backlog is full ({} dropped so far)",
                    dropped + 1
                );
            }
        }
    }
}

/// Events written at once.
const WRITERS: usize = 8;

async fn write_events(client: Client, mut receiver: mpsc::Receiver<Event>) {
    let events = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    events
        .for_each_concurrent(WRITERS, |event| {
            let client = client.clone();
            async move {
                let namespace = event.metadata.namespace.clone().unwrap_or_default();
                let api: Api<Event> = Api::namespaced(client, &namespace);
                let created = api.create(&PostParams::default(), &event).await;
                METRICS.api_request("event", &created);
                if let Err(error) = created {
                    let reason = event.reason.as_deref().unwrap_or("");
                    log::warn!("cannot record event {reason}: {error}");
                }
            }
        })
        .await;
}
