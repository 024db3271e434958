//! The host's typed view of a loaded provider, and host-side stream and callback objects.
//!
//! Calls block, like the provider calls behind them: run them on blocking threads.

use std::{
    borrow::Cow,
    panic::{AssertUnwindSafe, catch_unwind},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RSlice, RStr, RVec},
};
use k8s_openapi::{
    api::core::v1::{Node, Pod, PodStatus},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    error::{ErrorKind, ProviderError, Result},
    logging,
    raw::{
        ByteSink, ByteSink_TO, ByteSinkBox, ByteSource, ByteSource_TO, ByteSourceBox, Json,
        LOG_OFF, LogSink, LogSink_TO, LogSinkBox, NodeNotifier, NodeNotifier_TO, PodNotifier,
        PodNotifier_TO, ProviderModuleRef, RawError, RawLogRecord, RawProviderBox, RawResult,
        RawStreams, ResizeSource, ResizeSource_TO, ResizeSourceBox, TerminalSize,
    },
    stats::{PodStats, Summary},
    types::{
        Capabilities, ExecOptions, LogOptions, PodEvent, PortForwardOptions, ProviderInit, Refusal,
        ResolvedPod,
    },
};

/// A provider instance, as the host sees it.
pub struct ProviderClient {
    raw: RawProviderBox,
}

impl std::fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProviderClient")
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|error| ProviderError::invalid_input(format!("cannot encode a request: {error}")))
}

/// A pod on its way to the provider, which is given its JSON.
pub trait PodJson {
    fn pod_json(&self) -> Result<Cow<'_, [u8]>>;
}

impl PodJson for Pod {
    fn pod_json(&self) -> Result<Cow<'_, [u8]>> {
        encode(self).map(Cow::Owned)
    }
}

/// A pod's JSON as the API server sent it, given to the provider as it is: not encoded again,
/// and with every field, those the host's `k8s-openapi` does not know included.
#[derive(Debug, Clone, Copy)]
pub struct RawPod<'a>(pub &'a [u8]);

impl PodJson for RawPod<'_> {
    fn pod_json(&self) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(self.0))
    }
}

fn decode<T: DeserializeOwned>(json: Json) -> Result<T> {
    serde_json::from_slice(&json).map_err(|error| {
        ProviderError::other(format!("the provider answered malformed JSON: {error}"))
    })
}

fn decode_option<T: DeserializeOwned>(json: Json) -> Result<Option<T>> {
    if json.is_empty() {
        Ok(None)
    } else {
        decode(json).map(Some)
    }
}

fn answer<T>(result: RawResult<T>) -> Result<T> {
    result.into_result().map_err(ProviderError::from)
}

impl ProviderClient {
    /// Builds a provider from a loaded module. A provider of ABI 1.3 or later logs into this
    /// process's `log` logger, under its own targets; an older one cannot.
    pub fn new(module: ProviderModuleRef, init: &ProviderInit) -> Result<Self> {
        let init = encode(init)?;
        let init = RSlice::from_slice(&init);
        let raw = match module.new_provider_with_log() {
            Some(new_provider) => new_provider(init, host_log_sink()),
            None => (module.new_provider())(init),
        };
        Ok(ProviderClient { raw: answer(raw)? })
    }

    pub fn create_pod(&self, pod: &ResolvedPod) -> Result<()> {
        answer(self.raw.create_pod(RSlice::from_slice(&encode(pod)?)))
    }
    pub fn update_pod(&self, pod: &ResolvedPod) -> Result<()> {
        answer(self.raw.update_pod(RSlice::from_slice(&encode(pod)?)))
    }
    pub fn delete_pod(&self, pod: &impl PodJson, grace_period_seconds: i64) -> Result<()> {
        answer(
            self.raw
                .delete_pod(RSlice::from_slice(&pod.pod_json()?), grace_period_seconds),
        )
    }
    pub fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>> {
        decode_option(answer(
            self.raw
                .get_pod(RStr::from_str(namespace), RStr::from_str(name)),
        )?)
    }
    pub fn get_pod_status(&self, namespace: &str, name: &str) -> Result<Option<PodStatus>> {
        decode_option(answer(
            self.raw
                .get_pod_status(RStr::from_str(namespace), RStr::from_str(name)),
        )?)
    }
    pub fn list_pods(&self) -> Result<Vec<Pod>> {
        decode(answer(self.raw.list_pods())?)
    }
    /// Registers `on_change` for pod status changes and `on_event` for the provider's events;
    /// answers false when the provider must be polled instead. `on_change` is given the pod's
    /// metadata and status: its spec, which the provider has from the host, is not read.
    pub fn notify_pods(
        &self,
        on_change: impl Fn(Pod) + Send + Sync + 'static,
        on_event: impl Fn(PodEvent) + Send + Sync + 'static,
    ) -> Result<bool> {
        let callbacks = PodCallbacks {
            on_change,
            on_event,
        };
        answer(
            self.raw
                .notify_pods(PodNotifier_TO::from_value(callbacks, TD_Opaque)),
        )
    }
    pub fn configure_node(&self, node: &Node) -> Result<Node> {
        decode(answer(
            self.raw.configure_node(RSlice::from_slice(&encode(node)?)),
        )?)
    }
    pub fn ping(&self) -> Result<()> {
        answer(self.raw.ping())
    }
    pub fn notify_node_status(
        &self,
        on_change: impl Fn(Node) + Send + Sync + 'static,
    ) -> Result<bool> {
        let notifier = NodeNotifier_TO::from_value(Callback(on_change), TD_Opaque);
        answer(self.raw.notify_node_status(notifier))
    }
    pub fn container_logs(&self, options: &LogOptions, sink: ByteSinkBox) -> Result<()> {
        answer(
            self.raw
                .container_logs(RSlice::from_slice(&encode(options)?), sink),
        )
    }
    pub fn exec(&self, options: &ExecOptions, streams: HostStreams) -> Result<i32> {
        answer(
            self.raw
                .exec(RSlice::from_slice(&encode(options)?), streams.into_raw()),
        )
    }
    pub fn attach(&self, options: &ExecOptions, streams: HostStreams) -> Result<i32> {
        answer(
            self.raw
                .attach(RSlice::from_slice(&encode(options)?), streams.into_raw()),
        )
    }
    pub fn port_forward(
        &self,
        options: &PortForwardOptions,
        input: ByteSourceBox,
        output: ByteSinkBox,
    ) -> Result<()> {
        answer(
            self.raw
                .port_forward(RSlice::from_slice(&encode(options)?), input, output),
        )
    }
    pub fn stats_summary(&self) -> Result<Summary> {
        decode(answer(self.raw.stats_summary())?)
    }
    pub fn pod_stats(&self, namespace: &str, name: &str) -> Result<Option<PodStats>> {
        decode_option(answer(
            self.raw
                .pod_stats(RStr::from_str(namespace), RStr::from_str(name)),
        )?)
    }
    /// Applies a resize in place; a provider before ABI 1.3 answers
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn resize_pod(&self, pod: &Pod) -> Result<()> {
        answer(self.raw.resize_pod(RSlice::from_slice(&encode(pod)?)))
    }

    /// The provider's refusal of `pod`, if it cannot run it as written. A provider before
    /// ABI 1.3 cannot check and has no objection.
    pub fn check_pod(&self, pod: &impl PodJson) -> Result<Option<Refusal>> {
        match answer(self.raw.check_pod(RSlice::from_slice(&pod.pod_json()?))) {
            Err(error) if error.kind == ErrorKind::Unsupported => Ok(None),
            answered => decode_option(answered?),
        }
    }

    /// What the provider does itself; a provider before ABI 1.4 does none of it.
    pub fn capabilities(&self) -> Result<Capabilities> {
        match answer(self.raw.capabilities()) {
            Err(error) if error.kind == ErrorKind::Unsupported => Ok(Capabilities::default()),
            answered => decode(answered?),
        }
    }

    /// Kills one container to be restarted as its pod's policy says; a provider before ABI
    /// 1.4 answers [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn restart_container(
        &self,
        pod: &Pod,
        container: &str,
        grace_period_seconds: i64,
    ) -> Result<()> {
        answer(self.raw.restart_container(
            RSlice::from_slice(&encode(pod)?),
            RStr::from_str(container),
            grace_period_seconds,
        ))
    }
}

/// The host's end of an exec or attach session.
#[derive(Default)]
pub struct HostStreams {
    pub stdin: Option<ByteSourceBox>,
    pub stdout: Option<ByteSinkBox>,
    pub stderr: Option<ByteSinkBox>,
    pub resize: Option<ResizeSourceBox>,
}

impl std::fmt::Debug for HostStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostStreams")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("resize", &self.resize.is_some())
            .finish()
    }
}

impl HostStreams {
    fn into_raw(self) -> RawStreams {
        RawStreams {
            stdin: self.stdin.into(),
            stdout: self.stdout.into(),
            stderr: self.stderr.into(),
            resize: self.resize.into(),
        }
    }
}

/// A sink that hands every write to `write`; an `Err` tells the provider the client is gone.
pub fn byte_sink(
    write: impl Fn(&[u8]) -> std::result::Result<(), String> + Send + Sync + 'static,
) -> ByteSinkBox {
    ByteSink_TO::from_value(Callback(write), TD_Opaque)
}

/// A source whose `read` blocks for the next bytes; an empty vector ends the stream.
pub fn byte_source(read: impl Fn() -> Vec<u8> + Send + Sync + 'static) -> ByteSourceBox {
    ByteSource_TO::from_value(Callback(read), TD_Opaque)
}

/// A source of resize events; `None` ends the session's resizes.
pub fn resize_source(
    next: impl Fn() -> Option<TerminalSize> + Send + Sync + 'static,
) -> ResizeSourceBox {
    ResizeSource_TO::from_value(Callback(next), TD_Opaque)
}

/// A sink that writes a provider's records into this process's `log` logger, whose filter
/// decides per target like for the host's own records.
pub fn host_log_sink() -> LogSinkBox {
    LogSink_TO::from_value(HostLog, TD_Opaque)
}

/// This process's `log` logger, behind a [`LogSink`].
struct HostLog;

impl LogSink for HostLog {
    fn max_level(&self) -> u32 {
        match log::max_level().to_level() {
            Some(level) => logging::level_to_raw(level),
            None => LOG_OFF,
        }
    }
    fn enabled(&self, level: u32, target: RStr<'_>) -> bool {
        let metadata = log::Metadata::builder()
            .level(logging::level_from_raw(level))
            .target(target.as_str())
            .build();
        catch(false, || log::logger().enabled(&metadata))
    }
    fn log(&self, record: RawLogRecord<'_>) {
        fn as_str(text: ROption<RStr<'_>>) -> Option<&str> {
            text.into_option().map(|text| text.as_str())
        }
        catch((), || {
            log::logger().log(
                &log::Record::builder()
                    .level(logging::level_from_raw(record.level))
                    .target(record.target.as_str())
                    .args(format_args!("{}", record.message))
                    .module_path(as_str(record.module_path))
                    .file(as_str(record.file))
                    .line(record.line.into_option())
                    .build(),
            )
        });
    }
}

/// A host closure behind one of the callback traits. Host code called from a provider thread
/// must not unwind into the provider either, so panics are caught here too.
struct Callback<F>(F);

fn catch<T>(fallback: T, call: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or(fallback)
}

/// The host closures behind a [`PodNotifier`].
struct PodCallbacks<C, E> {
    on_change: C,
    on_event: E,
}

impl<C: Fn(Pod) + Send + Sync, E: Fn(PodEvent) + Send + Sync> PodNotifier for PodCallbacks<C, E> {
    fn pod_changed(&self, pod: RSlice<'_, u8>) {
        /// A pod without its spec: the spec's fields are skipped, not built.
        #[derive(Deserialize)]
        struct Reported {
            #[serde(default)]
            metadata: ObjectMeta,
            status: Option<PodStatus>,
        }
        if let Ok(Reported { metadata, status }) = serde_json::from_slice(pod.as_slice()) {
            let pod = Pod {
                metadata,
                spec: None,
                status,
            };
            catch((), || (self.on_change)(pod));
        }
    }
    fn pod_event(&self, event: RSlice<'_, u8>) {
        if let Ok(event) = serde_json::from_slice(event.as_slice()) {
            catch((), || (self.on_event)(event));
        }
    }
}

impl<F: Fn(Node) + Send + Sync> NodeNotifier for Callback<F> {
    fn node_changed(&self, node: RSlice<'_, u8>) {
        if let Ok(node) = serde_json::from_slice(node.as_slice()) {
            catch((), || (self.0)(node));
        }
    }
}

impl<F: Fn(&[u8]) -> std::result::Result<(), String> + Send + Sync> ByteSink for Callback<F> {
    fn write(&self, data: RSlice<'_, u8>) -> RawResult<()> {
        let closed = Err("the host's stream failed".to_string());
        match catch(closed, || (self.0)(data.as_slice())) {
            Ok(()) => RResult::ROk(()),
            Err(message) => RResult::RErr(RawError::from(ProviderError::unavailable(message))),
        }
    }
}

impl<F: Fn() -> Vec<u8> + Send + Sync> ByteSource for Callback<F> {
    fn read(&self) -> RVec<u8> {
        catch(Vec::new(), || (self.0)()).into()
    }
}

impl<F: Fn() -> Option<TerminalSize> + Send + Sync> ResizeSource for Callback<F> {
    fn next(&self) -> ROption<TerminalSize> {
        catch(None, || (self.0)()).into()
    }
}
