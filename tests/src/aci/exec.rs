//! The emulator's exec web sockets. As ACI's, a session authenticates with its password in the
//! first text frame (or, as the API description says, in the `Authorization` header), then
//! stdin comes as frames and output goes back as frames; the socket closes when the command
//! ends. Built-in commands: `echo ARGS`, `cat` (stdin back until the client closes), `env`,
//! `hostname`; anything else prints that it is not found.

use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{
    Message,
    handshake::server::{Request, Response},
};

use super::{Session, State};

pub async fn serve(state: Arc<State>, listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let seen = Arc::new(Mutex::new((String::new(), None::<String>)));
            let record = seen.clone();
            // The callback's signature (and its large error type) is tungstenite's.
            #[allow(clippy::result_large_err)]
            let callback = move |request: &Request, response: Response| {
                let authorization = request
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                *record.lock().expect("lock") = (request.uri().path().to_string(), authorization);
                Ok(response)
            };
            let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                return;
            };
            let (path, authorization) = seen.lock().expect("lock").clone();
            let session = path
                .strip_prefix("/exec/")
                .and_then(|id| state.lock().sessions.remove(id));
            if let Some(session) = session {
                run(&state, session, authorization, socket).await;
            }
        });
    }
}

async fn run(
    state: &State,
    session: Session,
    authorization: Option<String>,
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) {
    let (mut to_client, mut from_client) = socket.split();
    let authorized = match authorization {
        Some(password) => password == session.password,
        None => matches!(
            from_client.next().await,
            Some(Ok(Message::Text(text))) if text.as_str() == session.password
        ),
    };
    if !authorized {
        let _ = to_client.send(Message::text("unauthorized\r\n")).await;
        let _ = to_client.close().await;
        return;
    }
    let words: Vec<&str> = session.command.split_whitespace().collect();
    let output = match words.as_slice() {
        ["echo", rest @ ..] => Some(format!("{}\n", rest.join(" "))),
        ["hostname"] => Some(format!("{}\n", session.key.1)),
        ["env"] => Some(environment(state, &session)),
        ["cat"] => {
            while let Some(Ok(frame)) = from_client.next().await {
                let echo = match frame {
                    Message::Binary(_) | Message::Text(_) => frame,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if to_client.send(echo).await.is_err() {
                    return;
                }
            }
            None
        }
        [command, ..] => Some(format!("{command}: command not found\n")),
        [] => None,
    };
    if let Some(output) = output {
        let _ = to_client.send(Message::binary(output.into_bytes())).await;
    }
    let _ = to_client.close().await;
}

/// The container's variables as the process sees them (secure values included).
fn environment(state: &State, session: &Session) -> String {
    let inner = state.lock();
    let Some(group) = inner.groups.get(&session.key) else {
        return String::new();
    };
    group.container_body(&session.container)["properties"]["environmentVariables"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let value = v["value"]
                .as_str()
                .or(v["secureValue"].as_str())
                .unwrap_or("");
            format!("{}={value}\n", v["name"].as_str().unwrap_or(""))
        })
        .collect()
}
