// The omsd wire protocol, version 2: frames and every binary layout, both directions.
//
// docs/PROTOCOL.md is the contract; section numbers below refer to it. No I/O here: messages to
// bytes and bytes to messages, refusing malformed input with a WireFormatError that carries the
// error code a server answers it with. The client encodes requests and decodes responses; the
// other directions exist so the conformance vectors (protocol/vectors/) are checked both ways.
//
// Integers are little-endian without padding; `str` is u16 length + UTF-8; arrays are a u16
// count + items; opt_u32 / opt_u64 are a presence byte and a value that is zero when absent.
//
// 64-bit values: identifiers (reservation ids, customer numbers) are decimal strings, because
// they exceed 2^53; times in ms and quantities are numbers (a value above 2^53 is refused rather
// than rounded); log positions (LSNs) are bigints.

import { parse as parseLosslessJson, stringify as stringifyLosslessJson } from "lossless-json";
import { OPCODES, ROLES, STATUSES } from "./tables.js";

export const MAGIC = "OMS2";
export const VERSION = 2;
/** Bytes of the frame header: u32 len, u16 opcode, u16 flags, u64 request_id. */
export const HEADER_BYTES = 16;
/** `len` counts the header after itself. */
export const HEADER_AFTER_LEN = 12;
/** Response flag: the payload is an error body. */
export const FLAG_ERROR = 0x0001;
export const DEFAULT_MAX_FRAME_BYTES = 1 << 20;
/** Responses (exports, audits, order lists) may exceed max_frame_bytes; clients accept this much. */
export const MAX_RESPONSE_FRAME_BYTES = 64 << 20;
export const DEFAULT_MAX_LINES = 64;
export const DEFAULT_MAX_BATCH = 1024;
export const CODE_MAX_BYTES = 64;
export const IDEMPOTENCY_KEY_MAX_BYTES = 128;
export const HELLO_STRING_MAX_BYTES = 256;
const STR_MAX_BYTES = 0xffff;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Opcodes of the binary layouts (section 4); JSON ones are looked up by name in OPCODES. */
export const Op = {
  HELLO: 1,
  PING: 2,
  RESERVE: 10,
  RESERVE_BATCH: 11,
  CONFIRM: 12,
  RELEASE: 13,
  PAY_BALANCE: 14,
  SHIP: 15,
  GET_STOCK: 20,
  GET_RESERVATION: 21,
  SUBSCRIBE: 40,
  REPLICA_ACK: 42,
} as const;

/** Sales channels by name (section 5.2); other numbers are configured per server. */
export const CHANNELS: Readonly<Record<string, number>> = { own: 0, taobao: 1, jd: 2, douyin: 3 };

const OPCODE_NUMBERS = new Map([...OPCODES].map(([number, [name]]) => [name, number]));
const ROLE_TAGS = new Map([...ROLES].map(([tag, name]) => [name, tag]));
const STATUS_NUMBERS = new Map([...STATUSES].map(([number, name]) => [name, number]));

/** The opcode of an operation name ("order_get" -> 51), if it exists. */
export function opcodeOf(name: string): number | undefined {
  return OPCODE_NUMBERS.get(name);
}

// Wire error codes the decoders refuse with (section 6).
export const BAD_FRAME = 1;
export const UNSUPPORTED_VERSION = 2;
export const FRAME_TOO_LARGE = 6;
export const BAD_REQUEST = 11;
export const UNKNOWN_OPCODE = 12;
export const BATCH_TOO_LARGE = 15;
export const TOO_MANY_LINES = 106;
export const INVALID_CODE = 128;
const CODE_NAMES: Record<number, string> = {
  1: "bad_frame",
  2: "unsupported_version",
  6: "frame_too_large",
  11: "bad_request",
  12: "unknown_opcode",
  15: "batch_too_large",
  106: "too_many_lines",
  128: "invalid_code",
};

/** Bytes that do not follow the protocol; `code`/`codeName` is the error a server answers with. */
export class WireFormatError extends Error {
  readonly code: number;
  readonly codeName: string;

  constructor(code: number, message: string) {
    super(message);
    this.name = "WireFormatError";
    this.code = code;
    this.codeName = CODE_NAMES[code] ?? String(code);
  }
}

function badRequest(message: string): WireFormatError {
  return new WireFormatError(BAD_REQUEST, message);
}

// Messages ------------------------------------------------------------------------------------

/** A SKU by code (string, 1..=64 bytes of UTF-8) or by the server's id (number). */
export type SkuRef = string | number;
/** A 64-bit unsigned value as given by a caller: a safe integer, a bigint or decimal digits. */
export type U64Like = number | bigint | string;

export interface Hello {
  apiKey: string;
  client: string;
  version?: number;
  features?: number;
  /** 4 ASCII characters, "OMS2" */
  magic?: string;
}

export interface HelloOk {
  version: number;
  role: string;
  partitions: number;
  maxFrameBytes: number;
  maxLines: number;
  maxInFlight: number;
  maxBatch: number;
  features: number;
  server: string;
}

export interface ReserveLine {
  sku: SkuRef;
  qty: number;
}

/** Section 5.2 as it travels. */
export interface ReserveRequest {
  ttlMs: U64Like;
  lines: ReserveLine[];
  customer?: U64Like;
  channel?: number;
  campaign?: number | null;
  idempotencyKey?: string;
}

/** Units of one SKU held in one warehouse. */
export interface Allocation {
  sku: string;
  warehouse: string;
  qty: number;
  skuId: number;
  warehouseId: number;
}

/** Section 5.2: a reservation made (or, with `replayed`, made earlier with the same key). */
export interface Reserved {
  /** The reservation id, a 64-bit number as decimal digits. */
  id: string;
  expiresAtMs: number;
  promiseMs: number | null;
  replayed: boolean;
  allocations: Allocation[];
}

/** Section 6: a refusal as it travels (the client rejects with an OmsdError subclass). */
export interface ErrorBody {
  code: number;
  name: string;
  message: string;
  available: number | null;
  skuId: number | null;
  sku: string | null;
  warehouse: string | null;
}

export type BatchItem = { reserved: Reserved } | { refused: ErrorBody };

export interface KitComponent {
  sku: string;
  skuId: number;
  qty: number;
}

export interface WarehouseStock {
  warehouse: string;
  warehouseId: number;
  onHand: number;
  reserved: number;
  pooled: number;
  safety: number;
  damaged: number;
  qualityControl: number;
  available: number;
}

/** Section 5.5: one SKU's stock over every warehouse, and per warehouse. */
export interface Stock {
  sku: string;
  skuId: number;
  onHand: number;
  reserved: number;
  pooled: number;
  unavailable: number;
  available: number;
  incoming: number;
  kit: KitComponent[];
  warehouses: WarehouseStock[];
}

export interface ReservationPart {
  partition: number;
  status: string;
  allocations: Allocation[];
}

/** Section 5.6: a reservation's state; `status` is the name ("held", "confirmed", ...). */
export interface Reservation {
  id: string;
  customer: string;
  createdAtMs: number;
  expiresAtMs: number;
  promiseMs: number | null;
  campaign: number | null;
  presaleOutstanding: number;
  channel: number;
  status: string;
  allocations: Allocation[];
  parts: ReservationPart[];
}

export interface Subscribe {
  fromLsn: bigint;
  partition: number | null;
  bootstrap: boolean;
}

export interface ReplicaAck {
  partition: number;
  durableLsn: bigint;
}

export interface LogRecord {
  lsn: bigint;
  recordType: number;
  payload: Buffer;
}

export interface LogRecords {
  kind: "log_records";
  partition: number;
  durableLsn: bigint;
  records: LogRecord[];
}

export interface SnapshotChunk {
  kind: "snapshot_chunk";
  partition: number;
  lsn: bigint;
  offset: bigint;
  total: bigint;
  data: Buffer;
}

// Writing -------------------------------------------------------------------------------------

function checkUint(value: number, max: number, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${what} must be an integer, not ${String(value)}`);
  }
  if (value < 0 || value > max) {
    throw new RangeError(`${what} ${value} is out of range 0..=${max}`);
  }
  return value;
}

/** A caller's 64-bit value as a bigint, checked. */
export function toU64(value: U64Like, what: string): bigint {
  let big: bigint;
  if (typeof value === "bigint") {
    big = value;
  } else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new TypeError(`${what} must be a safe integer (use a bigint or a string above 2^53), not ${value}`);
    }
    big = BigInt(value);
  } else if (typeof value === "string" && /^[0-9]{1,20}$/.test(value)) {
    big = BigInt(value);
  } else {
    throw new TypeError(`${what} must be a number, bigint or decimal string, not ${String(value)}`);
  }
  if (big < 0n || big > U64_MAX) {
    throw new RangeError(`${what} ${big} is out of range 0..=2^64-1`);
  }
  return big;
}

/** A growing buffer; `frame()` reserves the 16-byte header so the payload is never copied. */
export class Writer {
  buf: Buffer;
  pos: number;

  constructor(capacity = 256, reserveHeader = false) {
    this.buf = Buffer.allocUnsafe(capacity);
    this.pos = reserveHeader ? HEADER_BYTES : 0;
  }

  private room(n: number): void {
    if (this.pos + n > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
      this.buf.copy(bigger, 0, 0, this.pos);
      this.buf = bigger;
    }
  }

  u8(value: number, what = "u8"): void {
    this.room(1);
    this.buf[this.pos++] = checkUint(value, 0xff, what);
  }

  u16(value: number, what = "u16"): void {
    this.room(2);
    this.pos = this.buf.writeUInt16LE(checkUint(value, 0xffff, what), this.pos);
  }

  u32(value: number, what = "u32"): void {
    this.room(4);
    this.pos = this.buf.writeUInt32LE(checkUint(value, 0xffff_ffff, what), this.pos);
  }

  u64(value: U64Like, what = "u64"): void {
    this.room(8);
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) {
      this.buf.writeUInt32LE(value % 0x1_0000_0000, this.pos);
      this.buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), this.pos + 4);
      this.pos += 8;
    } else {
      this.pos = this.buf.writeBigUInt64LE(toU64(value, what), this.pos);
    }
  }

  bool(value: boolean): void {
    this.u8(value ? 1 : 0);
  }

  optU32(value: number | null | undefined, what: string): void {
    if (value === null || value === undefined) {
      this.u8(0);
      this.u32(0);
    } else {
      this.u8(1);
      this.u32(value, what);
    }
  }

  optU64(value: U64Like | null | undefined, what: string): void {
    if (value === null || value === undefined) {
      this.u8(0);
      this.u64(0);
    } else {
      this.u8(1);
      this.u64(value, what);
    }
  }

  str(text: string, what: string, maxBytes = STR_MAX_BYTES): void {
    if (typeof text !== "string") {
      throw new TypeError(`${what} must be a string, not ${typeof text}`);
    }
    const n = Buffer.byteLength(text, "utf8");
    if (n > maxBytes) {
      throw new RangeError(`${what} is ${n} bytes of UTF-8; the most is ${maxBytes}`);
    }
    this.room(2 + n);
    this.pos = this.buf.writeUInt16LE(n, this.pos);
    this.pos += this.buf.write(text, this.pos, n, "utf8");
  }

  bytes(data: Uint8Array): void {
    this.room(4 + data.length);
    this.pos = this.buf.writeUInt32LE(data.length, this.pos);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  raw(data: Uint8Array): void {
    this.room(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  count(n: number, what: string): void {
    if (n > 0xffff) {
      throw new RangeError(`${n} ${what} do not fit a u16 count`);
    }
    this.u16(n);
  }

  skuRef(sku: SkuRef): void {
    if (typeof sku === "string") {
      this.u8(0);
      this.str(sku, "SKU code");
    } else if (typeof sku === "number") {
      this.u8(1);
      this.u32(sku, "SKU id");
    } else {
      throw new TypeError(`a SKU is a code (string) or an id (number), not ${typeof sku}`);
    }
  }

  /** The bytes written (a payload, when no header was reserved). */
  payload(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** The whole frame, header filled in (the writer was made with `reserveHeader`). */
  frame(opcode: number, requestId: number | bigint, flags = 0): Buffer {
    writeHeader(this.buf, this.pos - 4, opcode, flags, requestId);
    return this.buf.subarray(0, this.pos);
  }
}

function writeHeader(buf: Buffer, len: number, opcode: number, flags: number, requestId: number | bigint): void {
  buf.writeUInt32LE(len, 0);
  buf.writeUInt16LE(opcode, 4);
  buf.writeUInt16LE(flags, 6);
  if (typeof requestId === "bigint") {
    buf.writeBigUInt64LE(requestId, 8);
  } else {
    buf.writeUInt32LE(requestId % 0x1_0000_0000, 8);
    buf.writeUInt32LE(Math.floor(requestId / 0x1_0000_0000), 12);
  }
}

/** A whole frame: the 16-byte header (section 2) then the payload. */
export function encodeFrame(opcode: number, requestId: number | bigint, payload: Uint8Array, flags = 0): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  writeHeader(frame, HEADER_AFTER_LEN + payload.length, opcode, flags, requestId);
  frame.set(payload, HEADER_BYTES);
  return frame;
}

function build(fill: (w: Writer) => void): Buffer {
  const w = new Writer();
  fill(w);
  return w.payload();
}

export function writeHello(w: Writer, hello: Hello): void {
  const magic = Buffer.from(hello.magic ?? MAGIC, "latin1");
  if (magic.length !== 4) {
    throw new RangeError("the hello magic is 4 bytes");
  }
  w.raw(magic);
  w.u16(hello.version ?? VERSION, "version");
  w.u32(hello.features ?? 0, "features");
  w.str(hello.apiKey, "API key", HELLO_STRING_MAX_BYTES);
  w.str(hello.client, "client name", HELLO_STRING_MAX_BYTES);
}

export function writeReserve(w: Writer, request: ReserveRequest): void {
  w.u64(request.ttlMs, "ttlMs");
  w.u64(request.customer ?? 0, "customer");
  w.u16(request.channel ?? 0, "channel");
  w.optU32(request.campaign, "campaign");
  w.str(request.idempotencyKey ?? "", "idempotency key");
  const lines = request.lines;
  if (!Array.isArray(lines)) {
    throw new TypeError("lines must be an array of { sku, qty }");
  }
  w.count(lines.length, "lines");
  for (const line of lines) {
    w.u32(line.qty, "qty");
    w.skuRef(line.sku);
  }
}

export function writeReserveBatch(w: Writer, carts: ReserveRequest[]): void {
  w.count(carts.length, "reservations");
  for (const cart of carts) {
    writeReserve(w, cart);
  }
}

export function encodeHello(hello: Hello): Buffer {
  return build((w) => writeHello(w, hello));
}

export function encodeReserve(request: ReserveRequest): Buffer {
  return build((w) => writeReserve(w, request));
}

export function encodeReserveBatch(carts: ReserveRequest[]): Buffer {
  return build((w) => writeReserveBatch(w, carts));
}

export function encodeReservationId(id: U64Like): Buffer {
  return build((w) => w.u64(id, "reservation id"));
}

export function encodeStockQuery(sku: SkuRef): Buffer {
  return build((w) => w.skuRef(sku));
}

export function encodeSubscribe(subscribe: Subscribe): Buffer {
  return build((w) => {
    w.u64(subscribe.fromLsn, "fromLsn");
    w.optU32(subscribe.partition, "partition");
    w.bool(subscribe.bootstrap);
  });
}

export function encodeReplicaAck(ack: ReplicaAck): Buffer {
  return build((w) => {
    w.u32(ack.partition, "partition");
    w.u64(ack.durableLsn, "durableLsn");
  });
}

/** A JSON-bodied payload (section 7); bigints are written as plain JSON integers. */
export function encodeJson(body: unknown): Buffer {
  const text = stringifyLosslessJson(body);
  if (text === undefined) {
    throw new TypeError("the JSON body cannot be undefined");
  }
  return Buffer.from(text, "utf8");
}

export function encodeHelloOk(ok: HelloOk): Buffer {
  return build((w) => {
    w.u16(ok.version);
    const role = ROLE_TAGS.get(ok.role);
    if (role === undefined) {
      throw new RangeError(`unknown role ${ok.role}`);
    }
    w.u8(role);
    w.u8(0);
    w.u32(ok.partitions);
    w.u32(ok.maxFrameBytes);
    w.u32(ok.maxLines);
    w.u32(ok.maxInFlight);
    w.u32(ok.maxBatch);
    w.u32(ok.features);
    w.str(ok.server, "server");
  });
}

function writeAllocations(w: Writer, allocations: Allocation[]): void {
  w.count(allocations.length, "allocations");
  for (const a of allocations) {
    w.u32(a.skuId);
    w.u16(a.warehouseId);
    w.u32(a.qty);
    w.str(a.sku, "sku");
    w.str(a.warehouse, "warehouse");
  }
}

function writeReserved(w: Writer, r: Reserved): void {
  w.u64(r.id, "id");
  w.u64(r.expiresAtMs, "expiresAtMs");
  w.optU64(r.promiseMs, "promiseMs");
  w.bool(r.replayed);
  writeAllocations(w, r.allocations);
}

function writeError(w: Writer, e: ErrorBody): void {
  w.u16(e.code);
  w.optU64(e.available, "available");
  w.optU32(e.skuId, "skuId");
  w.str(e.name, "name");
  w.str(e.message, "message");
  w.str(e.sku ?? "", "sku");
  w.str(e.warehouse ?? "", "warehouse");
}

export function encodeReserved(r: Reserved): Buffer {
  return build((w) => writeReserved(w, r));
}

export function encodeError(e: ErrorBody): Buffer {
  return build((w) => writeError(w, e));
}

export function encodeBatchResult(items: BatchItem[]): Buffer {
  return build((w) => {
    w.count(items.length, "items");
    for (const item of items) {
      if ("reserved" in item) {
        w.u8(0);
        writeReserved(w, item.reserved);
      } else {
        w.u8(1);
        writeError(w, item.refused);
      }
    }
  });
}

export function encodeStock(s: Stock): Buffer {
  return build((w) => {
    w.u32(s.skuId);
    for (const v of [s.onHand, s.reserved, s.pooled, s.unavailable, s.available, s.incoming]) {
      w.u64(v);
    }
    w.str(s.sku, "sku");
    w.count(s.kit.length, "kit components");
    for (const c of s.kit) {
      w.u32(c.qty);
      w.u32(c.skuId);
      w.str(c.sku, "sku");
    }
    w.count(s.warehouses.length, "warehouses");
    for (const h of s.warehouses) {
      w.u16(h.warehouseId);
      for (const v of [h.onHand, h.reserved, h.pooled, h.safety, h.damaged, h.qualityControl, h.available]) {
        w.u64(v);
      }
      w.str(h.warehouse, "warehouse");
    }
  });
}

function statusNumber(name: string): number {
  const number = STATUS_NUMBERS.get(name);
  if (number === undefined) {
    throw new RangeError(`unknown reservation status ${name}`);
  }
  return number;
}

export function encodeReservation(r: Reservation): Buffer {
  return build((w) => {
    w.u64(r.id, "id");
    w.u64(r.customer, "customer");
    w.u64(r.createdAtMs);
    w.u64(r.expiresAtMs);
    w.optU64(r.promiseMs, "promiseMs");
    w.optU32(r.campaign, "campaign");
    w.u32(r.presaleOutstanding);
    w.u16(r.channel);
    w.u8(statusNumber(r.status));
    writeAllocations(w, r.allocations);
    w.count(r.parts.length, "parts");
    for (const p of r.parts) {
      w.u32(p.partition);
      w.u8(statusNumber(p.status));
      writeAllocations(w, p.allocations);
    }
  });
}

export function encodeLogRecords(f: Omit<LogRecords, "kind">): Buffer {
  return build((w) => {
    w.u8(1);
    w.u32(f.partition);
    w.u64(f.durableLsn);
    w.u32(f.records.length);
    for (const r of f.records) {
      w.u64(r.lsn);
      w.u8(r.recordType);
      w.bytes(r.payload);
    }
  });
}

export function encodeSnapshotChunk(c: Omit<SnapshotChunk, "kind">): Buffer {
  return build((w) => {
    w.u8(2);
    w.u32(c.partition);
    w.u64(c.lsn);
    w.u64(c.offset);
    w.u64(c.total);
    w.bytes(c.data);
  });
}

// Reading -------------------------------------------------------------------------------------

const utf8 = new TextDecoder("utf-8", { fatal: true });
const TWO_32 = 0x1_0000_0000;

/** Reads one payload front to back; every read checks the bytes are there first. */
export class Reader {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
    readonly end = buf.length,
  ) {}

  private need(n: number, what: string): number {
    const at = this.pos;
    if (at + n > this.end) {
      throw badRequest(`payload ends inside ${what}`);
    }
    this.pos = at + n;
    return at;
  }

  u8(what: string): number {
    return this.buf[this.need(1, what)]!;
  }

  u16(what: string): number {
    return this.buf.readUInt16LE(this.need(2, what));
  }

  u32(what: string): number {
    return this.buf.readUInt32LE(this.need(4, what));
  }

  u64Big(what: string): bigint {
    return this.buf.readBigUInt64LE(this.need(8, what));
  }

  /** A u64 that must fit a JS number exactly (times, quantities). */
  u64Number(what: string): number {
    const at = this.need(8, what);
    const hi = this.buf.readUInt32LE(at + 4);
    if (hi > 0x1fffff) {
      throw badRequest(`${what} exceeds 2^53`);
    }
    return hi * TWO_32 + this.buf.readUInt32LE(at);
  }

  /** A u64 identifier as decimal digits. */
  u64String(what: string): string {
    const at = this.need(8, what);
    const hi = this.buf.readUInt32LE(at + 4);
    if (hi <= 0x1fffff) {
      return String(hi * TWO_32 + this.buf.readUInt32LE(at));
    }
    return this.buf.readBigUInt64LE(at).toString();
  }

  presence(what: string): boolean {
    const present = this.u8(`${what} presence`);
    if (present > 1) {
      throw badRequest(`${what} presence byte is ${present}, not 0 or 1`);
    }
    return present === 1;
  }

  optU32(what: string): number | null {
    const present = this.presence(what);
    const value = this.u32(what);
    if (!present && value !== 0) {
      throw badRequest(`${what} is absent but its value bytes are not zero`);
    }
    return present ? value : null;
  }

  optU64<T>(what: string, read: (r: Reader, what: string) => T): T | null {
    const present = this.presence(what);
    if (!present) {
      const at = this.need(8, what);
      if (this.buf.readUInt32LE(at) !== 0 || this.buf.readUInt32LE(at + 4) !== 0) {
        throw badRequest(`${what} is absent but its value bytes are not zero`);
      }
      return null;
    }
    return read(this, what);
  }

  bool(what: string): boolean {
    const value = this.u8(what);
    if (value > 1) {
      throw badRequest(`${what} is ${value}, not a bool (0 or 1)`);
    }
    return value === 1;
  }

  private utf8(n: number, what: string): string {
    const at = this.need(n, what);
    try {
      return utf8.decode(this.buf.subarray(at, at + n));
    } catch {
      throw badRequest(`${what} is not valid UTF-8`);
    }
  }

  str(what: string, maxBytes = STR_MAX_BYTES): string {
    const n = this.u16(`${what} length`);
    if (n > maxBytes) {
      throw badRequest(`${what} is ${n} bytes; the most is ${maxBytes}`);
    }
    return this.utf8(n, what);
  }

  bytes(what: string): Buffer {
    const n = this.u32(`${what} length`);
    const at = this.need(n, what);
    return Buffer.from(this.buf.subarray(at, at + n));
  }

  skuRef(): SkuRef {
    const kind = this.u8("sku kind");
    if (kind === 0) {
      const n = this.u16("SKU code length");
      if (n === 0 || n > CODE_MAX_BYTES) {
        throw new WireFormatError(INVALID_CODE, `a SKU code is 1..=${CODE_MAX_BYTES} bytes, not ${n}`);
      }
      return this.utf8(n, "SKU code");
    }
    if (kind === 1) {
      return this.u32("SKU id");
    }
    throw badRequest(`sku kind ${kind} is neither 0 (code) nor 1 (id)`);
  }

  done(): void {
    if (this.pos !== this.end) {
      throw badRequest(`${this.end - this.pos} bytes left over after the message`);
    }
  }
}

const readNumber = (r: Reader, what: string): number => r.u64Number(what);

function readWhole<T>(payload: Buffer, read: (r: Reader) => T): T {
  const r = new Reader(payload);
  const value = read(r);
  r.done();
  return value;
}

function statusName(number: number): string {
  // Statuses are only ever added (section 12): a newer server's status still reads.
  return STATUSES.get(number) ?? `status_${number}`;
}

export function decodeHello(payload: Buffer): Hello {
  if (payload.length >= 4 && payload.toString("latin1", 0, 4) !== MAGIC) {
    throw new WireFormatError(BAD_FRAME, `hello magic is ${JSON.stringify(payload.toString("latin1", 0, 4))}, not OMS2`);
  }
  return readWhole(payload, (r) => {
    r.u32("magic");
    const version = r.u16("version");
    if (version !== VERSION) {
      throw new WireFormatError(
        UNSUPPORTED_VERSION,
        `protocol version ${version} is not supported; this client speaks ${VERSION}`,
      );
    }
    const features = r.u32("features");
    const apiKey = r.str("API key", HELLO_STRING_MAX_BYTES);
    const client = r.str("client name", HELLO_STRING_MAX_BYTES);
    return { magic: MAGIC, version, features, apiKey, client };
  });
}

function readReserve(r: Reader, maxLines: number): ReserveRequest & { ttlMs: number; customer: string } {
  const ttlMs = r.u64Number("ttl_ms");
  const customer = r.u64String("customer");
  const channel = r.u16("channel");
  const campaign = r.optU32("campaign");
  const idempotencyKey = r.str("idempotency key", IDEMPOTENCY_KEY_MAX_BYTES);
  const count = r.u16("line count");
  if (count > maxLines) {
    throw new WireFormatError(TOO_MANY_LINES, `${count} lines; the most is ${maxLines}`);
  }
  const lines: ReserveLine[] = [];
  for (let i = 0; i < count; i++) {
    const qty = r.u32("line qty");
    lines.push({ sku: r.skuRef(), qty });
  }
  return { ttlMs, customer, channel, campaign, idempotencyKey, lines };
}

export function decodeReserve(payload: Buffer, maxLines = DEFAULT_MAX_LINES) {
  return readWhole(payload, (r) => readReserve(r, maxLines));
}

export function decodeReserveBatch(payload: Buffer, maxLines = DEFAULT_MAX_LINES, maxBatch = DEFAULT_MAX_BATCH) {
  return readWhole(payload, (r) => {
    const count = r.u16("batch count");
    if (count === 0) {
      throw badRequest("a batch holds at least one reservation");
    }
    if (count > maxBatch) {
      throw new WireFormatError(BATCH_TOO_LARGE, `${count} reservations in a batch; the most is ${maxBatch}`);
    }
    const carts = [];
    for (let i = 0; i < count; i++) {
      carts.push(readReserve(r, maxLines));
    }
    return carts;
  });
}

export function decodeReservationId(payload: Buffer): string {
  return readWhole(payload, (r) => r.u64String("reservation id"));
}

export function decodeStockQuery(payload: Buffer): SkuRef {
  return readWhole(payload, (r) => r.skuRef());
}

export function decodeSubscribe(payload: Buffer): Subscribe {
  return readWhole(payload, (r) => ({
    fromLsn: r.u64Big("from_lsn"),
    partition: r.optU32("partition"),
    bootstrap: r.bool("bootstrap"),
  }));
}

export function decodeReplicaAck(payload: Buffer): ReplicaAck {
  return readWhole(payload, (r) => ({ partition: r.u32("partition"), durableLsn: r.u64Big("durable_lsn") }));
}

export function decodeEmpty(payload: Buffer): null {
  if (payload.length !== 0) {
    throw badRequest(`${payload.length} bytes left over after the message`);
  }
  return null;
}

// JSON numbers: safe integers as numbers, larger integers as bigints (shipment and after-sale
// ids exceed 2^53), anything else as a double.
function parseJsonNumber(text: string): number | bigint {
  if (/^-?[0-9]+$/.test(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : BigInt(text);
  }
  return Number.parseFloat(text);
}

/** A JSON-bodied payload; an empty payload reads as `{}` (section 7). */
export function decodeJson(payload: Buffer): unknown {
  if (payload.length === 0) {
    return {};
  }
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    throw badRequest("the JSON body is not valid UTF-8");
  }
  try {
    return parseLosslessJson(text, null, parseJsonNumber);
  } catch (e) {
    throw badRequest(`the JSON body does not parse: ${(e as Error).message}`);
  }
}

export function decodeHelloOk(payload: Buffer): HelloOk {
  return readWhole(payload, (r) => {
    const version = r.u16("version");
    const role = r.u8("role");
    r.u8("reserved");
    return {
      version,
      role: ROLES.get(role) ?? `role_${role}`,
      partitions: r.u32("partitions"),
      maxFrameBytes: r.u32("max_frame_bytes"),
      maxLines: r.u32("max_lines"),
      maxInFlight: r.u32("max_in_flight"),
      maxBatch: r.u32("max_batch"),
      features: r.u32("features"),
      server: r.str("server"),
    };
  });
}

function readAllocations(r: Reader): Allocation[] {
  const count = r.u16("allocation count");
  const allocations: Allocation[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const skuId = r.u32("allocation sku_id");
    const warehouseId = r.u16("allocation warehouse_id");
    const qty = r.u32("allocation qty");
    const sku = r.str("allocation sku");
    const warehouse = r.str("allocation warehouse");
    allocations[i] = { sku, warehouse, qty, skuId, warehouseId };
  }
  return allocations;
}

function readReserved(r: Reader): Reserved {
  const id = r.u64String("id");
  const expiresAtMs = r.u64Number("expires_at_ms");
  const promiseMs = r.optU64("promise_ms", readNumber);
  const replayed = r.bool("replayed");
  return { id, expiresAtMs, promiseMs, replayed, allocations: readAllocations(r) };
}

export function decodeReserved(payload: Buffer): Reserved {
  return readWhole(payload, readReserved);
}

function readError(r: Reader): ErrorBody {
  const code = r.u16("error code");
  const available = r.optU64("available", readNumber);
  const skuId = r.optU32("sku_id");
  const name = r.str("error name");
  const message = r.str("error message");
  const sku = r.str("error sku");
  const warehouse = r.str("error warehouse");
  return { code, name, message, available, skuId, sku: sku || null, warehouse: warehouse || null };
}

export function decodeError(payload: Buffer): ErrorBody {
  return readWhole(payload, readError);
}

export function decodeBatchResult(payload: Buffer): BatchItem[] {
  return readWhole(payload, (r) => {
    const count = r.u16("batch count");
    const items: BatchItem[] = [];
    for (let i = 0; i < count; i++) {
      const outcome = r.u8("batch outcome");
      if (outcome === 0) {
        items.push({ reserved: readReserved(r) });
      } else if (outcome === 1) {
        items.push({ refused: readError(r) });
      } else {
        throw badRequest(`batch outcome ${outcome} is neither 0 (reserved) nor 1 (refused)`);
      }
    }
    return items;
  });
}

export function decodeStock(payload: Buffer): Stock {
  return readWhole(payload, (r) => {
    const skuId = r.u32("sku_id");
    const onHand = r.u64Number("on_hand");
    const reserved = r.u64Number("reserved");
    const pooled = r.u64Number("pooled");
    const unavailable = r.u64Number("unavailable");
    const available = r.u64Number("available");
    const incoming = r.u64Number("incoming");
    const sku = r.str("sku");
    const kit: KitComponent[] = [];
    for (let i = r.u16("kit count"); i > 0; i--) {
      const qty = r.u32("kit qty");
      const componentId = r.u32("kit sku_id");
      kit.push({ sku: r.str("kit sku"), skuId: componentId, qty });
    }
    const warehouses: WarehouseStock[] = [];
    for (let i = r.u16("warehouse count"); i > 0; i--) {
      const warehouseId = r.u16("warehouse_id");
      const cell = {
        onHand: r.u64Number("on_hand"),
        reserved: r.u64Number("reserved"),
        pooled: r.u64Number("pooled"),
        safety: r.u64Number("safety"),
        damaged: r.u64Number("damaged"),
        qualityControl: r.u64Number("quality_control"),
        available: r.u64Number("available"),
      };
      warehouses.push({ warehouse: r.str("warehouse"), warehouseId, ...cell });
    }
    return { sku, skuId, onHand, reserved, pooled, unavailable, available, incoming, kit, warehouses };
  });
}

export function decodeReservation(payload: Buffer): Reservation {
  return readWhole(payload, (r) => {
    const id = r.u64String("id");
    const customer = r.u64String("customer");
    const createdAtMs = r.u64Number("created_at_ms");
    const expiresAtMs = r.u64Number("expires_at_ms");
    const promiseMs = r.optU64("promise_ms", readNumber);
    const campaign = r.optU32("campaign");
    const presaleOutstanding = r.u32("presale_outstanding");
    const channel = r.u16("channel");
    const status = statusName(r.u8("status"));
    const allocations = readAllocations(r);
    const parts: ReservationPart[] = [];
    for (let i = r.u16("part count"); i > 0; i--) {
      const partition = r.u32("part partition");
      const partStatus = statusName(r.u8("part status"));
      parts.push({ partition, status: partStatus, allocations: readAllocations(r) });
    }
    return {
      id,
      customer,
      createdAtMs,
      expiresAtMs,
      promiseMs,
      campaign,
      presaleOutstanding,
      channel,
      status,
      allocations,
      parts,
    };
  });
}

/** A subscription stream frame (section 8) that is not an error. */
export function decodeStreamFrame(payload: Buffer): LogRecords | SnapshotChunk {
  return readWhole(payload, (r): LogRecords | SnapshotChunk => {
    const kind = r.u8("stream frame kind");
    if (kind === 1) {
      const partition = r.u32("partition");
      const durableLsn = r.u64Big("durable_lsn");
      const count = r.u32("record count");
      const records: LogRecord[] = [];
      for (let i = 0; i < count; i++) {
        // A record is at least 13 bytes: a count the payload cannot hold ends here, not in a long loop.
        if (r.end - r.pos < 13) {
          throw badRequest("payload ends inside a log record");
        }
        const lsn = r.u64Big("record lsn");
        const recordType = r.u8("record type");
        records.push({ lsn, recordType, payload: r.bytes("record payload") });
      }
      return { kind: "log_records", partition, durableLsn, records };
    }
    if (kind === 2) {
      return {
        kind: "snapshot_chunk",
        partition: r.u32("partition"),
        lsn: r.u64Big("lsn"),
        offset: r.u64Big("offset"),
        total: r.u64Big("total"),
        data: r.bytes("snapshot data"),
      };
    }
    throw badRequest(`stream frame kind ${kind} is neither 1 (log_records) nor 2 (snapshot_chunk)`);
  });
}

// Frames --------------------------------------------------------------------------------------

export interface Frame {
  opcode: number;
  flags: number;
  requestId: bigint;
  payload: Buffer;
}

/** Judge a frame from its `len` field alone (section 2), before reading any payload. */
export function checkFrameLength(length: number, maxFrameBytes: number): void {
  if (length < HEADER_AFTER_LEN) {
    throw new WireFormatError(BAD_FRAME, `frame length ${length} is shorter than the 12-byte header`);
  }
  if (length + 4 > maxFrameBytes) {
    throw new WireFormatError(FRAME_TOO_LARGE, `frame of ${length + 4} bytes exceeds the limit of ${maxFrameBytes}`);
  }
}

/** Exactly one whole frame. */
export function splitFrame(data: Buffer, maxFrameBytes = MAX_RESPONSE_FRAME_BYTES): Frame {
  if (data.length < 4) {
    throw new WireFormatError(BAD_FRAME, "a frame starts with 4 length bytes");
  }
  const length = data.readUInt32LE(0);
  checkFrameLength(length, maxFrameBytes);
  if (data.length !== length + 4) {
    throw new WireFormatError(BAD_FRAME, `frame length ${length} but ${data.length - 4} bytes follow it`);
  }
  return {
    opcode: data.readUInt16LE(4),
    flags: data.readUInt16LE(6),
    requestId: data.readBigUInt64LE(8),
    payload: data.subarray(HEADER_BYTES),
  };
}

export interface DecodeLimits {
  maxFrameBytes?: number;
  maxLines?: number;
  maxBatch?: number;
}

/**
 * A request frame as a server reads it after the handshake. Refuses what a server refuses, with
 * its code: the frame length, nonzero flags, an unknown opcode, then the layout and its limits.
 * JSON bodies are checked for UTF-8 and syntax only (each operation's fields are the server's).
 */
export function decodeRequest(frame: Buffer, limits: DecodeLimits = {}): [Frame, unknown] {
  const f = splitFrame(frame, limits.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
  if (f.flags !== 0) {
    throw badRequest(`request flags are ${f.flags}, not 0`);
  }
  const p = f.payload;
  const maxLines = limits.maxLines ?? DEFAULT_MAX_LINES;
  switch (f.opcode) {
    case Op.HELLO:
      return [f, decodeHello(p)];
    case Op.PING:
      return [f, decodeEmpty(p)];
    case Op.RESERVE:
      return [f, decodeReserve(p, maxLines)];
    case Op.RESERVE_BATCH:
      return [f, decodeReserveBatch(p, maxLines, limits.maxBatch ?? DEFAULT_MAX_BATCH)];
    case Op.CONFIRM:
    case Op.RELEASE:
    case Op.PAY_BALANCE:
    case Op.SHIP:
    case Op.GET_RESERVATION:
      return [f, decodeReservationId(p)];
    case Op.GET_STOCK:
      return [f, decodeStockQuery(p)];
    case Op.SUBSCRIBE:
      return [f, decodeSubscribe(p)];
    case Op.REPLICA_ACK:
      return [f, decodeReplicaAck(p)];
  }
  const entry = OPCODES.get(f.opcode);
  if (entry === undefined) {
    throw new WireFormatError(UNKNOWN_OPCODE, `unknown opcode ${f.opcode}`);
  }
  return [f, decodeJson(p)];
}

/** A response frame as a client reads it; an error body when flagged. */
export function decodeResponse(frame: Buffer): [Frame, unknown] {
  const f = splitFrame(frame);
  const p = f.payload;
  if (f.flags & FLAG_ERROR) {
    return [f, decodeError(p)];
  }
  switch (f.opcode) {
    case Op.HELLO:
      return [f, decodeHelloOk(p)];
    case Op.PING:
    case Op.CONFIRM:
    case Op.RELEASE:
    case Op.PAY_BALANCE:
    case Op.SHIP:
      return [f, decodeEmpty(p)];
    case Op.RESERVE:
      return [f, decodeReserved(p)];
    case Op.RESERVE_BATCH:
      return [f, decodeBatchResult(p)];
    case Op.GET_STOCK:
      return [f, decodeStock(p)];
    case Op.GET_RESERVATION:
      return [f, decodeReservation(p)];
    case Op.SUBSCRIBE:
      return [f, decodeStreamFrame(p)];
  }
  const entry = OPCODES.get(f.opcode);
  if (entry === undefined || entry[1] !== "json") {
    throw badRequest(`no response layout for opcode ${f.opcode}`);
  }
  return [f, decodeJson(p)];
}
