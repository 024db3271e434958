//! Logs, exec, attach and port-forward. Writes to vk's streams block, so they happen in the
//! future the calling thread runs; reads from vk's streams block too, so each has a thread of
//! its own feeding a channel.

use std::{
    io::{Read as _, Write as _},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use bollard::{
    Docker,
    container::LogOutput,
    exec::{StartExecOptions, StartExecResults},
    models::ExecConfig,
    query_parameters::{
        AttachContainerOptionsBuilder, LogsOptionsBuilder, ResizeContainerTTYOptionsBuilder,
        ResizeExecOptionsBuilder,
    },
};
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use vk_abi::{
    ExecOptions, InputStream, LogOptions, OutputStream, PortForwardOptions, Resizes, Streams,
    TerminalSize,
};

use crate::{
    backend::Backend,
    inventory::{self, ContainerView, PodView},
    spec::Role,
    status,
};

/// The command that relays a port-forward inside the pod when the engine is remote.
const RELAY_COMMAND: &str = "nc";

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("pod {namespace}/{name} not found")]
    PodNotFound { namespace: String, name: String },
    #[error("container {container} not found in pod {namespace}/{name}")]
    ContainerNotFound {
        namespace: String,
        name: String,
        container: String,
    },
    #[error(
        "previous terminated container {0:?} not found: the engine keeps one container per pod container"
    )]
    NoPrevious(String),
    #[error("pod {0} has no IP address to forward to")]
    NoPodIp(String),
    #[error(
        "port-forward to a remote engine runs `nc` in container {container}, which has none (exit code {exit_code})"
    )]
    NoRelay { container: String, exit_code: i32 },
    #[error("{what}: {source}")]
    Engine {
        what: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("command timed out after {0}s")]
    TimedOut(u64),
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

fn engine(what: &'static str) -> impl FnOnce(bollard::errors::Error) -> StreamError {
    move |source| StreamError::Engine { what, source }
}

async fn pod_view(backend: &Backend, namespace: &str, name: &str) -> Result<PodView, StreamError> {
    inventory::inspect_pod(&backend.engine, &backend.node_name, namespace, name)
        .await
        .map_err(engine("cannot inspect the pod"))?
        .ok_or_else(|| StreamError::PodNotFound {
            namespace: namespace.into(),
            name: name.into(),
        })
}

async fn container(
    backend: &Backend,
    namespace: &str,
    name: &str,
    container: &str,
) -> Result<ContainerView, StreamError> {
    let view = pod_view(backend, namespace, name).await?;
    view.container(container)
        .cloned()
        .ok_or_else(|| StreamError::ContainerNotFound {
            namespace: namespace.into(),
            name: name.into(),
            container: container.into(),
        })
}

/// Writes the container's log into `sink`; returns when it ends or the client is gone.
pub async fn logs(
    backend: &Backend,
    options: LogOptions,
    mut sink: OutputStream,
) -> Result<(), StreamError> {
    if options.previous {
        return Err(StreamError::NoPrevious(options.container));
    }
    let container = container(
        backend,
        &options.namespace,
        &options.pod,
        &options.container,
    )
    .await?;
    let now = jiff::Timestamp::now().as_second();
    let since = match (&options.since_time, options.since_seconds) {
        (Some(time), _) => time.0.as_second(),
        (None, Some(seconds)) => now - seconds,
        (None, None) => 0,
    };
    let tail = options
        .tail_lines
        .map_or_else(|| "all".to_string(), |lines| lines.to_string());
    let request = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .follow(options.follow)
        .timestamps(options.timestamps)
        .tail(&tail)
        .since(i32::try_from(since).unwrap_or(0))
        .build();
    let mut log = backend.engine.docker.logs(&container.id, Some(request));
    let mut budget = options
        .limit_bytes
        .and_then(|limit| usize::try_from(limit).ok());
    while let Some(chunk) = log.next().await {
        let chunk = chunk
            .map_err(engine("cannot read the container's log"))?
            .into_bytes();
        let chunk = match budget.as_mut() {
            Some(left) => {
                let take = chunk.len().min(*left);
                *left -= take;
                chunk.slice(..take)
            }
            None => chunk,
        };
        if sink.write_all(&chunk).is_err() || budget == Some(0) {
            break;
        }
    }
    Ok(())
}

/// Runs `options.command` in the container and returns its exit code.
pub async fn exec(
    backend: &Backend,
    options: ExecOptions,
    streams: Streams,
) -> Result<i32, StreamError> {
    let container = container(
        backend,
        &options.namespace,
        &options.pod,
        &options.container,
    )
    .await?;
    let docker = &backend.engine.docker;
    let created = docker
        .create_exec(
            &container.id,
            ExecConfig {
                attach_stdin: Some(streams.stdin.is_some()),
                attach_stdout: Some(streams.stdout.is_some()),
                attach_stderr: Some(streams.stderr.is_some()),
                tty: Some(options.tty),
                cmd: Some(options.command),
                ..ExecConfig::default()
            },
        )
        .await
        .map_err(engine("cannot create the exec"))?;
    let started = docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty: options.tty,
                output_capacity: None,
            }),
        )
        .await
        .map_err(engine("cannot start the exec"))?;
    let StartExecResults::Attached { output, input } = started else {
        return Ok(0);
    };
    let terminal = Terminal::Exec(created.id.clone());
    let relayed = relay(output, input, streams, docker, terminal);
    match options.timeout_seconds.map(Duration::from_secs) {
        // The engine cannot kill an exec; it is left to end on its own, unwatched.
        Some(limit) => tokio::time::timeout(limit, relayed)
            .await
            .map_err(|_| StreamError::TimedOut(limit.as_secs()))?,
        None => relayed.await,
    }
    // The exit code is there once the engine has seen the process end, shortly after EOF.
    for _ in 0..100 {
        let inspected = docker
            .inspect_exec(&created.id)
            .await
            .map_err(engine("cannot inspect the exec"))?;
        if inspected.running != Some(true) {
            return Ok(inspected.exit_code.unwrap_or_default() as i32);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(0)
}

/// Attaches to the container's main process; returns its exit code if it ended.
pub async fn attach(
    backend: &Backend,
    options: ExecOptions,
    streams: Streams,
) -> Result<i32, StreamError> {
    let container = container(
        backend,
        &options.namespace,
        &options.pod,
        &options.container,
    )
    .await?;
    let docker = &backend.engine.docker;
    let request = AttachContainerOptionsBuilder::new()
        .stream(true)
        .stdin(streams.stdin.is_some())
        .stdout(streams.stdout.is_some())
        .stderr(streams.stderr.is_some())
        .build();
    let attached = docker
        .attach_container(&container.id, Some(request))
        .await
        .map_err(engine("cannot attach to the container"))?;
    let terminal = Terminal::Container(container.id.clone());
    relay(attached.output, attached.input, streams, docker, terminal).await;
    let inspected = inventory::inspect(&backend.engine, &container.id)
        .await
        .map_err(engine("cannot inspect the container"))?;
    Ok(if status::is_running(&inspected) {
        0
    } else {
        inspected
            .state
            .and_then(|state| state.exit_code)
            .unwrap_or_default() as i32
    })
}

/// Copies stdin and resizes to the engine and its output to the client until the output ends.
async fn relay(
    mut output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    input: Pin<Box<dyn AsyncWrite + Send>>,
    streams: Streams,
    docker: &Docker,
    terminal: Terminal,
) {
    let Streams {
        stdin,
        mut stdout,
        mut stderr,
        resize: resizes,
    } = streams;
    let pump = stdin.map(|stdin| tokio::spawn(copy_in(stdin, input)));
    let resizing = resizes.map(|resizes| {
        let mut sizes = read_resizes(resizes);
        let docker = docker.clone();
        tokio::spawn(async move {
            while let Some(size) = sizes.recv().await {
                if let Err(error) = terminal.resize(&docker, size).await {
                    log::debug!("cannot resize the terminal: {error}");
                }
            }
        })
    });
    while let Some(Ok(chunk)) = output.next().await {
        let target = match chunk {
            LogOutput::StdErr { .. } => stderr.as_mut().or(stdout.as_mut()),
            LogOutput::StdOut { .. } | LogOutput::Console { .. } => stdout.as_mut(),
            LogOutput::StdIn { .. } => None,
        };
        if let Some(target) = target
            && target.write_all(&chunk.into_bytes()).is_err()
        {
            break;
        }
    }
    for task in pump.into_iter().chain(resizing) {
        task.abort();
    }
}

/// The terminal of an exec or of a container's main process, resized through its own call.
enum Terminal {
    Exec(String),
    Container(String),
}

impl Terminal {
    async fn resize(
        &self,
        docker: &Docker,
        size: TerminalSize,
    ) -> Result<(), bollard::errors::Error> {
        let (height, width) = (size.height.into(), size.width.into());
        match self {
            Terminal::Exec(id) => {
                let options = ResizeExecOptionsBuilder::new().h(height).w(width).build();
                docker.resize_exec(id, options).await
            }
            Terminal::Container(id) => {
                let options = ResizeContainerTTYOptionsBuilder::new()
                    .h(height)
                    .w(width)
                    .build();
                docker.resize_container_tty(id, options).await
            }
        }
    }
}

/// Writes what the client sends into `input`, then half-closes it.
async fn copy_in(stdin: InputStream, mut input: Pin<Box<dyn AsyncWrite + Send>>) {
    let mut chunks = read_chunks(stdin);
    while let Some(chunk) = chunks.recv().await {
        if input.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = input.shutdown().await;
}

/// The client's bytes, read on a thread of their own (reads block).
fn read_chunks(mut source: InputStream) -> tokio::sync::mpsc::Receiver<Bytes> {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut buffer = vec![0; 32 * 1024];
        while let Ok(read @ 1..) = source.read(&mut buffer) {
            if sender
                .blocking_send(Bytes::copy_from_slice(&buffer[..read]))
                .is_err()
            {
                return;
            }
        }
    });
    receiver
}

fn read_resizes(resizes: Resizes) -> tokio::sync::mpsc::Receiver<TerminalSize> {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    std::thread::spawn(move || {
        while let Some(size) = resizes.next_size() {
            if sender.blocking_send(size).is_err() {
                return;
            }
        }
    });
    receiver
}

/// Relays one connection to `options.port` of the pod: dialled directly when the engine runs
/// on this host (its pod addresses are routable here), else through `nc` run in the pod.
pub async fn port_forward(
    backend: &Arc<Backend>,
    options: PortForwardOptions,
    input: InputStream,
    mut output: OutputStream,
) -> Result<(), StreamError> {
    let view = pod_view(backend, &options.namespace, &options.pod).await?;
    if !backend.engine.is_local() {
        return relay_through_exec(backend, &view, options, input, output).await;
    }
    let ip = view
        .infra
        .as_ref()
        .and_then(|infra| status::ip_address(&infra.inspect))
        .ok_or_else(|| StreamError::NoPodIp(format!("{}/{}", options.namespace, options.pod)))?;
    let address = format!("{ip}:{}", options.port);
    let connection = tokio::net::TcpStream::connect(&address)
        .await
        .map_err(|source| StreamError::Connect { address, source })?;
    let (mut from_pod, to_pod) = connection.into_split();
    let pump = tokio::spawn(copy_in(input, Box::pin(to_pod)));
    let mut buffer = vec![0; 32 * 1024];
    loop {
        use tokio::io::AsyncReadExt as _;
        match from_pod.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                if output.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
        }
    }
    pump.abort();
    Ok(())
}

async fn relay_through_exec(
    backend: &Backend,
    view: &PodView,
    options: PortForwardOptions,
    input: InputStream,
    output: OutputStream,
) -> Result<(), StreamError> {
    let container = view
        .containers
        .iter()
        .find(|c| c.role == Role::App && status::is_running(&c.inspect))
        .ok_or_else(|| StreamError::NoPodIp(format!("{}/{}", options.namespace, options.pod)))?
        .name
        .clone();
    let exec_options = ExecOptions {
        namespace: options.namespace,
        pod: options.pod,
        container: container.clone(),
        command: vec![
            RELAY_COMMAND.into(),
            "127.0.0.1".into(),
            options.port.to_string(),
        ],
        tty: false,
        timeout_seconds: None,
    };
    let streams = Streams {
        stdin: Some(input),
        stdout: Some(output),
        stderr: None,
        resize: None,
    };
    match exec(backend, exec_options, streams).await? {
        exit_code @ (126 | 127) => Err(StreamError::NoRelay {
            container,
            exit_code,
        }),
        _ => Ok(()),
    }
}
