// A checkout against omsd: hold the cart, confirm on payment, release on cancel.
import { Client, InsufficientStock } from "@omsd/client";

const client = new Client(process.env.OMSD_ADDRESS ?? "127.0.0.1:7700", { apiKey: process.env.OMSD_API_KEY });

/** Holds the cart's units for 15 minutes while the customer pays; null when out of stock. */
async function startCheckout(orderNumber, cart) {
  try {
    const held = await client.reserve(cart, { ttlMs: 15 * 60 * 1000, idempotencyKey: `order-${orderNumber}` });
    for (const a of held.allocations) {
      console.log(`order ${orderNumber}: held ${a.qty} x ${a.sku} in ${a.warehouse}`);
    }
    return held.id;
  } catch (e) {
    if (e instanceof InsufficientStock) {
      console.log(`order ${orderNumber}: only ${e.available} of ${e.sku} left`);
      return null;
    }
    throw e;
  }
}

// The customer pays: confirm, and the units are kept for fulfilment.
const cart = [
  { sku: "TSHIRT-RED-XL", qty: 2 },
  { sku: "MUG-WHT", qty: 1 },
];
let reservation = await startCheckout("1001", cart);
// A retry with the same key (a timeout, a double click) answers the same reservation again.
const again = await client.reserve(cart, { idempotencyKey: "order-1001" });
console.log("order 1001: a retry answers", again.id === reservation && again.replayed ? "the same reservation" : "another one");
await client.confirm(reservation);
console.log("order 1001:", (await client.getReservation(reservation)).status);

// Another customer cancels: release, and the units go back on sale.
reservation = await startCheckout("1002", [{ sku: "MUG-WHT", qty: 1 }]);
await client.release(reservation);
console.log("order 1002:", (await client.getReservation(reservation)).status);

// A cart larger than the stock is refused as a whole: nothing is held.
await startCheckout("1003", [
  { sku: "MUG-WHT", qty: 1 },
  { sku: "PHONE-X", qty: 1000 },
]);
console.log("MUG-WHT available:", (await client.stock("MUG-WHT")).available);
await client.close();
