// The add-on as its users meet it: the admin pairs, customers pay an invoice, a proforma
// invoice and a top-up through the sandbox's BitPay checkout, BitPay's webhooks reach
// /bitpay/ipn for real, and Splynx ends up with the payments. Plus the refusals.
// Run through tests/browser/run.sh (it starts the sandboxes and the PHP server).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  BASE, BITPAY, BTCPAY, BTCPAY_STORE, addon, binary, bitpay, btcpay, deliveriesFor, launch,
  login, newPage, payOnBitPay, shot, splynx,
} from './helpers.mjs';

const modal = (page) => page.frameLocator('#addon-frame');

async function openInvoiceModal(page, number) {
  await page.goto(`${BASE}/portal/finance/invoices`);
  await page.click(`tr[data-number="${number}"] .bitpay-action`);
}

describe('splynx-bitpay add-on in the browser', () => {
  let browser;
  let ada;

  before(async () => {
    browser = await launch();
    ada = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
  });

  test('admin pairs with BitPay on Config → Integrations → Bitpay', async () => {
    const page = await newPage(browser);
    await page.goto(`${BASE}/bitpay/admin`);
    assert.equal(new URL(page.url()).pathname, '/admin/login/', 'no admin session: Splynx admin login');
    assert.equal(new URL(page.url()).searchParams.get('return'), '/bitpay/admin');
    await login(page, 'admin', { admin: true });
    assert.equal(new URL(page.url()).pathname, '/bitpay/admin');
    await page.getByText('Access token is not set for test environment').waitFor();
    assert.equal(await page.locator('#pairing_code').getAttribute('placeholder'), 'u7m0VSR');
    // Every effective setting, and where it is set, as the binary reports it.
    const settings = await page.locator('table.effective-settings').innerText();
    assert.match(settings, /bitpay\.currency\s+USD\s+config file/);
    assert.match(settings, /splynx\.auth\s+access_token\s+default/);
    assert.match(settings, /splynx\.api_secret\s+\(redacted\)/);
    // A reseller's own Modules-list values, per partner.
    const partners = await page.locator('table.partner-settings').innerText();
    assert.match(partners, /2\s+bitpay\.currency\s+EUR/);
    assert.match(partners, /2\s+refill\.max\s+250\.00/);
    await shot(page, 'admin-unpaired');

    // A code BitPay does not know: what to do, in the page's own terms (no shell command).
    await page.fill('#pairing_code', 'ZZZZZZZ');
    await Promise.all([page.waitForLoadState('load'), page.click('button.pair')]);
    const refused = await page.locator('.flash').innerText();
    assert.match(refused, /^Pairing failed: BitPay does not accept pairing code ZZZZZZZ/);
    assert.match(refused, /Add New Token\) and enter it here/);
    assert.doesNotMatch(refused, /splynx-bitpay pair|HTTP/);
    await shot(page, 'admin-error');

    // BitPay failing (HTTP 500) reads as "try again later", not as a status code.
    assert.equal((await bitpay('POST', '/_sandbox/faults', { fail_next: 1, status: 500 })).status, 200);
    const { json: { pairingCode: early } } = await bitpay('POST', '/_sandbox/pairing-codes');
    await page.fill('#pairing_code', early);
    await Promise.all([page.waitForLoadState('load'), page.click('button.pair')]);
    const down = await page.locator('.flash').innerText();
    assert.match(down, /BitPay is down or overloaded; nothing was changed: try again in a few minutes/);
    assert.doesNotMatch(down, /HTTP 500|500/);

    // The guide's way: BitPay dashboard → Payment Tools → Manage API Tokens → Add New Token.
    const dashboard = await newPage(browser);
    await dashboard.goto(`${BITPAY}/dashboard/merchant/api-tokens`);
    assert.match(await dashboard.locator('.crumb').innerText(), /Payment Tools → Manage API Tokens/);
    await Promise.all([dashboard.waitForLoadState('load'), dashboard.click('button.add-token')]);
    const pairingCode = (await dashboard.locator('.new-code .pairing-code').innerText()).trim();
    assert.match(pairingCode, /^[A-Za-z0-9]{7}$/);
    assert.match(await dashboard.locator('.new-code').innerText(), /Config → Integrations → Bitpay/);
    await shot(dashboard, 'bitpay-dashboard-new-code');
    await page.fill('#pairing_code', pairingCode);
    await Promise.all([page.waitForLoadState('load'), page.click('button.pair')]);
    await page.getByText('Paired with the BitPay test environment: the pos token is active').waitFor();
    // Said once: the banner, no second success message (#20 item 16).
    assert.equal(await page.locator('.flash').count(), 0);
    assert.equal((await page.locator('.container').innerText()).match(/token is active/g).length, 1);
    assert.equal(await page.locator('#pairing_code').getAttribute('placeholder'), null, 'no example code once paired');
    assert.match(await page.locator('label[for=pairing_code]').innerText(), /replaces the active token/);

    // Client-initiated pairing: request a merchant code, approve it "in the dashboard".
    await page.selectOption('#facade', 'merchant');
    await Promise.all([page.waitForLoadState('load'), page.click('button.request')]);
    const code = (await page.locator('.pending-code').innerText()).trim();
    assert.match(code, /^[A-Za-z0-9]{7}$/);
    // Its expiry as a date a person reads, not a millisecond count.
    assert.match(await page.locator('.pending').innerText(), /waits for approval until \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/);
    await shot(page, 'admin-pending');

    // Meanwhile a support administrator sees the pairing read-only, without the code.
    const support = await newPage(browser);
    await support.goto(`${BASE}/bitpay/admin`);
    await login(support, 'support', { admin: true });
    assert.equal(new URL(support.url()).pathname, '/bitpay/admin');
    const refusal = await support.locator('.read-only').innerText();
    assert.match(refusal, /Only administrators with the role "super-administrator" may change the BitPay pairing/);
    // By the login and name Splynx has for them, not "administrator 7".
    assert.match(refusal, /signed in as support \(Sam Support\) with the role "administrator"/);
    for (const control of ['button.pair', 'button.unpair', 'button.request']) {
      assert.equal(await support.locator(control).count(), 0, `no ${control}`);
    }
    assert.ok(!(await support.content()).includes(code), 'the pending code is not shown');
    assert.match(await support.locator('.pending').innerText(), /A pairing code \(merchant\) waits for approval/);
    await shot(support, 'admin-read-only');
    await support.context().close();

    // Approved in the dashboard the page links to; the dashboard lists it with our SIN.
    const approveLink = page.locator('.pending a');
    assert.equal(await approveLink.getAttribute('href'), `${BITPAY}/dashboard/merchant/api-tokens`);
    await dashboard.goto(await approveLink.getAttribute('href'));
    assert.match(await dashboard.locator('table.tokens').innerText(), /pos\s+T\w+\s+Active/);
    const waiting = dashboard.locator('tr', { hasText: code });
    assert.match(await waiting.innerText(), /merchant\s+T\w+\s+Waiting for approval, pairing code/);
    await shot(dashboard, 'bitpay-dashboard-approve');
    await Promise.all([dashboard.waitForLoadState('load'), waiting.locator('button.approve').click()]);
    assert.match(await dashboard.locator('.approved').innerText(), new RegExp(`Approved pairing code ${code}`));
    assert.match(await dashboard.locator('table.tokens').innerText(), /merchant\s+T\w+\s+Active/);
    await dashboard.context().close();
    await page.reload();
    const tokens = await page.locator('table.tokens').innerText();
    assert.match(tokens, /merchant\s+active/);
    assert.match(tokens, /pos\s+active/);
    const html = await page.content();
    for (const t of (await bitpay('GET', '/_sandbox/tokens')).json) {
      assert.ok(!html.includes(t.token), 'no token is ever shown');
    }
    await shot(page, 'admin-paired');

    // Replacing the active token asks first, and says what it means.
    const { json: { pairingCode: another } } = await bitpay('POST', '/_sandbox/pairing-codes');
    await page.fill('#pairing_code', another);
    await Promise.all([page.waitForLoadState('load'), page.click('button.pair')]);
    assert.match(await page.locator('.panel').first().innerText(), /customers pay the BitPay account that code belongs to/);
    await shot(page, 'admin-replace-confirm');
    await Promise.all([page.waitForLoadState('load'), page.click('button.confirm-replace')]);
    assert.match(await page.locator('.pairing-state').innerText(), /^Paired with the BitPay test environment: the .*pos.* token is active/);
    const changes = await page.locator('.pairing-changes').innerText();
    assert.match(changes, /\(replaced the active token\), by Splynx administrator admin \(Ada Admin\) \(id 1, super-administrator\)/);
    await page.context().close();
  });

  test('no portal session: redirected to the Splynx portal login, then back', async () => {
    const page = await newPage(browser);
    for (const path of ['/bitpay/', '/bitpay/result?order=splynx-invoice-101-x', '/bitpay/pay-request?item_id=2024000001']) {
      const response = await addon('GET', path);
      assert.equal(response.status, 302, path);
      assert.equal(response.headers.get('location'), `/portal/login/?return=${encodeURIComponent(path)}`);
    }
    const target = '/bitpay/pay-invoice?module=splynx_bitpay_addon&model=Invoices&item_id=202401000001';
    await page.goto(`${BASE}${target}`);
    const url = new URL(page.url());
    assert.equal(url.pathname, '/portal/login/');
    assert.equal(url.searchParams.get('return'), target);
    await shot(page, 'login-redirect');
    // A customer id in the request is not a session.
    const spoofed = await addon('GET', '/bitpay/?customer_id=42&splynx_customer_id=42');
    assert.equal(spoofed.status, 302);
    await login(page, 'ada');
    assert.equal(`${new URL(page.url()).pathname}${new URL(page.url()).search}`, target);
    await page.getByText('Pay invoice #202401000001').waitFor();
    // Opened as a whole page (not in the portal's iframe): framed like a page, with a way back.
    assert.equal(await page.locator('.topbar .brand').innerText(), 'Splynx BitPay add-on');
    assert.match(await page.locator('.standalone .panel').innerText(), /Invoice total: 51\.61 USD/);
    assert.equal(await page.locator('.standalone a[href="/portal/"]').innerText(), 'Back to the customer portal');
    await shot(page, 'invoice-modal-opened-directly');
    await page.context().close();
  });

  test("another customer's invoice is refused", async () => {
    await ada.goto(`${BASE}/portal/`);
    await login(ada, 'ada');
    await ada.locator('button.bitpay-pay-invoice').first().waitFor();
    await shot(ada, 'dashboard-widget');
    for (const itemId of ['202401000003', '103']) {
      await ada.goto(`${BASE}/bitpay/pay-invoice?item_id=${itemId}`);
      const text = await ada.locator('.alert').innerText();
      assert.match(text, /was not found for your account/, itemId);
      assert.equal(await ada.locator('button.checkout').count(), 0);
    }
    await shot(ada, 'foreign-invoice-refused');
    const before = (await bitpay('GET', '/_sandbox/invoices')).json.length;
    // Even a hand-made Checkout with a valid token for Ada's session and Grace's document id.
    await ada.goto(`${BASE}/bitpay/pay-invoice?item_id=202401000001`);
    await ada.evaluate(() => {
      document.querySelector('input[name=document_id]').value = '103';
    });
    await Promise.all([ada.waitForLoadState('load'), ada.click('button.checkout')]);
    assert.match(await ada.locator('.alert').innerText(), /Invoice 103 was not found for your account/);
    assert.equal((await bitpay('GET', '/_sandbox/invoices')).json.length, before, 'no BitPay invoice was created');
  });

  test('a forged CSRF token is refused', async () => {
    const before = (await bitpay('GET', '/_sandbox/invoices')).json.length;
    await ada.goto(`${BASE}/bitpay/`);
    await ada.evaluate(() => {
      document.querySelector('input[name=_csrf]').value = 'forged';
    });
    await ada.fill('#amount', '10');
    const [response] = await Promise.all([ada.waitForResponse((r) => r.request().method() === 'POST'), ada.click('button.pay')]);
    assert.equal(response.status(), 403);
    assert.match(await ada.locator('.refill-error').innerText(), /form has expired/);
    await shot(ada, 'refill-csrf-refused');

    await ada.goto(`${BASE}/bitpay/pay-request?item_id=2024000001`);
    await ada.evaluate(() => {
      document.querySelector('input[name=_csrf]').value = 'forged';
    });
    const [modalPost] = await Promise.all([ada.waitForResponse((r) => r.request().method() === 'POST'), ada.click('button.checkout')]);
    assert.equal(modalPost.status(), 403);
    await ada.getByText('Please try again').waitFor();

    // No token at all, straight from another site.
    const bare = await addon('POST', '/bitpay/', { body: new URLSearchParams({ amount: '10' }) });
    assert.equal(bare.status, 302, 'no session: login first');
    assert.equal((await bitpay('GET', '/_sandbox/invoices')).json.length, before, 'no BitPay invoice was created');
  });

  test('invoice: icon → modal → Checkout Now → BitPay → webhook → Paid', async () => {
    await openInvoiceModal(ada, '202401000001');
    const frame = modal(ada);
    await frame.getByText('Pay invoice #202401000001').waitFor();
    assert.equal((await frame.locator('li.total').innerText()).trim(), 'Invoice total: 51.61 USD');
    assert.equal(await frame.locator('form.checkout-form').getAttribute('target'), '_parent');
    assert.equal(await frame.locator('.topbar').count(), 0, 'in the iframe: the modal body only');
    await shot(ada, 'invoice-modal');

    await frame.locator('button.checkout').click();
    const invoiceId = await payOnBitPay(ada, 'BTC', 'invoice');
    assert.equal(ada.url(), `${BITPAY}/invoice?id=${invoiceId}`, 'the whole window went to BitPay');

    const deliveries = await deliveriesFor(invoiceId);
    assert.deepEqual(deliveries.map((d) => [d.invoice_status, d.status]), [['paid', 200], ['confirmed', 200]]);
    assert.ok(deliveries.every((d) => d.url === `${BASE}/bitpay/ipn`));
    assert.equal((await splynx('GET', '/_sandbox/invoices/101')).json.status, 'paid');
    const payments = (await splynx('GET', '/_sandbox/payments')).json.filter((p) => p.receipt_number === invoiceId);
    assert.equal(payments.length, 1);
    assert.equal(Number(payments[0].amount), 51.61);
    const journal = binary('show', invoiceId).invoices[0].journal.map((e) => e.summary).join('\n');
    assert.match(journal, /signature valid/);

    await Promise.all([ada.waitForURL(/\/bitpay\/result\?order=/), ada.click('a.return')]);
    assert.equal((await ada.locator('.result-state').innerText()).trim(), 'Paid');
    assert.equal((await ada.locator('.result-document').innerText()).trim(), 'Invoice #202401000001');
    await shot(ada, 'invoice-result-paid');
    await Promise.all([ada.waitForURL(/\/portal\/finance\/invoices$/), ada.click('a.back')]);
    assert.equal((await ada.locator('tr[data-number="202401000001"] .status').innerText()).trim(), 'Paid');
    await shot(ada, 'invoice-list-paid');

    await ada.goto(`${BASE}/bitpay/pay-invoice?item_id=101`);
    assert.match(await ada.locator('.alert').innerText(), /Invoice #202401000001 is already paid/);
    await shot(ada, 'invoice-already-paid');
  });

  test('proforma: dashboard widget → modal → BitPay → Paid', async () => {
    await ada.goto(`${BASE}/portal/`);
    await ada.click('button.bitpay-pay-request');
    const frame = modal(ada);
    await frame.getByText('Pay proforma invoice #2024000001').waitFor();
    assert.equal((await frame.locator('li.total').innerText()).trim(), 'Proforma invoice total: 20.00 USD');
    await shot(ada, 'proforma-modal');
    await frame.locator('button.checkout').click();
    const invoiceId = await payOnBitPay(ada, 'ETH');
    assert.equal((await deliveriesFor(invoiceId)).at(-1).status, 200);
    const payments = (await splynx('GET', '/_sandbox/payments')).json.filter((p) => p.receipt_number === invoiceId);
    assert.equal(payments.length, 1);
    assert.equal(Number(payments[0].request_id), 201);
    await Promise.all([ada.waitForURL(/\/bitpay\/result/), ada.click('a.return')]);
    assert.equal((await ada.locator('.result-state').innerText()).trim(), 'Paid');
    assert.equal((await ada.locator('.result-document').innerText()).trim(), 'Proforma invoice #2024000001');
  });

  test('refill: amount → Pay → BitPay → webhook → Paid', async () => {
    await ada.goto(`${BASE}/bitpay/?amount=50`);
    assert.equal(await ada.inputValue('#amount'), '50', 'the dashboard widget pre-fills the amount');
    assert.match(await ada.locator('.bounds').innerText(), /Between 1\.00 and 5,000\.00 USD/);
    await shot(ada, 'refill');

    // The server checks the bounds too (the browser's own check switched off).
    await ada.evaluate(() => {
      document.querySelector('form.refill-form').noValidate = true;
    });
    await ada.fill('#amount', '5000.01');
    await Promise.all([ada.waitForLoadState('load'), ada.click('button.pay')]);
    assert.equal((await ada.locator('.refill-error').innerText()).trim(), 'Top-up amount must be between 1.00 and 5000.00 USD');
    await shot(ada, 'refill-out-of-bounds');

    await ada.fill('#amount', '25.00');
    await ada.click('button.pay');
    const invoiceId = await payOnBitPay(ada, 'USDC', 'refill');
    assert.deepEqual((await deliveriesFor(invoiceId)).map((d) => d.status), [200, 200]);
    const payments = (await splynx('GET', '/_sandbox/payments')).json.filter((p) => p.receipt_number === invoiceId);
    assert.equal(payments.length, 1);
    assert.equal(Number(payments[0].customer_id), 42);
    assert.equal(Number(payments[0].amount), 25);
    await Promise.all([ada.waitForURL(/\/bitpay\/result/), ada.click('a.return')]);
    assert.equal((await ada.locator('.result-state').innerText()).trim(), 'Paid');
    assert.equal((await ada.locator('.result-document').innerText()).trim(), 'Balance top-up');
    await shot(ada, 'refill-result-paid');
  });

  test('with a service fee: the window shows amount, fee and total; BitPay charges the total', async () => {
    // Partner 1's Modules-list Partners settings: 2 % fee, 20 % VAT on it (Ada and Grace).
    const ini = join(dirname(process.env.SPLYNX_BITPAY_CONFIG), 'addon/config/config.ini.php');
    const original = readFileSync(ini, 'utf8');
    writeFileSync(ini, original.replace('[1]\n', '[1]\nservice_fee = "2"\nfee_vat = "20"\nfee_message = "Crypto fee"\n'));
    const grace = await newPage(browser);
    try {
      await grace.goto(`${BASE}/portal/finance/invoices`);
      await login(grace, 'grace');
      await openInvoiceModal(grace, '202401000003');
      const frame = modal(grace);
      await frame.getByText('Pay invoice #202401000003').waitFor();
      const rows = await frame.locator('table.fee-table tr').allInnerTexts();
      assert.deepEqual(rows.map((r) => r.replace(/\s+/g, ' ').trim()), [
        'Invoice amount 25.00 USD',
        'Crypto fee (2 %) 0.50 USD',
        'VAT on the fee (20 %) 0.10 USD',
        'Total to pay 25.60 USD',
      ]);
      await shot(grace, 'invoice-modal-fee');
      // The admin raises the fee while the window is open: Checkout Now charges nothing
      // else than the total shown, and says why (#20 item 3).
      const withFee = readFileSync(ini, 'utf8');
      writeFileSync(ini, withFee.replace('service_fee = "2"', 'service_fee = "3"'));
      await Promise.all([grace.waitForLoadState('load'), frame.locator('button.checkout').click()]);
      await grace.getByText('The amount changed').waitFor();
      assert.match(await grace.locator('body').innerText(), /it is now 25\.90 USD, the page showed 25\.60 USD/);
      await shot(grace, 'invoice-amount-changed');
      writeFileSync(ini, withFee);
      await openInvoiceModal(grace, '202401000003');
      await frame.getByText('Total to pay').waitFor();
      await frame.locator('button.checkout').click();
      const invoiceId = await payOnBitPay(grace, 'BTC');
      assert.equal((await bitpay('GET', `/_sandbox/invoices/${invoiceId}`)).json.price, 25.6);
      assert.equal((await deliveriesFor(invoiceId)).at(-1).status, 200);
      const payments = (await splynx('GET', '/_sandbox/payments')).json.filter((p) => p.receipt_number === invoiceId);
      assert.equal(payments.length, 1);
      assert.equal(payments[0].amount, '25.6000');
      assert.equal((await splynx('GET', '/_sandbox/invoices/103')).json.status, 'paid');
      const fees = (await splynx('GET', '/_sandbox/transactions')).json.filter((t) => t.comment === `BitPay invoice ${invoiceId}`);
      assert.equal(fees.length, 1);
      assert.deepEqual([fees[0].type, fees[0].price, fees[0].tax_percent], ['debit', '0.5000', '20']);

      // The refill page says plainly that the fee comes on top of the amount entered.
      await grace.goto(`${BASE}/bitpay/`);
      assert.match(await grace.locator('.fee-note').innerText(), /does not include the fee: a service fee of 2 % plus 20 % VAT on the fee is added on top/);
      await shot(grace, 'refill-fee-note');
    } finally {
      writeFileSync(ini, original);
      await grace.context().close();
    }
    // Without the fee, the refill page says there is none.
    await ada.goto(`${BASE}/bitpay/`);
    assert.match(await ada.locator('.fee-note').innerText(), /No fee is added/);
  });

  test('a setting typed wrong: the admin page lists it, customers cannot start a payment', async () => {
    const ini = join(dirname(process.env.SPLYNX_BITPAY_CONFIG), 'addon/config/config.ini.php');
    const original = readFileSync(ini, 'utf8');
    writeFileSync(ini, original.replace('[1]\n', '[1]\nservice_fee = "2,5"\n'));
    try {
      const page = await newPage(browser);
      await page.goto(`${BASE}/bitpay/admin`);
      await login(page, 'admin', { admin: true });
      const problems = await page.locator('.config-problems').innerText();
      assert.match(problems, /Service fee/);
      assert.match(problems, /2,5/);
      assert.match(problems, /payments already received are still credited/);
      await shot(page, 'admin-config-problem');
      await page.context().close();
      await ada.goto(`${BASE}/bitpay/`);
      assert.doesNotMatch(await ada.content(), /2,5/, 'customers are not shown the admin\'s settings');
    } finally {
      writeFileSync(ini, original);
    }
  });

  test('direct pay links: off by default; on, number and amount only, paid without a login', async () => {
    await splynx('POST', '/_sandbox/seed', {
      invoices: [{ id: 106, number: '202401000006', customer_id: 43, status: 'not_paid', total: '12.34', due: '12.34' }],
    });
    const link = `${BASE}/bitpay/direct-pay-invoice?item_id=202401000006`;
    const visitor = await newPage(browser);
    let response = await visitor.goto(link);
    assert.equal(response.status(), 404);
    assert.equal(new URL(visitor.url()).pathname, '/bitpay/direct-pay-invoice', 'no login asked');
    assert.match(await visitor.locator('.alert').innerText(), /Invoice #202401000006 was not found/);
    await shot(visitor, 'direct-link-off');

    // "Grant access to unauthorized customers" in the Modules list.
    const ini = join(dirname(process.env.SPLYNX_BITPAY_CONFIG), 'addon/config/config.ini.php');
    const original = readFileSync(ini, 'utf8');
    writeFileSync(ini, original.replace('[common]\n', '[common]\ndirect_pay_links = "1"\n'));
    try {
      response = await visitor.goto(link);
      assert.equal(response.status(), 200);
      await visitor.getByText('Pay invoice #202401000006').waitFor();
      assert.equal((await visitor.locator('li.total').innerText()).trim(), 'Invoice total: 12.34 USD');
      const html = await visitor.content();
      for (const private_ of ['Grace', 'Hopper', 'grace@example.com', 'customer #43']) {
        assert.ok(!html.includes(private_), `${private_} is not shown`);
      }
      await shot(visitor, 'direct-link');
      await visitor.goto(`${BASE}/bitpay/direct-pay-invoice-by-id?item_id=106`);
      await visitor.getByText('Pay invoice #202401000006').waitFor();

      await visitor.locator('button.checkout').click();
      const invoiceId = await payOnBitPay(visitor, 'LTC');
      assert.equal((await deliveriesFor(invoiceId)).at(-1).status, 200);
      const payments = (await splynx('GET', '/_sandbox/payments')).json.filter((p) => p.receipt_number === invoiceId);
      assert.equal(payments.length, 1);
      assert.equal(Number(payments[0].customer_id), 43);
      // Back from BitPay to the link, which now says paid.
      await Promise.all([visitor.waitForURL(/direct-pay-invoice\?item_id=202401000006/), visitor.click('a.return')]);
      assert.match(await visitor.locator('.alert').innerText(), /Invoice #202401000006 is already paid/);
      await shot(visitor, 'direct-link-paid');

      for (const [path, text] of [
        ['/bitpay/direct-pay-invoice?item_id=209999999999', /Invoice #209999999999 was not found/],
        ['/bitpay/direct-pay-proforma?item_id=2024000001', /Proforma invoice #2024000001 is already paid/],
        ['/bitpay/direct-pay-request-by-id?item_id=x1', /payment link is incomplete or not valid/],
      ]) {
        await visitor.goto(`${BASE}${path}`);
        assert.match(await visitor.locator('.alert').innerText(), text, path);
        assert.equal(await visitor.locator('button.checkout').count(), 0, path);
      }
    } finally {
      writeFileSync(ini, original);
      await visitor.context().close();
    }
  });

  test('result page: waiting for confirmations, expired, and only for its owner', async () => {
    const waiting = binary('create-invoice', '--customer', '42', '--refill', '3.00');
    const waitingId = waiting.bitpay_invoice_id;
    await bitpay('POST', `/_sandbox/invoices/${waitingId}/status`, { status: 'paid' });
    assert.equal((await bitpay('POST', `/_sandbox/invoices/${waitingId}/deliver`)).json.status, 200);
    const order = binary('show', waitingId).invoices[0].order_id;
    await ada.goto(`${BASE}/bitpay/result?order=${order}`);
    assert.equal((await ada.locator('.result-state').innerText()).trim(), 'Waiting for confirmations');
    await shot(ada, 'result-waiting');

    const expired = binary('create-invoice', '--customer', '42', '--refill', '4.00');
    await bitpay('POST', `/_sandbox/invoices/${expired.bitpay_invoice_id}/expire`);
    assert.equal((await bitpay('POST', `/_sandbox/invoices/${expired.bitpay_invoice_id}/deliver`)).json.status, 200);
    const expiredOrder = binary('show', expired.bitpay_invoice_id).invoices[0].order_id;
    await ada.goto(`${BASE}/bitpay/result?order=${expiredOrder}`);
    assert.equal((await ada.locator('.result-state').innerText()).trim(), 'Not paid / expired');
    await shot(ada, 'result-expired');

    const grace = await newPage(browser);
    await grace.goto(`${BASE}/bitpay/result?order=${order}`);
    await login(grace, 'grace');
    await grace.getByText('Payment not found').waitFor();
    assert.equal(await grace.locator('.result-state').count(), 0);
    await shot(grace, 'result-foreign-refused');
    await grace.context().close();
  });

  test('IPN endpoint: 405, 400 for a bad or too big body, 503 while Splynx is down', async () => {
    const newestWebhook = () => JSON.stringify(binary('status').recent_webhooks[0] ?? null);
    const before = newestWebhook();
    assert.equal((await addon('GET', '/bitpay/ipn')).status, 405);
    const bad = await addon('POST', '/bitpay/ipn', { body: 'this is not json', headers: { 'content-type': 'application/json' } });
    assert.equal(bad.status, 400);
    assert.equal(await bad.text(), '');
    const huge = await addon('POST', '/bitpay/ipn', { body: `{"data":"${'x'.repeat(70000)}"}` });
    assert.equal(huge.status, 400);
    assert.equal((await addon('POST', '/bitpay/ipn', { body: '' })).status, 400);
    assert.equal(newestWebhook(), before, 'refused by the shim: the binary never started');
    const unknown = await addon('POST', '/bitpay/ipn', { body: '{"id":"NotOurs1234567890abcd"}' });
    assert.equal(unknown.status, 200);
    assert.match(newestWebhook(), /NotOurs1234567890abcd/, 'a JSON object reaches the binary');

    const created = binary('create-invoice', '--customer', '42', '--refill', '7.00');
    const id = created.bitpay_invoice_id;
    await splynx('POST', '/_sandbox/faults', { fail_next: 100, status: 503 });
    try {
      const paid = await bitpay('POST', `/_sandbox/invoices/${id}/pay`, { currency: 'BTC' });
      assert.equal(paid.status, 200, paid.text);
      assert.equal(paid.json.deliveries.at(-1).invoice_status, 'confirmed');
      assert.equal(paid.json.deliveries.at(-1).status, 503, 'Splynx down: BitPay must retry');
    } finally {
      await splynx('POST', '/_sandbox/faults', {});
    }
    const retried = await bitpay('POST', `/_sandbox/invoices/${id}/deliver`);
    assert.equal(retried.json.status, 200);
    assert.equal(retried.text.includes('"error":null'), true);
    const payments = (await splynx('GET', '/_sandbox/payments')).json.filter((p) => p.receipt_number === id);
    assert.equal(payments.length, 1, 'the retry credited it exactly once');
  });

  test('admin sees a payment BitPay took back after the credit', async () => {
    const deliveries = (await bitpay('GET', '/_sandbox/deliveries')).json;
    const id = deliveries.find((d) => d.invoice_status === 'confirmed').invoice_id;
    await bitpay('POST', `/_sandbox/invoices/${id}/status`, { status: 'invalid' });
    const delivered = await bitpay('POST', `/_sandbox/invoices/${id}/deliver`);
    assert.equal(delivered.json.status, 200, 'the webhook is answered 200');
    const page = await newPage(browser);
    await page.goto(`${BASE}/bitpay/admin`);
    await login(page, 'admin', { admin: true });
    const held = await page.locator('.held').innerText();
    assert.match(held, /Needs your attention/);
    assert.match(held, new RegExp(id));
    assert.match(held, /reversed after credit/);
    assert.match(held, /marked the invoice invalid after it was credited/);
    await shot(page, 'admin-reversed');
    const payments = (await splynx('GET', '/_sandbox/payments')).json.filter((p) => p.receipt_number === id);
    assert.equal(payments.length, 1, 'the payment stays until the admin acts');
    // Recent payments: by the number customers see, with the Splynx payment and what became of it.
    const recent = await page.locator('table.recent-payments').innerText();
    const row = recent.split('\n').find((line) => line.includes(id));
    assert.ok(row, `${id} among the recent payments: ${recent}`);
    assert.match(row, /(Invoice #202401000001|Proforma invoice #2024000001|Balance top-up)/);
    assert.ok(row.includes(`\t${payments[0].id}\t`), `Splynx payment ${payments[0].id} in ${row}`);
    assert.match(row, /reversed after credit/);
    assert.match(recent, /Balance top-up/);
    await page.context().close();
  });

  test('refunds from the admin page: only refund roles, confirmed first, states shown', async () => {
    // A credited payment BitPay has completed (refunds need `complete` and the merchant token paired above).
    const status = binary('status');
    const credited = status.recent_payments.find((p) => p.settlement === 'credited' && p.document !== 'refill' && status.refundable[p.bitpay_invoice_id]);
    assert.ok(credited, `a refundable payment: ${JSON.stringify(status.recent_payments)}`);
    const id = credited.bitpay_invoice_id;
    await bitpay('POST', `/_sandbox/invoices/${id}/status`, { status: 'complete' });

    // A support administrator sees no Refund action, and why (the binary refuses them too:
    // tests/integration/refunds.rs).
    const support = await newPage(browser);
    await support.goto(`${BASE}/bitpay/admin`);
    await login(support, 'support', { admin: true });
    assert.equal(await support.locator('button.refund').count(), 0, 'no Refund button');
    assert.match(await support.locator('.refund-refusal').innerText(), /Only administrators with the role "super-administrator" may refund/);
    await shot(support, 'admin-refund-refused');
    await support.context().close();
    assert.equal(binary('show', id).invoices[0].refunds.length, 0, 'nothing recorded or sent');

    // The super administrator: Refund → a confirmation that says what happens, amount prefilled.
    const page = await newPage(browser);
    await page.goto(`${BASE}/bitpay/admin`);
    await login(page, 'admin', { admin: true });
    const row = page.locator('table.recent-payments tr', { hasText: id });
    await shot(page, 'admin-refund-action');
    await Promise.all([page.waitForLoadState('load'), row.locator('button.refund').click()]);
    assert.match(await page.locator('.panel').first().innerText(), /BitPay e-mails the customer to ask for a refund address/);
    assert.match(await page.locator('.panel').first().innerText(), /booked in Splynx as a negative payment/);
    assert.equal(await page.inputValue('#amount'), status.refundable[id]);
    await page.fill('#amount', '5.00');
    await page.fill('#reason', 'goodwill');
    await shot(page, 'admin-refund-confirm');
    await Promise.all([page.waitForLoadState('load'), page.click('button.confirm-refund')]);
    assert.match(await page.locator('.flash').innerText(), /Refund \w+ of 5\.00 USD asked for: requested/);
    const refunds = () => page.locator('table.refunds').innerText();
    assert.match(await refunds(), /5\.00 USD\trequested/);
    assert.match(await refunds(), /Splynx administrator admin \(Ada Admin\)/);
    assert.match(await refunds(), /goodwill/);
    await shot(page, 'admin-refund-requested');

    // BitPay pays it out; its webhook reaches /bitpay/ipn: booked once as a negative payment.
    const [refund] = binary('show', id).invoices[0].refunds;
    const moved = await bitpay('POST', `/_sandbox/refunds/${refund.id}/status`, { status: 'success' });
    assert.equal(moved.json.delivered, 200);
    await page.reload();
    assert.match(await refunds(), /5\.00 USD\tpaid out/);
    const negative = (await splynx('GET', '/_sandbox/payments')).json.filter((p) => p.receipt_number === refund.id);
    assert.equal(negative.length, 1);
    assert.match(await refunds(), new RegExp(`payment ${negative[0].id}`));
    await shot(page, 'admin-refund-paid-out');

    // A second refund, cancelled from the page after a confirmation.
    await Promise.all([page.waitForLoadState('load'), row.locator('button.refund').click()]);
    await page.fill('#amount', '1.00');
    await Promise.all([page.waitForLoadState('load'), page.click('button.confirm-refund')]);
    await Promise.all([page.waitForLoadState('load'), page.locator('button.cancel-refund').first().click()]);
    assert.match(await page.locator('.panel').first().innerText(), /Nothing is booked in Splynx for a cancelled refund/);
    await Promise.all([page.waitForLoadState('load'), page.click('button.confirm-cancel-refund')]);
    assert.match(await page.locator('.flash').innerText(), /is cancelled/);
    assert.match(await refunds(), /1\.00 USD\tcancelled/);
    await shot(page, 'admin-refund-cancelled');

    // Refunded in the BitPay dashboard instead: held; the page offers to record it, once confirmed.
    const other = status.recent_payments.find((p) => p.settlement === 'credited' && p.bitpay_invoice_id !== id && status.refundable[p.bitpay_invoice_id]);
    const otherId = other.bitpay_invoice_id;
    await bitpay('POST', `/_sandbox/invoices/${otherId}/status`, { status: 'complete' });
    const { json: { refundId } } = await bitpay('POST', `/_sandbox/invoices/${otherId}/refund`);
    await bitpay('POST', `/_sandbox/invoices/${otherId}/deliver`);
    await bitpay('POST', `/_sandbox/refunds/${refundId}/status`, { status: 'success' });
    await page.reload();
    const held = page.locator('.held-table tr.note-row', { hasText: 'lists a refund' });
    assert.equal((await splynx('GET', '/_sandbox/payments')).json.filter((p) => p.receipt_number === refundId).length, 0, 'never by itself');
    await Promise.all([page.waitForLoadState('load'), held.locator('button.record-refund').click()]);
    assert.match(await page.locator('.panel').first().innerText(), /made in its own dashboard, not here/);
    await shot(page, 'admin-record-refund-confirm');
    await Promise.all([page.waitForLoadState('load'), page.click('button.confirm-record')]);
    assert.match(await page.locator('.flash').innerText(), new RegExp(`Recorded the dashboard refund ${refundId}`));
    assert.match(await refunds(), /the BitPay dashboard; recorded by Splynx administrator admin/);
    assert.equal((await splynx('GET', '/_sandbox/payments')).json.filter((p) => p.receipt_number === refundId).length, 1);
    await shot(page, 'admin-refund-recorded');
    // Then the held record is closed as any other, saying what was done.
    const resolve = held.locator('.resolve-form');
    await resolve.locator('input[name=note]').fill('dashboard refund recorded');
    await Promise.all([page.waitForLoadState('load'), resolve.locator('button.resolve').click()]);
    // Confirmed first, the note carried over and still editable.
    assert.equal(await page.locator('input#note').inputValue(), 'dashboard refund recorded');
    await Promise.all([page.waitForLoadState('load'), page.click('button.confirm-resolve')]);
    assert.match(await page.locator('.flash').innerText(), /is marked resolved/);
    await page.context().close();
  });

  test('admin unpairs; customers then get a friendly error', async () => {
    const page = await newPage(browser);
    await page.goto(`${BASE}/bitpay/admin`);
    await login(page, 'admin', { admin: true });
    assert.match(await page.locator('.counts').innerText(), /credited: 4/);
    assert.match(await page.locator('.counts').innerText(), /reversed: 1/);
    assert.match(await page.locator('.last-webhook').innerText(), /UTC$/);
    assert.match(await page.locator('.oldest').innerText(), /Balance top-up of customer 42/);
    // The last webhooks (BitPay delivered them through /bitpay/ipn), in words, and every
    // unsettled invoice.
    const webhooks = await page.locator('.recent-webhooks').innerText();
    assert.match(webhooks, /signature valid/);
    assert.match(webhooks, /received \((paid in full|confirmed|complete|failed to confirm)/);
    assert.doesNotMatch(webhooks, /invoice_[a-zA-Z]+/, 'no raw event names');
    assert.match(await page.locator('.unsettled').innerText(), /Balance top-up\t42\t3.00 USD/);
    // At 1280 px every table stays inside its card, and the page does not scroll sideways.
    await page.setViewportSize({ width: 1280, height: 900 });
    const fits = () => page.evaluate(() => {
      const inside = [...document.querySelectorAll('table.table')].every((t) => {
        const card = t.closest('.panel') || document.body;
        return t.getBoundingClientRect().right <= card.getBoundingClientRect().right + 1;
      });
      return inside && document.documentElement.scrollWidth <= window.innerWidth;
    });
    assert.ok(await fits(), 'tables fit their cards at 1280 px');
    await shot(page, 'admin-status-1280');
    await page.fill('#show', '202401000001');
    await Promise.all([page.waitForLoadState('load'), page.click('button:has-text("Show")')]);
    const found = await page.locator('.lookup').innerText();
    assert.match(found, /credited/);
    assert.match(found, /signature valid/);
    // The answer is on screen, not below the fold.
    const box = await page.locator('.lookup').boundingBox();
    assert.ok(box.y >= 0 && box.y < 900, `the look-up answer is in view (y ${box.y})`);
    await shot(page, 'admin-status');
    // On a phone the page does not scroll sideways either.
    await page.setViewportSize({ width: 390, height: 844 });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scroll on a phone');
    await shot(page, 'admin-status-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
    // A held payment is marked resolved on the page itself, with what the admin did.
    const held = page.locator('.held-table .resolve-form').first();
    await held.locator('input[name=note]').fill('payment deleted in Splynx');
    await Promise.all([page.waitForLoadState('load'), held.locator('button.resolve').click()]);
    assert.match(await page.locator('.panel').first().innerText(), /Nothing changes in Splynx or at the payment server/);
    await shot(page, 'admin-resolve-confirm');
    await Promise.all([page.waitForLoadState('load'), page.click('button.confirm-resolve')]);
    assert.match(await page.locator('.flash').innerText(), /is marked resolved/);
    assert.equal(await page.locator('.held').count(), 0, 'nothing is held any more');
    // The operator's desk: health in words, doctor's checks on request, the books.
    const health = await page.locator('.health-lines').innerText();
    assert.match(health, /The BitPay credential is stored/);
    assert.match(health, /Last webhook from BitPay \d+ (seconds|minutes) ago/);
    assert.doesNotMatch(health, /wait for you/, 'nothing is held any more');
    await Promise.all([page.waitForLoadState('load'), page.click('a.run-checks')]);
    assert.match(await page.locator('.checks-summary').innerText(), /\d+ checks passed/);
    assert.ok(await page.locator('.doctor-checks tr').count() > 10, 'every check is listed');
    await shot(page, 'admin-health-checks');
    assert.match(await page.locator('.no-audit').innerText(), /No audit recorded yet/);
    await Promise.all([page.waitForLoadState('load'), page.click('button.run-audit')]);
    assert.match(await page.locator('.flash').innerText(), /Audit of \d{4}-\d{2}-01 to \d{4}-\d{2}-\d{2}: no differences/);
    assert.match(await page.locator('.audit-summary').innerText(), /no differences/);
    await shot(page, 'admin-books');
    await Promise.all([page.waitForLoadState('load'), page.click('button.unpair')]);
    await page.getByText('Unpair from BitPay').first().waitFor();
    await shot(page, 'admin-unpair-confirm');
    await Promise.all([page.waitForLoadState('load'), page.click('button.confirm-unpair')]);
    assert.match(await page.locator('.flash').innerText(), /BitPay data has been successfully reset/);
    await page.getByText('Access token is not set for test environment').waitFor();
    assert.equal(await page.locator('.pair-howto').count(), 1, 'the pairing admin is told how to pair');
    await page.context().close();
    // An administrator who may not pair is not told to paste a code into a field they lack.
    const support = await newPage(browser);
    await support.goto(`${BASE}/bitpay/admin`);
    await login(support, 'support', { admin: true });
    await support.getByText('Access token is not set for test environment').waitFor();
    assert.equal(await support.locator('#pairing_code').count(), 0);
    assert.doesNotMatch(await support.locator('.container').innerText(), /paste it below/);
    // Nothing to do over SSH: no shell command on the page.
    assert.doesNotMatch(await support.locator('.container').innerText(), /splynx-bitpay [a-z]/);
    await shot(support, 'admin-unpaired-read-only');
    await support.context().close();

    await ada.goto(`${BASE}/bitpay/`);
    await ada.fill('#amount', '12');
    await Promise.all([ada.waitForLoadState('load'), ada.click('button.pay')]);
    assert.equal((await ada.locator('.refill-error').innerText()).trim(), 'Payments by BitPay are temporarily unavailable. Please try again later.');
    await shot(ada, 'refill-unavailable');
  });

  test('BTCPay Server: the admin connects through its authorize page; a top-up is paid through it', async () => {
    const configPath = process.env.SPLYNX_BITPAY_CONFIG;
    const original = readFileSync(configPath, 'utf8');
    writeFileSync(configPath, `[server]\nkind = "btcpay"\n\n${original}\n[btcpay]\nurl = "${BTCPAY}"\nstore_id = "${BTCPAY_STORE}"\n`);
    try {
      const page = await newPage(browser);
      await page.goto(`${BASE}/bitpay/admin`);
      await login(page, 'admin', { admin: true });
      assert.match(await page.locator('.pairing-state').innerText(), /^Not connected to BTCPay Server/);
      await shot(page, 'admin-btcpay-not-connected');
      // "Connect" leads to BTCPay's own page, which lists exactly what the add-on asks for.
      await Promise.all([page.waitForURL(`${BTCPAY}/api-keys/authorize?**`), page.click('button.connect')]);
      assert.deepEqual(await page.locator('li').allInnerTexts(), [
        'btcpay.store.canviewinvoices',
        'btcpay.store.cancreateinvoice',
        'btcpay.store.webhooks.canmodifywebhooks',
        'btcpay.store.canviewstoresettings',
        'btcpay.store.cancreatenonapprovedpullpayments',
        'btcpay.store.canviewpullpayments',
      ]);
      await shot(page, 'btcpay-authorize');
      // BTCPay posts the key back; the add-on checks it, stores it and registers its webhook.
      await Promise.all([page.waitForURL(/\/bitpay\/btcpay-connected\?state=/), page.click('#authorize')]);
      assert.match(await page.locator('.container').innerText(), new RegExp(`connected to store ${BTCPAY_STORE}`));
      await shot(page, 'btcpay-connected');
      await page.goto(`${BASE}/bitpay/admin`);
      assert.match(await page.locator('.pairing-state').innerText(), /^Connected to BTCPay Server/);
      await page.context().close();

      // A customer tops up on BTCPay's checkout; BTCPay's webhooks reach /bitpay/ipn.
      await ada.goto(`${BASE}/bitpay/`);
      assert.match(await ada.locator('.panel-heading').first().innerText(), /Refill your balance with BTCPay Server/);
      await ada.fill('#amount', '15');
      await Promise.all([ada.waitForURL(`${BTCPAY}/i/**`), ada.click('button.pay')]);
      const invoiceId = new URL(ada.url()).pathname.split('/').pop();
      await shot(ada, 'btcpay-checkout');
      await Promise.all([ada.waitForLoadState('load'), ada.click('#pay')]);
      await Promise.all([ada.waitForURL(/\/bitpay\/result/), ada.click('a.return')]);
      assert.equal((await ada.locator('.result-state').innerText()).trim(), 'Paid');
      assert.match(await ada.locator('dl').innerText(), new RegExp(`BTCPay Server invoice\\s+${invoiceId}`));
      await shot(ada, 'btcpay-result-paid');
      const payments = (await splynx('GET', '/_sandbox/payments')).json.filter((p) => p.receipt_number === invoiceId);
      assert.equal(payments.length, 1);
      assert.equal(Number(payments[0].amount), 15);
      const deliveries = (await btcpay('GET', '/_sandbox/deliveries')).json.filter((d) => d.invoice_id === invoiceId);
      assert.deepEqual(deliveries.map((d) => [d.type, d.http_code]), [
        ['InvoiceReceivedPayment', 200], ['InvoiceProcessing', 200], ['InvoiceSettled', 200],
      ]);
    } finally {
      writeFileSync(configPath, original);
    }
  });
});

