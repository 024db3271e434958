use super::*;

#[test]
fn sizes_are_decoded_across_reads() {
    let mut buffer = br#"{"Width":80,"Height":24}
{"Width":100,"Hei"#
        .to_vec();
    assert_eq!(
        decode_sizes(&mut buffer),
        [TerminalSize {
            width: 80,
            height: 24
        }]
    );
    buffer.extend_from_slice(br#"ght":40}"#);
    assert_eq!(
        decode_sizes(&mut buffer),
        [TerminalSize {
            width: 100,
            height: 40
        }]
    );
    assert!(buffer.is_empty());
}

#[test]
fn garbage_is_dropped() {
    let mut buffer = b"not json".to_vec();
    assert!(decode_sizes(&mut buffer).is_empty());
    assert!(buffer.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_cross_both_ways() {
    let (client, server) = tokio::io::duplex(64);
    let (server_read, server_write) = tokio::io::split(server);
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let mut pumps = Pumps::default();
    let source = source(server_read, &mut pumps);
    let sink = sink(server_write, &mut pumps);
    client_write.write_all(b"hello").await.unwrap();
    client_write.shutdown().await.unwrap();
    let echoed = tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        loop {
            let chunk = source.read().into_vec();
            if chunk.is_empty() {
                break;
            }
            sink.write(abi_stable::std_types::RSlice::from_slice(&chunk))
                .unwrap();
            all.extend(chunk);
        }
        all
    })
    .await
    .unwrap();
    assert_eq!(echoed, b"hello");
    pumps.finish().await;
    let mut received = Vec::new();
    client_read.read_to_end(&mut received).await.unwrap();
    assert_eq!(
        received, b"hello",
        "the sink flushed and shut its stream down"
    );
}
