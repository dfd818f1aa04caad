/**
 * The console page says in words why a limit ended or refused its console (headless Chromium,
 * noVNC against a real Xvnc through Porthole): `[porthole] console_idle_timeout` (noVNC's own
 * update requests and fence replies keep flowing and must not count as input), `max_console_duration`
 * (both: state `disconnected`, Connect enabled, no reconnect by itself), and a concurrent-console
 * limit, which the browser's WebSocket only sees as a failed connection: the page learns which
 * limit from the token state, says it, and connects once a place is free.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { accessUrl } from '../../src/consoles/console-url.ts';
import { openRfbConsole } from '../support/backends.ts';
import { haveChromium, launchBrowser, waitForConsoleState } from '../support/browser.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER_ID = '4d3c2b1a-8f7e-4d6c-9b5a-4e3d2c1b0a90';

describe('console page: limits and timeouts in words', { skip: (!haveXvnc || !haveChromium) && 'needs Xvnc and Chromium', timeout: 120_000 }, () => {
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

  async function start(settings: Record<string, string>): Promise<{ url: string; ws: string }> {
    await gw?.close();
    gw = await startGateway(settings);
    await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'web-1', projectId: 'p1', status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port } });
    const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    return { url: `${accessUrl(gw.gateway.novnc!.baseUrl, 'novnc', token)}&lang=en`, ws: `ws://127.0.0.1:${gw.port}/?token=${token}` };
  }

  it('says the console was closed for lack of input, and Connect opens it again', async () => {
    const { url } = await start({ 'porthole.console_idle_timeout': '2' });
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await waitForConsoleState(page, 'connected');
      await waitForConsoleState(page, 'disconnected', 10_000);
      assert.equal(await page.textContent('#status'), 'Disconnected: The console was closed after a time without input. Press Connect to open it again.');
      assert.equal(await page.isDisabled('#connect'), false);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(await page.evaluate(() => document.body.dataset.consoleState), 'disconnected', 'no reconnect by itself');
      await page.click('#connect');
      await waitForConsoleState(page, 'connected');
    } finally {
      await page.close();
    }
  });

  it('says the session reached its maximum duration', async () => {
    const { url } = await start({ 'porthole.max_console_duration': '3' });
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await waitForConsoleState(page, 'connected');
      // input does not keep it open
      await page.mouse.move(20, 20);
      await waitForConsoleState(page, 'disconnected', 10_000);
      assert.equal(await page.textContent('#status'), 'Disconnected: The console session reached its maximum duration. Press Connect to open it again.');
    } finally {
      await page.close();
    }
  });

  it('says which limit refused the console, and connects once a place is free', async () => {
    const { url, ws } = await start({ 'porthole.max_consoles_per_server': '1' });
    const holder = await openRfbConsole(ws);
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'Too many consoles are open on this machine. Close one, or try again in a moment.', null, { timeout: 15_000 });
      assert.equal(await page.evaluate(() => document.body.dataset.consoleState), 'reconnecting');
      holder.ws.close();
      await waitForConsoleState(page, 'connected', 20_000);
    } finally {
      await page.close();
    }
  });
});
