//! What exec and attach mean whatever carries them (SPDY or WebSocket): the streams a request
//! asks for, the provider call, and the status that ends the session.

use serde_json::json;
use vk_abi::{ExecOptions, host::HostStreams};

use crate::provider::Provider;

#[cfg(test)]
mod tests;

/// Which streams an exec or attach asked for (`input`, `output`, `error`, `tty` = `1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub command: Vec<String>,
}

impl StreamOptions {
    pub(super) fn parse(query: &str) -> Result<Self, &'static str> {
        let mut options = StreamOptions::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let on = value == "1";
            match key.as_ref() {
                "input" => options.stdin = on,
                "output" => options.stdout = on,
                "error" => options.stderr = on,
                "tty" => options.tty = on,
                "command" => options.command.push(value.into_owned()),
                _ => {}
            }
        }
        // With a tty, stderr is stdout.
        options.stderr &= !options.tty;
        if !(options.stdin || options.stdout || options.stderr) {
            return Err("you must specify at least 1 of stdin, stdout, stderr");
        }
        Ok(options)
    }
}

/// Runs the exec or attach on the provider; the exit code.
pub(super) async fn run_command(
    provider: &Provider,
    options: ExecOptions,
    attach: bool,
    host: HostStreams,
) -> Result<i32, vk_abi::ProviderError> {
    if attach {
        provider
            .stream("attach", move |p| p.attach(&options, host))
            .await
    } else {
        provider
            .stream("exec", move |p| p.exec(&options, host))
            .await
    }
}

/// What the error stream carries at the end: v4's Status JSON, or (v1–v3) text on failure.
pub(super) fn status_message(
    protocol: &str,
    result: &Result<i32, vk_abi::ProviderError>,
) -> Option<String> {
    let v4 = protocol == "v4.channel.k8s.io";
    match result {
        Ok(0) if v4 => Some(json!({"metadata": {}, "status": "Success"}).to_string()),
        Ok(0) => None,
        Ok(code) if v4 => Some(
            json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("command terminated with non-zero exit code: exit status {code}"),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            })
            .to_string(),
        ),
        Ok(code) => Some(format!("command terminated with non-zero exit code: exit status {code}")),
        Err(error) if v4 => Some(
            json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("Internal error occurred: {}", error.message),
                "reason": "InternalError",
                "details": {"causes": [{"message": error.message}]},
                "code": 500,
            })
            .to_string(),
        ),
        Err(error) => Some(error.message.clone()),
    }
}
