//! The safe trait a provider implements, and the stream handles it is given.
//!
//! Calls block: the host makes them from its blocking threads with a time limit, and a provider
//! that needs async I/O runs its own runtime (never the host's; each library has its own statics).

use std::{
    io::{self, Read, Write},
    sync::Arc,
};

use abi_stable::std_types::RSlice;
use k8s_openapi::api::core::v1::{Node, Pod, PodStatus};

use crate::{
    error::{ProviderError, Result},
    raw::{ByteSinkBox, ByteSourceBox, NodeNotifierBox, PodNotifierBox, ResizeSourceBox},
    stats::{PodStats, Summary},
    types::{
        Capabilities, ExecOptions, LogOptions, PodEvent, PortForwardOptions, ProviderInit, Refusal,
        ResolvedPod,
    },
};

pub use crate::raw::TerminalSize;

/// A backend that runs the pods of one virtual node.
///
/// Only the pod lifecycle is mandatory; every other call has a default that says the provider
/// does not support it (or, for notifications, that it must be polled).
pub trait Provider: Send + Sync + Sized + 'static {
    /// Builds the provider, validating its configuration: a bad configuration is an
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error with a message that
    /// says what to fix.
    fn new(init: ProviderInit) -> Result<Self>;

    fn create_pod(&self, pod: ResolvedPod) -> Result<()>;
    fn update_pod(&self, pod: ResolvedPod) -> Result<()>;
    /// Stops the pod's containers within `grace_period_seconds` and removes them. Deleting a
    /// pod the provider does not know is not an error.
    fn delete_pod(&self, pod: Pod, grace_period_seconds: i64) -> Result<()>;
    fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>>;
    fn get_pod_status(&self, namespace: &str, name: &str) -> Result<Option<PodStatus>> {
        Ok(self.get_pod(namespace, name)?.and_then(|pod| pod.status))
    }
    /// Every pod the provider runs for this node, each with the containers it made (at least
    /// their names in `spec.containers`). At start-up vk adopts the pods that the API still has
    /// and reads their status; a pod that lacks some of its containers was cut short while
    /// being created, and vk calls `create_pod` again, which must finish or redo it.
    fn list_pods(&self) -> Result<Vec<Pod>>;

    /// Keeps `notifier` and calls it whenever a pod's status changes; answers false if the
    /// provider cannot, and the host then polls `get_pod_status`.
    fn notify_pods(&self, notifier: PodNotifier) -> bool {
        let _ = notifier;
        false
    }

    /// Fills in capacity, allocatable, conditions, addresses, node info, labels and taints.
    fn configure_node(&self, node: Node) -> Result<Node> {
        Ok(node)
    }
    /// Fails while the backend is unhealthy; the node then stops renewing its lease.
    fn ping(&self) -> Result<()> {
        Ok(())
    }
    fn notify_node_status(&self, notifier: NodeNotifier) -> bool {
        let _ = notifier;
        false
    }

    /// Writes the log into `sink`. When following, return once a write fails.
    fn container_logs(&self, options: LogOptions, sink: OutputStream) -> Result<()> {
        let _ = (options, sink);
        Err(ProviderError::unsupported(
            "container logs are not supported by this provider",
        ))
    }
    fn exec(&self, options: ExecOptions, streams: Streams) -> Result<i32> {
        let _ = (options, streams);
        Err(ProviderError::unsupported(
            "exec is not supported by this provider",
        ))
    }
    fn attach(&self, options: ExecOptions, streams: Streams) -> Result<i32> {
        let _ = (options, streams);
        Err(ProviderError::unsupported(
            "attach is not supported by this provider",
        ))
    }
    /// Relays one connection until either side closes.
    fn port_forward(
        &self,
        options: PortForwardOptions,
        input: InputStream,
        output: OutputStream,
    ) -> Result<()> {
        let _ = (options, input, output);
        Err(ProviderError::unsupported(
            "port-forward is not supported by this provider",
        ))
    }
    fn stats_summary(&self) -> Result<Summary> {
        Err(ProviderError::unsupported(
            "stats are not supported by this provider",
        ))
    }
    fn pod_stats(&self, namespace: &str, name: &str) -> Result<Option<PodStats>> {
        let _ = (namespace, name);
        Err(ProviderError::unsupported(
            "stats are not supported by this provider",
        ))
    }
    /// Applies the new container resources of a running pod (its spec as the API has it after
    /// a resize), restarting only the containers whose `resizePolicy` asks for it, and reports
    /// the resources actually applied in `containerStatuses[].resources`. Answer
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) when the resize may fit later,
    /// and [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when it never can.
    fn resize_pod(&self, pod: Pod) -> Result<()> {
        let _ = pod;
        Err(ProviderError::unsupported(
            "in-place pod resize is not supported by this provider",
        ))
    }

    /// Whether the backend can run `pod` as written, asked before `create_pod` for a pod the
    /// provider was never given. A field it cannot honour is a [`Refusal`] naming it, never
    /// dropped silently. Fields unknown to this library's `k8s-openapi` are refused before
    /// this is called.
    fn check_pod(&self, pod: &Pod) -> Result<Option<Refusal>> {
        let _ = pod;
        Ok(None)
    }

    /// What the provider does itself, so that vk does not do it twice.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Kills `container` of the running `pod` within `grace_period_seconds` (its preStop hook
    /// has run), as the kubelet does when a liveness or startup probe fails, then handles it
    /// as any exit of that container: restarted as the restart policy says, with crash-loop
    /// back-off, its `restartCount` counted and `lastState` kept.
    fn restart_container(
        &self,
        pod: Pod,
        container: &str,
        grace_period_seconds: i64,
    ) -> Result<()> {
        let _ = (pod, container, grace_period_seconds);
        Err(ProviderError::unsupported(
            "restarting a container is not supported by this provider",
        ))
    }
}

/// Tells the host that a pod's status changed, or that something happened to a pod. Cheap to
/// clone.
#[derive(Clone)]
pub struct PodNotifier(Arc<PodNotifierBox>);

impl PodNotifier {
    pub(crate) fn new(raw: PodNotifierBox) -> Self {
        PodNotifier(Arc::new(raw))
    }
    /// The host reads the pod's namespace, name, UID and status: a pod without its spec will do.
    pub fn notify(&self, pod: &Pod) {
        if let Ok(json) = serde_json::to_vec(pod) {
            self.0.pod_changed(RSlice::from_slice(&json));
        }
    }
    /// Has the host record `event` as a Kubernetes event on its pod (hosts before ABI 1.2
    /// ignore it).
    pub fn event(&self, event: &PodEvent) {
        if let Ok(json) = serde_json::to_vec(event) {
            self.0.pod_event(RSlice::from_slice(&json));
        }
    }
}

impl std::fmt::Debug for PodNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PodNotifier")
    }
}

/// Tells the host that the node's status changed. Cheap to clone.
#[derive(Clone)]
pub struct NodeNotifier(Arc<NodeNotifierBox>);

impl NodeNotifier {
    pub(crate) fn new(raw: NodeNotifierBox) -> Self {
        NodeNotifier(Arc::new(raw))
    }
    pub fn notify(&self, node: &Node) {
        if let Ok(json) = serde_json::to_vec(node) {
            self.0.node_changed(RSlice::from_slice(&json));
        }
    }
}

impl std::fmt::Debug for NodeNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeNotifier")
    }
}

/// Bytes from the client (stdin, or a port-forward connection), read with [`std::io::Read`].
pub struct InputStream {
    raw: ByteSourceBox,
    pending: Vec<u8>,
    offset: usize,
    ended: bool,
}

impl InputStream {
    pub(crate) fn new(raw: ByteSourceBox) -> Self {
        InputStream {
            raw,
            pending: Vec::new(),
            offset: 0,
            ended: false,
        }
    }
}

impl Read for InputStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offset == self.pending.len() {
            if self.ended {
                return Ok(0);
            }
            self.pending = self.raw.read().into_vec();
            self.offset = 0;
            if self.pending.is_empty() {
                self.ended = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.pending.len() - self.offset);
        buf[..n].copy_from_slice(&self.pending[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

impl std::fmt::Debug for InputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InputStream")
    }
}

/// Bytes to the client (a log, stdout, stderr, or a port-forward connection), written with
/// [`std::io::Write`]. A write fails once the client is gone.
pub struct OutputStream(ByteSinkBox);

impl OutputStream {
    pub(crate) fn new(raw: ByteSinkBox) -> Self {
        OutputStream(raw)
    }
}

impl Write for OutputStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .write(RSlice::from_slice(buf))
            .into_result()
            .map_err(|error| {
                io::Error::new(io::ErrorKind::BrokenPipe, error.message.into_string())
            })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for OutputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputStream")
    }
}

/// Terminal resize events of a tty session.
pub struct Resizes(ResizeSourceBox);

impl Resizes {
    /// Blocks until the next resize; `None` once the session is over.
    pub fn next_size(&self) -> Option<TerminalSize> {
        self.0.next().into_option()
    }
}

impl std::fmt::Debug for Resizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resizes")
    }
}

/// The streams of an exec or attach session; those the client did not ask for are `None`.
#[derive(Debug)]
pub struct Streams {
    pub stdin: Option<InputStream>,
    pub stdout: Option<OutputStream>,
    pub stderr: Option<OutputStream>,
    pub resize: Option<Resizes>,
}

impl Streams {
    pub(crate) fn from_raw(raw: crate::raw::RawStreams) -> Self {
        Streams {
            stdin: raw.stdin.into_option().map(InputStream::new),
            stdout: raw.stdout.into_option().map(OutputStream::new),
            stderr: raw.stderr.into_option().map(OutputStream::new),
            resize: raw.resize.into_option().map(Resizes),
        }
    }
}
