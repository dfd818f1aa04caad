/**
 * The SPICE console kind against real peers: QEMU's SPICE server (software emulation, a guest
 * that paints its screen one colour, test/support/qemu-spice.ts), Debian's spice-html5 client in
 * headless Chromium, served by Porthole's SPICE listener. Also: refusals exactly as on the noVNC
 * listener, revocation closing a live SPICE session, no descriptor or backend connection left
 * behind, the page when spice-html5 is missing, and the page's Content-Security-Policy.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { mintConsoleToken } from '../../src/consoles/mint.ts';
import { spice } from '../../src/consoles/spice.ts';
import { hashToken } from '../../src/store/types.ts';
import { openConsole } from '../support/backends.ts';
import { haveChromium, launchBrowser } from '../support/browser.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { connectionsTo, leakMeter, liveSessions, openDescriptors, settled } from '../support/leak-meter.ts';
import { haveQemu, startSpiceQemu, type SpiceQemu } from '../support/qemu-spice.ts';
import { freePort } from '../support/xvnc.ts';

const SPICE_HTML5 = '/usr/share/spice-html5';
const haveSpiceHtml5 = existsSync(`${SPICE_HTML5}/spice_auto.html`);
const SERVER_ID = '5b1d7c3e-2a4f-4e6b-8c9d-0e1f2a3b4c5d';
/** Mode 13h's default palette index 4: red (VGA DAC 0x2A, 0, 0). */
const RED = 4;

/** SpiceLinkHeader (magic REDQ, protocol 2.2, size) and SpiceLinkMess for the main channel. */
function spiceLinkMess(): Buffer {
  const b = Buffer.alloc(16 + 18);
  b.write('REDQ', 0, 'latin1');
  b.writeUInt32LE(2, 4);
  b.writeUInt32LE(2, 8);
  b.writeUInt32LE(18, 12);
  // connection_id 0, channel_type 1 (main), channel_id 0, no caps, caps_offset 18
  b.writeUInt8(1, 20);
  b.writeUInt32LE(18, 30);
  return b;
}

/** Opens a SPICE console WebSocket and runs the link step; resolves with QEMU's SpiceLinkReply error code. */
async function spiceLink(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; error: number }> {
  const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false, headers });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  ws.send(spiceLinkMess());
  let got = Buffer.alloc(0);
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no SpiceLinkReply within 5 s')), 5000);
    ws.on('message', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 20) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
  assert.equal(reply.subarray(0, 4).toString('latin1'), 'REDQ');
  return { ws, error: reply.readUInt32LE(16) };
}

describe('SPICE console listener', { skip: (!haveQemu || !haveSpiceHtml5) && 'needs qemu-system-x86 and spice-html5' }, () => {
  let gw: TestGateway;
  let qemu: SpiceQemu;
  let spicePort: number;
  let spiceBase: string;

  before(async () => {
    qemu = await startSpiceQemu({ colour: RED });
    // this suite makes more failed lookups from 127.0.0.1 than the default budget allows
    gw = await startGateway({ 'DEFAULT.web': SPICE_HTML5, 'porthole.failed_lookup_budget': '0' });
    const info = gw.gateway.proxies.get('spice');
    assert.ok(info, 'porthole serve runs the SPICE listener beside noVNC');
    assert.ok(gw.gateway.proxies.get('novnc'));
    spicePort = info.port;
    spiceBase = info.baseUrl;
    await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'spice-1', projectId: null, status: 'ACTIVE', vnc: null, spice: { host: '127.0.0.1', port: qemu.port, tlsPort: null } });
  });
  after(async () => {
    await gw?.close();
    await qemu?.stop();
  });

  const mint = () => mintConsoleToken(gw.gateway.stores, { kind: spice, instanceUuid: SERVER_ID, base: spiceBase, ttl: 600 });
  const wsUrl = (query: string, path = '/websockify') => `ws://127.0.0.1:${spicePort}${path}${query}`;

  it('hands out Nova\'s URL form, <html5proxy_base_url>?token=, the base following the port it listens on', async () => {
    const { token, url, record } = await mint();
    assert.equal(url, `http://127.0.0.1:${spicePort}/spice_auto.html?token=${token}`);
    assert.equal(record.consoleType, 'spice-html5');
    assert.equal(record.port, qemu.port);
  });

  it('relays the SPICE link to QEMU at any path (/, /websockify, spice_auto.html\'s path parameter), with the token from the query or the cookie spice_auto.html sets', async () => {
    const { token } = await mint();
    for (const [url, headers] of [
      [wsUrl(`?token=${token}`, '/'), {}],
      [wsUrl(`?token=${token}`), {}],
      [wsUrl(''), { Cookie: `token=${token}` }],
      // spice_auto.html's `path` parameter names any path; websockify takes them all
      [wsUrl('', '/spice/websockify'), { Cookie: `token=${token}` }],
    ] as const) {
      const { ws, error } = await spiceLink(url, headers);
      assert.equal(error, 0, `${url}: SPICE_LINK_ERR_OK`);
      assert.equal(ws.protocol, 'binary');
      ws.close();
    }
    // websockify answers a client that offers no subprotocol without one
    const plain = new WebSocket(wsUrl(`?token=${token}`), { perMessageDeflate: false });
    await new Promise((resolve, reject) => {
      plain.once('open', resolve);
      plain.once('error', reject);
    });
    assert.equal(plain.protocol, '');
    plain.terminate();
  });

  it('refuses bad, expired and revoked tokens, a wrong Origin, another kind\'s token and an unreachable backend exactly as the noVNC listener does', async () => {
    const closed = await freePort();
    const novncUrl = (q: string) => `ws://127.0.0.1:${gw.port}/websockify${q}`;
    const cases: Array<[string, () => Promise<{ spice: string; novnc: string; origin?: string }>]> = [
      ['unknown token', async () => ({ spice: '3f0c2a8e-0000-4000-8000-000000000000', novnc: '3f0c2a8e-0000-4000-8000-000000000000' })],
      ['expired token', async () => {
        const s = await mint();
        const n = await gw.mint({ host: '127.0.0.1', port: closed });
        for (const t of [s.token, n.token]) await gw.gateway.stores.database!.db.updateTable('console_auth_tokens').set({ expires: Math.floor(Date.now() / 1000) - 1 }).where('token_hash', '=', hashToken(t)).execute();
        return { spice: s.token, novnc: n.token };
      }],
      ['revoked token', async () => {
        const s = await mint();
        const n = await gw.mint({ host: '127.0.0.1', port: closed });
        await gw.gateway.stores.tokens.revoke(s.token);
        await gw.gateway.stores.tokens.revoke(n.token);
        return { spice: s.token, novnc: n.token };
      }],
      ['wrong Origin', async () => ({ spice: (await mint()).token, novnc: (await gw.mint({ host: '127.0.0.1', port: closed })).token, origin: 'http://evil.example.com' })],
      ['unreachable backend', async () => {
        const { token } = await gw.gateway.stores.tokens.create({ consoleType: 'spice-html5', host: '127.0.0.1', port: closed, instanceUuid: '7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a', accessUrlBase: spiceBase, ttl: 600, internalAccessPath: null });
        return { spice: token, novnc: (await gw.mint({ host: '127.0.0.1', port: closed })).token };
      }],
    ];
    const statuses: Record<string, number | undefined> = {};
    for (const [what, make] of cases) {
      const t = await make();
      const s = await openConsole(wsUrl(`?token=${t.spice}`), { origin: t.origin });
      const n = await openConsole(novncUrl(`?token=${t.novnc}`), { origin: t.origin });
      assert.equal(s.status, n.status, `${what}: SPICE ${s.status}, noVNC ${n.status}`);
      statuses[what] = s.status;
    }
    assert.deepEqual(statuses, { 'unknown token': 403, 'expired token': 403, 'revoked token': 403, 'wrong Origin': 403, 'unreachable backend': 502 });
    // a noVNC token is not this listener's
    const { token } = await gw.mint({ host: '127.0.0.1', port: qemu.port });
    assert.equal((await openConsole(wsUrl(`?token=${token}`))).status, 403);
    await eventually('the wrong-kind refusal logged', () => gw.logs.find((l) => l.event === 'refused' && l.code === 'TOKEN_WRONG_CONSOLE_TYPE' && l.tokenHash === hashToken(token).slice(0, 8)));
    // no token ever in the log
    for (const line of gw.rawLog) assert.doesNotMatch(line, new RegExp(token));
  });

  it('leaves no descriptor, session or QEMU connection behind (links closed, cut, refused)', async () => {
    const meter = leakMeter({ descriptors: () => openDescriptors(), toQemu: () => connectionsTo(qemu.port), sessions: () => liveSessions(gw.gateway) });
    const { token } = await mint();
    // warm up: the first connection opens what stays open (the store's file, lazily loaded modules)
    (await spiceLink(wsUrl(`?token=${token}`))).ws.close();
    await settled(meter, { descriptors: Infinity, toQemu: 0, sessions: 0 }, 5000);
    const baseline = await meter.read();
    for (let i = 0; i < 12; i++) {
      const { ws, error } = await spiceLink(wsUrl(`?token=${token}`));
      assert.equal(error, 0);
      if (i % 2) ws.terminate();
      else ws.close();
      assert.equal((await openConsole(wsUrl('?token=0b0b0b0b-0000-4000-8000-000000000000'))).status, 403);
    }
    await settled(meter, baseline, 10_000);
  });

  it('is off in porthole serve with [porthole] spicehtml5proxy_enabled = false, the noVNC listener still on', async () => {
    const off = await startGateway({ 'porthole.spicehtml5proxy_enabled': 'false' });
    try {
      assert.equal(off.gateway.proxies.get('spice'), undefined);
      assert.ok(off.gateway.proxies.get('novnc'));
    } finally {
      await off.close();
    }
  });

  it('says which package and option when spice-html5 is missing (503), and serves it otherwise under a hash-only script policy', async () => {
    const other = await startGateway();
    try {
      const r = await fetch(`http://127.0.0.1:${other.gateway.proxies.get('spice')!.port}/spice_auto.html?token=x`);
      assert.equal(r.status, 503);
      const text = await r.text();
      assert.match(text, /Debian package <code>spice-html5<\/code>/);
      assert.match(text, /<code>\[DEFAULT\] web<\/code>/);
      assert.ok(text.includes(other.loaded.config.DEFAULT.web));
    } finally {
      await other.close();
    }
    const r = await fetch(`http://127.0.0.1:${spicePort}/spice_auto.html?token=x`);
    assert.equal(r.status, 200);
    const csp = r.headers.get('content-security-policy')!;
    const script = /script-src ([^;]*)/.exec(csp)![1]!;
    assert.doesNotMatch(script, /unsafe-inline|unsafe-eval/);
    const html = readFileSync(`${SPICE_HTML5}/spice_auto.html`, 'utf8');
    const inline = /<script type="module" crossorigin="anonymous">([\s\S]*?)<\/script>/.exec(html)![1]!;
    assert.ok(script.includes(`'sha256-${createHash('sha256').update(inline).digest('base64')}'`), script);
    assert.ok(script.includes(`'sha256-${createHash('sha256').update('open_nav()').digest('base64')}'`), script);
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    // `x` is not a token's shape: a damaged link
    assert.match(await r.text(), /<script id="porthole-state" type="application\/json">\{"state":"malformed"/);
  });

  describe('the spice-html5 page in Chromium', { skip: !haveChromium && 'needs Chromium' }, () => {
    let browser: Browser;
    before(async () => {
      browser = await launchBrowser();
    });
    after(async () => {
      await browser?.close();
    });

    async function canvasPixel(page: Page, x: number, y: number): Promise<number[] | null> {
      return page.evaluate(([px, py]) => {
        const c = document.getElementById('spice_surface_0') as HTMLCanvasElement | null;
        if (!c) return null;
        return [...c.getContext('2d')!.getImageData(px!, py!, 1, 1).data.slice(0, 3)];
      }, [x, y]);
    }

    it('completes the SPICE link, draws the guest\'s screen in its colour, and says so when revocation closes the session', async () => {
      const guest = await eventually('the guest painting its screen', async () => {
        const p = await qemu.screenPixel(10, 10);
        return p[0] > 100 && p[1] === 0 && p[2] === 0 ? p : undefined;
      }, 30_000);
      const { token, url } = await mint();
      const page = await browser.newPage();
      const policyViolations: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) policyViolations.push(m.text());
      });
      try {
        await page.goto(url);
        await page.waitForFunction(() => document.body.dataset.consoleState === 'connected', undefined, { timeout: 20_000 });
        const drawn = await eventually('the canvas showing the guest\'s colour', async () => {
          const p = await canvasPixel(page, 10, 10);
          return p && p.every((v, i) => Math.abs(v - guest[i]!) <= 3) ? p : undefined;
        }, 30_000);
        assert.ok(drawn[0]! > 100, `red: ${drawn}`);
        assert.equal(await page.textContent('#porthole-status'), 'Connected');
        assert.ok(liveSessions(gw.gateway) >= 2, 'spice-html5 opened its main and display channels');
        assert.ok(connectionsTo(qemu.port) >= 2);

        assert.equal(await gw.gateway.stores.tokens.revoke(token), true);
        await page.waitForFunction(() => document.body.dataset.consoleState === 'disconnected', undefined, { timeout: 10_000 });
        assert.equal(await page.textContent('#porthole-status'), 'This console link is not valid (unknown or revoked token).');
        await eventually('every SPICE channel closed', () => liveSessions(gw.gateway) === 0 && connectionsTo(qemu.port) === 0, 10_000);
        const ended = gw.logs.filter((l) => l.event === 'session' && l.tokenHash === hashToken(token).slice(0, 8));
        assert.ok(ended.length >= 2, 'one session per SPICE channel');
        assert.deepEqual(policyViolations, []);
      } finally {
        await page.close();
      }
    });

    it('says an unknown token in words before connecting', async () => {
      const page = await browser.newPage();
      try {
        await page.goto(`http://127.0.0.1:${spicePort}/spice_auto.html?token=0c0c0c0c-0000-4000-8000-000000000000`);
        await page.waitForFunction(() => document.body.dataset.consoleState === 'refused', undefined, { timeout: 10_000 });
        assert.equal(await page.textContent('#porthole-status'), 'This console link is not valid (unknown or revoked token).');
      } finally {
        await page.close();
      }
    });
  });
});
