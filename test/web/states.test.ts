/**
 * The console page's states, each with its words and the one next step that helps (issue 16),
 * in headless Chromium against a real Xvnc through Porthole: a machine whose console refuses the
 * connection is said after the first attempt (not after two minutes of retries), with Try again;
 * expired, revoked, damaged and used links each have their own words, no console buttons, and a
 * "Get a new link" button when `[porthole] new_link_url` is set; the token store not answering;
 * the time left when the clock will close the session; the favicon. Every state is checked with
 * axe-core (no serious or critical violation) and photographed into the test output directory.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { GatewayError } from '../../src/errors.ts';
import { hashToken, type TokenStore } from '../../src/store/types.ts';
import { createPages } from '../../src/web/pages.ts';
import type { Inventory } from '../../src/inventory/types.ts';
import { haveChromium, launchBrowser, waitForConsoleState } from '../support/browser.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { freePort, haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER_ID = '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d';
const OFF_ID = '8b7c6d5e-4f3a-4b2c-9d0e-1f2a3b4c5d6e';
const NEW_LINK = 'https://portal.example.com/servers/web-1/console';
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
// screenshots of each state: $TEST_OUTPUT_DIR, else .tmp/test-output (ignored by git)
const SHOTS = join(process.env.TEST_OUTPUT_DIR ?? join(process.cwd(), '.tmp', 'test-output'), 'web-states');

/** axe-core's serious and critical violations on `page`, as `rule: target` lines. */
async function axeProblems(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(async () => (globalThis as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> } }).axe.run());
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

async function visible(page: Page, selector: string): Promise<boolean> {
  return page.isVisible(selector);
}

describe('console page states with a next step', { skip: (!haveXvnc || !haveChromium) && 'needs Xvnc and Chromium', timeout: 120_000 }, () => {
  let xvnc: Xvnc;
  let browser: Browser;
  let context: BrowserContext;
  let gw: TestGateway | undefined;
  let offPort: number;

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
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
  async function check(page: Page, name: string, axe = true): Promise<void> {
    await page.screenshot({ path: join(SHOTS, `${name}.png`) });
    if (axe) assert.deepEqual(await axeProblems(page), [], `axe-core on ${name}`);
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

  it('gives expired, revoked, damaged, used and missing links each their own words, no console buttons, and the operator\'s new-link button', async () => {
    const g = await start({ 'porthole.new_link_url': NEW_LINK, 'porthole.single_use_tokens': 'true' });
    const expired = await g.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    await g.gateway.stores.database!.db.updateTable('console_auth_tokens').set({ expires: Math.floor(Date.now() / 1000) - 5 }).where('token_hash', '=', hashToken(expired.token)).execute();
    const revoked = await g.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    await g.gateway.stores.tokens.revoke(revoked.token);
    const base = `http://127.0.0.1:${g.port}/vnc_auto.html`;
    const cases: Array<[string, string, string]> = [
      ['expired', `${expired.url}&lang=en`, 'This console link has expired. Ask for a new console URL.'],
      ['revoked', `${revoked.url}&lang=en`, 'This console link is not valid: it was revoked, or it never existed. Ask for a new link.'],
      ['malformed', `${base}?lang=en&path=${encodeURIComponent(`?token=${revoked.token.slice(0, 20)}`)}`, 'This console link is incomplete or damaged. Copy the whole link again, or ask for a new one.'],
      ['missing', `${base}?lang=en`, 'No console token in this URL.'],
    ];
    for (const [name, url, words] of cases) {
      const page = await context.newPage();
      try {
        await page.goto(url);
        await waitForConsoleState(page, 'refused');
        assert.equal(await page.textContent('#status'), words, name);
        for (const button of ['#connect', '#ctrl-alt-del', '#fullscreen']) assert.equal(await visible(page, button), false, `${name}: ${button} is not shown`);
        assert.equal(await visible(page, '#new-link'), true, `${name}: the new-link button`);
        assert.equal(await page.textContent('#new-link'), 'Get a new link');
        assert.equal(await page.getAttribute('#new-link', 'href'), NEW_LINK);
        // the refused pages share their markup: axe-core checks two of them
        await check(page, name, name === 'expired' || name === 'revoked');
      } finally {
        await page.close();
      }
    }

    // single-use: the first page has the console; a second browser (another client would do
    // too) with the same link is refused because the token is used, and says so
    const used = await g.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    const first = await context.newPage();
    const other = await browser.newContext({ bypassCSP: true, locale: 'en-US' });
    try {
      await first.goto(`${used.url}&lang=en`);
      await waitForConsoleState(first, 'connected');
      const second = await other.newPage();
      await second.goto(`${used.url}&lang=en`);
      await waitForConsoleState(second, 'refused');
      assert.equal(await second.textContent('#status'), 'This console link has already been used: it opens one session only. Ask for a new link.');
      assert.equal(await visible(second, '#connect'), false);
      assert.equal(await second.getAttribute('#new-link', 'href'), NEW_LINK);
      await check(second, 'used', false);
    } finally {
      await first.close();
      await other.close();
    }
  });

  it('without new_link_url shows no new-link button, and the German words', async () => {
    const g = await start();
    const { url, token } = await g.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    await g.gateway.stores.tokens.revoke(token);
    const page = await context.newPage();
    try {
      await page.goto(`${url}&lang=de`);
      await waitForConsoleState(page, 'refused');
      assert.equal(await page.textContent('#status'), 'Dieser Konsolen-Link ist ungültig: Er wurde widerrufen oder hat nie existiert. Fordern Sie einen neuen Link an.');
      assert.equal(await visible(page, '#new-link'), false);
      await check(page, 'revoked-de');
    } finally {
      await page.close();
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
      await check(page, 'store-unavailable');
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
