//! Logs and exec. ACI serves a container's whole log (or its tail) in one piece, so following
//! is polling; exec goes through the web socket whose URI and password the exec call returns:
//! the password goes first as a text frame, then stdin as binary frames, and every frame back
//! is output (ACI has no stdout/stderr split and no exit code).

use std::{
    io::{Read, Write},
    sync::mpsc as std_mpsc,
    thread,
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::{Connector, tungstenite::Message};
use vk_abi::{
    ExecOptions, LogOptions, OutputStream, Streams, TerminalSize as AbiTerminalSize,
    k8s_openapi::jiff::{SignedDuration, Timestamp},
};

use crate::{
    arm::{Arm, ArmError},
    model::TerminalSize,
};

/// How often a followed log is fetched again.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);
/// How long a tty exec waits for the terminal's size before it starts.
const FIRST_RESIZE: Duration = Duration::from_secs(1);
const DEFAULT_SIZE: TerminalSize = TerminalSize { rows: 24, cols: 80 };
/// Stdin is forwarded in frames of at most this many bytes.
const STDIN_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Arm(#[from] ArmError),
    #[error("ACI keeps no log of a previous container")]
    Previous,
    #[error("cannot open the exec web socket of {container}")]
    Connect {
        container: String,
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("the exec web socket of {container} failed")]
    Socket {
        container: String,
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
}

/// One log line: ACI prefixes each with an RFC 3339 time when asked for timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: Option<Timestamp>,
    pub text: String,
}

/// Splits a log fetched with `timestamps=true` into lines.
pub fn parse_log(content: &str) -> Vec<LogLine> {
    content
        .lines()
        .map(|line| match line.split_once(' ') {
            Some((time, text)) if time.parse::<Timestamp>().is_ok() => LogLine {
                time: time.parse().ok(),
                text: text.to_string(),
            },
            _ => LogLine {
                time: None,
                text: line.to_string(),
            },
        })
        .collect()
}

/// The writer of a log: timestamps if asked, and `limitBytes`.
struct LogWriter<'s> {
    sink: &'s mut OutputStream,
    timestamps: bool,
    remaining: Option<usize>,
}

impl LogWriter<'_> {
    /// Writes a line; false once the limit is reached or the client is gone.
    fn write(&mut self, line: &LogLine) -> bool {
        let mut text = match (self.timestamps, line.time) {
            (true, Some(time)) => format!("{time} {}\n", line.text),
            _ => format!("{}\n", line.text),
        };
        if let Some(remaining) = &mut self.remaining {
            if *remaining == 0 {
                return false;
            }
            if text.len() > *remaining {
                let mut cut = *remaining;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            *remaining -= text.len();
        }
        self.sink.write_all(text.as_bytes()).is_ok() && self.remaining != Some(0)
    }
}

/// Writes a container's log into `sink`; `finished` says whether the container has stopped
/// (a followed log ends then).
pub async fn logs(
    arm: &Arm,
    group: &str,
    options: &LogOptions,
    mut sink: OutputStream,
    finished: impl Fn() -> bool,
) -> Result<(), StreamError> {
    if options.previous {
        return Err(StreamError::Previous);
    }
    let since = match (&options.since_time, options.since_seconds) {
        (Some(time), _) => Some(time.0),
        (None, Some(seconds)) => Some(Timestamp::now() - SignedDuration::from_secs(seconds)),
        (None, None) => None,
    };
    let mut writer = LogWriter {
        sink: &mut sink,
        timestamps: options.timestamps,
        remaining: options
            .limit_bytes
            .map(|limit| usize::try_from(limit).unwrap_or(0)),
    };
    // Following needs the whole log to know which lines are new; otherwise ARM can cut the tail.
    let tail = (!options.follow && since.is_none())
        .then_some(options.tail_lines)
        .flatten();
    let content = arm.logs(group, &options.container, tail, true).await?;
    let lines = parse_log(&content);
    let shown: Vec<&LogLine> = lines
        .iter()
        .filter(|l| since.is_none_or(|since| l.time.is_none_or(|t| t >= since)))
        .collect();
    let skip = options.tail_lines.map_or(0, |tail| {
        shown
            .len()
            .saturating_sub(usize::try_from(tail).unwrap_or(0))
    });
    for line in &shown[skip..] {
        if !writer.write(line) {
            return Ok(());
        }
    }
    if !options.follow {
        return Ok(());
    }
    let mut seen = lines.len();
    loop {
        let done = finished();
        if !done {
            tokio::time::sleep(FOLLOW_INTERVAL).await;
        }
        let lines = match arm.logs(group, &options.container, None, true).await {
            Ok(content) => parse_log(&content),
            Err(error) if error.is_not_found() => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        // A shorter log is a new container's: all of it is new.
        let start = if lines.len() < seen { 0 } else { seen };
        for line in &lines[start..] {
            if !writer.write(line) {
                return Ok(());
            }
        }
        seen = lines.len();
        if done {
            return Ok(());
        }
    }
}

/// Runs a command in the container through ACI's exec web socket; answers 0, as ACI does not
/// report exit codes.
pub async fn exec(
    arm: &Arm,
    group: &str,
    tls: std::sync::Arc<rustls::ClientConfig>,
    options: &ExecOptions,
    streams: Streams,
) -> Result<i32, StreamError> {
    let Streams {
        stdin,
        stdout,
        stderr,
        resize,
    } = streams;
    let size = match resize.filter(|_| options.tty) {
        Some(resize) => first_size(resize).await.unwrap_or(DEFAULT_SIZE),
        None => DEFAULT_SIZE,
    };
    // ACI takes one string and splits it on spaces itself.
    let command = options.command.join(" ");
    let session = arm.exec(group, &options.container, command, size).await?;
    let connect_error = |source| StreamError::Connect {
        container: options.container.clone(),
        source,
    };
    let socket_error = |source| StreamError::Socket {
        container: options.container.clone(),
        source,
    };
    let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(
        session.web_socket_uri.as_str(),
        None,
        true,
        Some(Connector::Rustls(tls)),
    )
    .await
    .map_err(connect_error)?;
    let (mut to_aci, mut from_aci) = socket.split();
    to_aci
        .send(Message::text(session.password))
        .await
        .map_err(socket_error)?;
    let mut input = stdin.map(forward_stdin);
    let mut output = stdout.or(stderr);
    loop {
        tokio::select! {
            chunk = async { input.as_mut()?.recv().await }, if input.is_some() => match chunk {
                Some(bytes) => to_aci.send(Message::binary(bytes)).await.map_err(socket_error)?,
                None => {
                    // Stdin ended: ACI has no half-close, so the session is closed for writing.
                    input = None;
                    let _ = to_aci.send(Message::Close(None)).await;
                }
            },
            frame = from_aci.next() => match frame {
                Some(Ok(Message::Binary(bytes))) => write_output(&mut output, &bytes),
                Some(Ok(Message::Text(text))) => write_output(&mut output, text.as_bytes()),
                Some(Ok(Message::Close(_))) | None => return Ok(0),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(socket_error(error)),
            },
        }
    }
}

/// Writes to the client's output; a client gone away just stops getting it.
fn write_output(output: &mut Option<OutputStream>, bytes: &[u8]) {
    if let Some(sink) = output
        && sink.write_all(bytes).is_err()
    {
        *output = None;
    }
}

/// Stdin read on a thread of its own (its reads block), as chunks on a channel.
fn forward_stdin(mut stdin: vk_abi::InputStream) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel(4);
    thread::spawn(move || {
        let mut buffer = vec![0; STDIN_CHUNK];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if sender.blocking_send(buffer[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    receiver
}

/// The terminal's first size, if the client sends it soon.
async fn first_size(resize: vk_abi::Resizes) -> Option<TerminalSize> {
    let (sender, receiver) = std_mpsc::channel::<AbiTerminalSize>();
    thread::spawn(move || {
        if let Some(size) = resize.next_size() {
            let _ = sender.send(size);
        }
        // ACI cannot resize a running session: later sizes are drained and dropped.
        while resize.next_size().is_some() {}
    });
    tokio::task::spawn_blocking(move || receiver.recv_timeout(FIRST_RESIZE).ok())
        .await
        .ok()
        .flatten()
        .map(|size| TerminalSize {
            rows: i32::from(size.height),
            cols: i32::from(size.width),
        })
}

#[cfg(test)]
mod tests;
