//! Arbitrary bytes as a SPDY connection's inbound stream: the frame parser and the header
//! decoder must never panic, a parsed frame must re-encode to bytes that parse back equal, and
//! a decoded header block must survive an encode/decode round trip.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use vk::spdy::{
    frame::Frame,
    headers::{HeaderDecoder, HeaderEncoder},
};

fuzz_target!(|data: &[u8]| {
    // As a connection reads them: frames back to back, header blocks through one zlib context.
    let mut decoder = HeaderDecoder::new();
    let mut rest = data;
    while let Ok(Some((frame, used))) = Frame::parse(rest) {
        assert!(
            used > 0 && used <= rest.len(),
            "parse claimed {used} of {} bytes",
            rest.len()
        );
        rest = &rest[used..];

        let mut wire = BytesMut::new();
        frame.encode(&mut wire).expect("a parsed frame re-encodes");
        let reparsed = Frame::parse(&wire).expect("a re-encoded frame parses");
        assert_eq!(reparsed, Some((frame.clone(), wire.len())));

        if let Frame::SynStream { header_block, .. }
        | Frame::SynReply { header_block, .. }
        | Frame::Headers { header_block, .. } = &frame
        {
            // A decoding error ends a real connection; here, keep going with a fresh context.
            match decoder.decode(header_block) {
                Ok(headers) => {
                    let block = HeaderEncoder::new()
                        .encode(&headers)
                        .expect("headers encode");
                    let decoded = HeaderDecoder::new()
                        .decode(&block)
                        .expect("own block decodes");
                    assert_eq!(decoded, headers);
                }
                Err(_) => decoder = HeaderDecoder::new(),
            }
        }
    }
    // Most inputs are no frame at all: the whole input as a header block, too.
    let _ = HeaderDecoder::new().decode(data);
});
