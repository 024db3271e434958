//! `/containerLogs/{namespace}/{pod}/{container}`: the container's log, streamed as the
//! provider writes it, ending when the provider is done or the client goes away.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use tokio::sync::mpsc;
use vk_abi::{LogOptions, host::byte_sink};

use super::state::ServerState;
use crate::response::{Body, provider_error, text};

/// Chunks buffered between the provider and a slow client before the provider waits.
const BUFFERED_CHUNKS: usize = 16;

/// Why the query was refused, and with which status.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum QueryError {
    Undecodable,
    Invalid,
}

/// Reads the kubelet's log parameters (`v1.PodLogOptions` names, plus the legacy `tail`).
pub(super) fn parse_query(
    query: &str,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<LogOptions, QueryError> {
    let mut options = LogOptions {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container: container.to_string(),
        ..LogOptions::default()
    };
    let flag = |value: &str| match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(QueryError::Undecodable),
    };
    let number = |value: &str| value.parse::<i64>().map_err(|_| QueryError::Undecodable);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "follow" => options.follow = flag(&value)?,
            "previous" => options.previous = flag(&value)?,
            "timestamps" => options.timestamps = flag(&value)?,
            "tailLines" => options.tail_lines = Some(number(&value)?),
            "tail" if value == "all" => options.tail_lines = None,
            "tail" => options.tail_lines = Some(number(&value)?),
            "limitBytes" => options.limit_bytes = Some(number(&value)?),
            "sinceSeconds" => options.since_seconds = Some(number(&value)?),
            "sinceTime" => {
                let at = value
                    .parse::<Timestamp>()
                    .map_err(|_| QueryError::Undecodable)?;
                options.since_time = Some(Time(at));
            }
            _ => {}
        }
    }
    let invalid = options.tail_lines.is_some_and(|n| n < 0)
        || options.limit_bytes.is_some_and(|n| n < 1)
        || options.since_seconds.is_some_and(|n| n < 1)
        || (options.since_seconds.is_some() && options.since_time.is_some());
    if invalid {
        Err(QueryError::Invalid)
    } else {
        Ok(options)
    }
}

/// The kubelet's 400 answers for containers without a log to read.
fn unreadable(pod: &Pod, container: &str, previous: bool) -> Option<String> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let statuses = pod.status.as_ref().map(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
    });
    let status = statuses.and_then(|mut all| all.find(|s| s.name == container));
    let Some(status) = status else {
        return Some(format!(
            "container \"{container}\" in pod \"{name}\" is not available"
        ));
    };
    if previous {
        return None;
    }
    let waiting = status.state.as_ref().and_then(|s| s.waiting.as_ref());
    waiting.map(|waiting| {
        let reason = waiting.reason.as_deref().unwrap_or("ContainerCreating");
        format!("container \"{container}\" in pod \"{name}\" is waiting to start: {reason}")
    })
}

pub(super) async fn handle(
    state: &Arc<ServerState>,
    request: &Request<Incoming>,
    namespace: &str,
    pod_name: &str,
    container: &str,
) -> Response<Body> {
    let pod = match state.pod_with_container(namespace, pod_name, container) {
        Ok(pod) => pod,
        Err(refusal) => return *refusal,
    };
    let options = match parse_query(
        request.uri().query().unwrap_or(""),
        namespace,
        pod_name,
        container,
    ) {
        Ok(options) => options,
        Err(QueryError::Undecodable) => {
            return text(
                StatusCode::BAD_REQUEST,
                r#"{"message": "Unable to decode query."}"#,
            );
        }
        Err(QueryError::Invalid) => {
            return text(
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"message": "Invalid request."}"#,
            );
        }
    };
    if let Some(message) = unreadable(&pod, container, options.previous) {
        return text(StatusCode::BAD_REQUEST, message);
    }
    let (sender, mut receiver) = mpsc::channel::<Bytes>(BUFFERED_CHUNKS);
    let sink = byte_sink(move |data| {
        sender
            .blocking_send(Bytes::copy_from_slice(data))
            .map_err(|_| "the client went away".to_string())
    });
    let mut reading = tokio::spawn({
        let provider = state.provider.clone();
        async move {
            provider
                .stream("container_logs", move |p| p.container_logs(&options, sink))
                .await
        }
    });
    // An error before the first byte is answered as an error; after that the log just ends.
    let first = tokio::select! {
        chunk = receiver.recv() => match chunk {
            Some(chunk) => Some(chunk),
            // The provider dropped its sink without writing: its result decides (the channel
            // closes before the call's task reports, so this is how a refusal shows up first).
            None => match (&mut reading).await {
                Ok(Err(error)) => return provider_error(&error),
                _ => None,
            },
        },
        finished = &mut reading => match finished {
            Ok(Err(error)) => return provider_error(&error),
            _ => receiver.recv().await,
        },
    };
    let chunks = futures::stream::iter(first).chain(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|chunk| (chunk, receiver)) },
    ));
    let body = BodyExt::boxed(StreamBody::new(
        chunks.map(|chunk| Ok::<_, std::io::Error>(Frame::data(chunk))),
    ));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body)
        .expect("a valid response")
}

#[cfg(test)]
mod tests;
