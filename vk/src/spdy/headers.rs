//! SPDY/3 header blocks: name/value pairs compressed with zlib and the SPDY/3 dictionary.
//!
//! Uncompressed, a block is a 32-bit pair count, then per pair a 32-bit name length, the name, a
//! 32-bit value length and the value, all big-endian. Names are lower-case and appear once; several
//! values for one name are joined with NUL bytes.
//!
//! Each direction of a connection is one zlib stream, started with the SPDY/3 preset dictionary
//! and never reset: every block ends with a sync flush, so it decodes completely given the blocks
//! before it. So a [`HeaderDecoder`] must see every block the peer sends, in order (even those of
//! streams about to be refused), and a [`HeaderEncoder`] every block sent.

use std::sync::LazyLock;

use bytes::{Buf, BufMut, Bytes};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

#[cfg(test)]
mod tests;

/// Largest decompressed header block accepted. Kubernetes' blocks are tens of bytes; the bound
/// stops a small compressed block from inflating into a large allocation.
pub const MAX_DECOMPRESSED_LEN: usize = 64 * 1024;

/// The Adler-32 of [`DICTIONARY`], which a zlib stream using it names in its header.
const DICTIONARY_ADLER: u32 = 0xE3C6_A7C2;

/// Header names and status lines that the SPDY/3 dictionary lists, each preceded by its length as
/// a 32-bit big-endian integer (SPDY draft 3, section 2.6.10.1).
const DICTIONARY_WORDS: [&str; 65] = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// Common values that end the SPDY/3 dictionary, without length prefixes.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 zlib preset dictionary (1,423 bytes).
static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut dictionary = Vec::with_capacity(1423);
    for word in DICTIONARY_WORDS {
        // The words are short constants; their lengths fit.
        dictionary.put_u32(word.len() as u32);
        dictionary.put_slice(word.as_bytes());
    }
    dictionary.put_slice(DICTIONARY_TAIL.as_bytes());
    dictionary
});

/// Why a header block cannot be decoded or encoded. A decoding error leaves the zlib context out
/// of step with the peer's, so it ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("header block is not valid zlib data: {0}")]
    Corrupt(#[from] flate2::DecompressError),
    #[error("header block names preset dictionary {0:#010x}, not spdy/3's")]
    WrongDictionary(u32),
    #[error("header block decompresses to more than {MAX_DECOMPRESSED_LEN} bytes")]
    TooLarge,
    #[error("header block has {0} compressed bytes after the end of the zlib stream")]
    AfterStreamEnd(usize),
    #[error("header block is truncated")]
    Truncated,
    #[error("header block has {0} bytes after its last header")]
    TrailingBytes(usize),
    #[error("header name {0:?} is not lower-case")]
    NotLowerCase(String),
    #[error("header {0:?} appears twice")]
    Duplicate(String),
    #[error("header name or value is not valid utf-8")]
    NotUtf8,
    #[error("header name or value of {0} bytes is too long to encode")]
    TooLongToEncode(usize),
    #[error("compressing a header block failed: {0}")]
    Compress(#[from] flate2::CompressError),
    #[error("zlib made no progress")]
    Stalled,
}

/// The name/value pairs of one header block, in order, one entry per value. Names are lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    /// The first value of `name`, matched case-insensitively as Go's clients do.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Adds a value for `name` (lower-cased). A value must not contain NUL, which separates
    /// values on the wire: it would come back as two values.
    pub fn append(&mut self, name: &str, value: impl Into<String>) {
        self.entries.push((name.to_lowercase(), value.into()));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The uncompressed wire form: each name once, its values joined with NUL.
    fn to_block(&self) -> Result<Vec<u8>, HeaderError> {
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in &self.entries {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        let mut block = Vec::new();
        block.put_u32(wire_len(names.len())?);
        for name in names {
            let values: Vec<&str> = self.get_all(name).collect();
            let value = values.join("\0");
            block.put_u32(wire_len(name.len())?);
            block.put_slice(name.as_bytes());
            block.put_u32(wire_len(value.len())?);
            block.put_slice(value.as_bytes());
        }
        Ok(block)
    }

    /// Parses an uncompressed block, rejecting what spdystream rejects: upper-case or repeated
    /// names.
    fn from_block(mut block: &[u8]) -> Result<Headers, HeaderError> {
        let count = read_u32(&mut block)?;
        let mut headers = Headers::new();
        let mut names: Vec<String> = Vec::new();
        for _ in 0..count {
            let name = read_string(&mut block)?;
            if name.to_lowercase() != name {
                return Err(HeaderError::NotLowerCase(name));
            }
            if names.contains(&name) {
                return Err(HeaderError::Duplicate(name));
            }
            let value = read_string(&mut block)?;
            for part in value.split('\0') {
                headers.entries.push((name.clone(), part.to_owned()));
            }
            names.push(name);
        }
        if block.has_remaining() {
            return Err(HeaderError::TrailingBytes(block.len()));
        }
        Ok(headers)
    }
}

impl<N: AsRef<str>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Headers {
        let mut headers = Headers::new();
        for (name, value) in pairs {
            headers.append(name.as_ref(), value);
        }
        headers
    }
}

fn wire_len(len: usize) -> Result<u32, HeaderError> {
    u32::try_from(len).map_err(|_| HeaderError::TooLongToEncode(len))
}

fn read_u32(block: &mut &[u8]) -> Result<u32, HeaderError> {
    block.try_get_u32().map_err(|_| HeaderError::Truncated)
}

fn read_string(block: &mut &[u8]) -> Result<String, HeaderError> {
    let len = read_u32(block)? as usize;
    let bytes = block.get(..len).ok_or(HeaderError::Truncated)?;
    let string = std::str::from_utf8(bytes)
        .map_err(|_| HeaderError::NotUtf8)?
        .to_owned();
    block.advance(len);
    Ok(string)
}

/// Decompresses the header blocks a peer sends on one connection.
#[derive(Debug)]
pub struct HeaderDecoder {
    inflater: Decompress,
}

impl Default for HeaderDecoder {
    fn default() -> HeaderDecoder {
        HeaderDecoder::new()
    }
}

impl HeaderDecoder {
    pub fn new() -> HeaderDecoder {
        HeaderDecoder {
            inflater: Decompress::new(true),
        }
    }

    /// Decodes the next compressed block (the whole block of one frame).
    pub fn decode(&mut self, compressed: &[u8]) -> Result<Headers, HeaderError> {
        Headers::from_block(&self.inflate(compressed)?)
    }

    fn inflate(&mut self, compressed: &[u8]) -> Result<Vec<u8>, HeaderError> {
        let start_in = self.inflater.total_in();
        let mut out = Vec::new();
        loop {
            if out.len() == out.capacity() {
                if out.len() > MAX_DECOMPRESSED_LEN {
                    return Err(HeaderError::TooLarge);
                }
                // Grow geometrically, but never past one byte over the limit, which is how an
                // oversized block is noticed.
                let extra = out
                    .capacity()
                    .max(256)
                    .min(MAX_DECOMPRESSED_LEN + 1 - out.len());
                out.reserve_exact(extra);
            }
            let consumed = taken(self.inflater.total_in(), start_in, compressed.len());
            let before = (self.inflater.total_in(), self.inflater.total_out());
            let status = match self.inflater.decompress_vec(
                &compressed[consumed..],
                &mut out,
                FlushDecompress::Sync,
            ) {
                Ok(status) => status,
                Err(error) => match error.needs_dictionary() {
                    // The first block's zlib header asks for the dictionary by its checksum.
                    Some(DICTIONARY_ADLER) => {
                        self.inflater.set_dictionary(&DICTIONARY)?;
                        continue;
                    }
                    Some(other) => return Err(HeaderError::WrongDictionary(other)),
                    None => return Err(HeaderError::Corrupt(error)),
                },
            };
            if out.len() > MAX_DECOMPRESSED_LEN {
                return Err(HeaderError::TooLarge);
            }
            let consumed = taken(self.inflater.total_in(), start_in, compressed.len());
            let output_room_left = out.len() < out.capacity();
            match status {
                Status::StreamEnd if consumed < compressed.len() => {
                    return Err(HeaderError::AfterStreamEnd(compressed.len() - consumed));
                }
                Status::StreamEnd => return Ok(out),
                // With all input taken and room to spare, the sync flush has emitted everything.
                _ if consumed == compressed.len() && output_room_left => return Ok(out),
                _ if before == (self.inflater.total_in(), self.inflater.total_out())
                    && output_room_left =>
                {
                    return Err(HeaderError::Stalled);
                }
                _ => {}
            }
        }
    }
}

/// Input bytes of the current block taken so far, from zlib's running total; never more than the
/// block (zlib cannot take more than it was given).
fn taken(total_in: u64, start_in: u64, block_len: usize) -> usize {
    usize::try_from(total_in - start_in).map_or(block_len, |n| n.min(block_len))
}

/// Compresses the header blocks sent on one connection.
#[derive(Debug)]
pub struct HeaderEncoder {
    deflater: Compress,
    dictionary_set: bool,
}

impl Default for HeaderEncoder {
    fn default() -> HeaderEncoder {
        HeaderEncoder::new()
    }
}

impl HeaderEncoder {
    pub fn new() -> HeaderEncoder {
        // Level 9 with the dictionary, like Go's writer.
        HeaderEncoder {
            deflater: Compress::new(Compression::best(), true),
            dictionary_set: false,
        }
    }

    /// Compresses `headers` as the next block, ending with a sync flush so the peer can decode it
    /// without what follows.
    pub fn encode(&mut self, headers: &Headers) -> Result<Bytes, HeaderError> {
        self.compress(&headers.to_block()?)
    }

    fn compress(&mut self, block: &[u8]) -> Result<Bytes, HeaderError> {
        if !self.dictionary_set {
            self.deflater.set_dictionary(&DICTIONARY)?;
            self.dictionary_set = true;
        }
        let start_in = self.deflater.total_in();
        let mut out = Vec::with_capacity(block.len() / 2 + 64);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let consumed = taken(self.deflater.total_in(), start_in, block.len());
            let before = (self.deflater.total_in(), self.deflater.total_out());
            self.deflater
                .compress_vec(&block[consumed..], &mut out, FlushCompress::Sync)?;
            let consumed = taken(self.deflater.total_in(), start_in, block.len());
            let output_room_left = out.len() < out.capacity();
            if consumed == block.len() && output_room_left {
                return Ok(out.into());
            }
            if before == (self.deflater.total_in(), self.deflater.total_out()) && output_room_left {
                return Err(HeaderError::Stalled);
            }
        }
    }
}
