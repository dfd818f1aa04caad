/**
 * The console page when `[consoleauth] enforce_session_timeout` closes its session: headless
 * Chromium shows a real Xvnc desktop through Porthole with an 8 s token (room for a cold browser to load noVNC), and at the token's expiry
 * the page says in words that the session expired and a new console URL is needed (state
 * `refused`: no reconnect), from the close code and reason, not from the token's state, which
 * after a sweep or a single use would only say "unknown".
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { accessUrl } from '../../src/consoles/console-url.ts';
import { haveChromium, launchBrowser, waitForCanvasPixel, waitForConsoleState } from '../support/browser.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER_ID = '3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f';

describe('console page: a session closed at its token\'s expiry', { skip: (!haveXvnc || !haveChromium) && 'needs Xvnc and Chromium' }, () => {
  let gw: TestGateway;
  let xvnc: Xvnc;
  let browser: Browser;

  before(async () => {
    xvnc = await startXvnc({ colour: '#3366cc' });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
    await xvnc?.stop();
  });

  for (const singleUse of [false, true]) {
    it(`says the session expired${singleUse ? ' (single-use token)' : ''}`, async () => {
      await gw?.close();
      gw = await startGateway({ 'consoleauth.enforce_session_timeout': 'true', 'porthole.single_use_tokens': String(singleUse) });
      await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'web-1', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port } });
      const { token, record } = await gw.gateway.stores.tokens.create({
        consoleType: 'novnc', host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID,
        accessUrlBase: gw.gateway.novnc!.baseUrl, ttl: 8, internalAccessPath: null,
      });
      const page = await browser.newPage();
      try {
        await page.goto(`${accessUrl(gw.gateway.novnc!.baseUrl, 'novnc', token)}&lang=en`);
        await waitForConsoleState(page, 'connected');
        await waitForCanvasPixel(page, 5, 5, [0x33, 0x66, 0xcc]);
        await waitForConsoleState(page, 'refused', record.expires * 1000 - Date.now() + 5000);
        assert.equal(await page.textContent('#status'), 'Disconnected: The console session expired. Ask for a new console URL.');
        // final: no Connect button (only a new link helps), and no attempt follows
        assert.equal(await page.isVisible('#connect'), false);
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(await page.evaluate(() => document.body.dataset.consoleState), 'refused');
      } finally {
        await page.close();
      }
    });
  }
});
