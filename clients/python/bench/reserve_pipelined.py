#!/usr/bin/env python3
"""Reservations per second from one Python process through omsd.AsyncClient (pipelined).

Starts its own `omsd --fsync off` (OMSD_BIN, or --omsd PATH) on free loopback ports, or uses a
running server (--address). Defines a SKU per line with a large stock, then runs `--concurrency`
coroutines that each reserve in a loop for `--seconds` on ONE connection (a web app's request
handlers sharing a client), and reports reservations/s with latency percentiles and the client's own CPU time per
reservation. For reference
it also runs the blocking omsd.Client one call at a time for a second.

    python3 bench/reserve_pipelined.py --seconds 10 --lines 1
    python3 bench/reserve_pipelined.py --lines 3 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import omsd  # noqa: E402

STOCK = 1_000_000_000


def setup(address: str, lines: int) -> list:
    with omsd.Client(address) as client:
        client.call_json("define_warehouse", {"id": 1, "code": "SH", "region": "east", "priority": 0})
        codes = [f"BENCH-{i}" for i in range(lines)]
        for code in codes:
            client.call_json("define_sku", {"code": code, "low_stock_threshold": 0})
            client.call_json("stock_op", {"op": "set_on_hand", "sku": code, "warehouse": "SH", "on_hand": STOCK})
        return [(code, 1) for code in codes]


async def pipelined(address: str, cart: list, seconds: float, concurrency: int) -> dict:
    latencies: list = []
    done = 0
    async with omsd.AsyncClient(address, timeout=60) as client:
        await client.ping()
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            clock = time.perf_counter
            while True:
                started = clock()
                if started >= deadline:
                    return
                await client.reserve(cart, ttl=3600)
                latencies.append(clock() - started)
                done += 1

        started = time.perf_counter()
        cpu_started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "reservations": done,
        "seconds": round(elapsed, 3),
        "per_second": round(done / elapsed),
        "latency_ms_p50": round(pct(0.50), 2),
        "latency_ms_p99": round(pct(0.99), 2),
        # the client's own CPU per reservation: what one Python process could do with a core to itself
        "client_cpu_us_per_reservation": round(cpu / done * 1e6, 1),
    }


def blocking(address: str, cart: list, seconds: float) -> dict:
    done = 0
    with omsd.Client(address) as client:
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            client.reserve(cart, ttl=3600)
            done += 1
        elapsed = time.perf_counter() - started
    return {"reservations": done, "seconds": round(elapsed, 3), "per_second": round(done / elapsed)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="a running omsd (its catalog gets BENCH-* SKUs); default: start one")
    parser.add_argument("--omsd", help="omsd binary to start (default: $OMSD_BIN, else cargo build)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--lines", type=int, default=1, help="lines per cart")
    parser.add_argument("--concurrency", type=int, default=256, help="coroutines sharing the connection")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    server = None
    address = args.address
    if address is None:
        from conftest import Omsd, omsd_binary

        binary = Path(args.omsd) if args.omsd else omsd_binary()
        server = Omsd(binary, ["--fsync", "off"])
        address = server.address
    try:
        cart = setup(address, args.lines)
        result = {
            "client": f"omsd-python {omsd.__version__}",
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "lines": args.lines,
            "concurrency": args.concurrency,
            "pipelined": asyncio.run(pipelined(address, cart, args.seconds, args.concurrency)),
            "blocking_one_at_a_time": blocking(address, cart, min(args.seconds, 2.0)),
        }
    finally:
        if server is not None:
            server.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        p = result["pipelined"]
        b = result["blocking_one_at_a_time"]
        print(
            f"pipelined ({args.concurrency} coroutines, {args.lines}-line carts): {p['per_second']:,} reservations/s "
            f"(p50 {p['latency_ms_p50']} ms, p99 {p['latency_ms_p99']} ms, {p['reservations']:,} in {p['seconds']} s; "
            f"client CPU {p['client_cpu_us_per_reservation']} us per reservation)"
        )
        print(f"blocking, one at a time: {b['per_second']:,} reservations/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
