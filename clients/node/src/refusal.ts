// From a wire error body to the error object of its class.

import { OmsdError, Refused, ServerError } from "./errors.js";
import { ERROR_CLASSES } from "./tables.js";
import type { ErrorBody } from "./wire.js";

/** The error for a wire error body: the code's own class, else ServerError/Refused by range. */
export function errorFromBody(body: ErrorBody): OmsdError {
  const cls = ERROR_CLASSES.get(body.code) ?? (body.code < 100 ? ServerError : Refused);
  return new cls(body.message, {
    code: body.code,
    codeName: body.name,
    available: body.available,
    skuId: body.skuId,
    sku: body.sku,
    warehouse: body.warehouse,
  });
}
