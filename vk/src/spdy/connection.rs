//! The server side of a SPDY/3.1 session over an upgraded HTTP connection.
//!
//! Two tasks drive a [`Connection`]:
//! - the reader parses frames, hands each stream the client opens to [`Connection::accept`],
//!   feeds DATA into per-stream queues and answers PING;
//! - the writer owns the write half and the header compressor, and sends frames in the order
//!   they were queued, so a stream's SYN_REPLY always precedes its DATA and a RST_STREAM never
//!   overtakes data written before it.
//!
//! Back-pressure. The Go clients ignore SPDY's flow-control windows, so memory is bounded the way
//! spdystream bounds it, through TCP:
//! - inbound, each stream has a queue of [`Config::stream_queue_chunks`] chunks; while it is full
//!   the reader stops reading the socket, so the client's writes block. DATA payloads are streamed
//!   in chunks rather than buffered whole, so even a 16 MiB frame costs only a chunk at a time;
//! - outbound, frames queued but not yet written hold a share of a connection-wide budget of
//!   [`Config::send_buffer`] bytes; a write waits for budget while the client does not read.
//!
//! The session ends when the client disconnects or sends GOAWAY (readers see EOF and `accept`
//! returns `None`), on a protocol error, after [`Config::idle_timeout`], on [`Connection::close`],
//! or once the [`Connection`] and every stream have been dropped. Ending as spdystream does:
//! RST_STREAM(CANCEL) for every stream not yet finished, GOAWAY, then close; the reader keeps
//! draining the socket for [`Config::linger`] so that unread bytes do not make the kernel reset
//! the connection under the client's last reads.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::{Buf, Bytes, BytesMut};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    sync::{AcquireError, OwnedSemaphorePermit, Semaphore, mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};

use super::{
    frame::{Frame, FrameError, FrameHeader, GoAwayStatus, HEADER_LEN, MAX_PAYLOAD_LEN, RstStatus},
    headers::{HeaderDecoder, HeaderEncoder, HeaderError, Headers},
};

#[cfg(test)]
mod tests;

/// How much the reader asks the socket for at once.
const READ_CHUNK: usize = 64 * 1024;
/// The writer gathers queued frames up to about this many bytes into one socket write.
const WRITE_BATCH: usize = 256 * 1024;
/// Send budget a control frame the reader queues (a PING answer, a RST_STREAM) holds.
const CONTROL_FRAME_COST: usize = HEADER_LEN + 8;

/// Limits and timeouts of one session.
#[derive(Debug, Clone)]
pub struct Config {
    /// Streams open at once (accepted, or waiting to be); the client's further SYN_STREAMs are
    /// refused with RST_STREAM(REFUSED_STREAM).
    pub max_streams: usize,
    /// Inbound chunks (each at most about 64 KiB) queued per stream before the reader stops
    /// reading the socket.
    pub stream_queue_chunks: usize,
    /// Bytes queued for sending, across all streams, before writes wait for the client to read.
    pub send_buffer: usize,
    /// Largest DATA payload sent; longer writes are split. The kubelet writes at most 32 KiB.
    pub max_data_frame: usize,
    /// End the session after this long without a frame either way (the kubelet's
    /// `streamingConnectionIdleTimeout`, 4 h by default). `None`: never. While the reader waits
    /// on a full stream queue it reads no frames, so the session is not idle then.
    pub idle_timeout: Option<Duration>,
    /// How long closing waits for queued frames and the GOAWAY to be written, once nobody can
    /// write any more; then the connection is dropped.
    pub close_timeout: Duration,
    /// How long the socket is drained after the GOAWAY, waiting for the client to close.
    pub linger: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_streams: 128,
            stream_queue_chunks: 8,
            send_buffer: 1024 * 1024,
            max_data_frame: 32 * 1024,
            idle_timeout: None,
            close_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(2),
        }
    }
}

impl Config {
    /// The same limits, made consistent: nothing zero, and one DATA frame always fits the send
    /// budget (a write waiting for more budget than exists would wait forever).
    fn normalized(mut self) -> Config {
        self.max_streams = self.max_streams.clamp(1, Semaphore::MAX_PERMITS);
        self.stream_queue_chunks = self.stream_queue_chunks.max(1);
        self.send_buffer = self
            .send_buffer
            .clamp(CONTROL_FRAME_COST, u32::MAX as usize);
        self.max_data_frame = self
            .max_data_frame
            .clamp(1, MAX_PAYLOAD_LEN.min(self.send_buffer));
        self
    }
}

/// Why a session ended early; logged, as the client is the one to tell and it gets a GOAWAY.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("invalid frame: {0}")]
    Frame(#[from] FrameError),
    #[error("invalid header block on stream {stream_id}: {source}")]
    Headers { stream_id: u32, source: HeaderError },
    #[error("encoding a reply failed: {0}")]
    Encode(#[from] HeaderError),
    #[error("connection i/o failed: {0}")]
    Io(#[from] io::Error),
    #[error("writing to the connection timed out")]
    WriteTimeout,
}

/// What the writer is asked to send.
enum Outgoing {
    /// A frame without a header block, holding its share of the send budget until written.
    Frame(Frame, Option<OwnedSemaphorePermit>),
    /// SYN_REPLY with an empty header block, compressed by the writer because the zlib context
    /// must follow the order of frames on the wire.
    Reply(u32),
    /// Reset unfinished streams, send GOAWAY with this status and close.
    Close(GoAwayStatus),
}

/// State shared by the tasks and the handles of one connection.
#[derive(Debug)]
struct Shared {
    config: Config,
    send_budget: Arc<Semaphore>,
    /// The id of the last stream the client opened, for GOAWAY.
    last_client_stream_id: AtomicU32,
    started: Instant,
    /// Milliseconds after `started` when a frame was last read or written.
    last_activity_ms: AtomicU64,
}

impl Shared {
    fn touch(&self) {
        let elapsed = self.started.elapsed().as_millis();
        self.last_activity_ms.store(
            u64::try_from(elapsed).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn last_activity(&self) -> Instant {
        self.started + Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed))
    }
}

/// A SPDY session with a client. Hand out the streams it opens with [`accept`](Self::accept).
///
/// Dropping the `Connection` refuses streams opened from then on; the session lasts until the
/// streams already handed out are dropped too, or until [`close`](Self::close).
pub struct Connection {
    incoming: mpsc::Receiver<IncomingStream>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    writer: JoinHandle<()>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts a session on `io`, the connection after the `101 Switching Protocols` response.
    /// Nothing is written until the client's first frame has been read (a Go client may not be
    /// reading yet). Must be called inside a Tokio runtime: it spawns the reader and the writer.
    pub fn new<T>(io: T, config: Config) -> Connection
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = config.normalized();
        let shared = Arc::new(Shared {
            send_budget: Arc::new(Semaphore::new(config.send_buffer)),
            last_client_stream_id: AtomicU32::new(0),
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            config,
        });
        let (read_half, write_half) = tokio::io::split(io);
        let (outgoing_tx, outgoing_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming_rx) = mpsc::channel(shared.config.max_streams);
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let reader = Reader {
            io: read_half,
            buf: BytesMut::with_capacity(READ_CHUNK),
            decoder: HeaderDecoder::new(),
            streams: HashMap::new(),
            next_stream_id: 1,
            data: None,
            close_requested: false,
            incoming: incoming_tx,
            outgoing: outgoing_tx.downgrade(),
            slots: Arc::new(Semaphore::new(shared.config.max_streams)),
            shared: shared.clone(),
            shutdown: shutdown_rx,
        };
        let writer = Writer {
            io: write_half,
            queue: outgoing_rx,
            encoder: HeaderEncoder::new(),
            unfinished: BTreeSet::new(),
            out: BytesMut::new(),
            shared,
            shutdown: Some(shutdown_tx),
        };
        tokio::spawn(reader.run());
        Connection {
            incoming: incoming_rx,
            outgoing: outgoing_tx,
            writer: tokio::spawn(writer.run()),
        }
    }

    /// The next stream the client opened, or `None` once the session is over. Reply to (or
    /// refuse) each as it comes: the Go client waits for the reply before opening the next.
    pub async fn accept(&mut self) -> Option<IncomingStream> {
        self.incoming.recv().await
    }

    /// Ends the session as the kubelet does: queued frames are sent, then RST_STREAM(CANCEL) for
    /// every stream not finished with FIN, then GOAWAY. Returns once the connection is closed
    /// (bounded by [`Config::close_timeout`] after the queue drains). Streams still held read EOF
    /// and fail to write.
    pub async fn close(self) {
        let Connection {
            incoming,
            outgoing,
            writer,
        } = self;
        drop(incoming);
        // A send error means the writer has already finished.
        let _ = outgoing.send(Outgoing::Close(GoAwayStatus::OK));
        drop(outgoing);
        if let Err(error) = writer.await {
            log::warn!("spdy writer task failed: {error}");
        }
    }
}

/// A stream the client opened, not yet replied to.
pub struct IncomingStream {
    state: Arc<StreamState>,
    headers: Headers,
    inbound: mpsc::Receiver<Bytes>,
}

impl fmt::Debug for IncomingStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingStream")
            .field("id", &self.state.id)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl IncomingStream {
    pub fn id(&self) -> u32 {
        self.state.id
    }

    /// The headers of the SYN_STREAM, e.g. `streamtype`, `port`, `requestid`.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Accepts the stream with a SYN_REPLY (no headers), after which both sides may send data.
    pub fn reply(self) -> Stream {
        let IncomingStream {
            state,
            headers,
            inbound,
        } = self;
        // A send error means the session is over; the stream's reads and writes will say so.
        let _ = state.outgoing.send(Outgoing::Reply(state.id));
        Stream {
            headers,
            reader: StreamReader {
                state: state.clone(),
                inbound,
                chunk: Bytes::new(),
            },
            writer: StreamWriter {
                state,
                acquiring: None,
            },
        }
    }

    /// Refuses the stream with RST_STREAM(CANCEL), as the kubelet does. Dropping it does the same.
    pub fn refuse(self) {
        self.state.reset();
    }
}

/// An accepted stream: read what the client sends, write DATA back. Shutting the writing side
/// down sends FIN (half-close). Dropping the stream without FIN resets it.
#[derive(Debug)]
pub struct Stream {
    headers: Headers,
    reader: StreamReader,
    writer: StreamWriter,
}

impl Stream {
    pub fn id(&self) -> u32 {
        self.reader.state.id
    }

    /// The headers of the SYN_STREAM that opened it.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Separates the two directions, e.g. to copy both ways in separate tasks.
    pub fn split(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }

    /// Aborts the stream with RST_STREAM(CANCEL), after the data written before it.
    pub fn reset(self) {
        self.writer.reset();
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_shutdown(cx)
    }
}

/// What one stream's reader, writer and the connection's reader task share.
#[derive(Debug)]
struct StreamState {
    id: u32,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
    /// FIN or RST_STREAM has been queued: no more writes, and no reset on drop.
    closed_by_us: AtomicBool,
    reset_by_client: AtomicBool,
    /// Counts the stream against [`Config::max_streams`] while any handle lives.
    _slot: OwnedSemaphorePermit,
}

impl StreamState {
    fn reset(&self) {
        if !self.closed_by_us.swap(true, Ordering::AcqRel) {
            let frame = Frame::RstStream {
                stream_id: self.id,
                status: RstStatus::CANCEL,
            };
            // A send error means the session is over, and the stream with it.
            let _ = self.outgoing.send(Outgoing::Frame(frame, None));
        }
    }
}

impl Drop for StreamState {
    fn drop(&mut self) {
        // The client must not wait forever for the end of a stream nobody will finish.
        self.reset();
    }
}

/// The receiving half of a [`Stream`]: the client's DATA, then EOF at its FIN or RST_STREAM, or
/// when the session ends.
pub struct StreamReader {
    state: Arc<StreamState>,
    inbound: mpsc::Receiver<Bytes>,
    /// What is left of the chunk being read.
    chunk: Bytes,
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReader")
            .field("id", &self.state.id)
            .finish_non_exhaustive()
    }
}

impl StreamReader {
    pub fn id(&self) -> u32 {
        self.state.id
    }
}

impl AsyncRead for StreamReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.chunk.is_empty() {
            match ready!(this.inbound.poll_recv(cx)) {
                Some(chunk) => this.chunk = chunk,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.chunk.len().min(buf.remaining());
        buf.put_slice(&this.chunk[..n]);
        this.chunk.advance(n);
        Poll::Ready(Ok(()))
    }
}

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// The sending half of a [`Stream`]. Each write becomes one DATA frame of at most
/// [`Config::max_data_frame`] bytes, queued in order with the connection's other frames; flushing
/// has nothing to wait for. Shutdown sends FIN.
pub struct StreamWriter {
    state: Arc<StreamState>,
    /// Waiting for send budget for the next frame.
    acquiring: Option<Acquire>,
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("id", &self.state.id)
            .finish_non_exhaustive()
    }
}

impl StreamWriter {
    pub fn id(&self) -> u32 {
        self.state.id
    }

    /// Aborts the stream with RST_STREAM(CANCEL), after the data written before it.
    pub fn reset(self) {
        self.state.reset();
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.state.reset_by_client.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "spdy stream reset by client",
            ));
        }
        if self.state.closed_by_us.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "spdy stream already closed",
            ));
        }
        Ok(())
    }
}

fn session_over() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "spdy session is over")
}

impl AsyncWrite for StreamWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_writable()?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let shared = &this.state.shared;
        let wanted = buf.len().min(shared.config.max_data_frame);
        let acquiring = this.acquiring.get_or_insert_with(|| {
            // `wanted` is at most `max_data_frame`, which fits u32 (see `Config::normalized`).
            Box::pin(shared.send_budget.clone().acquire_many_owned(wanted as u32))
        });
        let acquired = ready!(acquiring.as_mut().poll(cx));
        this.acquiring = None;
        let mut budget = acquired.map_err(|_| session_over())?;
        // A write retried after `Pending` may bring fewer bytes than the budget was taken for.
        let len = buf.len().min(budget.num_permits());
        drop(budget.split(budget.num_permits() - len));
        // The client may have reset the stream while this write waited.
        this.check_writable()?;
        let frame = Frame::Data {
            stream_id: this.state.id,
            fin: false,
            payload: Bytes::copy_from_slice(&buf[..len]),
        };
        this.state
            .outgoing
            .send(Outgoing::Frame(frame, Some(budget)))
            .map_err(|_| session_over())?;
        Poll::Ready(Ok(len))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.acquiring = None;
        if this.state.closed_by_us.swap(true, Ordering::AcqRel)
            || this.state.reset_by_client.load(Ordering::Acquire)
        {
            return Poll::Ready(Ok(()));
        }
        let fin = Frame::Data {
            stream_id: this.state.id,
            fin: true,
            payload: Bytes::new(),
        };
        this.state
            .outgoing
            .send(Outgoing::Frame(fin, None))
            .map_err(|_| session_over())?;
        Poll::Ready(Ok(()))
    }
}

/// An inbound stream as the reader task sees it.
struct Inbound {
    /// `None` once the client has sent FIN or the stream's reader is gone.
    queue: Option<mpsc::Sender<Bytes>>,
    state: Weak<StreamState>,
}

/// The DATA frame whose payload is being read.
struct DataInProgress {
    stream_id: u32,
    remaining: usize,
    fin: bool,
}

/// Why the reader stopped reading frames.
enum ReadEnd {
    ClientClosed,
    ClientGoAway,
    /// The writer has finished (sent GOAWAY, or failed).
    Shutdown,
}

struct Reader<R> {
    io: R,
    buf: BytesMut,
    decoder: HeaderDecoder,
    streams: HashMap<u32, Inbound>,
    /// The lowest id a new stream may have: ids only increase.
    next_stream_id: u32,
    data: Option<DataInProgress>,
    /// The idle timeout fired and the writer was asked to close.
    close_requested: bool,
    incoming: mpsc::Sender<IncomingStream>,
    /// Weak, so that the reader alone does not keep the session alive.
    outgoing: mpsc::WeakUnboundedSender<Outgoing>,
    slots: Arc<Semaphore>,
    shared: Arc<Shared>,
    /// Completes (or fails) once the writer has finished.
    shutdown: oneshot::Receiver<()>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    async fn run(mut self) {
        let end = self.read_frames().await;
        // From here on every stream reads EOF and `accept` returns `None`.
        self.streams.clear();
        let Reader {
            mut io,
            mut buf,
            incoming,
            outgoing,
            shared,
            mut shutdown,
            ..
        } = self;
        drop(incoming);
        let linger = shared.config.linger;
        match end {
            Ok(ReadEnd::ClientClosed) => log::debug!("spdy client closed the connection"),
            Ok(ReadEnd::ClientGoAway) => log::debug!("spdy client sent goaway"),
            Ok(ReadEnd::Shutdown) => drain(&mut io, &mut buf, linger).await,
            Err(ConnectionError::Io(error)) => log::debug!("spdy connection read failed: {error}"),
            Err(error) => {
                log::warn!("spdy session ended: {error}");
                if let Some(outgoing) = outgoing.upgrade() {
                    let _ = outgoing.send(Outgoing::Close(GoAwayStatus::PROTOCOL_ERROR));
                }
                drop(outgoing);
                // Whatever the client sends now is unreadable; discard it while the writer
                // sends GOAWAY, then once it is done.
                let wait_for_writer = async {
                    let _ = (&mut shutdown).await;
                };
                tokio::select! {
                    () = wait_for_writer => {}
                    () = drain(&mut io, &mut buf, shared.config.close_timeout) => {}
                }
                drain(&mut io, &mut buf, linger).await;
            }
        }
    }

    async fn read_frames(&mut self) -> Result<ReadEnd, ConnectionError> {
        loop {
            if let Some(data) = &mut self.data {
                if data.remaining == 0 {
                    let (stream_id, fin) = (data.stream_id, data.fin);
                    self.data = None;
                    if fin {
                        self.finish_inbound(stream_id);
                    }
                    continue;
                }
                if !self.buf.is_empty() {
                    let len = data.remaining.min(self.buf.len());
                    data.remaining -= len;
                    let stream_id = data.stream_id;
                    // Copied, so that a queued chunk never pins a larger read buffer.
                    let chunk = Bytes::copy_from_slice(&self.buf[..len]);
                    self.buf.advance(len);
                    if !self.deliver(stream_id, chunk).await {
                        return Ok(ReadEnd::Shutdown);
                    }
                    continue;
                }
            } else if let Some(header) = FrameHeader::parse(&self.buf)? {
                match header {
                    FrameHeader::Data {
                        stream_id,
                        fin,
                        length,
                    } => {
                        self.buf.advance(HEADER_LEN);
                        self.shared.touch();
                        self.data = Some(DataInProgress {
                            stream_id,
                            remaining: length,
                            fin,
                        });
                        continue;
                    }
                    FrameHeader::Control { .. } => {
                        if let Some((frame, used)) = Frame::parse(&self.buf)? {
                            self.buf.advance(used);
                            self.shared.touch();
                            if let Some(end) = self.handle(frame).await? {
                                return Ok(end);
                            }
                            continue;
                        }
                    }
                }
            }
            if let Some(end) = self.fill().await? {
                return Ok(end);
            }
        }
    }

    /// Reads more bytes, watching for the writer's end and the idle timeout meanwhile.
    async fn fill(&mut self) -> Result<Option<ReadEnd>, ConnectionError> {
        self.buf.reserve(READ_CHUNK);
        let idle_deadline = match self.shared.config.idle_timeout {
            Some(timeout) if !self.close_requested => Some(self.shared.last_activity() + timeout),
            _ => None,
        };
        let idle = async {
            match idle_deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = self.io.read_buf(&mut self.buf) => {
                Ok((read? == 0).then_some(ReadEnd::ClientClosed))
            }
            _ = &mut self.shutdown => Ok(Some(ReadEnd::Shutdown)),
            () = idle => {
                // Written frames count as activity too, so check again before closing.
                let timeout = self.shared.config.idle_timeout.unwrap_or_default();
                if self.shared.last_activity() + timeout <= Instant::now() {
                    log::debug!("spdy session idle for {timeout:?}, closing");
                    self.close_requested = true;
                    if let Some(outgoing) = self.outgoing.upgrade() {
                        let _ = outgoing.send(Outgoing::Close(GoAwayStatus::OK));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Handles a control frame; `Some` ends reading.
    async fn handle(&mut self, frame: Frame) -> Result<Option<ReadEnd>, ConnectionError> {
        match frame {
            Frame::SynStream {
                stream_id,
                fin,
                header_block,
                ..
            } => {
                let headers = self.decode(stream_id, &header_block)?;
                if !self.open(stream_id, fin, headers).await {
                    return Ok(Some(ReadEnd::Shutdown));
                }
            }
            Frame::Headers {
                stream_id,
                fin,
                header_block,
            } => {
                // Decoded even though unused, to keep the zlib context in step.
                self.decode(stream_id, &header_block)?;
                if fin {
                    self.finish_inbound(stream_id);
                }
            }
            Frame::SynReply {
                stream_id,
                header_block,
                ..
            } => {
                // The server opens no streams, so there is nothing to reply to.
                self.decode(stream_id, &header_block)?;
                log::debug!("spdy client replied to unknown stream {stream_id}");
            }
            Frame::RstStream { stream_id, status } => {
                log::debug!("spdy client reset stream {stream_id} (status {})", status.0);
                if let Some(inbound) = self.streams.remove(&stream_id)
                    && let Some(state) = inbound.state.upgrade()
                {
                    state.reset_by_client.store(true, Ordering::Release);
                }
            }
            // Client pings have odd ids; an even id would answer a ping of ours, and we send none.
            Frame::Ping { id } if id % 2 == 1 => {
                if !self.send_control(Frame::Ping { id }).await {
                    return Ok(Some(ReadEnd::Shutdown));
                }
            }
            Frame::Ping { .. } => {}
            Frame::GoAway { .. } => return Ok(Some(ReadEnd::ClientGoAway)),
            // Neither side of spdystream honours flow control (see the module docs).
            Frame::Settings { .. } | Frame::WindowUpdate { .. } => {}
            // `read_frames` streams data payloads and never parses a DATA frame whole.
            Frame::Data { .. } => {}
        }
        Ok(None)
    }

    fn decode(&mut self, stream_id: u32, block: &[u8]) -> Result<Headers, ConnectionError> {
        self.decoder
            .decode(block)
            .map_err(|source| ConnectionError::Headers { stream_id, source })
    }

    /// Registers a stream the client opened and hands it to `accept`; `false` if the writer has
    /// finished meanwhile.
    async fn open(&mut self, stream_id: u32, fin: bool, headers: Headers) -> bool {
        if stream_id < self.next_stream_id {
            // As spdystream: a stream id that goes backwards is refused and otherwise ignored.
            let reset = Frame::RstStream {
                stream_id,
                status: RstStatus::PROTOCOL_ERROR,
            };
            return self.send_control(reset).await;
        }
        // Stream ids are 31-bit, so this cannot overflow.
        self.next_stream_id = stream_id + 2;
        self.shared
            .last_client_stream_id
            .store(stream_id, Ordering::Relaxed);
        // Forget streams whose handles are all gone; the slots bound what remains.
        self.streams
            .retain(|_, inbound| inbound.state.strong_count() > 0);
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) if !self.incoming.is_closed() => slot,
            _ => {
                log::debug!("spdy stream {stream_id} refused: not accepting or too many streams");
                let reset = Frame::RstStream {
                    stream_id,
                    status: RstStatus::REFUSED_STREAM,
                };
                return self.send_control(reset).await;
            }
        };
        let Some(outgoing) = self.outgoing.upgrade() else {
            // Nobody holds the session any more: it is closing.
            return true;
        };
        let (queue, inbound) = mpsc::channel(self.shared.config.stream_queue_chunks);
        let state = Arc::new(StreamState {
            id: stream_id,
            outgoing,
            shared: self.shared.clone(),
            closed_by_us: AtomicBool::new(false),
            reset_by_client: AtomicBool::new(false),
            _slot: slot,
        });
        // With FIN on the SYN_STREAM the client sends nothing: the queue is closed at once.
        let queue = (!fin).then_some(queue);
        self.streams.insert(
            stream_id,
            Inbound {
                queue,
                state: Arc::downgrade(&state),
            },
        );
        // Cannot be full: the queue holds `max_streams` and each stream in it holds a slot. If the
        // `Connection` was dropped just now, dropping the stream refuses it.
        let _ = self.incoming.try_send(IncomingStream {
            state,
            headers,
            inbound,
        });
        true
    }

    /// Queues a chunk for a stream, waiting while its queue is full: that is the back-pressure.
    /// `false` if the writer finished meanwhile.
    async fn deliver(&mut self, stream_id: u32, chunk: Bytes) -> bool {
        let Some(queue) = self
            .streams
            .get(&stream_id)
            .and_then(|inbound| inbound.queue.clone())
        else {
            // Unknown, finished or unread stream: the data has nowhere to go.
            return true;
        };
        tokio::select! {
            sent = queue.send(chunk) => {
                if sent.is_err()
                    && let Some(inbound) = self.streams.get_mut(&stream_id)
                {
                    // The reader was dropped; discard the rest of what the client sends.
                    inbound.queue = None;
                }
                true
            }
            _ = &mut self.shutdown => false,
        }
    }

    /// The client's FIN: the stream's reader sees EOF after what is queued.
    fn finish_inbound(&mut self, stream_id: u32) {
        if let Some(inbound) = self.streams.get_mut(&stream_id) {
            inbound.queue = None;
        }
    }

    /// Queues a control frame once the send budget allows, so that a client that sends pings but
    /// never reads cannot grow the queue. `false` if the writer finished meanwhile.
    async fn send_control(&mut self, frame: Frame) -> bool {
        let budget = self.shared.send_budget.clone();
        let acquired = tokio::select! {
            acquired = budget.acquire_many_owned(CONTROL_FRAME_COST as u32) => acquired,
            _ = &mut self.shutdown => return false,
        };
        match (acquired, self.outgoing.upgrade()) {
            (Ok(budget), Some(outgoing)) => {
                let _ = outgoing.send(Outgoing::Frame(frame, Some(budget)));
                true
            }
            // The writer is finishing; its shutdown signal follows.
            _ => true,
        }
    }
}

/// Reads and discards until EOF, an error, or `limit`.
async fn drain<R: AsyncRead + Unpin>(io: &mut R, buf: &mut BytesMut, limit: Duration) {
    let discard = async {
        loop {
            buf.clear();
            buf.reserve(READ_CHUNK);
            match io.read_buf(buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(limit, discard).await;
}

struct Writer<W> {
    io: W,
    queue: mpsc::UnboundedReceiver<Outgoing>,
    encoder: HeaderEncoder,
    /// Streams replied to and not yet ended with FIN or RST_STREAM by us.
    unfinished: BTreeSet<u32>,
    out: BytesMut,
    shared: Arc<Shared>,
    /// Tells the reader the writer has finished; dropping it does too.
    shutdown: Option<oneshot::Sender<()>>,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    async fn run(mut self) {
        let result = match self.pump().await {
            Ok(status) => self.close(status).await,
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            log::debug!("spdy writer stopped: {error}");
        }
        // Waiting writes fail from now on, and the reader stops.
        self.shared.send_budget.close();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Writes queued frames until asked to close, or until nobody can queue any more; returns
    /// the GOAWAY status to close with.
    async fn pump(&mut self) -> Result<GoAwayStatus, ConnectionError> {
        let mut written_budget = Vec::new();
        loop {
            let Some(first) = self.queue.recv().await else {
                return Ok(GoAwayStatus::OK);
            };
            let mut next = Some(first);
            let mut close = None;
            while let Some(outgoing) = next.take() {
                match outgoing {
                    Outgoing::Frame(frame, budget) => {
                        match &frame {
                            Frame::Data {
                                stream_id,
                                fin: true,
                                ..
                            }
                            | Frame::RstStream { stream_id, .. } => {
                                self.unfinished.remove(stream_id);
                            }
                            _ => {}
                        }
                        frame.encode(&mut self.out)?;
                        written_budget.extend(budget);
                    }
                    Outgoing::Reply(stream_id) => {
                        let header_block = self.encoder.encode(&Headers::new())?;
                        Frame::SynReply {
                            stream_id,
                            fin: false,
                            header_block,
                        }
                        .encode(&mut self.out)?;
                        self.unfinished.insert(stream_id);
                    }
                    Outgoing::Close(status) => close = Some(status),
                }
                if close.is_none() && self.out.len() < WRITE_BATCH {
                    next = self.queue.try_recv().ok();
                }
            }
            // Once no handle is left to queue more, nothing should wait on the client for long.
            let bounded = self.queue.sender_strong_count() == 0;
            self.write_out(bounded).await?;
            // The frames are in the socket: their budget is free for new writes.
            written_budget.clear();
            if let Some(status) = close {
                return Ok(status);
            }
        }
    }

    /// RST_STREAM(CANCEL) for every unfinished stream, GOAWAY, then shut the write half down.
    async fn close(&mut self, status: GoAwayStatus) -> Result<(), ConnectionError> {
        for stream_id in std::mem::take(&mut self.unfinished) {
            Frame::RstStream {
                stream_id,
                status: RstStatus::CANCEL,
            }
            .encode(&mut self.out)?;
        }
        let last_good_stream_id = self.shared.last_client_stream_id.load(Ordering::Relaxed);
        Frame::GoAway {
            last_good_stream_id,
            status,
        }
        .encode(&mut self.out)?;
        self.write_out(true).await?;
        let shutdown = self.io.shutdown();
        tokio::time::timeout(self.shared.config.close_timeout, shutdown)
            .await
            .map_err(|_| ConnectionError::WriteTimeout)??;
        Ok(())
    }

    /// Writes what is buffered. An unbounded write waits as long as the client is slow to read
    /// (a paused terminal may stop reading for minutes); a bounded one fails after the close
    /// timeout.
    async fn write_out(&mut self, bounded: bool) -> Result<(), ConnectionError> {
        let write = async {
            self.io.write_all(&self.out).await?;
            self.io.flush().await
        };
        if bounded {
            tokio::time::timeout(self.shared.config.close_timeout, write)
                .await
                .map_err(|_| ConnectionError::WriteTimeout)??;
        } else {
            write.await?;
        }
        self.out.clear();
        self.shared.touch();
        Ok(())
    }
}
