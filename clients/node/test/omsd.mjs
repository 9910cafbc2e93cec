// Runs the real omsd for the tests.
//
// The binary: OMSD_BIN when set (CI points it at the debug build the Rust tests made), else
// `cargo build --bin omsd` in the repository and <target>/debug/omsd, as tests/src/lib.rs does.
// Each server gets free loopback ports and its own temporary data directory.

import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { REPO } from "./vectors.mjs";

const READY_TIMEOUT_MS = 30_000;
let binary = null;

export function omsdBinary() {
  if (binary !== null) {
    return binary;
  }
  if (process.env.OMSD_BIN) {
    if (!existsSync(process.env.OMSD_BIN)) {
      throw new Error(`OMSD_BIN=${process.env.OMSD_BIN} does not exist`);
    }
    binary = process.env.OMSD_BIN;
  } else {
    execFileSync(process.env.CARGO ?? "cargo", ["build", "--bin", "omsd"], { cwd: REPO, stdio: "inherit" });
    binary = join(process.env.CARGO_TARGET_DIR ?? join(REPO, "target"), "debug", "omsd");
  }
  return binary;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A running omsd on fresh loopback ports. */
export class Omsd {
  static async start(args = ["--demo"]) {
    const server = new Omsd(args);
    do {
      server.port = await freePort();
      server.adminPort = await freePort();
    } while (server.port === server.adminPort);
    await server.spawn();
    return server;
  }

  constructor(args) {
    this.args = args;
    this.dir = mkdtempSync(join(tmpdir(), "omsd-node-"));
    this.logPath = join(this.dir, "omsd.log");
    this.child = null;
  }

  get address() {
    return `127.0.0.1:${this.port}`;
  }

  async spawn() {
    const log = openSync(this.logPath, "a");
    this.child = spawn(
      omsdBinary(),
      [
        "--listen",
        this.address,
        "--admin-listen",
        `127.0.0.1:${this.adminPort}`,
        "--http-listen",
        "127.0.0.1:0",
        "--console-listen",
        "127.0.0.1:0",
        "--data-dir",
        join(this.dir, "data"),
        ...this.args,
      ],
      { stdio: ["ignore", "ignore", log] },
    );
    closeSync(log);
    const exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const code = await Promise.race([exited, sleep(50, "waiting")]);
      if (code !== "waiting") {
        throw new Error(`omsd exited with ${code} before ready:\n${this.stderr()}`);
      }
      try {
        const response = await fetch(`http://127.0.0.1:${this.adminPort}/ready`);
        if (response.status === 200) {
          return;
        }
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`omsd not ready after ${READY_TIMEOUT_MS} ms:\n${this.stderr()}`);
      }
    }
  }

  stderr() {
    try {
      return readFileSync(this.logPath, "utf8");
    } catch {
      return "";
    }
  }

  async signal(name) {
    const child = this.child;
    if (child === null || child.exitCode !== null) {
      return;
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(name);
    await exited;
  }

  /** SIGTERM (a clean shutdown) and wait. */
  async stop() {
    await this.signal("SIGTERM");
    this.child = null;
  }

  async kill() {
    await this.signal("SIGKILL");
    this.child = null;
  }

  pause() {
    this.child.kill("SIGSTOP");
  }

  resume() {
    this.child.kill("SIGCONT");
  }

  async close() {
    if (this.child !== null) {
      this.child.kill("SIGCONT");
    }
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A self-signed certificate for `name` and 127.0.0.1, made by the openssl command. */
export function opensslCertificate(dir, name) {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      `subjectAltName=DNS:${name},IP:127.0.0.1`,
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { stdio: "pipe" },
  );
  return { cert, key };
}
