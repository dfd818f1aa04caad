/**
 * The serial console listener against real peers: a QEMU whose monitor is on a TCP chardev (as
 * libvirt puts a guest's serial port), plain TCP backends for the byte path, and headless
 * Chromium for the xterm.js page. What is checked: QEMU's own answer to `info version` through
 * Porthole's WebSocket; the URL form and the subprotocols and paths nova-serialproxy (websockify)
 * takes; the refusals (bad, expired, revoked token, wrong Origin, unreachable backend, another
 * kind's token) with the same HTTP statuses as the noVNC listener of the same gateway, without a
 * backend connection; revocation closing a live serial session; backpressure both ways; nothing
 * left behind (descriptors, backend connections, sessions); the page showing `(qemu)` and what
 * was typed, and saying in words when its token is not valid.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { mintConsoleToken } from '../../src/consoles/mint.ts';
import { novnc } from '../../src/consoles/novnc.ts';
import { serial } from '../../src/consoles/serial.ts';
import { haveChromium, launchBrowser, waitForConsoleState } from '../support/browser.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { countingServer, leakMeter, liveSessions, openDescriptors, settled, type CountingServer } from '../support/leak-meter.ts';
import { haveQemu } from '../support/qemu.ts';
import { startSerialQemu, VERSION_ANSWER, type SerialQemu } from '../support/qemu-serial.ts';
import { freePort } from '../support/xvnc.ts';

const SERVER = '5e71a100-0000-4000-8000-00000000c0de';

/** An open serial console: everything received so far, as text, and a wait for some of it. */
interface SerialClient {
  readonly ws: WebSocket;
  received(): string;
  until(pattern: RegExp, ms?: number): Promise<RegExpExecArray>;
  closed: Promise<{ code: number; reason: string }>;
}

function openSerial(url: string, opts: { protocols?: string[]; origin?: string } = {}): Promise<SerialClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols ?? ['binary'], { perMessageDeflate: false, origin: opts.origin });
    let text = '';
    const waiters: Array<() => void> = [];
    ws.on('message', (d: Buffer) => {
      text += d.toString('latin1');
      for (const w of waiters.splice(0)) w();
    });
    ws.on('error', () => {});
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.once('open', () => resolve({
      ws,
      received: () => text,
      closed,
      until: (pattern, ms = 10_000) => new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`no ${pattern} within ${ms} ms; got ${JSON.stringify(text.slice(-300))}`)), ms);
        const check = () => {
          const m = pattern.exec(text);
          if (m) {
            clearTimeout(timer);
            res(m);
          } else waiters.push(check);
        };
        check();
      }),
    }));
  });
}

/** The upgrade's HTTP status: 101 when it opened (then closed at once), else the refusal's. */
async function upgradeStatus(url: string, opts: { protocols?: string[]; origin?: string } = {}): Promise<number> {
  try {
    const c = await openSerial(url, opts);
    c.ws.terminate();
    return 101;
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status === undefined) throw err;
    return status;
  }
}

describe('serial console listener', { skip: !haveQemu && 'qemu-system-x86 is not installed' }, () => {
  let gw: TestGateway;
  let qemu: SerialQemu;
  let echo: CountingServer;
  let serialPort: number;

  before(async () => {
    // the refusal cases below fail many lookups from 127.0.0.1: the budget has its own test
    [gw, qemu] = await Promise.all([startGateway({ 'porthole.failed_lookup_budget': '0' }), startSerialQemu()]);
    echo = await countingServer((s) => s.pipe(s));
    serialPort = gw.gateway.proxies.get('serial')!.port;
    await gw.gateway.stores.inventory.put({ id: SERVER, name: 'qemu-serial', projectId: null, status: 'ACTIVE', vnc: null, serial: { host: '127.0.0.1', port: qemu.port } });
  });

  after(async () => {
    await gw?.close();
    await qemu?.stop();
    await echo?.close();
  });

  const base = () => gw.gateway.proxies.get('serial')!.baseUrl;
  /** A serial token as the API mints it: the server's serial endpoint from the inventory. */
  const mintQemu = () => mintConsoleToken(gw.gateway.stores, { kind: serial, instanceUuid: SERVER, base: base(), ttl: 600 });
  /** A serial token for a server outside the inventory (no console-port check), on `port`. */
  const mintPlain = (port: number, instanceUuid = randomUUID()) => mintConsoleToken(gw.gateway.stores, { kind: serial, instanceUuid, endpoint: { host: '127.0.0.1', port }, base: base(), ttl: 600 });

  it('hands out Nova\'s URL form, <base_url>?token=, whose base follows the listener\'s port', async () => {
    const { token, url } = await mintQemu();
    assert.equal(base(), `ws://127.0.0.1:${serialPort}/`);
    assert.equal(url, `ws://127.0.0.1:${serialPort}/?token=${token}`);
  });

  it('relays QEMU\'s monitor both ways: info version is answered by QEMU itself', async () => {
    const { url } = await mintQemu();
    const c = await openSerial(url);
    try {
      assert.equal(c.ws.protocol, 'binary');
      await c.until(/\(qemu\) $/);
      c.ws.send(Buffer.from('info version\r\n'));
      const m = await c.until(VERSION_ANSWER);
      assert.equal(m[1]!.trim(), qemu.version);
      assert.match(qemu.version, /^\d+\.\d+\.\d+/);
    } finally {
      c.ws.close();
      await c.closed;
    }
  });

  it('chooses subprotocols as websockify: binary when offered, none when none is, 400 when offered without binary', async () => {
    const { url } = await mintPlain(echo.port);
    for (const [protocols, want] of [[['binary'], 'binary'], [[], ''], [['base64', 'binary'], 'binary']] as const) {
      const c = await openSerial(url, { protocols: [...protocols] });
      assert.equal(c.ws.protocol, want, JSON.stringify(protocols));
      c.ws.terminate();
    }
    const before = echo.accepted();
    assert.equal(await upgradeStatus(url, { protocols: ['base64'] }), 400);
    assert.equal(echo.accepted(), before, 'no backend connection for a refused upgrade');
  });

  it('takes the console WebSocket on any path, as nova-serialproxy', async () => {
    const { token } = await mintPlain(echo.port);
    for (const path of ['/', '/websockify', '/serial.html', '/consoles/serial/']) {
      assert.equal(await upgradeStatus(`ws://127.0.0.1:${serialPort}${path}?token=${token}`), 101, path);
    }
    // the open-redirect form is still refused (CVE-2021-3654)
    assert.equal(await upgradeStatus(`ws://127.0.0.1:${serialPort}//evil.example/?token=${token}`), 400);
  });

  it('refuses bad, expired and revoked tokens, a wrong Origin, another kind\'s token and an unreachable backend exactly as the noVNC listener', async () => {
    const dead = await freePort();
    const novncPort = gw.port;
    const tokenFor = async (kind: 'serial' | 'novnc', port: number) => {
      const k = kind === 'serial' ? serial : novnc;
      const b = gw.gateway.proxies.get(k.name)!.baseUrl;
      return (await mintConsoleToken(gw.gateway.stores, { kind: k, instanceUuid: randomUUID(), endpoint: { host: '127.0.0.1', port }, base: b, ttl: 600 })).token;
    };
    const expire = (token: string) => gw.gateway.stores.database!.db.updateTable('console_auth_tokens').set({ expires: Math.floor(Date.now() / 1000) - 1 }).where('token_hash', '=', createHash('sha256').update(token).digest('hex')).execute();
    const cases: Record<string, (kind: 'serial' | 'novnc', port: number) => Promise<number>> = {
      'unknown token': (_k, port) => upgradeStatus(`ws://127.0.0.1:${port}/?token=${randomUUID()}`),
      'no token': (_k, port) => upgradeStatus(`ws://127.0.0.1:${port}/`),
      'expired token': async (k, port) => {
        const t = await tokenFor(k, echo.port);
        await expire(t);
        return upgradeStatus(`ws://127.0.0.1:${port}/?token=${t}`);
      },
      'revoked token': async (k, port) => {
        const t = await tokenFor(k, echo.port);
        assert.equal(await gw.gateway.stores.tokens.revoke(t), true);
        return upgradeStatus(`ws://127.0.0.1:${port}/?token=${t}`);
      },
      'Origin of another host': async (k, port) => upgradeStatus(`ws://127.0.0.1:${port}/?token=${await tokenFor(k, echo.port)}`, { origin: 'http://evil.example.net' }),
      'Origin with the wrong scheme': async (k, port) => upgradeStatus(`ws://127.0.0.1:${port}/?token=${await tokenFor(k, echo.port)}`, { origin: 'https://127.0.0.1' }),
      'token of the other console kind': async (k, port) => upgradeStatus(`ws://127.0.0.1:${port}/?token=${await tokenFor(k === 'serial' ? 'novnc' : 'serial', echo.port)}`),
      'unreachable backend': async (k, port) => upgradeStatus(`ws://127.0.0.1:${port}/?token=${await tokenFor(k, dead)}`),
    };
    const before = echo.accepted();
    const seen: Record<string, { serial: number; novnc: number }> = {};
    for (const [name, run] of Object.entries(cases)) seen[name] = { serial: await run('serial', serialPort), novnc: await run('novnc', novncPort) };
    assert.deepEqual(Object.fromEntries(Object.entries(seen).map(([n, s]) => [n, s.serial])), Object.fromEntries(Object.entries(seen).map(([n, s]) => [n, s.novnc])), 'same statuses on both listeners');
    assert.deepEqual(Object.fromEntries(Object.entries(seen).map(([n, s]) => [n, s.serial])), {
      'unknown token': 403, 'no token': 400, 'expired token': 403, 'revoked token': 403, 'Origin of another host': 403,
      'Origin with the wrong scheme': 403, 'token of the other console kind': 403, 'unreachable backend': 502,
    });
    assert.equal(echo.accepted(), before, 'no refused upgrade reached the backend');
  });

  it('closes a live serial session when its token is revoked (1008, as on the noVNC listener)', async () => {
    const { token, url } = await mintQemu();
    const c = await openSerial(url);
    await c.until(/\(qemu\) $/);
    assert.equal(await gw.gateway.stores.tokens.revoke(token), true);
    assert.deepEqual(await c.closed, { code: 1008, reason: 'console access revoked' });
    // the chardev is free again: the next console gets QEMU's prompt
    const next = await openSerial((await mintQemu()).url);
    await next.until(/\(qemu\) $/);
    next.ws.close();
    await next.closed;
  });

  it('relays with backpressure both ways on the plain path', async () => {
    // backend → browser: a source that writes as fast as its socket takes, towards a client that does not read
    let written = 0;
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const source = await countingServer((s) => {
      const pump = () => {
        while (!s.destroyed) {
          written += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
      };
      pump();
    });
    // browser → backend: a sink that does not read until told
    let sunk = 0;
    let sinkSocket: Socket | undefined;
    const sink = await countingServer((s) => {
      sinkSocket = s;
      s.pause();
      s.on('data', (d: Buffer) => (sunk += d.length));
    });
    try {
      const reader = await openSerial((await mintPlain(source.port)).url);
      const raw = (reader.ws as unknown as { _socket: Socket })._socket;
      raw.pause();
      await new Promise((r) => setTimeout(r, 1500));
      const stalled = written;
      await new Promise((r) => setTimeout(r, 1000));
      // the proxy stopped reading the backend: what the source could write stays bounded (socket
      // buffers and the proxy's 256 KiB mark), far below what an unpaused relay takes in 2.5 s
      assert.ok(written < 64 * 1024 * 1024, `source wrote ${written} bytes to a client that reads nothing`);
      assert.ok(written - stalled <= 64 * 1024, `the source kept writing while the client was paused (${stalled} → ${written})`);
      raw.resume();
      await eventually('the source writing again', () => written > stalled + 1024 * 1024, 10_000);
      reader.ws.terminate();

      // WebSocket backpressure works message by message (a frame is taken whole): many small
      // messages, as a terminal sends them, towards a backend that reads nothing
      const writer = await openSerial((await mintPlain(sink.port)).url);
      const message = Buffer.alloc(64 * 1024, 0x42);
      const count = 512;
      for (let i = 0; i < count; i++) writer.ws.send(message);
      await new Promise((r) => setTimeout(r, 1500));
      // the proxy stopped reading the browser: much of the 32 MiB is still the client's
      assert.ok(writer.ws.bufferedAmount > 8 * 1024 * 1024, `only ${writer.ws.bufferedAmount} bytes wait at the client although the backend reads nothing`);
      sinkSocket!.resume();
      await eventually('every byte at the backend', () => sunk === count * message.length, 20_000);
      assert.equal(writer.ws.bufferedAmount, 0);
      writer.ws.terminate();
    } finally {
      await source.close();
      await sink.close();
    }
  });

  it('leaves no descriptor, backend connection or session behind after consoles and refusals', async () => {
    const meter = leakMeter({ descriptors: () => openDescriptors(), backend: () => echo.open(), sessions: () => liveSessions(gw.gateway) });
    const baseline = await settled(meter, await meter.read(), 5000).catch(async () => meter.read());
    for (let i = 0; i < 20; i++) {
      const { url, token } = await mintPlain(echo.port);
      const c = await openSerial(url);
      c.ws.send(Buffer.from(`ping ${i}\n`));
      await c.until(new RegExp(`ping ${i}\\n`));
      // half of them vanish without a close frame, half close properly
      if (i % 2) c.ws.terminate();
      else c.ws.close();
      assert.equal(await upgradeStatus(`ws://127.0.0.1:${serialPort}/?token=${token}x`), 403);
    }
    await settled(meter, baseline, 10_000);
  });

  it('counts failed lookups on the serial listener in the budget the noVNC listener uses', async () => {
    const g = await startGateway({ 'porthole.failed_lookup_budget': '3' });
    try {
      const serialAt = g.gateway.proxies.get('serial')!.port;
      for (let i = 0; i < 3; i++) assert.equal(await upgradeStatus(`ws://127.0.0.1:${serialAt}/?token=${randomUUID()}`), 403);
      // over budget: 429 on both listeners, before any lookup, even for a valid token
      const { token } = await mintConsoleToken(g.gateway.stores, { kind: serial, instanceUuid: randomUUID(), endpoint: { host: '127.0.0.1', port: echo.port }, base: g.gateway.proxies.get('serial')!.baseUrl, ttl: 600 });
      assert.equal(await upgradeStatus(`ws://127.0.0.1:${serialAt}/?token=${token}`), 429);
      assert.equal(await upgradeStatus(`ws://127.0.0.1:${g.port}/?token=${randomUUID()}`), 429);
    } finally {
      await g.close();
    }
  });

  describe('the serial page in Chromium', { skip: !haveChromium && 'chromium is not installed' }, () => {
    it('shows QEMU\'s prompt and what was typed, and QEMU\'s answer', async () => {
      const { token } = await mintQemu();
      const browser = await launchBrowser();
      try {
        const page = await browser.newPage();
        const problems: string[] = [];
        // the browser's own favicon request is the only 404 allowed; CSP refusals are console errors
        page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && problems.push(m.text()));
        page.on('response', (r) => r.status() >= 400 && !r.url().endsWith('/favicon.ico') && problems.push(`${r.status()} ${new URL(r.url()).pathname}`));
        page.on('pageerror', (e) => problems.push(e.message));
        await page.goto(`http://127.0.0.1:${serialPort}/serial.html?token=${token}`);
        await waitForConsoleState(page, 'connected');
        const screen = () => page.evaluate(() => {
          const b = (window as unknown as { porthole: { term: { buffer: { active: { length: number; getLine(i: number): { translateToString(trim: boolean): string } | undefined } } } } }).porthole.term.buffer.active;
          const lines: string[] = [];
          for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
          return lines.join('\n');
        });
        await eventually('the (qemu) prompt on the page', async () => /\(qemu\)/.test(await screen()), 15_000);
        await page.click('#screen');
        await page.keyboard.type('info version');
        await page.keyboard.press('Enter');
        const text = await eventually('QEMU\'s answer on the page', async () => {
          const t = await screen();
          return t.includes(qemu.version) ? t : undefined;
        }, 15_000);
        assert.match(text, /\(qemu\) info version\n/);
        assert.match(await page.textContent('#status') ?? '', /^Connected to qemu-serial$/);
        assert.match(await page.textContent('#size') ?? '', /^\d+×\d+$/);
        assert.deepEqual(problems, [], 'no script or CSP error on the page');
      } finally {
        await browser.close();
      }
    });

    it('says in words that an unknown token is not valid, and an expired one expired', async () => {
      const browser = await launchBrowser();
      try {
        const page = await browser.newPage();
        await page.goto(`http://127.0.0.1:${serialPort}/serial.html?token=${randomUUID()}`);
        await waitForConsoleState(page, 'refused');
        assert.equal(await page.textContent('#status'), 'This console link is not valid (unknown or revoked token).');
        const { token } = await mintPlain(echo.port);
        await gw.gateway.stores.database!.db.updateTable('console_auth_tokens').set({ expires: Math.floor(Date.now() / 1000) - 1 }).where('token_hash', '=', createHash('sha256').update(token).digest('hex')).execute();
        await page.goto(`http://127.0.0.1:${serialPort}/serial.html?token=${token}`);
        await waitForConsoleState(page, 'refused');
        assert.equal(await page.textContent('#status'), 'This console link has expired. Ask for a new console URL.');
      } finally {
        await browser.close();
      }
    });
  });
});
