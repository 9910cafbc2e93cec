// The conformance vectors (protocol/vectors/) byte for byte, without a server.
//
// Each valid vector is decoded with this client's decoder and compared with its meaning, and its
// meaning is encoded with this client's encoder and compared with the frame's bytes (JSON bodies
// by value, as the vectors' README asks). Each malformed frame must be refused by the decoder
// with the code the server answers it with; server.test.mjs sends them to a real omsd.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";

import { OPCODES, wire } from "@omsd/client";
import { REPO, encodePayload, malformed, meaningOf, validVectors } from "./vectors.mjs";

const VALID = validVectors();

// JSON bodies are compared as values; bigints (integers above 2^53) as their digits.
function plain(value) {
  return JSON.parse(JSON.stringify(value, (_, v) => (typeof v === "bigint" ? Number(v) : v)));
}

for (const [label, v] of VALID) {
  test(`decode: ${label}`, () => {
    // Decode the frame as the receiving side would, then compare the message with the meaning.
    const frame = Buffer.from(v.frame, "hex");
    const [header, message] = v.direction === "request" ? wire.decodeRequest(frame) : wire.decodeResponse(frame);
    assert.deepEqual([header.opcode, header.flags, String(header.requestId)], [v.opcode, v.flags, v.request_id]);
    const meaning = meaningOf(v.layout, message);
    assert.deepEqual(v.layout === "json" ? plain(meaning) : meaning, v.meaning);
  });

  test(`encode: ${label}`, () => {
    // Encode the meaning and frame it with the vector's header: the bytes must be the vector's.
    const payload = encodePayload(v.layout, v.meaning);
    const frame = wire.encodeFrame(v.opcode, BigInt(v.request_id), payload, v.flags);
    if (v.layout === "json") {
      const expected = Buffer.from(v.frame, "hex");
      assert.deepEqual(frame.subarray(4, 16), expected.subarray(4, 16), "header after len");
      assert.deepEqual(JSON.parse(frame.subarray(16).toString("utf8")), v.meaning.body);
      assert.deepEqual(JSON.parse(expected.subarray(16).toString("utf8")), v.meaning.body);
    } else {
      assert.equal(frame.toString("hex"), v.frame);
    }
  });
}

test("every binary layout has a vector", () => {
  // The runner above must see every layout of the document at least once, in its direction.
  const seen = new Set(VALID.map(([, v]) => `${v.direction} ${v.layout}`));
  for (const needed of [
    "request hello",
    "response hello_ok",
    "request empty",
    "response empty",
    "request reserve",
    "response reserved",
    "request reserve_batch",
    "response batch_result",
    "request reservation_id",
    "request stock_query",
    "response stock",
    "response reservation",
    "response error",
    "request subscribe",
    "response log_records",
    "response snapshot_chunk",
    "request replica_ack",
    "request json",
    "response json",
  ]) {
    assert.ok(seen.has(needed), needed);
  }
});

const MALFORMED = malformed();
const LIMITS = MALFORMED.limits;

// JSON bodies that parse but name a field or type the operation does not have: only the server
// knows each operation's fields, so server.test.mjs checks these against a real omsd.
function schemaRefusal(v) {
  const frame = Buffer.from(v.frame, "hex");
  if (v.stage !== "payload" || OPCODES.get(frame.readUInt16LE(4))?.[1] !== "json") {
    return false;
  }
  try {
    JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(frame.subarray(16)));
    return true;
  } catch {
    return false;
  }
}

for (const v of MALFORMED.vectors) {
  test(`malformed: ${v.name}`, () => {
    // The decoder refuses the frame with the same code the server answers it with.
    const frame = Buffer.from(v.frame, "hex");
    if (schemaRefusal(v)) {
      const [header, body] = wire.decodeRequest(frame);
      assert.equal(header.flags, 0);
      assert.notEqual(body, null);
      return;
    }
    assert.throws(
      () => {
        if (v.stage === "frame") {
          // Judged from the length field alone: the frame may be only its first bytes.
          wire.checkFrameLength(frame.readUInt32LE(0), LIMITS.max_frame_bytes);
        } else {
          wire.decodeRequest(frame, { maxFrameBytes: LIMITS.max_frame_bytes, maxLines: LIMITS.max_lines, maxBatch: LIMITS.max_batch });
        }
      },
      (e) => {
        assert.ok(e instanceof wire.WireFormatError, String(e));
        assert.deepEqual([e.code, e.codeName], [v.error.code, v.error.name], e.message);
        return true;
      },
    );
    assert.equal(v.closes, v.stage === "frame" || v.stage === "handshake");
  });
}

test("the generated tables match docs/PROTOCOL.md", () => {
  // clients/codegen.py --check exits 1 when src/tables.ts (or the Python one) is stale.
  execFileSync("python3", [join(REPO, "clients", "codegen.py"), "--check"], { stdio: "pipe" });
});
