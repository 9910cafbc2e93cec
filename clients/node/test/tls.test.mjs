// TLS against a real omsd serving TLS only (a certificate made with the openssl command): the
// client trusts it through `tls: { ca }`, a client that does not trust it and a plain-TCP client
// fail to connect.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { Client, ConnectionLost } from "@omsd/client";
import { Omsd, opensslCertificate } from "./omsd.mjs";

test("reserve over TLS; untrusted and plain clients are refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "omsd-tls-"));
  const { cert, key } = opensslCertificate(dir, "omsd.test");
  const server = await Omsd.start(["--demo", "--tls-cert", cert, "--tls-key", key]);
  try {
    const ca = readFileSync(cert);
    const client = new Client(server.address, { tls: { ca }, serverName: "omsd.test" });
    const results = await Promise.all(Array.from({ length: 200 }, () => client.reserve([{ sku: "SOCKS-3P", qty: 1 }])));
    assert.equal(new Set(results.map((r) => r.id)).size, 200);
    await client.close();

    const byAddress = new Client(server.address, { tls: { ca } }); // the certificate names 127.0.0.1
    assert.ok((await byAddress.ping()) >= 0);
    await byAddress.close();

    await assert.rejects(new Client(server.address, { tls: true, serverName: "omsd.test", connectTimeoutMs: 3000 }).connect(), ConnectionLost);
    await assert.rejects(new Client(server.address, { connectTimeoutMs: 3000 }).connect(), ConnectionLost);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
