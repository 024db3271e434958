use abi_stable::std_types::RSlice;
use http::HeaderValue;

use super::*;

fn offering(protocols: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in protocols {
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(line).unwrap(),
        );
    }
    headers
}

#[test]
fn protocols_are_chosen_in_the_clients_order() {
    let headers = offering(&[
        "v4.base64.channel.k8s.io, v5.channel.k8s.io",
        "channel.k8s.io",
    ]);
    assert_eq!(
        negotiate(&headers, &REMOTE_COMMAND_PROTOCOLS),
        Some("v4.base64.channel.k8s.io")
    );
    let kubectl = offering(&["v5.channel.k8s.io"]);
    assert_eq!(negotiate(&kubectl, &REMOTE_COMMAND_PROTOCOLS), Some(V5));
    assert_eq!(
        negotiate(&HeaderMap::new(), &REMOTE_COMMAND_PROTOCOLS),
        Some(""),
        "no header is the empty protocol"
    );
    assert_eq!(
        negotiate(&offering(&["v3.channel.k8s.io"]), &REMOTE_COMMAND_PROTOCOLS),
        None
    );
    assert_eq!(negotiate(&HeaderMap::new(), &[TUNNEL_PROTOCOL]), None);
    assert_eq!(
        negotiate(&offering(&[TUNNEL_PROTOCOL]), &[TUNNEL_PROTOCOL]),
        Some(TUNNEL_PROTOCOL)
    );
}

#[test]
fn frames_follow_the_channel_protocols() {
    let binary = Framing::of(V5);
    assert_eq!(
        binary.encode(STDOUT, b"hi"),
        Message::binary(vec![1, b'h', b'i'])
    );
    assert_eq!(
        binary.decode(Bytes::from_static(&[0, b'x'])),
        Ok(Inbound::Data {
            channel: STDIN,
            payload: Bytes::from_static(b"x")
        })
    );
    assert_eq!(
        binary.decode(Bytes::from_static(&[CLOSE_SIGNAL, STDIN])),
        Ok(Inbound::Close(STDIN))
    );
    assert_eq!(
        binary.decode(Bytes::from_static(&[CLOSE_SIGNAL, 5])),
        Err(FrameError::CloseChannel(5))
    );
    assert_eq!(
        binary.decode(Bytes::from_static(&[CLOSE_SIGNAL])),
        Err(FrameError::CloseLength(1))
    );
    assert_eq!(binary.decode(Bytes::new()), Ok(Inbound::Empty));
    assert_eq!(binary.status_protocol, "v4.channel.k8s.io");

    let v4 = Framing::of("v4.channel.k8s.io");
    assert!(
        matches!(
            v4.decode(Bytes::from_static(&[CLOSE_SIGNAL, 0])),
            Ok(Inbound::Data {
                channel: CLOSE_SIGNAL,
                ..
            })
        ),
        "only v5 has a close signal"
    );

    let base64 = Framing::of("base64.channel.k8s.io");
    assert_eq!(base64.encode(STDERR, b"hi"), Message::text("2aGk="));
    assert_eq!(
        base64.decode(Bytes::from_static(b"0aGk=")),
        Ok(Inbound::Data {
            channel: STDIN,
            payload: Bytes::from_static(b"hi")
        })
    );
    assert_eq!(
        base64.decode(Bytes::from_static(b"0!!")),
        Err(FrameError::Base64(STDIN))
    );
    assert_eq!(base64.status_protocol, "channel.k8s.io");
}

/// A server and a client WebSocket joined in memory.
async fn sockets() -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (server, client) = tokio::io::duplex(256 * 1024);
    (
        WebSocketStream::from_raw_socket(server, Role::Server, None).await,
        WebSocketStream::from_raw_socket(client, Role::Client, None).await,
    )
}

/// A command that copies stdin to stdout and exits with `code`.
async fn cat(host: HostStreams, code: i32) -> Result<i32, ProviderError> {
    tokio::task::spawn_blocking(move || {
        let stdin = host.stdin.expect("stdin");
        let stdout = host.stdout.expect("stdout");
        loop {
            let chunk = stdin.read().into_vec();
            if chunk.is_empty() {
                return Ok(code);
            }
            if stdout.write(RSlice::from_slice(&chunk)).is_err() {
                return Ok(1);
            }
        }
    })
    .await
    .unwrap()
}

/// What the client reads until the close frame: the bytes of each channel, and the close code.
async fn read_all(
    client: &mut WebSocketStream<DuplexStream>,
    framing: Framing,
) -> ([Vec<u8>; CHANNELS], Option<CloseCode>) {
    let mut channels: [Vec<u8>; CHANNELS] = Default::default();
    while let Some(message) = client.next().await {
        let data = match message.unwrap() {
            Message::Close(frame) => return (channels, frame.map(|f| f.code)),
            Message::Binary(data) => {
                assert!(!framing.base64, "base64 protocols send text");
                data
            }
            Message::Text(text) => {
                assert!(framing.base64, "binary protocols never send text");
                text.into()
            }
            _ => continue,
        };
        let Ok(Inbound::Data { channel, payload }) = framing.decode(data) else {
            panic!("the server sent a message that is not channel data");
        };
        channels[usize::from(channel)].extend_from_slice(&payload);
    }
    (channels, None)
}

fn exec_options(tty: bool) -> StreamOptions {
    StreamOptions {
        stdin: true,
        stdout: true,
        stderr: !tty,
        tty,
        command: vec!["cat".into()],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v5_exec_ends_with_the_status_and_a_normal_close() {
    let (server, mut client) = sockets().await;
    let options = exec_options(false);
    let session = tokio::spawn(async move {
        serve_channels(server, V5, &options, Duration::from_secs(60), |host| {
            cat(host, 3)
        })
        .await;
    });
    let first = client.next().await.unwrap().unwrap();
    assert_eq!(first, Message::binary(vec![STDOUT]), "the ready signal");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for chunk in payload.chunks(10_000) {
        let mut message = vec![STDIN];
        message.extend_from_slice(chunk);
        client.send(Message::binary(message)).await.unwrap();
    }
    // Pings are answered while the session runs.
    client
        .send(Message::Ping(Bytes::from_static(b"p")))
        .await
        .unwrap();
    client
        .send(Message::binary(vec![CLOSE_SIGNAL, STDIN]))
        .await
        .unwrap();
    let mut pongs = 0;
    let mut channels: [Vec<u8>; CHANNELS] = Default::default();
    let mut close = None;
    while let Some(message) = client.next().await {
        match message.unwrap() {
            Message::Pong(_) => pongs += 1,
            Message::Binary(data) => {
                channels[usize::from(data[0])].extend_from_slice(&data[1..]);
            }
            Message::Close(frame) => {
                close = frame.map(|f| f.code);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(pongs, 1);
    assert!(
        channels[usize::from(STDOUT)] == payload,
        "stdout echoes stdin"
    );
    let status: serde_json::Value = serde_json::from_slice(&channels[usize::from(ERROR)]).unwrap();
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
    assert_eq!(close, Some(CloseCode::Normal));
    session.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn base64_attach_with_a_tty_takes_text_and_resizes() {
    let (server, mut client) = sockets().await;
    let options = exec_options(true);
    let framing = Framing::of("v4.base64.channel.k8s.io");
    let session = tokio::spawn(async move {
        serve_channels(
            server,
            "v4.base64.channel.k8s.io",
            &options,
            Duration::from_secs(60),
            |host: HostStreams| async move {
                tokio::task::spawn_blocking(move || {
                    let resize = host.resize.expect("resize");
                    let size = resize.next().into_option().expect("a size");
                    let stdout = host.stdout.expect("stdout");
                    let line = format!("{}x{}", size.width, size.height);
                    stdout.write(RSlice::from_slice(line.as_bytes())).unwrap();
                    let stdin = host.stdin.expect("stdin");
                    let typed = stdin.read().into_vec();
                    stdout.write(RSlice::from_slice(&typed)).unwrap();
                    Ok(0)
                })
                .await
                .unwrap()
            },
        )
        .await;
    });
    client
        .send(Message::text(format!(
            "4{}",
            BASE64.encode(br#"{"Width":80,"Height":24}"#)
        )))
        .await
        .unwrap();
    client
        .send(Message::text(format!("0{}", BASE64.encode(b" ok"))))
        .await
        .unwrap();
    let (channels, close) = read_all(&mut client, framing).await;
    assert_eq!(channels[usize::from(STDOUT)], b"80x24 ok");
    assert_eq!(
        channels[usize::from(ERROR)],
        br#"{"metadata":{},"status":"Success"}"#
    );
    assert_eq!(close, Some(CloseCode::Normal));
    session.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let (server, mut client) = sockets().await;
    let options = exec_options(false);
    let session = tokio::spawn(async move {
        serve_channels(server, V5, &options, Duration::from_millis(100), |host| {
            cat(host, 0)
        })
        .await;
    });
    let (_, close) = read_all(&mut client, Framing::of(V5)).await;
    assert_eq!(close, Some(CloseCode::Away));
    session.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tunnel_is_a_byte_stream_that_ends_with_a_normal_close() {
    let (server, mut client) = sockets().await;
    let mut tunnel = Tunnel::new(server);
    client.send(Message::binary(b"he".to_vec())).await.unwrap();
    client.send(Message::Ping(Bytes::new())).await.unwrap();
    client.send(Message::binary(b"llo".to_vec())).await.unwrap();
    let mut read = [0; 5];
    tunnel.read_exact(&mut read).await.unwrap();
    assert_eq!(&read, b"hello");
    tunnel.write_all(b"back").await.unwrap();
    tunnel.flush().await.unwrap();
    tunnel.shutdown().await.unwrap();
    let mut messages = Vec::new();
    while let Some(message) = client.next().await {
        let message = message.unwrap();
        let last = matches!(message, Message::Close(_));
        messages.push(message);
        if last {
            break;
        }
    }
    assert_eq!(
        messages,
        [
            Message::Pong(Bytes::new()),
            Message::binary(b"back".to_vec()),
            close_message(CloseCode::Normal)
        ]
    );
    // The client answers the close as it reads on; that answer is EOF.
    tokio::spawn(async move { while client.next().await.is_some() {} });
    let mut rest = Vec::new();
    tunnel.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}
