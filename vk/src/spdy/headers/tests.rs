use super::*;

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs.iter().copied().collect()
}

/// The uncompressed form of a block, for feeding the decoder what no encoder would produce.
fn raw_block(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut block = Vec::new();
    block.put_u32(pairs.len() as u32);
    for (name, value) in pairs {
        block.put_u32(name.len() as u32);
        block.put_slice(name);
        block.put_u32(value.len() as u32);
        block.put_slice(value);
    }
    block
}

fn decode_raw(block: &[u8]) -> Result<Headers, HeaderError> {
    let compressed = HeaderEncoder::new().compress(block).unwrap();
    HeaderDecoder::new().decode(&compressed)
}

#[test]
fn dictionary_is_the_spdy3_one() {
    assert_eq!(DICTIONARY.len(), 1423);
    let adler = Compress::new(Compression::best(), true)
        .set_dictionary(&DICTIONARY)
        .unwrap();
    assert_eq!(adler, DICTIONARY_ADLER);
}

/// Blocks from C zlib (level 9, SPDY/3 dictionary) for `{streamtype: error}` then
/// `{streamtype: stdout}` on one connection: what a Go client's first two SYN_STREAMs carry.
#[test]
fn decodes_what_zlib_writes_across_blocks() {
    let first: &[u8] = &[
        0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xa6, 0x23, 0x46, 0x70, 0x3a, 0x2b, 0x29, 0x4a,
        0x4d, 0xcc, 0x85, 0x16, 0x25, 0xac, 0xa9, 0xa0, 0x80, 0x06, 0x00, 0x00, 0x00, 0xff, 0xff,
    ];
    let second: &[u8] = &[
        0xc2, 0x2a, 0x05, 0x4c, 0xcc, 0x29, 0xf9, 0xa5, 0x25, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    ];
    let mut decoder = HeaderDecoder::new();
    assert_eq!(
        decoder.decode(first).unwrap(),
        headers(&[("streamtype", "error")])
    );
    assert_eq!(
        decoder.decode(second).unwrap(),
        headers(&[("streamtype", "stdout")])
    );
    // The second block only makes sense after the first: the context persists.
    assert!(HeaderDecoder::new().decode(second).is_err());
}

#[test]
fn blocks_round_trip_through_one_context_per_direction() {
    let blocks = [
        headers(&[("streamtype", "error")]),
        headers(&[("streamtype", "stdin")]),
        headers(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
        Headers::new(),
        headers(&[
            ("multi", "a"),
            ("multi", ""),
            ("multi", "c"),
            ("other", "x"),
        ]),
        headers(&[("big", &"v".repeat(10_000))]),
        headers(&[("streamtype", "error")]),
    ];
    let mut encoder = HeaderEncoder::new();
    let mut decoder = HeaderDecoder::new();
    for (index, block) in blocks.iter().enumerate() {
        let compressed = encoder.encode(block).unwrap();
        if index == 0 {
            // Like Go's: a zlib header naming the dictionary by its Adler-32.
            assert_eq!(&compressed[..6], b"\x78\xf9\xe3\xc6\xa7\xc2");
        }
        assert!(
            compressed.ends_with(b"\x00\x00\xff\xff"),
            "every block ends with a sync flush"
        );
        assert_eq!(&decoder.decode(&compressed).unwrap(), block);
    }
}

#[test]
fn values_of_one_name_share_one_pair() {
    let block = headers(&[("a", "1"), ("b", "2"), ("a", "3")])
        .to_block()
        .unwrap();
    assert_eq!(block, raw_block(&[(b"a", b"1\x003"), (b"b", b"2")]));
    let decoded = Headers::from_block(&block).unwrap();
    assert_eq!(decoded.get_all("a").collect::<Vec<_>>(), ["1", "3"]);
    assert_eq!(decoded.len(), 3);
}

#[test]
fn lookups_ignore_case_and_names_are_stored_lower_case() {
    let mut headers = Headers::new();
    assert!(headers.is_empty());
    headers.append("StreamType", "stdout");
    assert_eq!(headers.get("streamtype"), Some("stdout"));
    assert_eq!(headers.get("STREAMTYPE"), Some("stdout"));
    assert_eq!(headers.get("port"), None);
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [("streamtype", "stdout")]
    );
}

#[test]
fn malformed_blocks_are_rejected() {
    assert!(matches!(
        decode_raw(&raw_block(&[(b"StreamType", b"error")])),
        Err(HeaderError::NotLowerCase(name)) if name == "StreamType"
    ));
    assert!(matches!(
        decode_raw(&raw_block(&[(b"port", b"1"), (b"port", b"2")])),
        Err(HeaderError::Duplicate(name)) if name == "port"
    ));
    assert!(matches!(
        decode_raw(&raw_block(&[(b"a", b"\xff")])),
        Err(HeaderError::NotUtf8)
    ));
    let mut truncated = raw_block(&[(b"streamtype", b"error")]);
    truncated.truncate(truncated.len() - 1);
    assert!(matches!(
        decode_raw(&truncated),
        Err(HeaderError::Truncated)
    ));
    assert!(matches!(decode_raw(&[0, 0]), Err(HeaderError::Truncated)));
    // A count larger than the pairs present.
    assert!(matches!(
        decode_raw(&[0xff, 0xff, 0xff, 0xff]),
        Err(HeaderError::Truncated)
    ));
    let mut trailing = raw_block(&[(b"a", b"b")]);
    trailing.push(0);
    assert!(matches!(
        decode_raw(&trailing),
        Err(HeaderError::TrailingBytes(1))
    ));
}

#[test]
fn decompressed_size_is_bounded() {
    let value = vec![b'x'; MAX_DECOMPRESSED_LEN];
    let bomb = HeaderEncoder::new()
        .compress(&raw_block(&[(b"a", &value)]))
        .unwrap();
    assert!(bomb.len() < 1024, "compresses well: {} bytes", bomb.len());
    assert!(matches!(
        HeaderDecoder::new().decode(&bomb),
        Err(HeaderError::TooLarge)
    ));
    // Just under the bound passes.
    let value = vec![b'x'; MAX_DECOMPRESSED_LEN - 13];
    let fits = HeaderEncoder::new()
        .compress(&raw_block(&[(b"a", &value)]))
        .unwrap();
    assert_eq!(
        HeaderDecoder::new()
            .decode(&fits)
            .unwrap()
            .get("a")
            .map(str::len),
        Some(value.len())
    );
}

#[test]
fn corrupt_or_foreign_zlib_is_rejected() {
    assert!(matches!(
        HeaderDecoder::new().decode(b"not zlib at all"),
        Err(HeaderError::Corrupt(_))
    ));
    let mut foreign = Compress::new(Compression::best(), true);
    let adler = foreign.set_dictionary(b"another dictionary").unwrap();
    let mut block = Vec::with_capacity(256);
    foreign
        .compress_vec(&raw_block(&[]), &mut block, FlushCompress::Sync)
        .unwrap();
    assert!(matches!(
        HeaderDecoder::new().decode(&block),
        Err(HeaderError::WrongDictionary(named)) if named == adler
    ));
    // A finished zlib stream followed by more bytes.
    let mut finished = Compress::new(Compression::best(), true);
    let mut block = Vec::with_capacity(256);
    finished
        .compress_vec(&raw_block(&[]), &mut block, FlushCompress::Finish)
        .unwrap();
    block.extend_from_slice(b"extra");
    assert!(matches!(
        HeaderDecoder::new().decode(&block),
        Err(HeaderError::AfterStreamEnd(5))
    ));
}

#[test]
fn an_empty_compressed_block_is_truncated() {
    // No zlib bytes at all decode to nothing, which lacks even the pair count.
    assert!(matches!(
        HeaderDecoder::new().decode(b""),
        Err(HeaderError::Truncated)
    ));
}
