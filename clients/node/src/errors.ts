// The errors the client rejects with.
//
// Every refusal from the server is an OmsdError carrying the wire error body (docs/PROTOCOL.md
// section 6): `code`, `codeName` (the wire name, e.g. "insufficient_stock"), `message` and, when
// the server gave them, `available`, `skuId`, `sku` and `warehouse`. Each code has its own class
// (generated into tables.ts from the document's table), extending ServerError for codes 1..=99
// (conditions of the server) or Refused for 100 and up (this request was refused). A code this
// client does not know yet becomes a plain ServerError or Refused by range (see refusal.ts).
//
// Failures on the client side are ConnectionLost, RequestTimeout and ProtocolError.

/** The facts an error body carries beside its code and message. */
export interface ErrorFacts {
  code?: number | null;
  codeName?: string | null;
  available?: number | null;
  skuId?: number | null;
  sku?: string | null;
  warehouse?: string | null;
}

/** Any error from omsd or from talking to it. */
export class OmsdError extends Error {
  /** The wire code of the class (null for the client-side errors). */
  static readonly CODE: number | null = null;
  /** The wire name of the class. */
  static readonly NAME: string | null = null;

  /** The wire error code (e.g. 108), or null for a client-side error. */
  readonly code: number | null;
  /** The wire error name (e.g. "insufficient_stock"), or null for a client-side error. */
  readonly codeName: string | null;
  /** Units available, when a stock check failed (insufficient_stock, channel_limit, ...). */
  readonly available: number | null;
  readonly skuId: number | null;
  /** The SKU code concerned, if any. */
  readonly sku: string | null;
  /** The warehouse code concerned, if any. */
  readonly warehouse: string | null;

  constructor(message: string, facts: ErrorFacts = {}) {
    super(message);
    const cls = new.target as unknown as typeof OmsdError;
    this.name = cls.name;
    this.code = facts.code ?? cls.CODE;
    this.codeName = facts.codeName ?? cls.NAME;
    this.available = facts.available ?? null;
    this.skuId = facts.skuId ?? null;
    this.sku = facts.sku ?? null;
    this.warehouse = facts.warehouse ?? null;
  }
}

/** A condition of the server (codes 1..=99): busy, shutting down, bad request, ... */
export class ServerError extends OmsdError {}

/** The server refused this request (codes 100 and up): insufficient stock, sold out, ... */
export class Refused extends OmsdError {}

/**
 * The connection dropped, or could not be opened. `maybeApplied` is true when the request had
 * been sent and no answer came: the server may or may not have applied it. Retry a reserve only
 * with the same idempotency key (it then answers the first reservation instead of holding twice).
 */
export class ConnectionLost extends OmsdError {
  readonly maybeApplied: boolean;

  constructor(message: string, maybeApplied = false) {
    super(message);
    this.maybeApplied = maybeApplied;
  }
}

/** No answer within the client's timeout; the request may or may not have been applied. */
export class RequestTimeout extends OmsdError {}

/** The server sent bytes this client cannot read (a bug or another protocol version). */
export class ProtocolError extends OmsdError {}
