//! The conformance vectors of `protocol/vectors/` against the real omsd over TCP: every malformed
//! frame gets exactly the error its vector names and closes the connection exactly when the
//! vector says so, and every valid request vector is understood (answered with its request id
//! and opcode, never `bad_request`). The byte-for-byte codec checks are `proto/tests/vectors.rs`;
//! this is the server's half of "the server's tests run them".

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use oms_proto::{decode_response, peek_frame, ErrorCode, FrameHeader, Hello, Opcode, Request, Response};
use oms_tests::Omsd;
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(10);

fn vectors(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/vectors").join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("vector file")).expect("vector JSON")
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    stream
}

/// One response frame: its header and decoded payload (`None` on EOF or timeout).
fn read_frame(stream: &mut TcpStream) -> Option<(FrameHeader, Response)> {
    let mut frame = vec![0u8; 4];
    stream.read_exact(&mut frame).ok()?;
    let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert!((12..=64 << 20).contains(&len), "implausible response length {len}");
    frame.resize(4 + len, 0);
    stream.read_exact(&mut frame[4..]).ok()?;
    let span = peek_frame(&frame, 64 << 20).expect("valid frame").expect("whole frame");
    let response = decode_response(&span.header, span.payload(&frame)).expect("the server's answer decodes");
    Some((span.header, response))
}

fn handshake(stream: &mut TcpStream) {
    let mut hello = Vec::new();
    Request::Hello(Hello::new("", "vectors")).encode(0, &mut hello).expect("hello");
    stream.write_all(&hello).expect("send hello");
    match read_frame(stream) {
        Some((_, Response::HelloOk(info))) => assert_eq!(info.version, 2),
        other => panic!("handshake failed: {other:?}"),
    }
}

/// True if the server closes the connection within the timeout.
fn closed(stream: &mut TcpStream) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    let mut sink = [0u8; 1024];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(_) => return true,
        }
    }
    false
}

/// The connection still answers: a ping gets its empty answer.
fn still_open(stream: &mut TcpStream) -> bool {
    let mut ping = Vec::new();
    Request::Ping.encode(0xFEED, &mut ping).expect("ping");
    if stream.write_all(&ping).is_err() {
        return false;
    }
    matches!(read_frame(stream), Some((h, Response::Done)) if h.request_id == 0xFEED)
}

#[test]
fn malformed_vectors_get_their_error_and_close_as_documented() {
    // Checks each frame of malformed.json against the real server: the answer carries the
    // vector's error code (request id 0 and opcode 0 for framing errors, the request's id
    // otherwise), and the connection closes for framing and handshake refusals and stays usable
    // (a ping is answered) for payload refusals.
    let omsd = Omsd::start(&[]);
    let doc = vectors("malformed.json");
    let vectors = doc["vectors"].as_array().expect("vectors");
    assert!(vectors.len() >= 20, "only {} malformed vectors", vectors.len());
    for v in vectors {
        let name = v["name"].as_str().expect("name");
        let frame = unhex(v["frame"].as_str().expect("frame"));
        let expected = ErrorCode(v["error"]["code"].as_u64().expect("code") as u16);
        let closes = v["closes"].as_bool().expect("closes");
        let stage = v["stage"].as_str().expect("stage");
        let mut stream = connect(omsd.addr());
        if stage == "payload" {
            handshake(&mut stream);
        }
        stream.write_all(&frame).expect("send the malformed frame");
        let (header, response) =
            read_frame(&mut stream).unwrap_or_else(|| panic!("{name}: no answer; stderr:\n{}", omsd.stderr()));
        let Response::Error(error) = response else { panic!("{name}: answered {response:?}") };
        assert_eq!(error.code, expected, "{name}: {}", error.message);
        assert_eq!(Some(&*error.name), expected.name(), "{name}");
        assert!(header.is_error(), "{name}: an error answer has the ERROR flag");
        if stage == "frame" {
            assert_eq!((header.opcode, header.request_id), (0, 0), "{name}: framing errors are connection-level");
        } else {
            let sent = peek_frame(&frame, u32::MAX).expect("frame").expect("whole").header;
            assert_eq!((header.opcode, header.request_id), (sent.opcode, sent.request_id), "{name}: echoed");
        }
        if closes {
            assert!(closed(&mut stream), "{name}: the connection must close");
        } else {
            assert!(still_open(&mut stream), "{name}: the connection must stay usable");
        }
    }
}

#[test]
fn every_request_vector_is_understood_by_the_server() {
    // Checks each valid request vector (except hello, subscribe and replica_ack, which belong to
    // other stages of a connection) against a demo server: exactly one answer with the request's
    // id and opcode, a success layout for that opcode or an error body, and never bad_request or
    // unknown_opcode (the server decodes every documented layout).
    let omsd = Omsd::start(&["--demo"]);
    let mut stream = connect(omsd.addr());
    handshake(&mut stream);
    let mut checked = 0;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("vectors dir").map(|e| e.expect("entry").path()).collect();
    files.sort();
    for path in files {
        let file = path.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
        if !file.ends_with(".json") || file == "malformed.json" {
            continue;
        }
        for v in vectors(&file)["vectors"].as_array().expect("vectors") {
            let opcode = v["opcode"].as_u64().expect("opcode") as u16;
            let skip = [Opcode::Hello, Opcode::Subscribe, Opcode::ReplicaAck].map(|o| o as u16);
            if v["direction"] != "request" || skip.contains(&opcode) {
                continue;
            }
            let name = v["name"].as_str().expect("name");
            let frame = unhex(v["frame"].as_str().expect("frame"));
            let request_id = peek_frame(&frame, u32::MAX).expect("frame").expect("whole").header.request_id;
            stream.write_all(&frame).expect("send");
            let (header, response) =
                read_frame(&mut stream).unwrap_or_else(|| panic!("{name}: no answer; stderr:\n{}", omsd.stderr()));
            assert_eq!((header.opcode, header.request_id), (opcode, request_id), "{name}: answer header");
            if let Response::Error(e) = &response {
                // Promote on a primary is refused as a bad request by design, not for its layout.
                let promote_on_primary = opcode == Opcode::Promote as u16 && e.message.contains("not a follower");
                // So is naming a shop on a server without `[[shops]]` (this one has none).
                let no_shops = e.message.contains("no [[shops]] configured");
                assert!(
                    promote_on_primary
                        || no_shops
                        || (e.code != ErrorCode::BAD_REQUEST && e.code != ErrorCode::UNKNOWN_OPCODE),
                    "{name}: the server did not understand a valid vector: {e}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} request vectors checked");
}
