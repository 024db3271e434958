//! SPDY/3.1 server side, as Kubernetes clients speak it to a kubelet (exec, attach, port-forward).
//!
//! Kubernetes clients (kubectl, client-go, and the apiserver relaying for them) use the Go package
//! `moby/spdystream`. It frames like SPDY draft 3 but implements no flow control at all: it ignores
//! SETTINGS and WINDOW_UPDATE and never waits for a window. The only back-pressure that works
//! against it is TCP's, so this module bounds memory by not reading the socket while a stream's
//! inbound queue is full (see [`Connection`]).
//!
//! - [`frame`]: the frame format (parse and serialise).
//! - [`headers`]: header blocks and their per-connection zlib contexts.
//! - [`Connection`]: the session driver over an upgraded HTTP connection, handing out the streams
//!   the client opens.
//!
//! The HTTP upgrade handshake (`Upgrade: SPDY/3.1`, protocol negotiation) is the caller's: hand
//! the upgraded byte stream to [`Connection::new`].

mod connection;
pub mod frame;
pub mod headers;

pub use connection::{Config, Connection, IncomingStream, Stream, StreamReader, StreamWriter};
pub use headers::Headers;
