/**
 * `[consoleauth] enforce_session_timeout` (Nova 2024.1): a live console closes when its token
 * expires, within a second of the expiry, with 1008 "console session expired" and a log line
 * naming the token by its 8-hex id; with the option off (Nova's default) a session outlives its
 * token. Real TigerVNC Xvnc behind the proxy: with security type None and with a VNC password
 * (the RFB security proxy authenticates, the relay starts after its handshake), and with
 * single-use tokens. Tokens of 2-3 s.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { CLOSE_EXPIRED } from '../../src/proxy/relay.ts';
import { tokenLogId } from '../../src/store/types.ts';
import { openRfbConsole } from '../support/backends.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { closeOf } from '../support/live.ts';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER_ID = '7a1e5c3d-2b4f-4a6e-9c8d-0f1e2d3c4b5a';
const PASSWORD = 'tiger-77';
/** How late after the token's expiry the close may come (the option's promise). */
const WITHIN_MS = 1000;

interface Minted {
  readonly url: string;
  readonly tokenHash: string;
  /** The token's expiry, epoch milliseconds. */
  readonly expiresMs: number;
}

async function mint(gw: TestGateway, port: number, ttl: number): Promise<Minted> {
  const { token, record } = await gw.gateway.stores.tokens.create({
    consoleType: 'novnc',
    host: '127.0.0.1',
    port,
    instanceUuid: SERVER_ID,
    accessUrlBase: gw.gateway.novnc!.baseUrl,
    ttl,
    internalAccessPath: null,
  });
  return { url: `ws://127.0.0.1:${gw.port}/?token=${token}`, tokenHash: tokenLogId(token), expiresMs: record.expires * 1000 };
}

/** Asks for a full framebuffer update and resolves when the server's answer arrives: the relay still carries bytes. */
function frameArrives(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no FramebufferUpdate within 5 s')), 5000);
    ws.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    const req = Buffer.from([3, 0, 0, 0, 0, 0, 0, 64, 0, 48]);
    ws.send(req);
  });
}

async function expectClosedAtExpiry(gw: TestGateway, m: Minted, ws: WebSocket): Promise<void> {
  const closed = await closeOf(ws, m.expiresMs - Date.now() + 5000);
  const at = Date.now();
  assert.deepEqual(closed, { code: CLOSE_EXPIRED.code, reason: CLOSE_EXPIRED.reason });
  assert.equal(closed.reason, 'console session expired');
  // timers may fire a millisecond early by Date.now()'s rounding; never a whole tick
  assert.ok(at >= m.expiresMs - 5, `closed ${m.expiresMs - at} ms before the token expired`);
  assert.ok(at - m.expiresMs < WITHIN_MS, `closed ${at - m.expiresMs} ms after the token expired`);
  const line = await eventually('the session-ended log line', () => gw.logs.find((l) => l.event === 'session' && l.tokenHash === m.tokenHash));
  assert.equal(line.reason, 'console session expired');
  assert.match(m.tokenHash, /^[0-9a-f]{8}$/);
}

describe('[consoleauth] enforce_session_timeout', { skip: !haveXvnc && 'Xvnc (tigervnc-standalone-server) not installed' }, () => {
  let open: Xvnc;
  let locked: Xvnc;
  before(async () => {
    open = await startXvnc({ colour: '#228844', geometry: '64x48' });
    locked = await startXvnc({ colour: '#884422', geometry: '64x48', securityTypes: 'VncAuth', password: PASSWORD, extraArgs: ['-UseBlacklist', '0'] });
  });
  after(async () => {
    await open?.stop();
    await locked?.stop();
  });

  describe('on', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway({ 'consoleauth.enforce_session_timeout': 'true', 'vnc.auth_schemes': 'vnc,none' });
    });
    after(() => gw?.close());

    it('closes a live session on Xvnc (security type None) within a second of its 2 s token\'s expiry', async () => {
      await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'open', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: open.port } });
      const m = await mint(gw, open.port, 2);
      const { ws } = await openRfbConsole(m.url);
      await frameArrives(ws);
      await expectClosedAtExpiry(gw, m, ws);
      assert.equal(gw.gateway.sessions.size, 0);
    });

    it('closes a session the RFB security proxy authenticated with a VNC password', async () => {
      await gw.gateway.stores.inventory.put({
        id: SERVER_ID, name: 'locked', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: locked.port },
        backendAuth: { authSchemes: ['vnc'], vncUsername: null, vncPassword: PASSWORD, tlsServerName: null },
      });
      const m = await mint(gw, locked.port, 3);
      const { ws } = await openRfbConsole(m.url);
      await frameArrives(ws);
      await expectClosedAtExpiry(gw, m, ws);
      const line = gw.logs.find((l) => l.event === 'session' && l.tokenHash === m.tokenHash);
      assert.match(String(line?.backendAuth), /VNC/i);
    });

    it('clears the timer of a session that ends before its token expires (no close comes later)', async () => {
      await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'open', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: open.port } });
      const m = await mint(gw, open.port, 2);
      const { ws } = await openRfbConsole(m.url);
      const ended = eventually('the session to end', () => gw.logs.find((l) => l.event === 'session' && l.tokenHash === m.tokenHash));
      ws.close(1000, 'bye');
      assert.equal((await ended).reason, 'client closed (1000)');
      await new Promise((r) => setTimeout(r, m.expiresMs - Date.now() + 300));
      assert.equal(gw.logs.filter((l) => l.event === 'session' && l.tokenHash === m.tokenHash).length, 1);
    });
  });

  describe('on, with single-use tokens', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway({ 'consoleauth.enforce_session_timeout': 'true', 'porthole.single_use_tokens': 'true' });
      await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'open', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: open.port } });
    });
    after(() => gw?.close());

    it('closes the session of a consumed token at the token\'s expiry', async () => {
      const m = await mint(gw, open.port, 2);
      const { ws } = await openRfbConsole(m.url);
      await frameArrives(ws);
      await expectClosedAtExpiry(gw, m, ws);
    });
  });

  describe('off (the default, as Nova)', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway();
      await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'open', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: open.port } });
    });
    after(() => gw?.close());

    it('keeps a session open past its token\'s expiry', async () => {
      const m = await mint(gw, open.port, 2);
      const { ws } = await openRfbConsole(m.url);
      let closed = false;
      ws.once('close', () => (closed = true));
      await new Promise((r) => setTimeout(r, m.expiresMs - Date.now() + 1500));
      assert.equal(closed, false);
      await frameArrives(ws);
      ws.close();
    });
  });
});
