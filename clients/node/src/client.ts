// The omsd client for Node: a Promise API over one pipelined connection.
//
// Every call writes its frame at once (frames queued in the same tick leave in one write) and
// waits for its own answer, matched by request id, so any number of concurrent calls share one
// connection. At most `maxInFlight` (the server's HelloOk) are outstanding; more wait their turn.
//
// Connection loss rejects the calls in flight with ConnectionLost (maybeApplied: true), except
// calls that cannot apply twice (reads, pings, reserves with an idempotency key), which are sent
// once more on a new connection; calls not yet written are always moved to the new connection.
// The next call reconnects (unless `reconnect: false`). The socket does not keep the process
// alive while no call is in flight, so a script that forgets close() still exits.

import * as net from "node:net";
import * as tls from "node:tls";

import { ConnectionLost, OmsdError, ProtocolError, RequestTimeout } from "./errors.js";
import { errorFromBody } from "./refusal.js";
import { FrameTooLarge, OPCODES } from "./tables.js";
import * as wire from "./wire.js";
import type { HelloOk, Reservation, Reserved, SkuRef, Stock, U64Like } from "./wire.js";

export const CLIENT_NAME = "omsd-node/0.1.0";
/** What a reservation holds unless told otherwise: 15 minutes, a usual checkout window. */
export const DEFAULT_TTL_MS = 15 * 60 * 1000;
const DEFAULT_PORT = 7700;

export interface ClientOptions {
  /** Sent in the handshake; none when the server needs no key (loopback without configured keys). */
  apiKey?: string | null;
  /** TLS: true trusts Node's default roots; or node:tls options, e.g. `{ ca: readFileSync("ca.pem") }`. */
  tls?: boolean | tls.ConnectionOptions;
  /** The name the certificate must carry, when it is not the address's host. */
  serverName?: string;
  /** Bound on each call in ms (default 30000); null for none. */
  timeoutMs?: number | null;
  /** Bound on connecting plus the handshake in ms (default 5000). */
  connectTimeoutMs?: number;
  /** Reconnect on the next call after the connection dropped (default true). */
  reconnect?: boolean;
  /** Shows up in the server's log. */
  clientName?: string;
}

export type Channel = "own" | "taobao" | "jd" | "douyin" | number;

export interface ReserveOptions {
  /** How long the hold lasts unless confirmed, in ms (default 15 minutes). */
  ttlMs?: number;
  /** E.g. the shop's order number: a retry with the same key answers the first reservation again. */
  idempotencyKey?: string;
  /** The shop's customer number (per-customer campaign limits). */
  customer?: U64Like;
  /** "own" (default), "taobao", "jd", "douyin" or a configured number. */
  channel?: Channel;
  /** A flash-sale or presale id. */
  campaign?: number;
}

export interface CartLine {
  sku: SkuRef;
  qty: number;
}

/** One cart of reserveBatch. */
export interface Cart extends ReserveOptions {
  lines: CartLine[];
}

/** A reservation id: decimal digits (as returned by reserve), a bigint, or a safe integer. */
export type ReservationId = U64Like;

interface Call<T> {
  opcode: number;
  payload: Buffer;
  decode: (payload: Buffer) => T;
  /** Re-sending after a lost connection cannot apply it twice. */
  retrySafe: boolean;
}

type Answer = [flags: number, payload: Buffer];

interface Pending {
  opcode: number;
  resolve: (answer: Answer) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** Splits `host:port`, `[v6]:port` or a bare host (port 7700). */
export function parseAddress(address: string): [string, number] {
  if (typeof address !== "string" || address === "") {
    throw new TypeError(`an omsd address is "host:port", not ${JSON.stringify(address)}`);
  }
  let host = address;
  let port = "";
  if (address.startsWith("[")) {
    const close = address.indexOf("]");
    if (close < 0) {
      throw new TypeError(`unclosed "[" in address ${address}`);
    }
    host = address.slice(1, close);
    port = address.slice(close + 1).replace(/^:/, "");
  } else if (address.split(":").length === 2) {
    [host, port] = address.split(":") as [string, string];
  }
  if (port === "") {
    return [host, DEFAULT_PORT];
  }
  const n = Number(port);
  if (!/^[0-9]+$/.test(port) || n < 1 || n > 65535) {
    throw new TypeError(`bad port in address ${address}`);
  }
  return [host, n];
}

function channelNumber(channel: Channel | undefined): number {
  if (channel === undefined) {
    return 0;
  }
  if (typeof channel === "number") {
    return channel;
  }
  const n = wire.CHANNELS[channel];
  if (n === undefined) {
    throw new TypeError(`unknown channel ${JSON.stringify(channel)}: one of ${Object.keys(wire.CHANNELS).join(", ")} or a number`);
  }
  return n;
}

function reserveRequest(lines: CartLine[], options: ReserveOptions = {}): wire.ReserveRequest {
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`ttlMs must be a positive integer, not ${ttlMs}`);
  }
  return {
    ttlMs,
    lines,
    customer: options.customer ?? 0,
    channel: channelNumber(options.channel),
    campaign: options.campaign ?? null,
    idempotencyKey: options.idempotencyKey ?? "",
  };
}

function empty(payload: Buffer): void {
  wire.decodeEmpty(payload);
}

function readError(payload: Buffer): OmsdError {
  try {
    return errorFromBody(wire.decodeError(payload));
  } catch (e) {
    return new ProtocolError(`unreadable error body: ${(e as Error).message}`);
  }
}

function readAnswer<T>(call: Call<T>, flags: number, payload: Buffer): T {
  if (flags & wire.FLAG_ERROR) {
    throw readError(payload);
  }
  try {
    return call.decode(payload);
  } catch (e) {
    const name = OPCODES.get(call.opcode)?.[0] ?? `opcode ${call.opcode}`;
    throw new ProtocolError(`unreadable ${name} answer: ${(e as Error).message}`);
  }
}

const READ_ONLY_JSON = new Set(["lookup_skus", "export_stock", "get_campaign", "audit", "order_get", "order_list", "wave_get", "waybill"]);

/** One TCP or TLS connection: writes frames, matches answers to waiting calls. */
class Connection {
  readonly pending = new Map<number, Pending>();
  /** Calls waiting for an in-flight slot; each sends its frame when started. */
  readonly waiting: Array<() => void> = [];
  lost: OmsdError | null = null;
  info: HelloOk | null = null;
  private nextId = 1;
  private out: Buffer[] = [];
  private flushScheduled = false;
  private writable = true;
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  private needBytes = 4;
  private referenced = true;

  constructor(
    readonly socket: net.Socket,
    readonly address: string,
  ) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (e: Error) => this.fail(new ConnectionLost(`connection to omsd at ${address} lost: ${e.message}`, true)));
    socket.on("close", () => this.fail(new ConnectionLost(`connection to omsd at ${address} lost: closed by the server`, true)));
    socket.on("drain", () => {
      this.writable = true;
      this.flush();
    });
  }

  /** Sends a request (at once, or when an in-flight slot frees) and resolves with its answer. */
  request(opcode: number, payload: Buffer, timeoutMs: number | null, requestId?: number): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const start = () => {
        if (this.lost !== null) {
          reject(new ConnectionLost(this.lost.message, false));
          return;
        }
        const id = requestId ?? this.nextId++;
        const entry: Pending = { opcode, resolve, reject, timer: undefined };
        if (timeoutMs !== null) {
          entry.timer = setTimeout(() => {
            if (this.pending.get(id) === entry) {
              this.pending.delete(id);
              reject(
                new RequestTimeout(
                  `no answer from omsd at ${this.address} within ${timeoutMs} ms; the request may or may not have been applied`,
                ),
              );
              this.startWaiting();
            }
          }, timeoutMs);
        }
        this.pending.set(id, entry);
        if (!this.referenced) {
          this.socket.ref();
          this.referenced = true;
        }
        this.write(wire.encodeFrame(opcode, id, payload));
      };
      const limit = this.info?.maxInFlight ?? 1;
      if (this.pending.size < limit && this.waiting.length === 0) {
        start();
      } else {
        this.waiting.push(start);
      }
    });
  }

  private write(frame: Buffer): void {
    this.out.push(frame);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (!this.writable || this.out.length === 0 || this.lost !== null) {
      return;
    }
    const out = this.out;
    this.out = [];
    this.writable = this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.chunkBytes += chunk.length;
    if (this.chunkBytes < this.needBytes) {
      return;
    }
    // Join the chunks once a whole frame is there (never per chunk: a large answer arrives in many).
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.chunkBytes);
    let pos = 0;
    const end = buf.length;
    while (end - pos >= 4) {
      const length = buf.readUInt32LE(pos);
      if (length < wire.HEADER_AFTER_LEN || length + 4 > wire.MAX_RESPONSE_FRAME_BYTES) {
        this.fail(new ConnectionLost(`unreadable frame from omsd at ${this.address}: length ${length}`, true));
        return;
      }
      if (end - pos < length + 4) {
        break;
      }
      const opcode = buf.readUInt16LE(pos + 4);
      const flags = buf.readUInt16LE(pos + 6);
      const id = buf.readUInt32LE(pos + 8) + buf.readUInt32LE(pos + 12) * 0x1_0000_0000;
      this.dispatch(opcode, flags, id, buf.subarray(pos + wire.HEADER_BYTES, pos + 4 + length));
      if (this.lost !== null) {
        return;
      }
      pos += 4 + length;
    }
    const rest = end - pos;
    this.chunks = rest > 0 ? [buf.subarray(pos)] : [];
    this.chunkBytes = rest;
    this.needBytes = rest >= 4 ? buf.readUInt32LE(pos) + 4 : 4;
    if (this.pending.size === 0 && this.waiting.length === 0 && this.referenced) {
      this.socket.unref();
      this.referenced = false;
    }
  }

  private dispatch(opcode: number, flags: number, id: number, payload: Buffer): void {
    const entry = this.pending.get(id);
    if (entry !== undefined && entry.opcode === opcode) {
      this.pending.delete(id);
      if (entry.timer !== undefined) {
        clearTimeout(entry.timer);
      }
      entry.resolve([flags, payload]);
      this.startWaiting();
    } else if (opcode === 0 && id === 0 && flags & wire.FLAG_ERROR) {
      // A connection-level error: the server closes the connection after it.
      this.fail(readError(payload));
    }
    // Otherwise the late answer of a call that timed out: dropped.
  }

  private startWaiting(): void {
    const limit = this.info?.maxInFlight ?? 1;
    while (this.waiting.length > 0 && this.pending.size < limit) {
      this.waiting.shift()!();
    }
  }

  fail(error: OmsdError): void {
    if (this.lost !== null) {
      return;
    }
    this.lost = error;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const entry of pending) {
      if (entry.timer !== undefined) {
        clearTimeout(entry.timer);
      }
      entry.reject(error);
    }
    // Calls that never left: rejected as not applied, so the client moves them to a new connection.
    const waiting = this.waiting.splice(0);
    for (const start of waiting) {
      start();
    }
    this.socket.destroy();
  }
}

/**
 * An omsd client.
 *
 * ```
 * const client = new Client("127.0.0.1:7700", { apiKey: process.env.OMSD_API_KEY });
 * const held = await client.reserve([{ sku: "MUG-WHT", qty: 1 }], { idempotencyKey: "order-1001" });
 * await client.confirm(held.id);
 * await client.close();
 * ```
 * It connects on the first call (or `await client.connect()` to fail early on a wrong address or key).
 */
export class Client {
  /** The server's HelloOk of the current connection: role, limits, server version. */
  serverInfo: HelloOk | null = null;
  private readonly host: string;
  private readonly port: number;
  private readonly options: ClientOptions;
  private conn: Connection | null = null;
  private connecting: Promise<Connection> | null = null;
  private closed = false;
  private everConnected = false;

  constructor(
    readonly address: string = "127.0.0.1:7700",
    options: ClientOptions = {},
  ) {
    [this.host, this.port] = parseAddress(address);
    this.options = options;
  }

  /** Connects now (the calls connect by themselves); resolves with the server's HelloOk. */
  async connect(): Promise<HelloOk> {
    const conn = await this.connection();
    return conn.info!;
  }

  /** Closes the connection; calls in flight reject with ConnectionLost. */
  async close(): Promise<void> {
    this.closed = true;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) {
      conn.fail(new ConnectionLost("the client is closed", true));
    }
  }

  private connection(): Promise<Connection> {
    const conn = this.conn;
    if (conn !== null && conn.lost === null) {
      return Promise.resolve(conn);
    }
    if (this.closed) {
      return Promise.reject(new ConnectionLost("the client is closed"));
    }
    if (this.everConnected && this.options.reconnect === false) {
      return Promise.reject(new ConnectionLost("the connection was lost and reconnect is off"));
    }
    // One attempt at a time: concurrent callers wait for the same one.
    if (this.connecting === null) {
      this.connecting = this.open().then(
        (opened) => {
          this.connecting = null;
          if (this.closed) {
            // close() was called while connecting: do not keep the new connection.
            opened.fail(new ConnectionLost("the client is closed"));
            throw new ConnectionLost("the client is closed");
          }
          this.conn = opened;
          this.everConnected = true;
          return opened;
        },
        (error: unknown) => {
          this.connecting = null;
          throw error;
        },
      );
    }
    return this.connecting;
  }

  private open(): Promise<Connection> {
    const where = `omsd at ${this.address}`;
    const connectTimeoutMs = this.options.connectTimeoutMs ?? 5000;
    return new Promise<Connection>((resolve, reject) => {
      let socket: net.Socket;
      const useTls = this.options.tls !== undefined && this.options.tls !== false;
      if (useTls) {
        const extra = this.options.tls === true ? {} : (this.options.tls as tls.ConnectionOptions);
        const serverName = this.options.serverName ?? (net.isIP(this.host) === 0 ? this.host : undefined);
        socket = tls.connect({ ...extra, host: this.host, port: this.port, servername: serverName });
      } else {
        socket = net.connect({ host: this.host, port: this.port });
      }
      let settled = false;
      const timer = setTimeout(() => {
        finish(new ConnectionLost(`cannot connect to ${where}: timed out after ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      const finish = (error: Error | null, conn?: Connection) => {
        if (settled) {
          return;
        }
        settled = true;
        clearTimeout(timer);
        socket.removeListener("error", onEarlyError);
        if (error !== null) {
          socket.destroy();
          reject(error);
        } else {
          resolve(conn!);
        }
      };
      const onEarlyError = (e: Error) => finish(new ConnectionLost(`cannot connect to ${where}: ${e.message}`));
      socket.once("error", onEarlyError);
      socket.once(useTls ? "secureConnect" : "connect", () => {
        const conn = new Connection(socket, this.address);
        const hello = wire.encodeHello({ apiKey: this.options.apiKey ?? "", client: this.options.clientName ?? CLIENT_NAME });
        conn.request(wire.Op.HELLO, hello, null, 0).then(
          ([flags, payload]) => {
            if (flags & wire.FLAG_ERROR) {
              finish(readError(payload));
              return;
            }
            try {
              conn.info = wire.decodeHelloOk(payload);
            } catch (e) {
              finish(new ProtocolError(`unreadable HelloOk: ${(e as Error).message}`));
              return;
            }
            this.serverInfo = conn.info;
            finish(null, conn);
          },
          (e: Error) => finish(new ConnectionLost(`handshake with ${where} failed: ${e.message}`)),
        );
      });
    });
  }

  private async run<T>(call: Call<T>): Promise<T> {
    let firstLoss: ConnectionLost | null = null;
    for (let attempt = 1; ; attempt++) {
      const current = this.conn;
      let conn: Connection;
      if (current !== null && current.lost === null) {
        conn = current;
      } else if (firstLoss === null) {
        conn = await this.connection();
      } else {
        // Re-sending after a loss: if no new connection opens, report the first loss (the
        // call may have been applied), not the failure to reconnect.
        try {
          conn = await this.connection();
        } catch {
          throw firstLoss;
        }
      }
      const maxFrameBytes = conn.info!.maxFrameBytes;
      if (wire.HEADER_BYTES + call.payload.length > maxFrameBytes) {
        throw new FrameTooLarge(
          `request frame of ${wire.HEADER_BYTES + call.payload.length} bytes exceeds the server's max_frame_bytes ${maxFrameBytes}; not sent`,
        );
      }
      let answer: Answer;
      try {
        answer = await conn.request(call.opcode, call.payload, this.options.timeoutMs === undefined ? 30000 : this.options.timeoutMs);
      } catch (e) {
        const again = e instanceof ConnectionLost && attempt === 1 && !this.closed && this.options.reconnect !== false;
        if (again && (call.retrySafe || !e.maybeApplied)) {
          firstLoss = e.maybeApplied ? e : null;
          continue;
        }
        throw e;
      }
      return readAnswer(call, answer[0], answer[1]);
    }
  }

  /** A round trip to the server; resolves with its duration in ms. */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.run({ opcode: wire.Op.PING, payload: Buffer.alloc(0), decode: empty, retrySafe: true });
    return performance.now() - started;
  }

  /**
   * Holds stock for a checkout: every line or nothing. Rejects with InsufficientStock (with
   * `available`), SoldOut, LimitExceeded, UnknownSku, IdempotencyKeyReused (the key was used for
   * another cart), ...
   */
  async reserve(lines: CartLine[], options: ReserveOptions = {}): Promise<Reserved> {
    const payload = wire.encodeReserve(reserveRequest(lines, options));
    return this.run({ opcode: wire.Op.RESERVE, payload, decode: wire.decodeReserved, retrySafe: Boolean(options.idempotencyKey) });
  }

  /** Many independent carts in one request: each item is a Reserved or the refusal (an OmsdError, not thrown). */
  async reserveBatch(carts: Cart[]): Promise<Array<Reserved | OmsdError>> {
    const requests = carts.map((cart) => reserveRequest(cart.lines, cart));
    const decode = (payload: Buffer) =>
      wire.decodeBatchResult(payload).map((item) => ("reserved" in item ? item.reserved : errorFromBody(item.refused)));
    const retrySafe = requests.every((r) => r.idempotencyKey !== "");
    return this.run({ opcode: wire.Op.RESERVE_BATCH, payload: wire.encodeReserveBatch(requests), decode, retrySafe });
  }

  private async byReservation(opcode: number, id: ReservationId): Promise<void> {
    return this.run({ opcode, payload: wire.encodeReservationId(id), decode: empty, retrySafe: false });
  }

  /** The customer paid: the hold no longer expires. */
  confirm(id: ReservationId): Promise<void> {
    return this.byReservation(wire.Op.CONFIRM, id);
  }

  /** Gives the units back (cancelled, payment failed). */
  release(id: ReservationId): Promise<void> {
    return this.byReservation(wire.Op.RELEASE, id);
  }

  /** A presale's balance was paid. */
  payBalance(id: ReservationId): Promise<void> {
    return this.byReservation(wire.Op.PAY_BALANCE, id);
  }

  /** The units left the warehouse (needs an ops key). */
  ship(id: ReservationId): Promise<void> {
    return this.byReservation(wire.Op.SHIP, id);
  }

  /** A reservation's status ("held", "confirmed", ...) and allocations. */
  async getReservation(id: ReservationId): Promise<Reservation> {
    const payload = wire.encodeReservationId(id);
    return this.run({ opcode: wire.Op.GET_RESERVATION, payload, decode: wire.decodeReservation, retrySafe: true });
  }

  /** One SKU's stock (by code or id): totals and per warehouse. */
  async stock(sku: SkuRef): Promise<Stock> {
    return this.run({ opcode: wire.Op.GET_STOCK, payload: wire.encodeStockQuery(sku), decode: wire.decodeStock, retrySafe: true });
  }

  /** The id of each SKU code, null when unknown. */
  async lookupSkus(codes: string[]): Promise<Array<number | null>> {
    const answer = (await this.callJson("lookup_skus", { codes })) as { ids: Array<number | null> };
    return answer.ids;
  }

  /** Every SKU's availability: `[{ sku: id, code, available }]`. */
  exportStock(): Promise<Array<{ sku: number; code: string; available: number }>> {
    return this.callJson("export_stock") as Promise<Array<{ sku: number; code: string; available: number }>>;
  }

  getCampaign(id: number): Promise<Record<string, unknown>> {
    return this.callJson("get_campaign", { id }) as Promise<Record<string, unknown>>;
  }

  /**
   * Any JSON-bodied operation of PROTOCOL.md section 7 by name, e.g. `callJson("order_get", { id })`.
   * Integers above 2^53 in the answer are bigints.
   */
  async callJson(operation: string | number, body: unknown = {}): Promise<unknown> {
    const opcode = typeof operation === "number" ? operation : wire.opcodeOf(operation);
    const entry = opcode === undefined ? undefined : OPCODES.get(opcode);
    if (opcode === undefined || entry === undefined) {
      throw new TypeError(`unknown operation ${String(operation)}`);
    }
    if (entry[1] !== "json") {
      throw new TypeError(`${entry[0]} is not a JSON-bodied operation: use its own method`);
    }
    return this.run({ opcode, payload: wire.encodeJson(body), decode: wire.decodeJson, retrySafe: READ_ONLY_JSON.has(entry[0]) });
  }
}
