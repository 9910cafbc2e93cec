// Reservations per second from one Node process through @omsd/client (pipelined).
//
// Starts its own `omsd --fsync off` (OMSD_BIN, else cargo build), defines a SKU per cart line
// with a large stock, then `--concurrency` async loops reserve on ONE client for `--seconds`,
// and prints reservations/s, latency percentiles and the process's CPU time per reservation.
//
//   node bench/reserve-pipelined.mjs --seconds 10 --lines 1 [--json]

import { parseArgs } from "node:util";

import { Client } from "@omsd/client";
import { Omsd } from "../test/omsd.mjs";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    lines: { type: "string", default: "1" },
    concurrency: { type: "string", default: "256" },
    json: { type: "boolean", default: false },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);

const server = await Omsd.start(["--fsync", "off"]);
try {
  const client = new Client(server.address, { timeoutMs: 60_000 });
  await client.callJson("define_warehouse", { id: 1, code: "SH", region: "east", priority: 0 });
  const cart = [];
  for (let i = 0; i < Number(values.lines); i++) {
    const code = `BENCH-${i}`;
    await client.callJson("define_sku", { code, low_stock_threshold: 0 });
    await client.callJson("stock_op", { op: "set_on_hand", sku: code, warehouse: "SH", on_hand: 1_000_000_000 });
    cart.push({ sku: code, qty: 1 });
  }
  const latencies = [];
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const t = performance.now();
        if (t >= deadline) return;
        await client.reserve(cart, { ttlMs: 3_600_000 });
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStarted);
  await client.close();
  latencies.sort((a, b) => a - b);
  const pct = (p) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] * 100) / 100;
  const result = {
    client: "@omsd/client 0.1.0",
    node: process.version,
    lines: cart.length,
    concurrency,
    reservations: latencies.length,
    seconds: Math.round(elapsed * 1000) / 1000,
    per_second: Math.round(latencies.length / elapsed),
    latency_ms_p50: pct(0.5),
    latency_ms_p99: pct(0.99),
    client_cpu_us_per_reservation: Math.round(((cpu.user + cpu.system) / latencies.length) * 10) / 10,
  };
  if (values.json) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    console.log(
      `pipelined (${concurrency} loops, ${cart.length}-line carts): ${result.per_second.toLocaleString("en")} reservations/s ` +
        `(p50 ${result.latency_ms_p50} ms, p99 ${result.latency_ms_p99} ms; client CPU ${result.client_cpu_us_per_reservation} us per reservation)`,
    );
  }
} finally {
  await server.close();
}
