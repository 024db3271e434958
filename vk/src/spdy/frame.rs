//! SPDY/3 frames: an incremental parser that never panics and a serialiser.
//!
//! Every frame starts with an 8-byte header, big-endian. A control frame's header carries the
//! control bit, the version (3) and the type; a data frame's carries the stream id. Both end with
//! 8 bits of flags and a 24-bit payload length.
//!
//! Checks follow what `moby/spdystream` (the Go side of every Kubernetes client) enforces, plus the
//! version and a bound on control frames. Header blocks stay compressed here: decompressing them
//! needs the connection's zlib context (see [`super::headers`]).

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

#[cfg(test)]
mod tests;

/// The SPDY version spoken, carried in every control frame.
pub const VERSION: u16 = 3;
/// Size of the header that starts every frame.
pub const HEADER_LEN: usize = 8;
/// Largest payload the 24-bit length field can describe.
pub const MAX_PAYLOAD_LEN: usize = 0x00FF_FFFF;
/// Largest control frame payload accepted. Kubernetes' header blocks are tens of bytes, so this
/// only stops a peer from making the reader buffer up to 16 MiB per frame. Data frames are not
/// bounded here: [`super::Connection`] streams their payload instead of buffering it.
pub const MAX_CONTROL_PAYLOAD_LEN: usize = 64 * 1024;

const CONTROL_BIT: u32 = 0x8000_0000;
/// Stream ids (and the other 31-bit fields) have a reserved top bit that receivers ignore.
const ID_MASK: u32 = 0x7FFF_FFFF;
const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
const FLAG_CLEAR_SETTINGS: u8 = 0x01;

/// Why bytes are not a valid frame. Every one of these ends the session in spdystream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unsupported spdy version {0}")]
    UnsupportedVersion(u16),
    #[error("unknown control frame type {0}")]
    UnknownType(u16),
    #[error("{kind} frame payload of {length} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        kind: FrameKind,
        length: usize,
        limit: usize,
    },
    #[error("invalid payload length {length} for a {kind} frame")]
    InvalidLength { kind: FrameKind, length: usize },
    #[error("stream id zero in a {0} frame")]
    ZeroStreamId(FrameKind),
    #[error("invalid flags {flags:#04x} on a {kind} frame")]
    InvalidFlags { kind: FrameKind, flags: u8 },
    #[error("ping id zero")]
    ZeroPingId,
    #[error("rst_stream status zero")]
    ZeroRstStatus,
}

/// The kinds of frame; control frames carry their type code on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    SynStream,
    SynReply,
    RstStream,
    Settings,
    Ping,
    GoAway,
    Headers,
    WindowUpdate,
    Data,
}

impl FrameKind {
    /// The control frame type for a code. Types 5 (NOOP) and 10 (CREDENTIAL) are not accepted:
    /// spdystream does not know them either.
    fn from_control_code(code: u16) -> Option<FrameKind> {
        Some(match code {
            1 => FrameKind::SynStream,
            2 => FrameKind::SynReply,
            3 => FrameKind::RstStream,
            4 => FrameKind::Settings,
            6 => FrameKind::Ping,
            7 => FrameKind::GoAway,
            8 => FrameKind::Headers,
            9 => FrameKind::WindowUpdate,
            _ => return None,
        })
    }

    fn control_code(self) -> u16 {
        match self {
            FrameKind::SynStream => 1,
            FrameKind::SynReply => 2,
            FrameKind::RstStream => 3,
            FrameKind::Settings => 4,
            FrameKind::Ping => 6,
            FrameKind::GoAway => 7,
            FrameKind::Headers => 8,
            FrameKind::WindowUpdate => 9,
            // Data frames have no type field; nothing calls this for them.
            FrameKind::Data => 0,
        }
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameKind::SynStream => "syn_stream",
            FrameKind::SynReply => "syn_reply",
            FrameKind::RstStream => "rst_stream",
            FrameKind::Settings => "settings",
            FrameKind::Ping => "ping",
            FrameKind::GoAway => "goaway",
            FrameKind::Headers => "headers",
            FrameKind::WindowUpdate => "window_update",
            FrameKind::Data => "data",
        })
    }
}

/// The status carried by RST_STREAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RstStatus(pub u32);

impl RstStatus {
    pub const PROTOCOL_ERROR: RstStatus = RstStatus(1);
    pub const INVALID_STREAM: RstStatus = RstStatus(2);
    pub const REFUSED_STREAM: RstStatus = RstStatus(3);
    pub const UNSUPPORTED_VERSION: RstStatus = RstStatus(4);
    pub const CANCEL: RstStatus = RstStatus(5);
    pub const INTERNAL_ERROR: RstStatus = RstStatus(6);
    pub const FLOW_CONTROL_ERROR: RstStatus = RstStatus(7);
    pub const STREAM_IN_USE: RstStatus = RstStatus(8);
    pub const STREAM_ALREADY_CLOSED: RstStatus = RstStatus(9);
    pub const INVALID_CREDENTIALS: RstStatus = RstStatus(10);
    pub const FRAME_TOO_LARGE: RstStatus = RstStatus(11);
}

/// The status carried by GOAWAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GoAwayStatus(pub u32);

impl GoAwayStatus {
    pub const OK: GoAwayStatus = GoAwayStatus(0);
    pub const PROTOCOL_ERROR: GoAwayStatus = GoAwayStatus(1);
    pub const INTERNAL_ERROR: GoAwayStatus = GoAwayStatus(2);
}

/// One entry of a SETTINGS frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// 0x1 PERSIST_VALUE, 0x2 PERSISTED.
    pub flags: u8,
    /// A 24-bit id, e.g. 7 for INITIAL_WINDOW_SIZE.
    pub id: u32,
    pub value: u32,
}

/// The 8-byte header that starts every frame, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameHeader {
    Control {
        kind: FrameKind,
        flags: u8,
        length: usize,
    },
    Data {
        stream_id: u32,
        fin: bool,
        length: usize,
    },
}

impl FrameHeader {
    /// Reads the header at the start of `buf`; `None` while fewer than [`HEADER_LEN`] bytes are
    /// there. Rejects what no payload can fix: another version, an unknown type, a control frame
    /// over [`MAX_CONTROL_PAYLOAD_LEN`], a data frame for stream zero.
    pub fn parse(buf: &[u8]) -> Result<Option<FrameHeader>, FrameError> {
        let Some(mut header) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let first = header.get_u32();
        let flags = header.get_u8();
        let length = (usize::from(header.get_u8()) << 16) | usize::from(header.get_u16());
        if first & CONTROL_BIT == 0 {
            let stream_id = first & ID_MASK;
            if stream_id == 0 {
                return Err(FrameError::ZeroStreamId(FrameKind::Data));
            }
            return Ok(Some(FrameHeader::Data {
                stream_id,
                fin: flags & FLAG_FIN != 0,
                length,
            }));
        }
        let version = ((first >> 16) & 0x7FFF) as u16;
        if version != VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
        let code = (first & 0xFFFF) as u16;
        let kind = FrameKind::from_control_code(code).ok_or(FrameError::UnknownType(code))?;
        if length > MAX_CONTROL_PAYLOAD_LEN {
            return Err(FrameError::TooLarge {
                kind,
                length,
                limit: MAX_CONTROL_PAYLOAD_LEN,
            });
        }
        Ok(Some(FrameHeader::Control {
            kind,
            flags,
            length,
        }))
    }

    /// Bytes of payload following the header.
    pub fn payload_len(&self) -> usize {
        match *self {
            FrameHeader::Control { length, .. } | FrameHeader::Data { length, .. } => length,
        }
    }
}

/// A SPDY/3 frame. Header blocks are kept compressed; stream ids are 31-bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_stream_id: u32,
        /// 3 bits, 0 (highest) to 7.
        priority: u8,
        slot: u8,
        fin: bool,
        unidirectional: bool,
        header_block: Bytes,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        header_block: Bytes,
    },
    RstStream {
        stream_id: u32,
        status: RstStatus,
    },
    Settings {
        clear_previous: bool,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: GoAwayStatus,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        header_block: Bytes,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        payload: Bytes,
    },
}

impl Frame {
    /// Parses the frame at the start of `buf`, returning it with the number of bytes it took, or
    /// `None` while `buf` holds only part of it. A data frame is only returned whole, so a caller
    /// that must not buffer up to 16 MiB reads [`FrameHeader`] itself and streams data payloads.
    pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        let Some(header) = FrameHeader::parse(buf)? else {
            return Ok(None);
        };
        let total = HEADER_LEN + header.payload_len();
        let Some(payload) = buf.get(HEADER_LEN..total) else {
            return Ok(None);
        };
        let frame = match header {
            FrameHeader::Data { stream_id, fin, .. } => Frame::Data {
                stream_id,
                fin,
                payload: Bytes::copy_from_slice(payload),
            },
            FrameHeader::Control { kind, flags, .. } => Frame::parse_control(kind, flags, payload)?,
        };
        Ok(Some((frame, total)))
    }

    /// Parses a control frame's payload, which the caller has checked is complete.
    fn parse_control(kind: FrameKind, flags: u8, payload: &[u8]) -> Result<Frame, FrameError> {
        let length = payload.len();
        let invalid_length = FrameError::InvalidLength { kind, length };
        let fin = flags & FLAG_FIN != 0;
        let mut buf = payload;
        let frame = match kind {
            FrameKind::SynStream => {
                if length < 10 {
                    return Err(invalid_length);
                }
                let stream_id = buf.get_u32() & ID_MASK;
                let associated_stream_id = buf.get_u32() & ID_MASK;
                let priority = buf.get_u8() >> 5;
                let slot = buf.get_u8();
                Frame::SynStream {
                    stream_id: nonzero_stream_id(kind, stream_id)?,
                    associated_stream_id,
                    priority,
                    slot,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    header_block: Bytes::copy_from_slice(buf),
                }
            }
            FrameKind::SynReply | FrameKind::Headers => {
                if length < 4 {
                    return Err(invalid_length);
                }
                let stream_id = nonzero_stream_id(kind, buf.get_u32() & ID_MASK)?;
                let header_block = Bytes::copy_from_slice(buf);
                if kind == FrameKind::SynReply {
                    Frame::SynReply {
                        stream_id,
                        fin,
                        header_block,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        fin,
                        header_block,
                    }
                }
            }
            FrameKind::RstStream => {
                if length != 8 {
                    return Err(invalid_length);
                }
                let stream_id = nonzero_stream_id(kind, buf.get_u32() & ID_MASK)?;
                let status = buf.get_u32();
                if status == 0 {
                    return Err(FrameError::ZeroRstStatus);
                }
                Frame::RstStream {
                    stream_id,
                    status: RstStatus(status),
                }
            }
            FrameKind::Settings => {
                if length < 4 {
                    return Err(invalid_length);
                }
                let count = u64::from(buf.get_u32());
                if count * 8 != buf.len() as u64 {
                    return Err(invalid_length);
                }
                let mut entries = Vec::with_capacity(buf.len() / 8);
                while buf.has_remaining() {
                    let flags_and_id = buf.get_u32();
                    entries.push(Setting {
                        flags: (flags_and_id >> 24) as u8,
                        id: flags_and_id & 0x00FF_FFFF,
                        value: buf.get_u32(),
                    });
                }
                Frame::Settings {
                    clear_previous: flags & FLAG_CLEAR_SETTINGS != 0,
                    entries,
                }
            }
            FrameKind::Ping => {
                require_no_flags(kind, flags)?;
                if length != 4 {
                    return Err(invalid_length);
                }
                let id = buf.get_u32();
                if id == 0 {
                    return Err(FrameError::ZeroPingId);
                }
                Frame::Ping { id }
            }
            FrameKind::GoAway => {
                require_no_flags(kind, flags)?;
                if length != 8 {
                    return Err(invalid_length);
                }
                let last_good_stream_id = buf.get_u32() & ID_MASK;
                Frame::GoAway {
                    last_good_stream_id,
                    status: GoAwayStatus(buf.get_u32()),
                }
            }
            FrameKind::WindowUpdate => {
                require_no_flags(kind, flags)?;
                if length != 8 {
                    return Err(invalid_length);
                }
                // Stream id zero is SPDY/3.1's session window; spdystream accepts it.
                let stream_id = buf.get_u32() & ID_MASK;
                Frame::WindowUpdate {
                    stream_id,
                    delta: buf.get_u32() & ID_MASK,
                }
            }
            // Data frames are told apart by the control bit, not by a type; nothing asks this.
            FrameKind::Data => return Err(FrameError::UnknownType(0)),
        };
        Ok(frame)
    }

    /// What kind of frame this is.
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::SynStream { .. } => FrameKind::SynStream,
            Frame::SynReply { .. } => FrameKind::SynReply,
            Frame::RstStream { .. } => FrameKind::RstStream,
            Frame::Settings { .. } => FrameKind::Settings,
            Frame::Ping { .. } => FrameKind::Ping,
            Frame::GoAway { .. } => FrameKind::GoAway,
            Frame::Headers { .. } => FrameKind::Headers,
            Frame::WindowUpdate { .. } => FrameKind::WindowUpdate,
            Frame::Data { .. } => FrameKind::Data,
        }
    }

    /// Appends the frame's wire form to `out`. Fails only when the payload does not fit the
    /// 24-bit length; 31-bit ids and the 3-bit priority are masked to their width.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), FrameError> {
        let kind = self.kind();
        let length = self.payload_len();
        if length > MAX_PAYLOAD_LEN {
            return Err(FrameError::TooLarge {
                kind,
                length,
                limit: MAX_PAYLOAD_LEN,
            });
        }
        out.reserve(HEADER_LEN + length);
        let fin_flag = |fin: bool| if fin { FLAG_FIN } else { 0 };
        let flags = match self {
            Frame::SynStream {
                fin,
                unidirectional,
                ..
            } => {
                fin_flag(*fin)
                    | if *unidirectional {
                        FLAG_UNIDIRECTIONAL
                    } else {
                        0
                    }
            }
            Frame::SynReply { fin, .. } | Frame::Headers { fin, .. } | Frame::Data { fin, .. } => {
                fin_flag(*fin)
            }
            Frame::Settings { clear_previous, .. } => {
                if *clear_previous {
                    FLAG_CLEAR_SETTINGS
                } else {
                    0
                }
            }
            Frame::RstStream { .. }
            | Frame::Ping { .. }
            | Frame::GoAway { .. }
            | Frame::WindowUpdate { .. } => 0,
        };
        match self {
            Frame::Data { stream_id, .. } => out.put_u32(stream_id & ID_MASK),
            _ => {
                out.put_u32(CONTROL_BIT | u32::from(VERSION) << 16 | u32::from(kind.control_code()))
            }
        }
        // The length was checked to fit 24 bits above.
        out.put_u32(u32::from(flags) << 24 | length as u32);
        match self {
            Frame::SynStream {
                stream_id,
                associated_stream_id,
                priority,
                slot,
                header_block,
                ..
            } => {
                out.put_u32(stream_id & ID_MASK);
                out.put_u32(associated_stream_id & ID_MASK);
                out.put_u8((priority & 0x07) << 5);
                out.put_u8(*slot);
                out.put_slice(header_block);
            }
            Frame::SynReply {
                stream_id,
                header_block,
                ..
            }
            | Frame::Headers {
                stream_id,
                header_block,
                ..
            } => {
                out.put_u32(stream_id & ID_MASK);
                out.put_slice(header_block);
            }
            Frame::RstStream { stream_id, status } => {
                out.put_u32(stream_id & ID_MASK);
                out.put_u32(status.0);
            }
            Frame::Settings { entries, .. } => {
                // Fits: the payload length (4 + 8 per entry) was checked above.
                out.put_u32(entries.len() as u32);
                for entry in entries {
                    out.put_u32(u32::from(entry.flags) << 24 | (entry.id & 0x00FF_FFFF));
                    out.put_u32(entry.value);
                }
            }
            Frame::Ping { id } => out.put_u32(*id),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                out.put_u32(last_good_stream_id & ID_MASK);
                out.put_u32(status.0);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                out.put_u32(stream_id & ID_MASK);
                out.put_u32(delta & ID_MASK);
            }
            Frame::Data { payload, .. } => out.put_slice(payload),
        }
        Ok(())
    }

    /// Saturating, so that an absurd frame is reported as too large rather than overflowing.
    fn payload_len(&self) -> usize {
        match self {
            Frame::SynStream { header_block, .. } => header_block.len().saturating_add(10),
            Frame::SynReply { header_block, .. } | Frame::Headers { header_block, .. } => {
                header_block.len().saturating_add(4)
            }
            Frame::Settings { entries, .. } => entries.len().saturating_mul(8).saturating_add(4),
            Frame::Ping { .. } => 4,
            Frame::RstStream { .. } | Frame::GoAway { .. } | Frame::WindowUpdate { .. } => 8,
            Frame::Data { payload, .. } => payload.len(),
        }
    }
}

fn nonzero_stream_id(kind: FrameKind, stream_id: u32) -> Result<u32, FrameError> {
    if stream_id == 0 {
        Err(FrameError::ZeroStreamId(kind))
    } else {
        Ok(stream_id)
    }
}

fn require_no_flags(kind: FrameKind, flags: u8) -> Result<(), FrameError> {
    if flags == 0 {
        Ok(())
    } else {
        Err(FrameError::InvalidFlags { kind, flags })
    }
}
