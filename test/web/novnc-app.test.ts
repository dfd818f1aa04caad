/**
 * The operator's choice of page (issue 16): with `[DEFAULT] web` at Debian's noVNC app
 * (`/usr/share/novnc`, package `novnc`), Porthole serves that app at /vnc.html and /vnc_lite.html
 * as websockify does, and the app connects through Porthole with the console URL's token (in
 * `path`) to a real Xvnc in headless Chromium, under a CSP that lets it run (no violation) while
 * Porthole's own page keeps its stricter one at /vnc_auto.html; `[porthole] console_page = web`
 * hands Nova's paths to the app too; the start-up lines say which page answers where.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { haveChromium, launchBrowser, waitForConsoleState } from '../support/browser.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const APP = '/usr/share/novnc';
const haveApp = existsSync(`${APP}/vnc_lite.html`) && existsSync(`${APP}/app/ui.js`);
const SERVER_ID = '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e';

/** Collects the page's CSP violations (Chromium reports each on the console). */
function watchCsp(page: Page): string[] {
  const seen: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) seen.push(m.text());
  });
  return seen;
}

describe('noVNC app from [DEFAULT] web', { skip: (!haveXvnc || !haveChromium || !haveApp) && 'needs Xvnc, Chromium and Debian\'s novnc package', timeout: 90_000 }, () => {
  let xvnc: Xvnc;
  let browser: Browser;
  let gw: TestGateway | undefined;

  before(async () => {
    xvnc = await startXvnc({ colour: '#3366cc' });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
    await xvnc?.stop();
  });

  async function start(settings: Record<string, string>): Promise<{ token: string; query: string }> {
    await gw?.close();
    gw = await startGateway({ 'DEFAULT.web': APP, ...settings });
    await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'web-1', projectId: 'p1', status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port } });
    const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    return { token, query: `path=${encodeURIComponent(`?token=${token}`)}` };
  }

  it('serves the app at vnc.html and vnc_lite.html, connecting with the token, and Porthole\'s page at vnc_auto.html', async () => {
    const { query } = await start({});
    assert.ok(gw!.logs.some((l) => l.msg === `noVNC console pages: noVNC's app from [DEFAULT] web ${APP} at /vnc.html, /vnc_lite.html; Porthole's page at /vnc_auto.html, /vnc.auto.html ([porthole] console_page)`), 'the start-up line says which page answers where');

    const lite = await browser.newPage();
    const liteCsp = watchCsp(lite);
    try {
      const res = await lite.goto(`${gw!.origin}/vnc_lite.html?${query}`);
      assert.match(res!.headers()['content-security-policy'] ?? '', /script-src 'self' 'sha256-/);
      // vnc_lite.html connects by itself and writes "Connected (unencrypted) to ..." in #status
      await lite.waitForFunction(() => /^Connected/.test(document.getElementById('status')?.textContent ?? ''), undefined, { timeout: 15_000 });
      assert.ok(await lite.$('canvas'), 'the app draws the console');
      assert.deepEqual(liteCsp, []);
    } finally {
      await lite.close();
    }

    const full = await browser.newPage();
    const fullCsp = watchCsp(full);
    try {
      await full.goto(`${gw!.origin}/vnc.html?autoconnect=true&${query}`);
      await full.waitForFunction(() => document.documentElement.classList.contains('noVNC_connected'), undefined, { timeout: 15_000 });
      assert.deepEqual(fullCsp, []);
    } finally {
      await full.close();
    }

    const own = await browser.newPage();
    try {
      const res = await own.goto(`${gw!.origin}/vnc_auto.html?${query}&lang=en`);
      // Porthole's page keeps its own policy: no inline style, no script hash
      assert.equal(/'unsafe-inline'|sha256-/.test(res!.headers()['content-security-policy'] ?? ''), false);
      await waitForConsoleState(own, 'connected');
    } finally {
      await own.close();
    }
  });

  it('with console_page = web hands vnc_auto.html to the app too', async () => {
    const { query } = await start({ 'porthole.console_page': 'web' });
    assert.ok(gw!.logs.some((l) => l.msg === `noVNC console pages: noVNC's app from [DEFAULT] web ${APP} at /vnc.html, /vnc_lite.html, /vnc_auto.html, /vnc.auto.html (its vnc_lite.html) ([porthole] console_page)`));
    const res = await fetch(`${gw!.origin}/vnc_auto.html?${query}`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /app\/ui\.js/, 'Debian\'s vnc_auto.html is its vnc.html');
    assert.doesNotMatch(html, /porthole-state/);
  });

  it('without the app in [DEFAULT] web, Porthole\'s page answers at every path', async () => {
    await gw?.close();
    gw = await startGateway({});
    assert.ok(gw.logs.some((l) => l.msg === 'noVNC console page: Porthole\'s at /vnc.html, /vnc_lite.html, /vnc_auto.html, /vnc.auto.html'));
    const res = await fetch(`${gw.origin}/vnc.html`);
    assert.match(await res.text(), /porthole-state/);
  });
});
