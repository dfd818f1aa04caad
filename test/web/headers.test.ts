/**
 * The console listener's HTTP headers: no framing (`frame-ancestors 'none'`, `X-Frame-Options:
 * DENY`), a `connect-src` that allows the page's own origin and only the one other WebSocket
 * origin its query names, checked over plain HTTP; then in headless Chromium: a page of another
 * origin cannot frame the console, the console still connects to its own proxy (TigerVNC Xvnc
 * behind it) and to another proxy its query names, and not to one named in its #fragment.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { hashToken } from '../../src/store/types.ts';
import { createPages } from '../../src/web/pages.ts';
import { haveChromium, launchBrowser, waitForCanvasPixel, waitForConsoleState } from '../support/browser.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER_ID = '7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const BLUE: [number, number, number] = [0x33, 0x66, 0xcc];

function connectSrc(csp: string | null): string {
  const m = /(?:^|;\s*)connect-src ([^;]*)/.exec(csp ?? '');
  assert.ok(m, `no connect-src in ${csp}`);
  return m[1]!;
}

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; origin: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function close(server: Server | undefined): Promise<void> {
  return new Promise((r) => (server ? server.close(() => r()) : r()));
}

describe('console listener headers over plain HTTP', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw?.close();
  });

  it('sends the page with frame-ancestors none, X-Frame-Options DENY, connect-src self only, and no HSTS', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: 5900 });
    const res = await fetch(`${gw.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp ?? '', /(^|;\s*)frame-ancestors 'none'(;|$)/);
    assert.equal(connectSrc(csp), "'self'");
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('strict-transport-security'), null);
  });

  it('sends X-Frame-Options DENY on every other response: static files, token state, the root, a 404, a 405', async () => {
    for (const [path, method, status] of [
      ['/porthole/console.js', 'GET', 200],
      ['/novnc/core/rfb.js', 'GET', 200],
      ['/porthole/token-state?token=nope', 'GET', 200],
      ['/', 'GET', 200],
      ['/no-such-file', 'GET', 404],
      ['/vnc.html', 'POST', 405],
    ] as const) {
      const res = await fetch(`${gw.origin}${path}`, { method });
      assert.equal(res.status, status, path);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', `${method} ${path}`);
      assert.equal(res.headers.get('strict-transport-security'), null, `${method} ${path}`);
    }
  });

  it('adds exactly the WebSocket origin that the page query names with host, port and encrypt', async () => {
    const own = `127.0.0.1:${gw.port}`;
    for (const [query, expected] of [
      ['host=console.example.com&port=6443&encrypt=1', "'self' wss://console.example.com:6443"],
      ['host=Console.Example.COM&port=6443', "'self' ws://console.example.com:6443"],
      ['port=7000', "'self' ws://127.0.0.1:7000"],
      ['host=proxy-2.example.net', `'self' ws://proxy-2.example.net:${gw.port}`],
      ['host=10.0.0.7&port=6080&encrypt=yes', "'self' wss://10.0.0.7:6080"],
      // the last of repeated parameters counts, as in console.js
      ['host=first.example&host=second.example&port=1&port=6081', "'self' ws://second.example:6081"],
      ['encrypt=1', "'self'"],
      ['path=%3Ftoken%3Dabc', "'self'"],
    ] as const) {
      const res = await fetch(`${gw.origin}/vnc.html?${query}`);
      assert.equal(connectSrc(res.headers.get('content-security-policy')), expected, `${query} (page at ${own})`);
    }
  });

  it('adds nothing for a host or port that is not a plain hostname, IPv4 address or port number', async () => {
    for (const query of [
      `host=${encodeURIComponent("evil.example; script-src 'unsafe-inline'")}`,
      `host=${encodeURIComponent('evil.example connect-src *')}`,
      'host=*',
      'host=*.example.com',
      `host=${encodeURIComponent('[::1]')}`,
      `host=${encodeURIComponent('::1')}`,
      'host=',
      'host=evil.example%2Cws%3A',
      'host=ex_ample.com',
      `host=${encodeURIComponent('évil.example')}`,
      'port=0',
      'port=65536',
      'port=080',
      'port=80%3B',
      'port=6080%20ws%3A',
      'host=ok.example&port=abc',
    ]) {
      const res = await fetch(`${gw.origin}/vnc.html?${query}`);
      assert.equal(res.status, 200, query);
      assert.equal(connectSrc(res.headers.get('content-security-policy')), "'self'", query);
    }
  });

  it('lets listed origins frame the page, without X-Frame-Options on it, and refuses a malformed origin', async () => {
    const pages = createPages({ tokens: gw.gateway.stores.tokens, inventory: gw.gateway.stores.inventory, webDir: null, frameAncestors: ['https://portal.example.com', 'https://*.cloud.example:8443', "'self'"] });
    const { server, origin } = await serve(pages);
    try {
      const page = await fetch(`${origin}/vnc.html`);
      assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors https:\/\/portal\.example\.com https:\/\/\*\.cloud\.example:8443 'self'(;|$)/);
      assert.equal(page.headers.get('x-frame-options'), null);
      const script = await fetch(`${origin}/porthole/console.js`);
      assert.equal(script.headers.get('x-frame-options'), 'DENY');
    } finally {
      await close(server);
    }
    for (const bad of ['portal.example.com', 'https://portal.example.com/path', "https://a.example 'unsafe-inline'", 'https://a.example:99999', '*']) {
      assert.throws(() => createPages({ tokens: gw.gateway.stores.tokens, inventory: gw.gateway.stores.inventory, webDir: null, frameAncestors: [bad] }), { code: 'CONFIG_INVALID' }, bad);
    }
  });

  it('takes the origins from [porthole] frame_ancestors', async () => {
    const other = await startGateway({ 'porthole.frame_ancestors': 'https://horizon.example.com, https://*.example.org:8443' });
    try {
      const page = await fetch(`${other.origin}/vnc_auto.html`);
      assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors https:\/\/horizon\.example\.com https:\/\/\*\.example\.org:8443(;|$)/);
      assert.equal(page.headers.get('x-frame-options'), null);
    } finally {
      await other.close();
    }
  });
});

describe('console page framing and connections in Chromium', { skip: !haveChromium || !haveXvnc ? 'needs /usr/bin/chromium and Xvnc' : false }, () => {
  let gw: TestGateway;
  let second: TestGateway;
  let xvnc: Xvnc;
  let browser: Browser;
  let portal: { server: Server; origin: string } | undefined;
  let portalHtml = '';

  before(async () => {
    gw = await startGateway();
    // a second proxy on the same store, for a page whose query names another port
    second = await startGateway({ 'database.connection': `sqlite:///${gw.dbPath}` });
    xvnc = await startXvnc({ colour: '#3366cc' });
    browser = await launchBrowser();
    await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'framed-1', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port } });
    portal = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(portalHtml);
    });
  });
  after(async () => {
    await browser?.close();
    await close(portal?.server);
    await second?.close();
    await gw?.close();
    await xvnc?.stop();
  });

  async function mint(): Promise<{ token: string; url: string }> {
    return gw.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
  }

  /** Opens the portal page with an iframe of `src`; returns the page and the iframe's frame. */
  async function frame(src: string): Promise<{ page: Page; violations: string[] }> {
    portalHtml = `<!DOCTYPE html><title>portal</title><iframe id="console" src="${src.replaceAll('&', '&amp;').replaceAll('"', '&quot;')}" width="800" height="600"></iframe>`;
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on('console', (m) => violations.push(m.text()));
    await page.goto(portal!.origin);
    await page.waitForFunction(() => (document.getElementById('console') as HTMLIFrameElement | null) !== null);
    return { page, violations };
  }

  it('keeps a page of another origin from framing the console page', async () => {
    const { url, token } = await mint();
    const { page, violations } = await frame(url);
    try {
      await waitForViolation(violations, /frame-ancestors 'none'/);
      // Chromium replaces a refused frame by its error page; the console page never runs in it
      const child = await waitForChild(page, (u) => u.startsWith('chrome-error:') || u.includes('/vnc_auto.html'));
      assert.equal(child.url(), 'chrome-error://chromewebdata/', `the frame shows ${child.url()}`);
      assert.ok(!gw.logs.some((l) => l.tokenHash === hashToken(token).slice(0, 8)), 'no WebSocket was attempted from the frame');
    } finally {
      await page.close();
    }
  });

  it('loads in a frame of a page whose origin is listed (the control: the iframe itself works)', async () => {
    const { token } = await mint();
    const pages = createPages({ tokens: gw.gateway.stores.tokens, inventory: gw.gateway.stores.inventory, webDir: null, frameAncestors: [portal!.origin] });
    const allowed = await serve(pages);
    try {
      const { page } = await frame(`${allowed.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}`);
      try {
        const child = await waitForChild(page, (u) => u.includes('/vnc_auto.html'));
        await child.waitForFunction(() => document.body?.dataset.consoleState !== undefined && document.body.dataset.consoleState !== 'loading', undefined, { timeout: 15000 });
      } finally {
        await page.close();
      }
    } finally {
      await close(allowed.server);
    }
  });

  it('still connects to its own proxy', async () => {
    const { url } = await mint();
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await waitForConsoleState(page, 'connected');
      await waitForCanvasPixel(page, 5, 5, BLUE);
    } finally {
      await page.close();
    }
  });

  it('connects to another proxy that its query names, and not to one named only in its #fragment', async () => {
    const { token } = await mint();
    const path = encodeURIComponent(`?token=${token}`);
    const page = await browser.newPage();
    try {
      await page.goto(`${gw.origin}/vnc_auto.html?path=${path}&port=${second.port}`);
      await waitForConsoleState(page, 'connected');
      await waitForCanvasPixel(page, 5, 5, BLUE);
    } finally {
      await page.close();
    }
    const { token: other } = await mint();
    const blocked = await browser.newPage();
    const violations: string[] = [];
    blocked.on('console', (m) => violations.push(m.text()));
    try {
      await blocked.goto(`${gw.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${other}`)}#port=${second.port}`);
      await waitForViolation(violations, /connect-src/);
      assert.notEqual(await blocked.evaluate(() => document.body.dataset.consoleState), 'connected');
    } finally {
      await blocked.close();
    }
  });
});

async function waitForChild(page: Page, ready: (url: string) => boolean, ms = 15000): Promise<import('playwright-core').Frame> {
  const deadline = Date.now() + ms;
  for (;;) {
    const child = page.frames().find((f) => f !== page.mainFrame() && ready(f.url()));
    if (child) return child;
    if (Date.now() > deadline) throw new Error(`no child frame; frames: ${page.frames().map((f) => f.url()).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForViolation(messages: string[], pattern: RegExp, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!messages.some((m) => pattern.test(m))) {
    if (Date.now() > deadline) throw new Error(`no console message matching ${pattern}: ${messages.join(' | ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
