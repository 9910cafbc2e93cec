// The package loads with require (the CommonJS build), with the same classes as the ESM build,
// and a script that never calls close() still exits: an idle client does not hold the process.

const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const { test } = require("node:test");

test("require gives the CommonJS build", () => {
  const omsd = require("@omsd/client");
  assert.equal(typeof omsd.Client, "function");
  const e = new omsd.SoldOut("campaign 7 is sold out", { available: 0 });
  assert.ok(e instanceof omsd.Refused && e instanceof omsd.OmsdError && e instanceof Error);
  assert.deepEqual([e.code, e.codeName, e.name, e.available], [110, "sold_out", "SoldOut", 0]);
  assert.ok(require.resolve("@omsd/client").includes(`${require("node:path").sep}cjs${require("node:path").sep}`));
  assert.equal(omsd.ERROR_CLASSES.get(150), omsd.IdempotencyKeyReused);
});

test("a script that forgets close() exits", async () => {
  const { Omsd } = await import("./omsd.mjs");
  const server = await Omsd.start(["--demo"]);
  try {
    const script = `
      const { Client } = require("@omsd/client");
      const client = new Client(${JSON.stringify(server.address)});
      client.reserve([{ sku: "MUG-WHT", qty: 1 }]).then((r) => console.log(r.allocations[0].sku));
    `;
    const out = execFileSync(process.execPath, ["-e", script], { timeout: 20000, cwd: __dirname });
    assert.equal(out.toString().trim(), "MUG-WHT");
  } finally {
    await server.close();
  }
});
