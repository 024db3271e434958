//! The mock's logs, built-in exec commands and echoing port-forward.

use std::{
    io::{self, Read, Write},
    thread,
    time::Duration,
};

use vk_abi::{
    InputStream, LogOptions, OutputStream, ProviderError, Result, Streams,
    k8s_openapi::jiff::{SignedDuration, Timestamp},
};

use crate::pods::{MockContainer, MockPod};

/// How many lines a container has logged before anyone asks.
pub const LOG_LINES: usize = 10;
/// How often a followed log grows by one line.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// Writes the container's deterministic log: `LOG_LINES` lines stamped one millisecond apart from
/// the pod's start, then, when following, a new line every `FOLLOW_INTERVAL` until the client
/// goes away.
pub fn write_log(pod: &MockPod, options: &LogOptions, mut sink: OutputStream) -> io::Result<()> {
    let since = match (&options.since_time, options.since_seconds) {
        (Some(time), _) => Some(time.0),
        (None, Some(seconds)) => Some(Timestamp::now() - SignedDuration::from_secs(seconds)),
        (None, None) => None,
    };
    let mut log = LimitedLog {
        sink: &mut sink,
        remaining: options.limit_bytes,
        timestamps: options.timestamps,
    };
    let line = |n: usize| {
        format!(
            "{}/{} {} line {n}",
            pod.namespace, pod.name, options.container
        )
    };
    let lines: Vec<_> = (1..=LOG_LINES)
        .map(|n| (pod.started + SignedDuration::from_millis(n as i64), line(n)))
        .filter(|(at, _)| since.is_none_or(|since| *at >= since))
        .collect();
    let skip = options.tail_lines.map_or(0, |tail| {
        lines
            .len()
            .saturating_sub(usize::try_from(tail).unwrap_or(0))
    });
    for (at, text) in &lines[skip..] {
        if !log.write_line(*at, text)? {
            return Ok(());
        }
    }
    if options.follow {
        for n in LOG_LINES + 1.. {
            thread::sleep(FOLLOW_INTERVAL);
            if !log.write_line(Timestamp::now(), &line(n))? {
                return Ok(());
            }
        }
    }
    Ok(())
}

struct LimitedLog<'a> {
    sink: &'a mut OutputStream,
    remaining: Option<i64>,
    timestamps: bool,
}

impl LimitedLog<'_> {
    /// Writes one line; false once `limitBytes` is used up.
    fn write_line(&mut self, at: Timestamp, text: &str) -> io::Result<bool> {
        let line = if self.timestamps {
            // The kubelet's format: RFC 3339 with exactly nine fractional digits.
            let seconds = at.strftime("%Y-%m-%dT%H:%M:%S");
            format!("{seconds}.{:09}Z {text}\n", at.subsec_nanosecond())
        } else {
            format!("{text}\n")
        };
        let mut bytes = line.as_bytes();
        if let Some(remaining) = &mut self.remaining {
            let allowed = usize::try_from(*remaining).unwrap_or(0).min(bytes.len());
            bytes = &bytes[..allowed];
            *remaining -= allowed as i64;
        }
        self.sink.write_all(bytes)?;
        Ok(self.remaining.is_none_or(|remaining| remaining > 0))
    }
}

/// Runs one of the built-in commands and answers its exit code.
/// A command still running after `timeout` is abandoned with an Unavailable error.
pub fn exec(
    pod: &MockPod,
    container: &MockContainer,
    command: &[String],
    timeout: Option<Duration>,
    mut streams: Streams,
) -> Result<i32> {
    let Some((program, args)) = command.split_first() else {
        return Ok(write_err(&mut streams, "mock: no command given", 126));
    };
    let result = match program.as_str() {
        "echo" => write_out(&mut streams, format!("{}\n", args.join(" ")).as_bytes()).map(|()| 0),
        "env" => {
            let env: String = container
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect();
            write_out(&mut streams, env.as_bytes()).map(|()| 0)
        }
        "cat" if args.is_empty() => copy_stdin(&mut streams).map(|()| 0),
        "cat" => return Ok(cat_files(pod, container, args, &mut streams)),
        "sleep" => match args
            .first()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| *s >= 0.0)
        {
            Some(seconds) => {
                let asked = Duration::from_secs_f64(seconds);
                thread::sleep(timeout.map_or(asked, |limit| limit.min(asked)));
                if timeout.is_some_and(|limit| limit < asked) {
                    return Err(ProviderError::unavailable(format!(
                        "command timed out after {}s",
                        timeout.unwrap_or_default().as_secs()
                    )));
                }
                Ok(0)
            }
            None => return Ok(write_err(&mut streams, "sleep: invalid time interval", 1)),
        },
        "exit" => match args.first().map_or(Ok(0), |code| code.parse::<i32>()) {
            Ok(code) => Ok(code),
            Err(_) => {
                return Ok(write_err(
                    &mut streams,
                    "exit: numeric argument required",
                    2,
                ));
            }
        },
        "true" => Ok(0),
        "false" => Ok(1),
        other => {
            return Ok(write_err(
                &mut streams,
                &format!("mock: {other}: command not found"),
                127,
            ));
        }
    };
    // A client that hung up cannot see the exit code either; report what the command returned.
    Ok(result.unwrap_or(0))
}

/// Attach to the mock's main process: it echoes stdin until stdin ends.
pub fn attach(mut streams: Streams) -> i32 {
    match copy_stdin(&mut streams) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// Port-forward: the mock answers every port as an echo server.
pub fn echo(mut input: InputStream, mut output: OutputStream) -> io::Result<()> {
    io::copy(&mut input, &mut output).map(drop)
}

fn cat_files(
    pod: &MockPod,
    container: &MockContainer,
    paths: &[String],
    streams: &mut Streams,
) -> i32 {
    let mut code = 0;
    for path in paths {
        match read_mounted_file(pod, container, path) {
            Some(data) => {
                if write_out(streams, data).is_err() {
                    return 1;
                }
            }
            None => {
                code = write_err(
                    streams,
                    &format!("cat: {path}: No such file or directory"),
                    1,
                )
            }
        }
    }
    code
}

/// Finds `path` in the resolved volumes mounted into `container`.
fn read_mounted_file<'a>(
    pod: &'a MockPod,
    container: &MockContainer,
    path: &str,
) -> Option<&'a [u8]> {
    container.mounts.iter().find_map(|(mount_path, volume)| {
        let relative = path
            .strip_prefix(mount_path.trim_end_matches('/'))?
            .strip_prefix('/')?;
        let (_, files) = pod.volumes.iter().find(|(name, _)| name == volume)?;
        let (_, content) = files.iter().find(|(path, _)| path == relative)?;
        Some(&**content)
    })
}

fn copy_stdin(streams: &mut Streams) -> io::Result<()> {
    let (Some(stdin), Some(stdout)) = (streams.stdin.as_mut(), streams.stdout.as_mut()) else {
        return Ok(());
    };
    let mut buffer = vec![0; 32 * 1024];
    loop {
        let n = stdin.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        stdout.write_all(&buffer[..n])?;
    }
}

fn write_out(streams: &mut Streams, data: &[u8]) -> io::Result<()> {
    match streams.stdout.as_mut() {
        Some(stdout) => stdout.write_all(data),
        None => Ok(()),
    }
}

/// Writes a message to stderr (stdout under a tty, where both are one stream) and answers `code`.
fn write_err(streams: &mut Streams, message: &str, code: i32) -> i32 {
    let line = format!("{message}\n");
    if let Some(stream) = streams.stderr.as_mut().or(streams.stdout.as_mut()) {
        let _ = stream.write_all(line.as_bytes());
    }
    code
}
