//! Open-loop latency accounting against a synthetic slow responder.

use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use oms_loadtest::workload::Scenario;
use oms_loadtest::Args;
use oms_proto::json::{JsonRequest, LookupAnswer};
use oms_proto::{decode_request, peek_frame, ErrorCode, Limits, Request, Response, Role, ServerInfo, WireError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A fake omsd: answers Hello and LookupSkus, refuses every Reserve as sold out, and stalls once
/// for `stall` at `stall_at` after its first reserve.
async fn fake_server(listener: TcpListener, stall_at: Duration, stall: Duration) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { return };
        tokio::spawn(async move {
            let limits = Limits::default();
            let (mut rbuf, mut wbuf) = (BytesMut::new(), BytesMut::new());
            let mut first: Option<Instant> = None;
            let mut stalled = false;
            loop {
                if sock.read_buf(&mut rbuf).await.unwrap_or(0) == 0 {
                    return;
                }
                while let Ok(Some(span)) = peek_frame(&rbuf, limits.max_frame_bytes) {
                    let h = span.header;
                    let Ok(request) = decode_request(&h, span.payload(&rbuf), &limits) else { return };
                    let response = match request {
                        Request::Hello(_) => Response::HelloOk(ServerInfo {
                            version: 2,
                            role: Role::Ops,
                            partitions: 1,
                            max_frame_bytes: 1 << 20,
                            max_lines: 64,
                            max_in_flight: 4096,
                            max_batch: 1024,
                            features: 0,
                            server: "fake".into(),
                        }),
                        Request::Json { opcode, body } => match JsonRequest::parse(opcode, body) {
                            Ok(JsonRequest::LookupSkus(lookup)) => Response::Json(
                                serde_json::to_string(&LookupAnswer {
                                    ids: (0..lookup.codes.len() as u32).map(Some).collect(),
                                })
                                .expect("json"),
                            ),
                            _ => Response::Json("{}".into()),
                        },
                        Request::Reserve(_) => {
                            let t0 = *first.get_or_insert_with(Instant::now);
                            if !stalled && t0.elapsed() >= stall_at {
                                stalled = true;
                                tokio::time::sleep(stall).await;
                            }
                            let mut e = WireError::new(ErrorCode::SOLD_OUT, "sold out");
                            e.available = Some(0);
                            Response::Error(e)
                        }
                        _ => Response::Done,
                    };
                    response.encode(h.opcode, h.request_id, &mut wbuf).expect("encode");
                    rbuf.advance(span.total);
                }
                if sock.write_all(&wbuf).await.is_err() {
                    return;
                }
                wbuf.clear();
            }
        });
    }
}

// Checks: in open loop, latency is counted from each request's intended send time, so a 500 ms
// server stall is charged to every request scheduled during it (p99 near the stall, not near the
// round trip), while the schedule still issues the full rate x duration of requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_charges_stalls_from_intended_send_time() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(fake_server(listener, Duration::from_millis(700), Duration::from_millis(500)));

    let mut args = Args::for_scenario(Scenario::FlashSale, &format!("omsd://{addr}"));
    args.connections = 1;
    args.pipeline = 1; // one in flight: requests scheduled during the stall cannot even be sent
    args.rate = Some(1_000.0);
    args.duration = Duration::from_secs(2);
    args.warmup = Duration::ZERO;
    args.no_setup = true;
    args.no_audit = true;
    let report = oms_loadtest::run(&args).await.expect("run");

    assert!(report.requests >= 1_900, "the schedule must issue ~2000 requests, got {}", report.requests);
    assert_eq!(report.rejected.get("sold_out").copied().unwrap_or(0), report.requests);
    assert!(report.p50_us < 50_000, "p50 {} us should be a normal round trip", report.p50_us);
    assert!(report.p99_us >= 300_000, "p99 {} us must include the time spent waiting behind the stall", report.p99_us);
    assert!(report.max_us >= 450_000 && report.max_us < 2_000_000, "max {} us", report.max_us);
}
