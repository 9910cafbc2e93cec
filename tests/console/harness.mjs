// What every console test file shares: a real omsd (target/debug/omsd, or $OMSD_BIN) with the
// demo catalog on free loopback ports and a data directory of its own, the HTTP/JSON API for
// setting things up the way a shop would, and Debian's chromium driven by playwright-core.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '../..');
const OMSD = process.env.OMSD_BIN ?? join(REPO, 'target/debug/omsd');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

export const OPS_KEY = 'console-test-ops-key-0123456789';
export const SHOP_KEY = 'console-test-shop-key-0123456789';

async function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Start omsd --demo; with `keys`, an ops key and a storefront key are configured. */
export async function startOmsd({ keys = true, extraArgs = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'omsd-console-'));
  const ports = new Set();
  while (ports.size < 4) ports.add(await freePort());
  const [listen, admin, http, console] = [...ports];
  const args = [
    '--demo',
    '--listen', `127.0.0.1:${listen}`,
    '--admin-listen', `127.0.0.1:${admin}`,
    '--http-listen', `127.0.0.1:${http}`,
    '--console-listen', `127.0.0.1:${console}`,
    '--data-dir', join(dir, 'data'),
    ...extraArgs,
  ];
  if (keys) {
    const config = join(dir, 'omsd.toml');
    writeFileSync(
      config,
      `[[api_keys]]\nname = "desk"\nkey = "${OPS_KEY}"\nrole = "ops"\n\n` +
        `[[api_keys]]\nname = "shop"\nkey = "${SHOP_KEY}"\nrole = "storefront"\n`,
    );
    args.push('--config', config);
  }
  const logPath = join(dir, 'omsd.log');
  const child = spawn(OMSD, args, { stdio: ['ignore', 'ignore', openSync(logPath, 'w')] });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`omsd exited ${child.exitCode}:\n${readFileSync(logPath, 'utf8')}`);
    try {
      const r = await fetch(`http://127.0.0.1:${admin}/ready`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`omsd not ready in 30 s:\n${readFileSync(logPath, 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    consoleUrl: `http://127.0.0.1:${console}`,
    /** Call the HTTP/JSON API as a shop or an operator would (not through the console). */
    async api(method, path, body, key = OPS_KEY, headers = {}) {
      const response = await fetch(`http://127.0.0.1:${http}${path}`, {
        method,
        headers: {
          ...(keys ? { Authorization: `Bearer ${key}` } : {}),
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
      return text ? JSON.parse(text) : null;
    },
    log: () => readFileSync(logPath, 'utf8'),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Headless Debian chromium; `problems` collects page errors and CSP reports for the tests to check. */
export async function startBrowser() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'zh-CN' });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A refused API call is logged by chromium as a failed resource load; the tests that cause
    // one say so. Anything else at error level (a CSP violation, an exception) is a problem.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return { browser, context, page, problems };
}

/** Screenshots of the main pages for docs/console/ when CONSOLE_SCREENSHOTS=1. */
export async function screenshot(page, name) {
  if (process.env.CONSOLE_SCREENSHOTS !== '1') return;
  mkdirSync(join(REPO, 'docs/console'), { recursive: true });
  await page.screenshot({ path: join(REPO, 'docs/console', `${name}.png`), fullPage: false });
}
