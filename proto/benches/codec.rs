//! Encode and decode a 3-line reserve (the checkout hot path) with oms-proto.
//! Target (issue 13): <= 100 ns each. Results go to docs/BENCHMARKS.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oms_proto::{decode_request, peek_frame, Limits, Line, Lines, Request, Reserve, SkuRef};

fn reserve_lines() -> [Line<'static>; 3] {
    [
        Line { qty: 2, sku: SkuRef::Code("TSHIRT-RED-XL") },
        Line { qty: 1, sku: SkuRef::Code("MUG-WHT") },
        Line { qty: 3, sku: SkuRef::Code("SOCKS-3P") },
    ]
}

fn reserve<'a>(lines: &'a [Line<'static>]) -> Request<'a> {
    Request::Reserve(Reserve {
        ttl_ms: 900_000,
        customer: 42,
        channel: 0,
        campaign: None,
        idempotency_key: "order-2024-000123",
        lines: Lines::Slice(lines),
    })
}

fn codec(c: &mut Criterion) {
    let lines = reserve_lines();
    let request = reserve(&lines);
    let mut frame = Vec::new();
    request.encode(7, &mut frame).expect("encodes");
    let limits = Limits::default();

    let mut group = c.benchmark_group("proto");
    group.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(256);
    group.bench_function("encode_reserve_3_lines", |b| {
        b.iter(|| {
            out.clear();
            black_box(&request).encode(black_box(7), &mut out).expect("encodes");
            black_box(out.len())
        })
    });
    group.bench_function("decode_reserve_3_lines", |b| {
        b.iter(|| {
            let bytes = black_box(frame.as_slice());
            let span = peek_frame(bytes, limits.max_frame_bytes).expect("frame").expect("whole");
            let Ok(Request::Reserve(reserve)) = decode_request(&span.header, span.payload(bytes), &limits) else {
                panic!("not a reserve")
            };
            // Touch every line, as the server does when it builds the engine command.
            let mut units = 0u64;
            for line in reserve.lines.iter() {
                units += u64::from(line.qty);
                if let SkuRef::Code(code) = line.sku {
                    units += code.len() as u64;
                }
            }
            black_box(units)
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
