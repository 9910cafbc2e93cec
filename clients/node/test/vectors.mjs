// Loads the conformance vectors (protocol/vectors/*.json) and converts between their `meaning`
// objects and this client's messages (protocol/vectors/README.md describes the format).

import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { wire } from "@omsd/client";

export const REPO = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
export const VECTORS_DIR = process.env.OMSD_VECTORS_DIR ?? join(REPO, "protocol", "vectors");

function load(name) {
  return JSON.parse(readFileSync(join(VECTORS_DIR, name), "utf8"));
}

/** [label, vector] for every valid vector. */
export function validVectors() {
  const files = readdirSync(VECTORS_DIR)
    .filter((f) => f.endsWith(".json") && f !== "malformed.json")
    .sort();
  if (files.length === 0) {
    throw new Error(`no vectors in ${VECTORS_DIR}`);
  }
  return files.flatMap((f) => load(f).vectors.map((v) => [`${f.replace(/\.json$/, "")}: ${v.name}`, v]));
}

export function malformed() {
  return load("malformed.json");
}

// meaning -> message ---------------------------------------------------------------------------

const opt = (v) => (v === null ? null : Number(v));
const skuFrom = (m) => ("code" in m ? m.code : m.id);
const allocationsFrom = (items) =>
  items.map((a) => ({ sku: a.sku, warehouse: a.warehouse, qty: a.qty, skuId: a.sku_id, warehouseId: a.warehouse_id }));

const reserveFrom = (m) => ({
  ttlMs: m.ttl_ms,
  customer: m.customer,
  channel: m.channel,
  campaign: m.campaign,
  idempotencyKey: m.idempotency_key,
  lines: m.lines.map((l) => ({ sku: skuFrom(l.sku), qty: l.qty })),
});

const reservedFrom = (m) => ({
  id: m.id,
  expiresAtMs: Number(m.expires_at_ms),
  promiseMs: opt(m.promise_ms),
  replayed: m.replayed,
  allocations: allocationsFrom(m.allocations),
});

const errorFrom = (m) => ({
  code: m.code,
  name: m.name,
  message: m.message,
  available: opt(m.available),
  skuId: m.sku_id,
  sku: m.sku,
  warehouse: m.warehouse,
});

/** The payload this client writes for a vector's meaning. */
export function encodePayload(layout, m) {
  switch (layout) {
    case "hello":
      return wire.encodeHello({ magic: m.magic, version: m.version, features: m.features, apiKey: m.api_key, client: m.client });
    case "hello_ok":
      return wire.encodeHelloOk({
        version: m.version,
        role: m.role,
        partitions: m.partitions,
        maxFrameBytes: m.max_frame_bytes,
        maxLines: m.max_lines,
        maxInFlight: m.max_in_flight,
        maxBatch: m.max_batch,
        features: m.features,
        server: m.server,
      });
    case "empty":
      return Buffer.alloc(0);
    case "reserve":
      return wire.encodeReserve(reserveFrom(m));
    case "reserve_batch":
      return wire.encodeReserveBatch(m.reservations.map(reserveFrom));
    case "reservation_id":
      return wire.encodeReservationId(m.id);
    case "stock_query":
      return wire.encodeStockQuery(skuFrom(m.sku));
    case "reserved":
      return wire.encodeReserved(reservedFrom(m));
    case "batch_result":
      return wire.encodeBatchResult(
        m.items.map((i) => ("reserved" in i ? { reserved: reservedFrom(i.reserved) } : { refused: errorFrom(i.refused) })),
      );
    case "error":
      return wire.encodeError(errorFrom(m));
    case "stock":
      return wire.encodeStock({
        sku: m.sku,
        skuId: m.sku_id,
        onHand: Number(m.on_hand),
        reserved: Number(m.reserved),
        pooled: Number(m.pooled),
        unavailable: Number(m.unavailable),
        available: Number(m.available),
        incoming: Number(m.incoming),
        kit: m.kit.map((c) => ({ sku: c.sku, skuId: c.sku_id, qty: c.qty })),
        warehouses: m.warehouses.map((w) => ({
          warehouse: w.warehouse,
          warehouseId: w.warehouse_id,
          onHand: Number(w.on_hand),
          reserved: Number(w.reserved),
          pooled: Number(w.pooled),
          safety: Number(w.safety),
          damaged: Number(w.damaged),
          qualityControl: Number(w.quality_control),
          available: Number(w.available),
        })),
      });
    case "reservation":
      return wire.encodeReservation({
        id: m.id,
        customer: m.customer,
        createdAtMs: Number(m.created_at_ms),
        expiresAtMs: Number(m.expires_at_ms),
        promiseMs: opt(m.promise_ms),
        campaign: m.campaign,
        presaleOutstanding: m.presale_outstanding,
        channel: m.channel,
        status: m.status,
        allocations: allocationsFrom(m.allocations),
        parts: m.parts.map((p) => ({ partition: p.partition, status: p.status, allocations: allocationsFrom(p.allocations) })),
      });
    case "subscribe":
      return wire.encodeSubscribe({ fromLsn: BigInt(m.from_lsn), partition: m.partition, bootstrap: m.bootstrap });
    case "replica_ack":
      return wire.encodeReplicaAck({ partition: m.partition, durableLsn: BigInt(m.durable_lsn) });
    case "log_records":
      return wire.encodeLogRecords({
        partition: m.partition,
        durableLsn: BigInt(m.durable_lsn),
        records: m.records.map((r) => ({ lsn: BigInt(r.lsn), recordType: r.record_type, payload: Buffer.from(r.payload, "hex") })),
      });
    case "snapshot_chunk":
      return wire.encodeSnapshotChunk({
        partition: m.partition,
        lsn: BigInt(m.lsn),
        offset: BigInt(m.offset),
        total: BigInt(m.total),
        data: Buffer.from(m.data, "hex"),
      });
    case "json":
      return wire.encodeJson(m.body);
    default:
      throw new Error(`unknown layout ${layout}`);
  }
}

// message -> meaning ---------------------------------------------------------------------------

const s = (v) => (v === null ? null : String(v));
const skuMeaning = (sku) => (typeof sku === "string" ? { code: sku } : { id: sku });
const allocationsMeaning = (items) =>
  items.map((a) => ({ sku_id: a.skuId, warehouse_id: a.warehouseId, qty: a.qty, sku: a.sku, warehouse: a.warehouse }));

const reserveMeaning = (r) => ({
  ttl_ms: String(r.ttlMs),
  customer: String(r.customer),
  channel: r.channel,
  campaign: r.campaign,
  idempotency_key: r.idempotencyKey,
  lines: r.lines.map((l) => ({ qty: l.qty, sku: skuMeaning(l.sku) })),
});

const reservedMeaning = (r) => ({
  id: r.id,
  expires_at_ms: String(r.expiresAtMs),
  promise_ms: s(r.promiseMs),
  replayed: r.replayed,
  allocations: allocationsMeaning(r.allocations),
});

const errorMeaning = (e) => ({
  code: e.code,
  name: e.name,
  message: e.message,
  available: s(e.available),
  sku_id: e.skuId,
  sku: e.sku,
  warehouse: e.warehouse,
});

/** A decoded message written the way the vectors write meanings. */
export function meaningOf(layout, m) {
  switch (layout) {
    case "hello":
      return { magic: m.magic, version: m.version, features: m.features, api_key: m.apiKey, client: m.client };
    case "hello_ok":
      return {
        version: m.version,
        role: m.role,
        partitions: m.partitions,
        max_frame_bytes: m.maxFrameBytes,
        max_lines: m.maxLines,
        max_in_flight: m.maxInFlight,
        max_batch: m.maxBatch,
        features: m.features,
        server: m.server,
      };
    case "empty":
      if (m !== null) throw new Error("empty layout decoded to a value");
      return {};
    case "reserve":
      return reserveMeaning(m);
    case "reserve_batch":
      return { reservations: m.map(reserveMeaning) };
    case "reservation_id":
      return { id: m };
    case "stock_query":
      return { sku: skuMeaning(m) };
    case "reserved":
      return reservedMeaning(m);
    case "batch_result":
      return {
        items: m.map((i) => ("reserved" in i ? { reserved: reservedMeaning(i.reserved) } : { refused: errorMeaning(i.refused) })),
      };
    case "error":
      return errorMeaning(m);
    case "stock":
      return {
        sku_id: m.skuId,
        on_hand: String(m.onHand),
        reserved: String(m.reserved),
        pooled: String(m.pooled),
        unavailable: String(m.unavailable),
        available: String(m.available),
        incoming: String(m.incoming),
        sku: m.sku,
        kit: m.kit.map((c) => ({ qty: c.qty, sku_id: c.skuId, sku: c.sku })),
        warehouses: m.warehouses.map((w) => ({
          warehouse_id: w.warehouseId,
          on_hand: String(w.onHand),
          reserved: String(w.reserved),
          pooled: String(w.pooled),
          safety: String(w.safety),
          damaged: String(w.damaged),
          quality_control: String(w.qualityControl),
          available: String(w.available),
          warehouse: w.warehouse,
        })),
      };
    case "reservation":
      return {
        id: m.id,
        customer: m.customer,
        created_at_ms: String(m.createdAtMs),
        expires_at_ms: String(m.expiresAtMs),
        promise_ms: s(m.promiseMs),
        campaign: m.campaign,
        presale_outstanding: m.presaleOutstanding,
        channel: m.channel,
        status: m.status,
        allocations: allocationsMeaning(m.allocations),
        parts: m.parts.map((p) => ({ partition: p.partition, status: p.status, allocations: allocationsMeaning(p.allocations) })),
      };
    case "subscribe":
      return { from_lsn: String(m.fromLsn), partition: m.partition, bootstrap: m.bootstrap };
    case "replica_ack":
      return { partition: m.partition, durable_lsn: String(m.durableLsn) };
    case "log_records":
      return {
        partition: m.partition,
        durable_lsn: String(m.durableLsn),
        records: m.records.map((r) => ({ lsn: String(r.lsn), record_type: r.recordType, payload: r.payload.toString("hex") })),
      };
    case "snapshot_chunk":
      return {
        partition: m.partition,
        lsn: String(m.lsn),
        offset: String(m.offset),
        total: String(m.total),
        data: m.data.toString("hex"),
      };
    case "json":
      return { body: m };
    default:
      throw new Error(`unknown layout ${layout}`);
  }
}
