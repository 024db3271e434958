//! End-to-end tests: a minimal SPDY client in the style of client-go talks to a [`Connection`]
//! over an in-memory pipe. Time is paused, so timeouts elapse as soon as everything is idle.

use std::{
    collections::{HashMap, VecDeque},
    sync::atomic::AtomicUsize,
};

use tokio::io::{DuplexStream, ReadHalf};

use super::*;

/// What the test client saw from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Reply(u32),
    Data {
        stream_id: u32,
        payload: Bytes,
        fin: bool,
    },
    Reset {
        stream_id: u32,
        status: RstStatus,
    },
    Ping(u32),
    GoAway {
        last_good_stream_id: u32,
        status: GoAwayStatus,
    },
    Closed,
}

/// How a stream's data ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Fin,
    Reset(RstStatus),
}

/// The server's I/O, telling the test when the connection's tasks have let go of it.
struct TrackedIo {
    inner: DuplexStream,
    _released: oneshot::Sender<()>,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Capacity of the in-memory pipe, each way.
const PIPE: usize = 64 * 1024;

/// A server connection, and a receiver that completes when its I/O has been dropped.
fn serve(io: DuplexStream, config: Config) -> (Connection, oneshot::Receiver<()>) {
    let (released_tx, released) = oneshot::channel();
    (
        Connection::new(
            TrackedIo {
                inner: io,
                _released: released_tx,
            },
            config,
        ),
        released,
    )
}

/// A client that opens streams like client-go: SYN_STREAM, then wait for the SYN_REPLY.
struct TestClient {
    /// Encoded frames for the writer task, which writes them in small pieces.
    frames: mpsc::Sender<Bytes>,
    /// Bytes the writer task got into the pipe so far.
    written: Arc<AtomicUsize>,
    encoder: HeaderEncoder,
    next_stream_id: u32,
    events: mpsc::UnboundedReceiver<Event>,
    /// Events received while waiting for another.
    backlog: VecDeque<Event>,
}

impl TestClient {
    fn new(io: DuplexStream) -> TestClient {
        let (read_half, mut write_half) = tokio::io::split(io);
        let (frames, mut to_write) = mpsc::channel::<Bytes>(1);
        let written = Arc::new(AtomicUsize::new(0));
        let progress = written.clone();
        tokio::spawn(async move {
            while let Some(bytes) = to_write.recv().await {
                for piece in bytes.chunks(16 * 1024) {
                    if write_half.write_all(piece).await.is_err() {
                        return;
                    }
                    progress.fetch_add(piece.len(), Ordering::Relaxed);
                }
            }
            let _ = write_half.shutdown().await;
        });
        let (events_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(read_events(read_half, events_tx));
        TestClient {
            frames,
            written,
            encoder: HeaderEncoder::new(),
            next_stream_id: 1,
            events,
            backlog: VecDeque::new(),
        }
    }

    async fn send(&self, frame: Frame) {
        send_frame(&self.frames, frame).await;
    }

    /// Sends a SYN_STREAM without waiting for the reply.
    async fn open_nowait(&mut self, pairs: &[(&str, &str)], fin: bool) -> u32 {
        let stream_id = self.next_stream_id;
        self.next_stream_id += 2;
        let header_block = self
            .encoder
            .encode(&pairs.iter().copied().collect())
            .unwrap();
        self.send(Frame::SynStream {
            stream_id,
            associated_stream_id: 0,
            priority: 0,
            slot: 0,
            fin,
            unidirectional: false,
            header_block,
        })
        .await;
        stream_id
    }

    /// Opens a stream and waits for the server's reply, as client-go's `CreateStream` does.
    async fn open(&mut self, pairs: &[(&str, &str)]) -> u32 {
        let stream_id = self.open_nowait(pairs, false).await;
        self.wait_for(|event| *event == Event::Reply(stream_id))
            .await;
        stream_id
    }

    async fn send_data(&self, stream_id: u32, payload: &[u8], fin: bool) {
        self.send(Frame::Data {
            stream_id,
            fin,
            payload: Bytes::copy_from_slice(payload),
        })
        .await;
    }

    /// The next event matching `wanted`; others stay queued in order.
    async fn wait_for(&mut self, wanted: impl Fn(&Event) -> bool) -> Event {
        let mut skipped = VecDeque::new();
        loop {
            let event = match self.backlog.pop_front() {
                Some(event) => event,
                None => self.events.recv().await.unwrap_or(Event::Closed),
            };
            if wanted(&event) {
                skipped.append(&mut self.backlog);
                self.backlog = skipped;
                return event;
            }
            assert_ne!(
                event,
                Event::Closed,
                "connection closed; skipped {skipped:?}"
            );
            skipped.push_back(event);
        }
    }

    /// Everything the server sends on a stream, up to its FIN or RST_STREAM.
    async fn read_stream(&mut self, stream_id: u32) -> (Vec<u8>, End) {
        let mut data = Vec::new();
        loop {
            let event = self
                .wait_for(|event| match event {
                    Event::Data { stream_id: id, .. } | Event::Reset { stream_id: id, .. } => {
                        *id == stream_id
                    }
                    _ => false,
                })
                .await;
            match event {
                Event::Data { payload, fin, .. } => {
                    assert!(payload.len() <= Config::default().max_data_frame);
                    data.extend_from_slice(&payload);
                    if fin {
                        return (data, End::Fin);
                    }
                }
                Event::Reset { status, .. } => return (data, End::Reset(status)),
                _ => unreachable!("filtered by wait_for"),
            }
        }
    }

    /// The events left, up to the server closing the connection.
    async fn rest(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let event = match self.backlog.pop_front() {
                Some(event) => event,
                None => self.events.recv().await.unwrap_or(Event::Closed),
            };
            if event == Event::Closed {
                return events;
            }
            events.push(event);
        }
    }
}

async fn send_frame(frames: &mpsc::Sender<Bytes>, frame: Frame) {
    let mut wire = BytesMut::new();
    frame.encode(&mut wire).unwrap();
    // An error means the pipe is gone, which the test notices otherwise.
    let _ = frames.send(wire.freeze()).await;
}

/// The client's reader: turns the server's frames into events.
async fn read_events(mut io: ReadHalf<DuplexStream>, events: mpsc::UnboundedSender<Event>) {
    let mut decoder = HeaderDecoder::new();
    let mut buf = BytesMut::new();
    loop {
        while let Some((frame, used)) = Frame::parse(&buf).expect("the server sends valid frames") {
            buf.advance(used);
            let event = match frame {
                Frame::SynReply {
                    stream_id,
                    header_block,
                    fin,
                } => {
                    assert!(!fin);
                    assert!(decoder.decode(&header_block).unwrap().is_empty());
                    Event::Reply(stream_id)
                }
                Frame::Data {
                    stream_id,
                    payload,
                    fin,
                } => Event::Data {
                    stream_id,
                    payload,
                    fin,
                },
                Frame::RstStream { stream_id, status } => Event::Reset { stream_id, status },
                Frame::Ping { id } => Event::Ping(id),
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                } => Event::GoAway {
                    last_good_stream_id,
                    status,
                },
                other => panic!("the server sent {other:?}"),
            };
            if events.send(event).is_err() {
                return;
            }
        }
        buf.reserve(PIPE);
        tokio::select! {
            read = io.read_buf(&mut buf) => {
                if read.unwrap_or(0) == 0 {
                    let _ = events.send(Event::Closed);
                    return;
                }
            }
            () = events.closed() => return,
        }
    }
}

fn start(config: Config) -> (TestClient, Connection, oneshot::Receiver<()>) {
    let (client_io, server_io) = tokio::io::duplex(PIPE);
    let (connection, released) = serve(server_io, config);
    (TestClient::new(client_io), connection, released)
}

/// Accepts streams until `count` are open, keyed by `streamtype`.
async fn accept_by_type(connection: &mut Connection, count: usize) -> HashMap<String, Stream> {
    let mut streams = HashMap::new();
    while streams.len() < count {
        let incoming = connection.accept().await.expect("a stream");
        let stream_type = incoming
            .headers()
            .get("streamtype")
            .expect("streamtype")
            .to_owned();
        streams.insert(stream_type, incoming.reply());
    }
    streams
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

const STATUS: &[u8] = br#"{"metadata":{},"status":"Success"}"#;

#[tokio::test(start_paused = true)]
async fn exec_session_echoes_stdin_and_ends_like_the_kubelet() {
    let (mut client, mut connection, released) = start(Config::default());
    let server = tokio::spawn(async move {
        let mut streams = accept_by_type(&mut connection, 4).await;
        let mut stdin = streams.remove("stdin").unwrap();
        let mut stdout = streams.remove("stdout").unwrap();
        let mut stderr = streams.remove("stderr").unwrap();
        let mut error = streams.remove("error").unwrap();
        assert_eq!(stdin.id(), 3);
        tokio::io::copy(&mut stdin, &mut stdout).await.unwrap();
        stdout.shutdown().await.unwrap();
        stderr.write_all(b"warning\n").await.unwrap();
        stderr.shutdown().await.unwrap();
        error.write_all(STATUS).await.unwrap();
        error.shutdown().await.unwrap();
        // stdin is still open: closing resets it, then says GOAWAY.
        connection.close().await;
        drop(stdin);
    });
    let error = client.open(&[("streamtype", "error")]).await;
    let stdin = client.open(&[("streamtype", "stdin")]).await;
    let stdout = client.open(&[("streamtype", "stdout")]).await;
    let stderr = client.open(&[("streamtype", "stderr")]).await;
    client.send_data(stdin, b"hello ", false).await;
    client.send_data(stdin, b"world", false).await;
    // Half-close, as client-go does at the end of local stdin.
    client.send_data(stdin, b"", true).await;
    assert_eq!(
        client.read_stream(stdout).await,
        (b"hello world".to_vec(), End::Fin)
    );
    assert_eq!(
        client.read_stream(stderr).await,
        (b"warning\n".to_vec(), End::Fin)
    );
    assert_eq!(client.read_stream(error).await, (STATUS.to_vec(), End::Fin));
    assert_eq!(
        client.rest().await,
        [
            Event::Reset {
                stream_id: stdin,
                status: RstStatus::CANCEL
            },
            Event::GoAway {
                last_good_stream_id: stderr,
                status: GoAwayStatus::OK
            },
        ]
    );
    server.await.unwrap();
    drop(client);
    released
        .await
        .expect_err("every task let go of the connection");
}

#[tokio::test(start_paused = true)]
async fn megabytes_echo_both_ways_in_bounded_frames() {
    const LEN: usize = 4 * 1024 * 1024;
    let (mut client, mut connection, _released) = start(Config::default());
    let server = tokio::spawn(async move {
        let mut streams = accept_by_type(&mut connection, 2).await;
        let (mut stdin, _) = streams.remove("stdin").unwrap().split();
        let (_, mut stdout) = streams.remove("stdout").unwrap().split();
        let copied = tokio::io::copy(&mut stdin, &mut stdout).await.unwrap();
        stdout.shutdown().await.unwrap();
        copied
    });
    let stdin = client.open(&[("streamtype", "stdin")]).await;
    let stdout = client.open(&[("streamtype", "stdout")]).await;
    let frames = client.frames.clone();
    let sender = tokio::spawn(async move {
        for chunk in pattern(LEN).chunks(32 * 1024) {
            let payload = Bytes::copy_from_slice(chunk);
            send_frame(
                &frames,
                Frame::Data {
                    stream_id: stdin,
                    fin: false,
                    payload,
                },
            )
            .await;
        }
        send_frame(
            &frames,
            Frame::Data {
                stream_id: stdin,
                fin: true,
                payload: Bytes::new(),
            },
        )
        .await;
    });
    let (echoed, end) = client.read_stream(stdout).await;
    assert_eq!(end, End::Fin);
    assert!(echoed == pattern(LEN), "echo differs");
    assert_eq!(server.await.unwrap(), LEN as u64);
    sender.await.unwrap();
}

/// A 10 MiB stdin payload in one DATA frame (what client-go sends when its stdin is an
/// in-memory reader): the server never holds more than a little of it, and it all arrives.
#[tokio::test(start_paused = true)]
async fn a_full_stream_queue_stops_reading_the_socket() {
    const LEN: usize = 10 * 1024 * 1024;
    let (mut client, mut connection, _released) = start(Config::default());
    let stdin_id = client.open_nowait(&[("streamtype", "stdin")], false).await;
    let mut stdin = connection.accept().await.unwrap().reply();
    let frames = client.frames.clone();
    tokio::spawn(async move {
        let payload = Bytes::from(pattern(LEN));
        send_frame(
            &frames,
            Frame::Data {
                stream_id: stdin_id,
                fin: true,
                payload,
            },
        )
        .await;
    });
    // Nobody reads stdin: once the queue is full the client's writes block.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let buffered = client.written.load(Ordering::Relaxed);
    let queue_bound = Config::default().stream_queue_chunks * 2 * READ_CHUNK;
    assert!(
        buffered <= queue_bound + READ_CHUNK + PIPE + 64 * 1024,
        "{buffered} bytes buffered"
    );
    let mut received = Vec::new();
    stdin.read_to_end(&mut received).await.unwrap();
    assert!(received == pattern(LEN), "stdin differs");
    client
        .wait_for(|event| *event == Event::Reply(stdin_id))
        .await;
}

/// A client that stops reading: the server's writes wait once the send budget is taken.
#[tokio::test(start_paused = true)]
async fn writes_wait_while_the_client_does_not_read() {
    let config = Config {
        send_buffer: 256 * 1024,
        ..Config::default()
    };
    let (client_io, server_io) = tokio::io::duplex(PIPE);
    let (mut connection, _released) = serve(server_io, config.clone());
    let (_unread, mut client_write) = tokio::io::split(client_io);
    let header_block = HeaderEncoder::new().encode(&Headers::new()).unwrap();
    let mut wire = BytesMut::new();
    let open = Frame::SynStream {
        stream_id: 1,
        associated_stream_id: 0,
        priority: 0,
        slot: 0,
        fin: true,
        unidirectional: false,
        header_block,
    };
    open.encode(&mut wire).unwrap();
    client_write.write_all(&wire).await.unwrap();
    let (_, mut stdout) = connection.accept().await.unwrap().reply().split();
    let accepted = Arc::new(AtomicUsize::new(0));
    let progress = accepted.clone();
    tokio::spawn(async move {
        let chunk = vec![7u8; 32 * 1024];
        while stdout.write_all(&chunk).await.is_ok() {
            progress.fetch_add(chunk.len(), Ordering::Relaxed);
        }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let accepted = accepted.load(Ordering::Relaxed);
    assert!(accepted > 0);
    assert!(
        accepted <= config.send_buffer + PIPE,
        "{accepted} bytes accepted"
    );
}

#[tokio::test(start_paused = true)]
async fn pings_from_the_client_are_answered() {
    let (mut client, _connection, _released) = start(Config::default());
    client.send(Frame::Ping { id: 1 }).await;
    assert_eq!(client.wait_for(|_| true).await, Event::Ping(1));
    // An even id would answer a ping of the server's own; it is not echoed.
    client.send(Frame::Ping { id: 2 }).await;
    client.send(Frame::Ping { id: 3 }).await;
    assert_eq!(client.wait_for(|_| true).await, Event::Ping(3));
    // Flow control frames are read and ignored, as spdystream does.
    client
        .send(Frame::Settings {
            clear_previous: false,
            entries: vec![],
        })
        .await;
    client
        .send(Frame::WindowUpdate {
            stream_id: 1,
            delta: 1,
        })
        .await;
    client.send(Frame::Ping { id: 5 }).await;
    assert_eq!(client.wait_for(|_| true).await, Event::Ping(5));
}

#[tokio::test(start_paused = true)]
async fn a_client_reset_ends_reads_and_fails_writes() {
    let (mut client, mut connection, _released) = start(Config::default());
    let stream_id = client.open_nowait(&[("streamtype", "data")], false).await;
    let mut stream = connection.accept().await.unwrap().reply();
    client.send_data(stream_id, b"partial", false).await;
    client
        .send(Frame::RstStream {
            stream_id,
            status: RstStatus::CANCEL,
        })
        .await;
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.unwrap();
    assert_eq!(received, b"partial");
    let error = stream.write_all(b"too late").await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
}

#[tokio::test(start_paused = true)]
async fn port_forward_pair_with_fin_on_both_streams() {
    let (mut client, mut connection, _released) = start(Config::default());
    let server = tokio::spawn(async move {
        let error = connection.accept().await.unwrap();
        assert_eq!(error.headers().get("port"), Some("8080"));
        assert_eq!(error.headers().get("requestid"), Some("0"));
        let mut error = error.reply();
        let data = connection.accept().await.unwrap();
        assert_eq!(data.headers().get("streamtype"), Some("data"));
        let mut data = data.reply();
        // The client never writes on the error stream: its FIN comes at once.
        let mut nothing = Vec::new();
        error.read_to_end(&mut nothing).await.unwrap();
        assert!(nothing.is_empty());
        let mut request = vec![0; 4];
        data.read_exact(&mut request).await.unwrap();
        data.write_all(b"pong").await.unwrap();
        // The pod closed its side: FIN data, then FIN error.
        data.shutdown().await.unwrap();
        error.shutdown().await.unwrap();
        // kubectl then resets the data stream.
        let mut rest = Vec::new();
        data.read_to_end(&mut rest).await.unwrap();
        let error = data.write_all(b"x").await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        (connection, data, error)
    });
    let pairs = [
        ("streamtype", "error"),
        ("port", "8080"),
        ("requestid", "0"),
    ];
    let error = client.open(&pairs).await;
    client.send_data(error, b"", true).await;
    let data = client
        .open(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")])
        .await;
    client.send_data(data, b"ping", false).await;
    assert_eq!(client.read_stream(data).await, (b"pong".to_vec(), End::Fin));
    assert_eq!(client.read_stream(error).await, (Vec::new(), End::Fin));
    client
        .send(Frame::RstStream {
            stream_id: data,
            status: RstStatus::CANCEL,
        })
        .await;
    let (connection, data_stream, error_stream) = server.await.unwrap();
    // Both streams finished with FIN: dropping them sends nothing more.
    drop((data_stream, error_stream, connection));
    assert_eq!(
        client.rest().await,
        [Event::GoAway {
            last_good_stream_id: 3,
            status: GoAwayStatus::OK
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn fin_on_syn_stream_means_the_client_sends_nothing() {
    let (mut client, mut connection, _released) = start(Config::default());
    let stream_id = client.open_nowait(&[("streamtype", "error")], true).await;
    let mut stream = connection.accept().await.unwrap().reply();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.unwrap();
    assert!(received.is_empty());
    stream.write_all(b"still writable").await.unwrap();
    stream.shutdown().await.unwrap();
    assert_eq!(
        client.read_stream(stream_id).await,
        (b"still writable".to_vec(), End::Fin)
    );
}

#[tokio::test(start_paused = true)]
async fn stream_ids_must_increase() {
    let (mut client, mut connection, _released) = start(Config::default());
    client.next_stream_id = 5;
    let accepted = client.open_nowait(&[("streamtype", "stdout")], false).await;
    let _stream = connection.accept().await.unwrap().reply();
    client.next_stream_id = 3;
    let backwards = client.open_nowait(&[("streamtype", "stderr")], false).await;
    assert_eq!(client.wait_for(|_| true).await, Event::Reply(accepted));
    assert_eq!(
        client.wait_for(|_| true).await,
        Event::Reset {
            stream_id: backwards,
            status: RstStatus::PROTOCOL_ERROR
        }
    );
}

#[tokio::test(start_paused = true)]
async fn streams_beyond_the_limit_are_refused_until_one_is_dropped() {
    let (mut client, mut connection, _released) = start(Config {
        max_streams: 2,
        ..Config::default()
    });
    let first = client.open_nowait(&[], false).await;
    let second = client.open_nowait(&[], false).await;
    let third = client.open_nowait(&[], false).await;
    assert_eq!(
        client
            .wait_for(|event| matches!(event, Event::Reset { .. }))
            .await,
        Event::Reset {
            stream_id: third,
            status: RstStatus::REFUSED_STREAM
        }
    );
    let held = connection.accept().await.unwrap().reply();
    assert_eq!(held.id(), first);
    let unfinished = connection.accept().await.unwrap().reply();
    assert_eq!(unfinished.id(), second);
    // Dropped without FIN: the client learns it with a reset, and the slot is free again.
    drop(unfinished);
    assert_eq!(
        client
            .wait_for(|event| matches!(event, Event::Reset { .. }))
            .await,
        Event::Reset {
            stream_id: second,
            status: RstStatus::CANCEL
        }
    );
    let fourth = client.open_nowait(&[], false).await;
    assert_eq!(connection.accept().await.unwrap().id(), fourth);
}

#[tokio::test(start_paused = true)]
async fn streams_not_accepted_are_refused() {
    let (mut client, mut connection, _released) = start(Config::default());
    let refused = client.open_nowait(&[("streamtype", "bogus")], false).await;
    connection.accept().await.unwrap().refuse();
    let dropped = client.open_nowait(&[("streamtype", "bogus")], false).await;
    drop(connection.accept().await.unwrap());
    let kept = client.open_nowait(&[("streamtype", "stdout")], false).await;
    let mut stream = connection.accept().await.unwrap().reply();
    for stream_id in [refused, dropped] {
        assert_eq!(
            client
                .wait_for(|event| matches!(event, Event::Reset { .. }))
                .await,
            Event::Reset {
                stream_id,
                status: RstStatus::CANCEL
            }
        );
    }
    // Without the `Connection`, new streams are refused, but the open one carries on.
    drop(connection);
    let late = client.open_nowait(&[("streamtype", "stderr")], false).await;
    assert_eq!(
        client
            .wait_for(|event| matches!(event, Event::Reset { .. }))
            .await,
        Event::Reset {
            stream_id: late,
            status: RstStatus::REFUSED_STREAM
        }
    );
    stream.write_all(b"still here").await.unwrap();
    stream.shutdown().await.unwrap();
    assert_eq!(
        client.read_stream(kept).await,
        (b"still here".to_vec(), End::Fin)
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_disconnect_ends_everything() {
    let (mut client, mut connection, released) = start(Config::default());
    client.open_nowait(&[("streamtype", "stdin")], false).await;
    let mut stream = connection.accept().await.unwrap().reply();
    drop(client);
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.unwrap();
    assert!(connection.accept().await.is_none());
    // Writing goes nowhere: it fails once the writer has found the pipe closed.
    let mut failed = false;
    for _ in 0..100 {
        if stream.write_all(b"lost").await.is_err() {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(failed, "writes to a closed connection fail");
    drop((stream, connection));
    released
        .await
        .expect_err("every task let go of the connection");
}

#[tokio::test(start_paused = true)]
async fn the_session_closes_after_the_idle_timeout() {
    let idle = Duration::from_secs(10);
    let (mut client, mut connection, _released) = start(Config {
        idle_timeout: Some(idle),
        ..Config::default()
    });
    let stream_id = client.open_nowait(&[("streamtype", "stdin")], false).await;
    let mut stream = connection.accept().await.unwrap().reply();
    client
        .wait_for(|event| *event == Event::Reply(stream_id))
        .await;
    // Any frame keeps the session alive.
    for id in [1, 3] {
        tokio::time::sleep(Duration::from_secs(6)).await;
        client.send(Frame::Ping { id }).await;
        assert_eq!(client.wait_for(|_| true).await, Event::Ping(id));
    }
    let quiet_since = Instant::now();
    assert_eq!(
        client.rest().await,
        [
            Event::Reset {
                stream_id,
                status: RstStatus::CANCEL
            },
            Event::GoAway {
                last_good_stream_id: stream_id,
                status: GoAwayStatus::OK
            },
        ]
    );
    assert!(quiet_since.elapsed() >= idle);
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_protocol_error_ends_the_session_with_goaway() {
    let (mut client, mut connection, released) = start(Config::default());
    let stream_id = client.open_nowait(&[("streamtype", "stdout")], false).await;
    let mut stream = connection.accept().await.unwrap().reply();
    client
        .wait_for(|event| *event == Event::Reply(stream_id))
        .await;
    // A SPDY/2 frame.
    client
        .frames
        .send(Bytes::from_static(
            b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01",
        ))
        .await
        .unwrap();
    assert_eq!(
        client.rest().await,
        [
            Event::Reset {
                stream_id,
                status: RstStatus::CANCEL
            },
            Event::GoAway {
                last_good_stream_id: stream_id,
                status: GoAwayStatus::PROTOCOL_ERROR
            },
        ]
    );
    assert!(connection.accept().await.is_none());
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.unwrap();
    drop((stream, connection, client));
    released
        .await
        .expect_err("every task let go of the connection");
}
