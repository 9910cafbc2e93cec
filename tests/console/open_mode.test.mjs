// The console of an omsd without API keys: like the protocol, it serves loopback clients without
// sign-in, and changes still need the session's CSRF token.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBrowser, startOmsd } from './harness.mjs';

let omsd;
let browser;
let page;
let problems;

before(async () => {
  omsd = await startOmsd({ keys: false });
  ({ browser, page, problems } = await startBrowser());
});

after(async () => {
  await browser?.close();
  await omsd?.stop();
});

test('without keys a loopback browser is let in without sign-in and can adjust stock', async () => {
  // Checks that the console opens on the dashboard with no sign-in form and says it is in
  // loopback mode, and that an adjustment from the stock page is applied (the session opened
  // for the loopback client carries the CSRF token).
  await page.goto(omsd.consoleUrl + '/#stock');
  await page.getByTestId('who').filter({ hasText: '仅限本机' }).waitFor();
  assert.equal(await page.getByTestId('api-key').count(), 0);
  assert.equal(await page.getByTestId('sign-out').count(), 0);
  await page.locator('[data-testid=stock-table] tr[data-sku="CAP-BLK"][data-warehouse="SH"]').waitFor();
  await page.getByTestId('adjust-sku').selectOption('CAP-BLK');
  await page.getByTestId('adjust-warehouse').selectOption('SH');
  await page.getByTestId('adjust-delta').fill('-4');
  await page.getByTestId('adjust-apply').click();
  await page
    .locator('[data-testid=stock-table] tr[data-sku="CAP-BLK"][data-warehouse="SH"] td[data-field="on_hand"]')
    .filter({ hasText: /^36$/ })
    .waitFor();
  assert.equal((await omsd.api('GET', '/v1/stock/CAP-BLK')).on_hand, 36);
  assert.deepEqual(problems, []);
});
