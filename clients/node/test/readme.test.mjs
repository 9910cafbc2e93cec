// The README's examples are the files in examples/, verbatim, and they run as the README says.
//
// Each `<!-- file: PATH -->` marker in README.md is followed by a code block that must equal the
// file; each `<!-- output: PATH -->` block must equal what `node PATH` prints against a fresh
// `omsd --demo` (OMSD_ADDRESS set, as a user would run it).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { test } from "node:test";

import { Omsd } from "./omsd.mjs";

const PACKAGE = new URL("..", import.meta.url);
const README = readFileSync(new URL("README.md", PACKAGE), "utf8");
const BLOCKS = [...README.matchAll(/<!-- (file|output): (\S+) -->\n```[a-z]*\n([\s\S]*?)```/g)].map((m) => ({
  kind: m[1],
  path: m[2],
  text: m[3],
}));

test("the README shows both examples with their output", () => {
  assert.deepEqual(BLOCKS.map((b) => `${b.kind} ${b.path}`).sort(), [
    "file examples/checkout.cjs",
    "file examples/checkout.mjs",
    "output examples/checkout.cjs",
    "output examples/checkout.mjs",
  ]);
});

for (const block of BLOCKS.filter((b) => b.kind === "file")) {
  test(`README block is ${block.path}`, () => {
    // The code people copy from the README is exactly the code the tests run.
    assert.equal(block.text, readFileSync(new URL(block.path, PACKAGE), "utf8"));
  });
}

for (const block of BLOCKS.filter((b) => b.kind === "output")) {
  test(`${block.path} prints what the README says`, async () => {
    // Run the example against a fresh demo server; its output is the README's, line for line.
    const server = await Omsd.start(["--demo"]);
    try {
      const env = { ...process.env, OMSD_ADDRESS: server.address };
      delete env.OMSD_API_KEY;
      const { stdout } = await promisify(execFile)(process.execPath, [new URL(block.path, PACKAGE).pathname], {
        env,
        timeout: 60_000,
      });
      assert.equal(stdout, block.text);
    } finally {
      await server.close();
    }
  });
}
