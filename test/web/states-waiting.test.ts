/**
 * The console page's states that wait for something (issue 16), in headless Chromium against a
 * real Xvnc through Porthole: a machine whose console refuses the connection is said after the
 * first attempt (not after two minutes of retries), with Try again, which connects once the
 * console listens; the token store not answering; the time left when the token's expiry or
 * max_console_duration will close the session; the favicon; new_link_url checked at start. Each
 * state is photographed into the test output directory and checked with axe-core.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { GatewayError } from '../../src/errors.ts';
import type { Inventory } from '../../src/inventory/types.ts';
import { hashToken, type TokenStore } from '../../src/store/types.ts';
import { createPages } from '../../src/web/pages.ts';
import { checkState } from '../support/axe.ts';
import { haveChromium, launchBrowser, waitForConsoleState } from '../support/browser.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { freePort, haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER_ID = '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d';
const OFF_ID = '8b7c6d5e-4f3a-4b2c-9d0e-1f2a3b4c5d6e';

async function visible(page: Page, selector: string): Promise<boolean> {
  return page.isVisible(selector);
}

describe('console page: states that wait, and the time left', { skip: (!haveXvnc || !haveChromium) && 'needs Xvnc and Chromium', timeout: 120_000 }, () => {
  let xvnc: Xvnc;
  let browser: Browser;
  let context: BrowserContext;
  let gw: TestGateway | undefined;
  let offPort: number;

  before(async () => {
    xvnc = await startXvnc({ colour: '#3366cc' });
    browser = await launchBrowser();
    // axe-core is put in the page as a script of the test's own: the page's CSP would refuse it
    context = await browser.newContext({ bypassCSP: true, locale: 'en-US' });
    offPort = await freePort();
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await gw?.close();
    await xvnc?.stop();
  });

  async function start(settings: Record<string, string> = {}): Promise<TestGateway> {
    await gw?.close();
    gw = await startGateway(settings);
    await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'web-1', projectId: 'p1', status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port } });
    await gw.gateway.stores.inventory.put({ id: OFF_ID, name: 'db-off', projectId: 'p1', status: 'SHUTOFF', vnc: { host: '127.0.0.1', port: offPort } });
    return gw;
  }

  /** A screenshot of the state; axe-core too unless the same markup was checked in another state (axe takes seconds). */
  function check(page: Page, name: string, axe = true): Promise<void> {
    return checkState(page, 'web-states', name, axe);
  }

  it('says at once that the machine is off or its console is not listening, with Try again, and connects once it listens', async () => {
    const g = await start();
    const { url, token } = await g.mint({ host: '127.0.0.1', port: offPort, instanceUuid: OFF_ID });
    const page = await context.newPage();
    let relay: Server | undefined;
    const sockets = new Set<Socket>();
    try {
      await page.goto(`${url}&lang=en`);
      await waitForConsoleState(page, 'waiting');
      assert.equal(await page.textContent('#status'), 'db-off is off or its console is not listening.');
      // said after the first attempt, not after a run of retries
      const refusals = g.logs.filter((l) => l.code === 'BACKEND_UNREACHABLE' && l.tokenHash === hashToken(token).slice(0, 8));
      assert.equal(refusals.length, 1);
      assert.equal(await page.textContent('#connect'), 'Try again');
      assert.equal(await visible(page, '#ctrl-alt-del'), false);
      assert.equal(await visible(page, '#new-link'), false);
      await check(page, 'backend-refused');

      // the console starts listening: Try again connects without waiting for the slow retry
      relay = forwarder(xvnc.port, sockets);
      await new Promise<void>((r) => relay!.listen(offPort, '127.0.0.1', () => r()));
      await page.click('#connect');
      await waitForConsoleState(page, 'connected');
      assert.equal(await page.textContent('#status'), 'Connected to db-off');
      assert.equal(await visible(page, '#ctrl-alt-del'), true);
    } finally {
      await page.close();
      for (const s of sockets) s.destroy();
      relay?.close();
    }
  });

  it('shows the time left when the token or max_console_duration will close the session, and the favicon', async () => {
    const g = await start({ 'porthole.max_console_duration': '1200', 'consoleauth.enforce_session_timeout': 'true' });
    const { url } = await g.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID, ttl: 300 });
    const page = await context.newPage();
    try {
      await page.goto(`${url}&lang=en`);
      await waitForConsoleState(page, 'connected');
      // the token's expiry (5 min) comes before the maximum duration (20 min)
      assert.match(await page.textContent('#time-left') ?? '', /^Closes in [45] min$/);
      assert.equal(await visible(page, '#time-left'), true);
      await check(page, 'time-left');
      const icon = await page.getAttribute('link[rel=icon]', 'href');
      const res = await fetch(new URL(icon!, g.origin));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/svg+xml');
    } finally {
      await page.close();
    }
    const g2 = await start({ 'porthole.max_console_duration': '1200' });
    const minted = await g2.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID, ttl: 300 });
    const page2 = await context.newPage();
    try {
      await page2.goto(`${minted.url}&lang=fr`);
      await waitForConsoleState(page2, 'connected');
      assert.match(await page2.textContent('#time-left') ?? '', /^Fermeture dans (19|20)\u00a0min$/);
    } finally {
      await page2.close();
    }
  });

  it('refuses to start with a new_link_url that is not an http or https URL', async () => {
    await gw?.close();
    gw = undefined;
    for (const bad of ['wss://portal.example.com/', 'javascript:alert(1)', 'portal.example.com']) {
      await assert.rejects(startGateway({ 'porthole.new_link_url': bad }), /new_link_url/, bad);
    }
  });

  it('says the token store is not answering and tries again by itself (a store that fails stands in for one that is down)', async () => {
    // a real store outage takes the gateway's own store away; here the pages get a store whose
    // lookups fail as the guarded store's do, and the page is served as the gateway serves it
    let down = true;
    const g = await start();
    const { token } = await g.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    const real = g.gateway.stores.tokens;
    const tokens = { ...real, lookup: (t: string) => (down ? Promise.reject(new GatewayError('STORE_UNAVAILABLE', 'lookup failed', { status: 503 })) : real.lookup(t)) } as TokenStore;
    const pages = createPages({ tokens, inventory: g.gateway.stores.inventory as Inventory, webDir: null });
    const server: HttpServer = createHttpServer(pages);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const page = await context.newPage();
    try {
      const res = await fetch(`http://127.0.0.1:${port}/porthole/token-state?token=${token}`);
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { state: string }).state, 'unavailable');
      await page.goto(`http://127.0.0.1:${port}/vnc_auto.html?lang=en&path=${encodeURIComponent(`?token=${token}`)}`);
      await waitForConsoleState(page, 'waiting');
      assert.equal(await page.textContent('#status'), 'Porthole cannot check this console link right now (its token store is not answering). It will try again by itself.');
      assert.equal(await page.textContent('#connect'), 'Try again');
      await check(page, 'store-unavailable', false);
      down = false;
    } finally {
      await page.close();
      server.close();
    }
  });
});

/** A TCP listener that relays every connection to `target`: the machine's console starts listening. */
function forwarder(target: number, sockets: Set<Socket>): Server {
  return createServer((client) => {
    const backend = connect(target, '127.0.0.1');
    sockets.add(client).add(backend);
    client.pipe(backend).pipe(client);
    const end = () => {
      client.destroy();
      backend.destroy();
    };
    client.on('error', end).on('close', end);
    backend.on('error', end).on('close', end);
  });
}
