// @omsd/client: the Node client for omsd, the order and stock-reservation engine (protocol v2).
//
// `Client` is the Promise API; refusals reject with one error class per wire error code
// (InsufficientStock with `available`, SoldOut, IdempotencyKeyReused, ...) under OmsdError.
// `wire` is the codec (no I/O), exported for tools and tests.

export { Client, CLIENT_NAME, DEFAULT_TTL_MS, parseAddress } from "./client.js";
export type { Cart, CartLine, Channel, ClientOptions, ReservationId, ReserveOptions } from "./client.js";
export { ConnectionLost, OmsdError, ProtocolError, Refused, RequestTimeout, ServerError } from "./errors.js";
export type { ErrorFacts } from "./errors.js";
export { errorFromBody } from "./refusal.js";
export * from "./tables.js";
export type {
  Allocation,
  HelloOk,
  KitComponent,
  Reservation,
  ReservationPart,
  Reserved,
  SkuRef,
  Stock,
  U64Like,
  WarehouseStock,
} from "./wire.js";
export * as wire from "./wire.js";
