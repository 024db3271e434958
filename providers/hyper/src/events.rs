//! Following the engine's event stream for this node's containers: every change is reported
//! to vk at once, and an app container's exit goes to the restart logic. No polling.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bollard::{models::EventMessage, query_parameters::EventsOptionsBuilder};
use futures::StreamExt as _;

use crate::{
    backend::Backend,
    spec::{
        CONTAINER_LABEL, NAMESPACE_LABEL, NODE_LABEL, POD_LABEL, PodIdentity, ROLE_LABEL, UID_LABEL,
    },
};

const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Follows the events until the runtime shuts down, reconnecting with back-off. After each
/// (re)connection, every pod is reported and missed exits are handled.
pub async fn follow(backend: Arc<Backend>) {
    let mut delay = Duration::from_secs(1);
    loop {
        let filters = HashMap::from([
            ("type", vec!["container".to_string()]),
            ("label", vec![format!("{NODE_LABEL}={}", backend.node_name)]),
        ]);
        let mut events = backend
            .engine
            .docker
            .events(Some(EventsOptionsBuilder::new().filters(&filters).build()));
        let resync = {
            let backend = backend.clone();
            // The subscription is made by the first poll below; the resync comes just after.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                backend.resync().await;
            })
        };
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    delay = Duration::from_secs(1);
                    handle(&backend, event).await;
                }
                Err(error) => {
                    log::warn!("engine event stream broken: {error}");
                    break;
                }
            }
        }
        resync.abort();
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_MAX);
    }
}

/// How long a pod's events are gathered into one report: starting a pod makes several events
/// in a row, and each report inspects every container of the pod.
const GATHERING: Duration = Duration::from_millis(100);

/// Reports `identity` once the events that come with this one are in.
fn notify_soon(backend: &Arc<Backend>, identity: PodIdentity) {
    if !backend.gather(&identity.uid) {
        return;
    }
    let backend = backend.clone();
    tokio::spawn(async move {
        tokio::time::sleep(GATHERING).await;
        backend.gathered(&identity.uid);
        backend.notify(&identity.namespace, &identity.name).await;
    });
}

async fn handle(backend: &Arc<Backend>, event: EventMessage) {
    let Some(action) = event.action else { return };
    let attributes = event
        .actor
        .and_then(|actor| actor.attributes)
        .unwrap_or_default();
    let attribute = |name: &str| attributes.get(name).cloned();
    let (Some(namespace), Some(name), Some(uid)) = (
        attribute(NAMESPACE_LABEL),
        attribute(POD_LABEL),
        attribute(UID_LABEL),
    ) else {
        return;
    };
    let identity = PodIdentity {
        namespace,
        name,
        uid,
    };
    match action.as_str() {
        "die" if matches!(attribute(ROLE_LABEL).as_deref(), Some("app" | "sidecar")) => {
            if let Some(container) = attribute(CONTAINER_LABEL) {
                let backend = backend.clone();
                // Off the event loop: the restart waits out its back-off.
                tokio::spawn(async move { backend.container_exited(&identity, &container).await });
            }
        }
        // What changes a pod's status. Creations and the infra container's start are steps on
        // the way to a container's start, which reports them all.
        "start" | "die" | "stop" | "kill" | "oom" | "destroy" | "restart"
            if action != "start" || attribute(ROLE_LABEL).as_deref() != Some("infra") =>
        {
            notify_soon(backend, identity);
        }
        _ => {}
    }
}
