// Shared by the browser tests: the environment run.sh sets, the browser, the sandboxes'
// control routes, the real binary, screenshots.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the browser tests through tests/browser/run.sh`);
  }
  return value;
}

export const BASE = required('BASE_URL');
export const BITPAY = required('BITPAY_URL');
export const BTCPAY = required('BTCPAY_URL');
export const BTCPAY_STORE = required('BTCPAY_STORE');
export const SPLYNX = required('SPLYNX_URL');
const SHOTS = required('SCREENSHOT_DIR');
mkdirSync(SHOTS, { recursive: true });

export async function launch() {
  // playwright-core gives every launch a fresh temporary user-data-dir.
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  context.setDefaultTimeout(20000);
  return context.newPage();
}

export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Logs in through the (fake) Splynx login page the browser is on, or goes there. */
export async function login(page, who, { admin = false } = {}) {
  const loginPath = admin ? '/admin/login/' : '/portal/login/';
  if (!page.url().includes(loginPath)) {
    await page.goto(`${BASE}${loginPath}`);
  }
  await page.fill('#login', who);
  await page.fill('#password', 'secret');
  await Promise.all([page.waitForLoadState('load'), page.click('#sign-in')]);
}

async function call(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, json, text };
}

export const bitpay = (method, path, body) => call(BITPAY, method, path, body);
export const btcpay = (method, path, body) => call(BTCPAY, method, path, body);
export const splynx = (method, path, body) => call(SPLYNX, method, path, body);
export const addon = (method, path, init = {}) => fetch(`${BASE}${path}`, { method, redirect: 'manual', ...init });

/** Runs the real splynx-bitpay with the test config; returns the parsed JSON. */
export function binary(...args) {
  const out = execFileSync(required('SPLYNX_BITPAY_BIN'), ['--config', required('SPLYNX_BITPAY_CONFIG'), '--json', ...args], {
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

export async function deliveriesFor(invoiceId) {
  const { json } = await bitpay('GET', '/_sandbox/deliveries');
  return json.filter((d) => d.invoice_id === invoiceId);
}

/** The BitPay invoice id of a checkout URL. */
export function invoiceIdOf(url) {
  return new URL(url).searchParams.get('id');
}

/**
 * On the sandbox's BitPay checkout: choose `coin`, confirm, wait for the receipt.
 * Screenshots each step when `name` is given.
 */
export async function payOnBitPay(page, coin, name) {
  await page.waitForURL((url) => url.href.startsWith(`${BITPAY}/invoice?id=`));
  await page.getByText('Select a currency').waitFor();
  if (name) await shot(page, `${name}-bitpay-choose-currency`);
  await Promise.all([page.waitForURL(/currency=/), page.click(`a.coin[data-currency="${coin}"]`)]);
  await page.getByRole('button', { name: 'Confirm payment' }).waitFor();
  if (name) await shot(page, `${name}-bitpay-confirm`);
  await Promise.all([page.waitForLoadState('load'), page.click('button.confirm')]);
  await page.getByText('Payment from bitpay').waitFor();
  if (name) await shot(page, `${name}-bitpay-receipt`);
  return invoiceIdOf(page.url());
}
