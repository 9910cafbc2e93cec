// @omsd/client against a real `omsd --demo` started by the test (omsd.mjs).
//
// The demo catalog: warehouses SH (priority 0) and BJ; TSHIRT-RED-XL 120 SH + 80 BJ, MUG-WHT
// 60 + 40, PHONE-X 10 + 5, CAP-BLK 40 + 0, SOCKS-3P 500 + 300, kit GIFT-BOX = MUG-WHT + 2 x SOCKS-3P.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  Client,
  ConnectionLost,
  Forbidden,
  FrameTooLarge,
  IdempotencyKeyReused,
  InsufficientStock,
  InvalidReservationState,
  OmsdError,
  Refused,
  RequestTimeout,
  UnknownReservation,
  UnknownSku,
} from "@omsd/client";
import { Omsd } from "./omsd.mjs";

let server;
before(async () => {
  server = await Omsd.start(["--demo"]);
});
after(async () => {
  await server.close();
});

/** A fresh demo server for tests that count stock or stop the server. */
async function withServer(args, body) {
  const own = await Omsd.start(args);
  try {
    await body(own);
  } finally {
    await own.close();
  }
}

test("reserve, confirm, release: codes in every answer, stock follows", async () => {
  // A reservation names SKU and warehouse codes and lowers availability; confirm and release
  // move it through its states, and release gives the units back.
  await withServer(["--demo"], async (own) => {
    const client = new Client(own.address);
    const before = (await client.stock("MUG-WHT")).available;
    const held = await client.reserve(
      [
        { sku: "TSHIRT-RED-XL", qty: 2 },
        { sku: "MUG-WHT", qty: 1 },
      ],
      { ttlMs: 600_000, idempotencyKey: "order-1" },
    );
    assert.equal(typeof held.id, "string");
    assert.equal(held.replayed, false);
    assert.deepEqual(
      held.allocations.map((a) => [a.sku, a.warehouse, a.qty]).sort(),
      [
        ["MUG-WHT", "SH", 1],
        ["TSHIRT-RED-XL", "SH", 2],
      ],
    );
    assert.ok(Math.abs(held.expiresAtMs - (Date.now() + 600_000)) < 5000);
    assert.equal((await client.stock("MUG-WHT")).available, before - 1);
    assert.equal((await client.getReservation(held.id)).status, "held");
    await client.confirm(held.id);
    assert.equal((await client.getReservation(BigInt(held.id))).status, "confirmed");

    const second = await client.reserve([{ sku: "MUG-WHT", qty: 3 }], { channel: "jd", customer: 42 });
    const view = await client.getReservation(second.id);
    assert.deepEqual([view.channel, view.customer, view.status], [2, "42", "held"]);
    await client.release(second.id);
    assert.equal((await client.getReservation(second.id)).status, "released");
    assert.equal((await client.stock("MUG-WHT")).available, before - 1);
    await client.close();
  });
});

test("refusals are typed and carry codes and facts", async () => {
  // InsufficientStock names the SKU and what is available, and holds nothing of the cart.
  const client = new Client(server.address);
  const mugs = (await client.stock("MUG-WHT")).available;
  await assert.rejects(
    client.reserve([
      { sku: "MUG-WHT", qty: 1 },
      { sku: "PHONE-X", qty: 16 },
    ]),
    (e) => {
      assert.ok(e instanceof InsufficientStock && e instanceof Refused && e instanceof OmsdError && e instanceof Error);
      assert.deepEqual([e.code, e.codeName, e.sku, e.available, e.name], [108, "insufficient_stock", "PHONE-X", 15, "InsufficientStock"]);
      return true;
    },
  );
  assert.equal((await client.stock("MUG-WHT")).available, mugs);
  await assert.rejects(client.reserve([{ sku: "TSHIRT-RED-XXL", qty: 1 }]), (e) => e instanceof UnknownSku && e.sku === "TSHIRT-RED-XXL");
  await assert.rejects(client.stock("NOPE"), UnknownSku);
  await assert.rejects(client.confirm("123456789"), UnknownReservation);
  await assert.rejects(client.reserve([{ sku: "MUG-WHT", qty: -1 }]), RangeError);
  await assert.rejects(client.reserve([{ sku: "MUG-WHT", qty: 1 }], { channel: "ebay" }), TypeError);
  await client.close();
});

/** How many partitions hold a part of a reservation: the id's top 16 bits are its partition set
 * (docs/ARCHITECTURE.md). Only used to check a test's premise. */
function partitionsOf(id) {
  return [...(BigInt(id) >> 48n).toString(2)].filter((bit) => bit === "1").length;
}

test("an idempotency key replays the same cart and refuses another", async () => {
  // The same key and cart answers the first reservation again and holds nothing twice; the same
  // key with another cart is refused IdempotencyKeyReused and holds nothing, whether the other
  // cart's lines live in the first one's partition or in the other. The demo runs two partitions
  // with SKU ids in definition order: CAP-BLK and TSHIRT-BLU-M share one, MUG-WHT is in the other.
  await withServer(["--demo"], async (own) => {
    const client = new Client(own.address);
    const skus = ["CAP-BLK", "TSHIRT-BLU-M", "MUG-WHT"];
    const available = async () => Promise.all(skus.map(async (sku) => (await client.stock(sku)).available));
    const before = await available();
    const first = await client.reserve([{ sku: "CAP-BLK", qty: 2 }], { idempotencyKey: "order-77" });
    const again = await client.reserve([{ sku: "CAP-BLK", qty: 2 }], { idempotencyKey: "order-77" });
    assert.deepEqual([again.id, again.replayed, first.replayed], [first.id, true, false]);
    assert.equal(partitionsOf(first.id), 1);
    const others = [
      [{ sku: "CAP-BLK", qty: 3 }],
      [{ sku: "TSHIRT-BLU-M", qty: 1 }],
      [{ sku: "MUG-WHT", qty: 1 }],
      [
        { sku: "CAP-BLK", qty: 2 },
        { sku: "MUG-WHT", qty: 1 },
      ],
    ];
    for (const cart of others) {
      await assert.rejects(
        client.reserve(cart, { idempotencyKey: "order-77" }),
        (e) => e instanceof IdempotencyKeyReused && e.code === 150 && e.message.includes("order-77"),
        JSON.stringify(cart),
      );
    }
    assert.deepEqual(await available(), [before[0] - 2, before[1], before[2]]);
    await client.close();
  });
});

test("an idempotency key of a multi-partition cart replays it and refuses another", async () => {
  // A cart whose lines live in both partitions: the same key and cart (lines in another order)
  // replays the one reservation; the same key with another quantity, or with a cart in one of its
  // partitions only (also as a batch item), is refused IdempotencyKeyReused and holds nothing more.
  await withServer(["--demo"], async (own) => {
    const client = new Client(own.address);
    const skus = ["CAP-BLK", "MUG-WHT"];
    const available = async () => Promise.all(skus.map(async (sku) => (await client.stock(sku)).available));
    const before = await available();
    const first = await client.reserve(
      [
        { sku: "MUG-WHT", qty: 1 },
        { sku: "CAP-BLK", qty: 1 },
      ],
      { idempotencyKey: "order-78" },
    );
    assert.equal(partitionsOf(first.id), 2, "the premise: the cart spans both partitions");
    const again = await client.reserve(
      [
        { sku: "CAP-BLK", qty: 1 },
        { sku: "MUG-WHT", qty: 1 },
      ],
      { idempotencyKey: "order-78" },
    );
    assert.deepEqual([again.id, again.replayed], [first.id, true]);
    const others = [
      [
        { sku: "MUG-WHT", qty: 2 },
        { sku: "CAP-BLK", qty: 1 },
      ],
      [{ sku: "MUG-WHT", qty: 1 }],
      [{ sku: "CAP-BLK", qty: 1 }],
    ];
    for (const cart of others) {
      await assert.rejects(client.reserve(cart, { idempotencyKey: "order-78" }), IdempotencyKeyReused, JSON.stringify(cart));
    }
    const [item] = await client.reserveBatch([{ lines: [{ sku: "CAP-BLK", qty: 5 }], idempotencyKey: "order-78" }]);
    assert.ok(item instanceof IdempotencyKeyReused, String(item));
    assert.deepEqual(await available(), before.map((n) => n - 1));
    await client.close();
  });
});

test("pipelined reserves hold exactly the stock", async () => {
  // 1,500 reservations in flight at once on one connection: each answer reaches its caller,
  // stock falls by exactly the units held, and CAP-BLK (40) runs out without an oversell.
  await withServer(["--demo"], async (own) => {
    const client = new Client(own.address);
    const results = await Promise.allSettled([
      ...Array.from({ length: 700 }, (_, i) => client.reserve([{ sku: "SOCKS-3P", qty: 1 }], { customer: i })),
      ...Array.from({ length: 800 }, () => client.reserve([{ sku: "CAP-BLK", qty: 1 }])),
    ]);
    const socks = results.slice(0, 700);
    const caps = results.slice(700);
    assert.ok(socks.every((r) => r.status === "fulfilled"));
    assert.equal(new Set(socks.map((r) => r.value.id)).size, 700);
    const held = caps.filter((r) => r.status === "fulfilled").map((r) => r.value);
    assert.equal(held.length, 40);
    assert.ok(caps.filter((r) => r.status === "rejected").every((r) => r.reason instanceof InsufficientStock));
    assert.equal((await client.stock("SOCKS-3P")).reserved, 700);
    await Promise.all(held.map((r) => client.release(r.id)));
    assert.equal((await client.stock("CAP-BLK")).available, 40);
    await client.close();
  });
});

test("reserveBatch answers each cart; stock views; JSON operations", async () => {
  // Refusals inside a batch are returned, not thrown; stock reads by code or id; callJson runs
  // administration by name.
  const client = new Client(server.address);
  const results = await client.reserveBatch([
    { lines: [{ sku: "SOCKS-3P", qty: 1 }], idempotencyKey: "b-1" },
    { lines: [{ sku: "PHONE-X", qty: 99 }], ttlMs: 60_000 },
    { lines: [{ sku: "GIFT-BOX", qty: 1 }] },
  ]);
  assert.equal(typeof results[0].id, "string");
  assert.ok(results[1] instanceof InsufficientStock);
  assert.deepEqual(results[2].allocations.map((a) => [a.sku, a.qty]).sort(), [
    ["MUG-WHT", 1],
    ["SOCKS-3P", 2],
  ]);
  const shirt = await client.stock("TSHIRT-RED-XL");
  assert.deepEqual(new Set(shirt.warehouses.map((w) => `${w.warehouse}:${w.onHand}`)), new Set(["SH:120", "BJ:80"]));
  assert.deepEqual(await client.stock(shirt.skuId), shirt);
  assert.deepEqual(await client.lookupSkus(["TSHIRT-RED-XL", "NOPE"]), [shirt.skuId, null]);
  const { id } = await client.callJson("define_sku", { code: "TEA-GREEN", low_stock_threshold: 2 });
  await client.callJson("stock_op", { op: "set_on_hand", sku: "TEA-GREEN", warehouse: "SH", on_hand: 7n });
  assert.equal((await client.stock(id)).available, 7);
  const exported = await client.exportStock();
  assert.ok(exported.some((row) => row.code === "TEA-GREEN" && row.available === 7));
  await assert.rejects(client.callJson("define_sku", { code: "TEA-BLACK", threshold: 1 }), (e) => e.codeName === "bad_request");
  await assert.rejects(client.callJson("reserve", {}), TypeError);
  assert.ok((await client.ping()) >= 0);
  assert.deepEqual([client.serverInfo.version, client.serverInfo.maxBatch], [2, 1024]);
  await client.close();
});

test("ship needs a confirmed reservation", async () => {
  // State refusals are typed: ship before confirm is InvalidReservationState.
  const client = new Client(server.address);
  const held = await client.reserve([{ sku: "SOCKS-3P", qty: 1 }]);
  await assert.rejects(client.ship(held.id), InvalidReservationState);
  await client.confirm(held.id);
  await client.ship(held.id);
  assert.equal((await client.getReservation(held.id)).status, "shipped");
  await client.close();
});

test("a frame above the server's limit is not sent", async () => {
  // FrameTooLarge before sending (the server would close the connection); the client goes on.
  const client = new Client(server.address);
  const lines = Array.from({ length: 64 }, () => ({ sku: "X".repeat(64), qty: 1 }));
  await assert.rejects(client.reserveBatch(Array.from({ length: 300 }, () => ({ lines }))), FrameTooLarge);
  assert.ok((await client.ping()) >= 0);
  await client.close();
});

test("connection loss: calls in flight fail, keyed reserves are re-sent, the client reconnects", async () => {
  // A paused-then-killed server fails unkeyed reserves with ConnectionLost(maybeApplied); after
  // a restart the next call reconnects; a keyed reserve whose connection drops is re-sent.
  await withServer(["--demo"], async (own) => {
    const client = new Client(own.address, { timeoutMs: null, connectTimeoutMs: 2000 });
    const kept = await client.reserve([{ sku: "SOCKS-3P", qty: 3 }]);
    own.pause();
    const calls = Promise.allSettled(Array.from({ length: 50 }, () => client.reserve([{ sku: "SOCKS-3P", qty: 1 }])));
    await new Promise((resolve) => setTimeout(resolve, 200));
    own.resume();
    await own.kill();
    const results = await calls;
    assert.ok(results.every((r) => r.status === "rejected" && r.reason instanceof ConnectionLost && r.reason.maybeApplied));
    await assert.rejects(client.ping(), (e) => e instanceof ConnectionLost && !e.maybeApplied);
    await own.spawn();
    assert.equal((await client.getReservation(kept.id)).status, "held");

    // Destroy the socket under a keyed reserve: it is sent again on a new connection.
    const keyed = client.reserve([{ sku: "SOCKS-3P", qty: 2 }], { idempotencyKey: "retry-1" });
    await new Promise((resolve) => setImmediate(resolve));
    client.conn.socket.destroy();
    const held = await keyed;
    const again = await client.reserve([{ sku: "SOCKS-3P", qty: 2 }], { idempotencyKey: "retry-1" });
    assert.equal(again.id, held.id);
    await client.close();
    await assert.rejects(client.ping(), ConnectionLost);
  });
});

test("request timeout", async () => {
  // A paused server: the call rejects with RequestTimeout; after it resumes the client works.
  await withServer(["--demo"], async (own) => {
    const client = new Client(own.address, { timeoutMs: 500 });
    await client.connect();
    own.pause();
    try {
      await assert.rejects(client.reserve([{ sku: "SOCKS-3P", qty: 1 }]), RequestTimeout);
    } finally {
      own.resume();
    }
    assert.ok((await client.ping()) >= 0);
    await client.close();
  });
});

test("API keys and roles", async () => {
  // With keys configured: a wrong key is refused; a storefront key may not ship; ops may.
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), "omsd-keys-"));
  const config = join(dir, "omsd.toml");
  writeFileSync(
    config,
    '[[api_keys]]\nname = "shop"\nkey = "sk_shop_7f3a9c2e41b84d0d"\nrole = "storefront"\n\n[[api_keys]]\nname = "wh"\nkey = "sk_ops_0b1c2d3e4f5a6b7c"\nrole = "ops"\n',
  );
  try {
    await withServer(["--demo", "--config", config], async (own) => {
      await assert.rejects(new Client(own.address, { apiKey: "sk_wrong" }).connect(), (e) => e.codeName === "unauthenticated");
      const shop = new Client(own.address, { apiKey: "sk_shop_7f3a9c2e41b84d0d" });
      assert.equal((await shop.connect()).role, "storefront");
      const held = await shop.reserve([{ sku: "MUG-WHT", qty: 1 }]);
      await shop.confirm(held.id);
      await assert.rejects(shop.ship(held.id), Forbidden);
      const ops = new Client(own.address, { apiKey: "sk_ops_0b1c2d3e4f5a6b7c" });
      await ops.ship(held.id);
      assert.equal((await shop.getReservation(held.id)).status, "shipped");
      await shop.close();
      await ops.close();
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
