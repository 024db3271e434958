//! Bridges between async SPDY streams and the provider's blocking byte sources and sinks,
//! through bounded channels: a slow consumer makes the producer wait.

use parking_lot::Mutex;

use bytes::Bytes;
use serde::Deserialize;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::mpsc,
    task::JoinHandle,
};
use vk_abi::{
    TerminalSize,
    host::{byte_sink, byte_source, resize_source},
    raw::{ByteSinkBox, ByteSourceBox, ResizeSourceBox},
};

/// Chunks in flight between a stream and the provider.
const IN_FLIGHT: usize = 4;
const READ_CHUNK: usize = 32 * 1024;

/// The tasks that move a session's bytes: writers are waited for (they flush and FIN their
/// streams once the provider is done); readers are stopped (the client may keep stdin open).
#[derive(Debug, Default)]
pub struct Pumps {
    writers: Vec<JoinHandle<()>>,
    readers: Vec<JoinHandle<()>>,
}

impl Pumps {
    /// Waits for the writers, then stops the readers.
    pub async fn finish(self) {
        for writer in self.writers {
            let _ = writer.await;
        }
        for reader in self.readers {
            reader.abort();
        }
    }
}

/// What the client sends on `reader`, for the provider to read; empty at the client's FIN.
pub fn source(
    mut reader: impl AsyncRead + Unpin + Send + 'static,
    pumps: &mut Pumps,
) -> ByteSourceBox {
    let (sender, receiver) = mpsc::channel::<Vec<u8>>(IN_FLIGHT);
    pumps.readers.push(tokio::spawn(async move {
        let mut buffer = vec![0; READ_CHUNK];
        while let Ok(n) = reader.read(&mut buffer).await {
            if n == 0 || sender.send(buffer[..n].to_vec()).await.is_err() {
                break;
            }
        }
    }));
    let receiver = Mutex::new(receiver);
    byte_source(move || receiver.lock().blocking_recv().unwrap_or_default())
}

/// What the provider writes, sent on `writer`, which is shut down (FIN) at the end.
pub fn sink(
    mut writer: impl AsyncWrite + Unpin + Send + 'static,
    pumps: &mut Pumps,
) -> ByteSinkBox {
    let (sender, mut receiver) = mpsc::channel::<Bytes>(IN_FLIGHT);
    pumps.writers.push(tokio::spawn(async move {
        while let Some(chunk) = receiver.recv().await {
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    }));
    byte_sink(move |data| {
        sender
            .blocking_send(Bytes::copy_from_slice(data))
            .map_err(|_| "the client went away".to_string())
    })
}

/// A terminal size as client-go sends it (`{"Width":80,"Height":24}`).
#[derive(Debug, Deserialize)]
struct Size {
    #[serde(alias = "width")]
    #[serde(rename = "Width")]
    width: u16,
    #[serde(alias = "height")]
    #[serde(rename = "Height")]
    height: u16,
}

/// Decodes the sizes complete in `buffer`, keeping an unfinished one for the next read.
pub(super) fn decode_sizes(buffer: &mut Vec<u8>) -> Vec<TerminalSize> {
    let mut sizes = Vec::new();
    let mut consumed = 0;
    let mut decoder = serde_json::Deserializer::from_slice(buffer).into_iter::<Size>();
    loop {
        match decoder.next() {
            Some(Ok(size)) => {
                sizes.push(TerminalSize {
                    width: size.width,
                    height: size.height,
                });
                consumed = decoder.byte_offset();
            }
            Some(Err(error)) if error.is_eof() => break,
            // Garbage: drop what was read so far rather than stall.
            Some(Err(_)) => {
                consumed = buffer.len();
                break;
            }
            None => {
                consumed = buffer.len();
                break;
            }
        }
    }
    buffer.drain(..consumed);
    sizes
}

/// Terminal resizes the client sends on `reader` as JSON objects.
pub fn resizes(
    mut reader: impl AsyncRead + Unpin + Send + 'static,
    pumps: &mut Pumps,
) -> ResizeSourceBox {
    let (sender, receiver) = mpsc::channel::<TerminalSize>(IN_FLIGHT);
    pumps.readers.push(tokio::spawn(async move {
        let mut pending = Vec::new();
        let mut buffer = vec![0; 1024];
        while let Ok(n) = reader.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buffer[..n]);
            for size in decode_sizes(&mut pending) {
                if sender.send(size).await.is_err() {
                    return;
                }
            }
        }
    }));
    let receiver = Mutex::new(receiver);
    resize_source(move || receiver.lock().blocking_recv())
}

#[cfg(test)]
mod tests;
