// The web console in a real browser against a real omsd --demo with API keys: sign-in, the
// dashboard's charts and figures, stock by code with an adjustment, a reservation made and
// confirmed through the API showing on the pages, the order desk approving a held order, the
// CSRF and header protections, and the switch to English. One omsd and one browser for the file;
// the tests run in order and build on each other's data.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { OPS_KEY, SHOP_KEY, screenshot, startBrowser, startOmsd } from './harness.mjs';

let omsd;
let browser;
let page;
let context;
let problems;

before(async () => {
  omsd = await startOmsd();
  ({ browser, context, page, problems } = await startBrowser());
});

after(async () => {
  await browser?.close();
  await omsd?.stop();
});

function order(id, lines, extra = {}) {
  const paid = lines.reduce((sum, l) => sum + l.qty * l.unit_price_cents, 0);
  return {
    order_id: id,
    buyer: `buyer-${id}`,
    address: { name: '张三', phone: '13800000000', province: '上海市', city: '上海市', district: '浦东新区', detail: '世纪大道 1 号', zip: '200120' },
    lines: lines.map((l) => ({ ...l, paid_cents: l.qty * l.unit_price_cents })),
    paid_cents: paid,
    ...extra,
  };
}

/** The number in a stock table cell (SKU x warehouse x field). */
async function stockCell(sku, warehouse, field) {
  const cell = page.locator(`[data-testid=stock-table] tr[data-sku="${sku}"][data-warehouse="${warehouse}"] td[data-field="${field}"]`);
  return Number(await cell.innerText());
}

test('sign-in refuses a wrong key and a storefront key, accepts ops, and sets a strict session cookie', async () => {
  // Checks the sign-in page (in Chinese by default) refuses a wrong key and a key whose role is
  // not ops, with the server's reason shown, then signs in with the ops key; the session cookie
  // is HttpOnly and SameSite=Strict and the page carries the security headers.
  const response = await page.goto(omsd.consoleUrl);
  const headers = response.headers();
  assert.match(headers['content-security-policy'], /script-src 'self'/);
  assert.doesNotMatch(headers['content-security-policy'], /unsafe-inline/);
  assert.equal(headers['x-frame-options'], 'DENY');
  await page.getByTestId('api-key').fill('not-a-key-at-all-000000');
  await page.getByTestId('sign-in').click();
  await page.getByRole('alert').filter({ hasText: 'invalid API key' }).waitFor();
  await page.getByTestId('api-key').fill(SHOP_KEY);
  await page.getByTestId('sign-in').click();
  await page.getByRole('alert').filter({ hasText: 'role ops' }).waitFor();
  await page.getByTestId('api-key').fill(OPS_KEY);
  await page.getByTestId('sign-in').click();
  await page.getByTestId('who').filter({ hasText: 'desk (ops)' }).waitFor();
  assert.equal(await page.getByTestId('nav-stock').innerText(), '库存');
  const [cookie] = await context.cookies();
  assert.equal(cookie.name, 'omsd_console_session');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  // The key itself never reaches the page's storage or script.
  assert.equal(await page.evaluate(() => document.cookie), '');
});

test('the dashboard shows imported orders in figures and an ECharts chart', async () => {
  // Checks that orders imported through the API (as a shop would) appear on the dashboard:
  // today's count, GMV in yuan with two decimals, and the by-hour chart drawn by ECharts on a
  // canvas.
  const imported = await omsd.api('POST', '/v1/orders', {
    channel: 'native',
    payload: [
      order('WEB-1001', [{ sku: 'MUG-WHT', qty: 2, unit_price_cents: 5300 }]),
      order('WEB-1002', [{ sku: 'SOCKS-3P', qty: 1, unit_price_cents: 2990 }]),
      order('WEB-1003', [{ sku: 'CAP-BLK', qty: 1, unit_price_cents: 8850 }]),
    ],
  });
  assert.equal(imported.imported, 3, JSON.stringify(imported));
  await page.getByTestId('nav-dashboard').click();
  await page.getByTestId('kpi-orders-today').filter({ hasText: /^3$/ }).waitFor();
  // 2 x 53.00 + 29.90 + 88.50
  assert.equal(await page.getByTestId('kpi-gmv').innerText(), '¥224.40');
  const chart = page.getByTestId('chart-hour');
  await chart.locator('canvas').waitFor();
  assert.ok(await chart.getAttribute('_echarts_instance_'), 'ECharts owns the chart element');
  const box = await chart.locator('canvas').boundingBox();
  assert.ok(box.width > 100 && box.height > 100, `chart canvas is ${box.width}x${box.height}`);
  await screenshot(page, 'dashboard');
});

test('stock shows SKU x warehouse by code, and an adjustment changes the number', async () => {
  // Checks the stock table names SKUs and warehouses by code with the demo quantities, and that
  // adjusting TSHIRT-RED-XL in SH by +5 through the form shows 125 on hand afterwards (read back
  // from the server, not computed by the page).
  await page.getByTestId('nav-stock').click();
  await page.locator('[data-testid=stock-table] tr[data-sku="TSHIRT-RED-XL"][data-warehouse="SH"]').waitFor();
  assert.equal(await stockCell('TSHIRT-RED-XL', 'SH', 'on_hand'), 120);
  assert.equal(await stockCell('TSHIRT-RED-XL', 'BJ', 'on_hand'), 80);
  await page.getByTestId('adjust-sku').selectOption('TSHIRT-RED-XL');
  await page.getByTestId('adjust-warehouse').selectOption('SH');
  await page.getByTestId('adjust-delta').fill('5');
  await page.getByTestId('adjust-apply').click();
  await page.getByTestId('adjust-message').waitFor();
  await page
    .locator('[data-testid=stock-table] tr[data-sku="TSHIRT-RED-XL"][data-warehouse="SH"] td[data-field="on_hand"]')
    .filter({ hasText: /^125$/ })
    .waitFor();
  const view = await omsd.api('GET', '/v1/stock/TSHIRT-RED-XL');
  assert.equal(view.warehouses.find((w) => w.warehouse === 'SH').on_hand, 125);
  await screenshot(page, 'stock');
});

test('a reservation made and confirmed through the API shows on the stock and reservations pages', async () => {
  // Checks that a storefront's reservation (HTTP API, storefront key) is visible in the console:
  // the reserved column of PHONE-X in SH, and the reservation's status once looked up by id,
  // before and after the storefront confirms it.
  const before = await omsd.api('GET', '/v1/stock/PHONE-X');
  const reservedBefore = before.warehouses.find((w) => w.warehouse === 'SH').reserved;
  const held = await omsd.api('POST', '/v1/reservations', { lines: [{ sku: 'PHONE-X', qty: 3 }] }, SHOP_KEY, {
    'Idempotency-Key': 'console-test-1',
  });
  assert.deepEqual(
    held.allocations.map((a) => [a.sku, a.warehouse, a.qty]),
    [['PHONE-X', 'SH', 3]],
  );
  await page.getByTestId('nav-dashboard').click();
  await page.getByTestId('nav-stock').click();
  await page
    .locator('[data-testid=stock-table] tr[data-sku="PHONE-X"][data-warehouse="SH"] td[data-field="reserved"]')
    .filter({ hasText: new RegExp(`^${reservedBefore + 3}$`) })
    .waitFor();
  await page.getByTestId('nav-reservations').click();
  await page.getByTestId('reservation-lookup').fill(held.id);
  await page.getByTestId('reservation-find').click();
  const status = page.locator(`tr[data-reservation="${held.id}"] td[data-field="status"]`);
  await status.filter({ hasText: '已预占' }).waitFor();
  await omsd.api('POST', `/v1/reservations/${held.id}/confirm`, {}, SHOP_KEY);
  await page.reload();
  await status.filter({ hasText: '已确认' }).waitFor();
  await screenshot(page, 'reservations');
});

test('the order desk approves an order held by an audit rule', async () => {
  // Checks that an order the audit rule holds (amount above 1,000.00 yuan) is listed on hold in
  // the desk with its rule, and that approving it in the detail panel moves it on (the server
  // allocates it), as the API then confirms.
  await omsd.api('PUT', '/v1/rules', {
    toml: '[audit]\n[[audit.rule]]\nname = "big-order"\nkind = "amount_above"\ncents = 100000\n',
  });
  await omsd.api('POST', '/v1/orders', {
    channel: 'native',
    payload: order('WEB-2001', [{ sku: 'SNEAKER-42', qty: 2, unit_price_cents: 69900 }]),
  });
  await page.getByTestId('nav-orders').click();
  const row = page.locator('[data-testid=order-table] tr[data-order="WEB-2001"]');
  await row.locator('td[data-field=status]').filter({ hasText: '挂起' }).waitFor();
  await row.click();
  const detail = page.getByTestId('order-detail');
  await detail.getByText('big-order').waitFor();
  assert.match(await page.getByTestId('order-address').innerText(), /上海市/);
  await screenshot(page, 'orders');
  await page.getByTestId('order-approve').click();
  await page.getByTestId('order-detail-status').filter({ hasNotText: '挂起' }).waitFor();
  const list = await omsd.api('GET', '/v1/orders');
  const approved = list.find((o) => o.external_id === 'WEB-2001');
  assert.notEqual(approved.status, 'on_hold');
  assert.ok(['approved', 'allocated'].includes(approved.status), approved.status);
});

test('a change without the CSRF token is refused and changes nothing', async () => {
  // Checks that a script in the page's own origin that sends a change without the session's
  // CSRF token is refused (403) and the stock stays as it was; the same call without the session
  // cookie is refused (401).
  const before = (await omsd.api('GET', '/v1/stock/MUG-WHT')).on_hand;
  const statuses = await page.evaluate(async () => {
    const body = JSON.stringify({ warehouse: 'SH', delta: 1000 });
    const headers = { 'Content-Type': 'application/json' };
    const withCookie = await fetch('/api/v1/stock/MUG-WHT/adjustments', { method: 'POST', headers, body });
    const withoutCookie = await fetch('/api/v1/stock/MUG-WHT/adjustments', {
      method: 'POST', headers, body, credentials: 'omit',
    });
    return [withCookie.status, withoutCookie.status];
  });
  assert.deepEqual(statuses, [403, 401]);
  assert.equal((await omsd.api('GET', '/v1/stock/MUG-WHT')).on_hand, before);
});

test('English can be switched on and stays on after a reload', async () => {
  // Checks the language switch turns the navigation and figures' labels into English, keeps
  // amounts in yuan, and is remembered across a reload.
  await page.getByTestId('nav-dashboard').click();
  await page.getByTestId('language').click();
  assert.equal(await page.getByTestId('nav-stock').innerText(), 'Stock');
  await page.getByText('Orders today', { exact: true }).waitFor();
  await page.reload();
  await page.getByText('GMV today', { exact: true }).waitFor();
  assert.match(await page.getByTestId('kpi-gmv').innerText(), /^¥[\d,]+\.\d\d$/);
  await screenshot(page, 'dashboard-en');
  assert.deepEqual(problems, [], 'no page errors or CSP violations');
});
