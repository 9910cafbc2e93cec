// The same with require (CommonJS), many checkouts in flight at once over one connection.
const { Client, InsufficientStock } = require("@omsd/client");

async function main() {
  const client = new Client(process.env.OMSD_ADDRESS ?? "127.0.0.1:7700", { apiKey: process.env.OMSD_API_KEY });
  // 100 carts in flight together; each is held or refused on its own.
  const results = await Promise.allSettled(
    Array.from({ length: 100 }, (_, i) =>
      client.reserve(
        [
          { sku: "SOCKS-3P", qty: 1 },
          { sku: "CAP-BLK", qty: 1 },
        ],
        { idempotencyKey: `order-${2000 + i}` },
      ),
    ),
  );
  const held = results.filter((r) => r.status === "fulfilled").map((r) => r.value);
  const refused = results.filter((r) => r.status === "rejected" && r.reason instanceof InsufficientStock);
  console.log(`held ${held.length} carts, ${refused.length} refused: ${refused[0].reason.sku} ran out`);
  // Payments come back: confirm the first half, release the rest.
  await Promise.all(held.slice(0, 20).map((r) => client.confirm(r.id)));
  await Promise.all(held.slice(20).map((r) => client.release(r.id)));
  console.log("CAP-BLK available:", (await client.stock("CAP-BLK")).available);
  await client.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
