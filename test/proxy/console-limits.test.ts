/**
 * The concurrent-console limits (`[porthole] max_consoles`, `_per_server`, `_per_client`,
 * `_per_project`), the idle timeout and the maximum duration, as a client sees them: the HTTP
 * refusal before the upgrade (status, empty body, Retry-After), the close code and reason after
 * it, the token state the console page asks for, and counts that return to zero on every path.
 * Two gateways on one PostgreSQL store see each other's sessions through the registry.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { bannerBackend, echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { leakMeter, type LeakMeter } from '../support/leak-meter.ts';
import { freshPostgres, type FreshStore } from '../support/stores.ts';
import { rfbIsInput } from '../../src/proxy/idle.ts';
import { createServer, type Server as NetServer } from 'node:net';

const SERVER_A = 'aaaaaaaa-0000-4000-8000-00000000000a';
const SERVER_B = 'bbbbbbbb-0000-4000-8000-00000000000b';
const SERVER_C = 'cccccccc-0000-4000-8000-00000000000c';

interface Refusal {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

/** A WebSocket upgrade request as a browser sends it; the HTTP refusal, or 101. */
function upgrade(port: number, token: string): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/websockify?token=${token}`, headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Protocol': 'binary' } });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve({ status: 101, retryAfter: undefined, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

async function addServer(gw: TestGateway, id: string, backend: { port: number }, projectId: string | null = null): Promise<void> {
  await gw.gateway.stores.inventory.put({ id, name: `server-${id.slice(0, 4)}`, projectId, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: backend.port } });
}

async function consoleOf(gw: TestGateway, id: string, backend: { port: number }): Promise<{ ws: WebSocket }> {
  const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: id });
  return openRfbConsole(`ws://127.0.0.1:${gw.port}/websockify?token=${token}`);
}

async function tokenState(gw: TestGateway, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${gw.origin}/porthole/token-state?token=${token}`);
  return (await res.json()) as Record<string, unknown>;
}

/** This gateway's own counted consoles and live sessions: what must be back at zero. */
function meter(gw: TestGateway): LeakMeter {
  return leakMeter({ counted: () => gw.gateway.limits?.local ?? -1, sessions: () => gw.gateway.sessions.size });
}

async function settledAtZero(m: LeakMeter): Promise<void> {
  await eventually('the counts back at zero', async () => {
    const c = await m.read();
    return c.counted === 0 && c.sessions === 0;
  }, 10_000);
}

describe('concurrent-console limits', { timeout: 60_000 }, () => {
  let backend: TestBackend;
  let gw: TestGateway | undefined;
  before(async () => {
    backend = await echoBackend();
  });
  after(() => backend.close());
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  it('refuses the console past max_consoles_per_server with 429, an empty body and Retry-After, logs once, and admits again when one closes', async () => {
    gw = await startGateway({ 'porthole.max_consoles_per_server': '2', 'porthole.session_heartbeat_interval': '3' });
    await addServer(gw, SERVER_A, backend);
    await addServer(gw, SERVER_B, backend);
    const a1 = await consoleOf(gw, SERVER_A, backend);
    await consoleOf(gw, SERVER_A, backend);
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: SERVER_A });
    const before = backend.connections;
    for (let i = 0; i < 3; i++) assert.deepEqual(await upgrade(gw.port, token), { status: 429, retryAfter: '3', body: '' });
    assert.equal(backend.connections, before, 'a refused console dials no backend');
    // another server is not concerned
    await consoleOf(gw, SERVER_B, backend);
    const warnings = gw.logs.filter((l) => l.event === 'console_limit');
    assert.equal(warnings.length, 1, 'one warning for three refusals');
    assert.equal(warnings[0]!.limit, 'server');
    assert.equal(gw.logs.filter((l) => l.event === 'refused' && String(l.code).startsWith('CONSOLE_LIMIT')).length, 0, 'no line per refused attempt');
    // the page's question after its WebSocket failed: the token is valid, the server is full
    const state = await tokenState(gw, token);
    assert.deepEqual([state.state, state.server, state.limit, state.retryAfter], ['limit', 'server-aaaa', 'server', 3]);
    a1.ws.close();
    await eventually('a place free', async () => (await upgrade(gw!.port, token)).status === 101);
  });

  it('refuses past max_consoles with 503 and Retry-After', async () => {
    gw = await startGateway({ 'porthole.max_consoles': '1' });
    await consoleOf(gw, SERVER_A, backend);
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: SERVER_B });
    assert.deepEqual(await upgrade(gw.port, token), { status: 503, retryAfter: '5', body: '' });
    assert.equal((await tokenState(gw, token)).limit, 'total');
  });

  it('counts a client address across servers (max_consoles_per_client) and a project across its servers (max_consoles_per_project)', async () => {
    gw = await startGateway({ 'porthole.max_consoles_per_client': '2', 'porthole.max_consoles_per_project': '1' });
    await addServer(gw, SERVER_A, backend, 'p1');
    await addServer(gw, SERVER_B, backend, 'p1');
    await addServer(gw, SERVER_C, backend, null);
    await consoleOf(gw, SERVER_A, backend);
    const b = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: SERVER_B });
    assert.deepEqual(await upgrade(gw.port, b.token), { status: 429, retryAfter: '5', body: '' }, 'project p1 has its one console');
    assert.equal((await tokenState(gw, b.token)).limit, 'project');
    // a server without a project counts for no project, but for the client
    await consoleOf(gw, SERVER_C, backend);
    const c = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: SERVER_C });
    assert.deepEqual(await upgrade(gw.port, c.token), { status: 429, retryAfter: '5', body: '' }, 'the client has its two consoles');
    assert.equal((await tokenState(gw, c.token)).limit, 'client');
    assert.equal(gw.gateway.limits!.local, 2);
  });

  it('gives the place back on every path: client gone during the setup, backend refused, backend silent, session over', async () => {
    gw = await startGateway({ 'porthole.max_consoles_per_server': '1', 'porthole.rfb_handshake_timeout': '1' });
    const m = meter(gw);
    // a backend that accepts and never speaks: the client leaves while the proxy waits for it
    const silent: NetServer = createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as { port: number }).port;
    try {
      const s = await gw.mint({ host: '127.0.0.1', port: silentPort, instanceUuid: SERVER_A });
      const gone = request({ host: '127.0.0.1', port: gw.port, path: `/websockify?token=${s.token}`, headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' } });
      gone.on('error', () => {});
      gone.on('upgrade', (_r, sock) => setTimeout(() => sock.destroy(), 100));
      gone.end();
      await eventually('the console counted', () => gw!.gateway.limits!.local === 1);
      await settledAtZero(m);
      // the backend never answers RFB: the handshake deadline ends the connection, the client stays
      const held = await new Promise<import('node:stream').Duplex>((resolve, reject) => {
        const r = request({ host: '127.0.0.1', port: gw!.port, path: `/websockify?token=${s.token}`, headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' } });
        r.on('upgrade', (_res, sock) => resolve(sock));
        r.on('error', reject);
        r.end();
      });
      held.on('error', () => {});
      held.resume();
      await new Promise((r) => held.once('close', r));
      await settledAtZero(m);
      // a closed port: refused before the 101
      const closedPort = await new Promise<number>((resolve) => {
        const t = createServer();
        t.listen(0, '127.0.0.1', () => {
          const p = (t.address() as { port: number }).port;
          t.close(() => resolve(p));
        });
      });
      const dead = await gw.mint({ host: '127.0.0.1', port: closedPort, instanceUuid: SERVER_A });
      const refused = await upgrade(gw.port, dead.token);
      assert.ok(refused.status >= 500, `backend down: ${refused.status}`);
      await settledAtZero(m);
      // a session that ends
      const live = await consoleOf(gw, SERVER_A, backend);
      assert.equal(gw.gateway.limits!.local, 1);
      live.ws.close();
      await settledAtZero(m);
      // and the one place is there for the next console
      await consoleOf(gw, SERVER_A, backend);
    } finally {
      silent.close();
    }
  });
});

describe('concurrent-console limits across two gateways on PostgreSQL', { timeout: 60_000 }, () => {
  let store: FreshStore;
  let backend: TestBackend;
  const gws: TestGateway[] = [];
  before(async () => {
    store = await freshPostgres();
    backend = await bannerBackend();
  });
  after(async () => {
    for (const g of gws) await g.close();
    await backend.close();
    await store.drop();
  });

  it("refuses on one gateway a console of a server whose limit the other gateway's sessions fill, and admits again once they end", async () => {
    const settings = { 'database.connection': store.url, 'porthole.max_consoles_per_server': '2', 'porthole.session_heartbeat_interval': '0.3' };
    const a = await startGateway(settings);
    gws.push(a);
    const b = await startGateway({ ...settings, 'porthole.auto_migrate': 'false' });
    gws.push(b);
    const c1 = await consoleOf(a, SERVER_A, backend);
    const c2 = await consoleOf(a, SERVER_A, backend);
    const { token } = await b.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: SERVER_A });
    const refused = await eventually("gateway b sees gateway a's sessions", async () => {
      const r = await upgrade(b.port, token);
      return r.status === 429 && r;
    });
    assert.deepEqual(refused, { status: 429, retryAfter: '1', body: '' });
    assert.equal(b.gateway.limits!.remote, 2);
    assert.equal(b.gateway.limits!.local, 0);
    c1.ws.close();
    c2.ws.close();
    await eventually("gateway b sees gateway a's sessions gone", () => b.gateway.limits!.remote === 0);
    assert.equal((await upgrade(b.port, token)).status, 101);
  });
});

describe('idle timeout and maximum duration', { timeout: 60_000 }, () => {
  let backend: TestBackend;
  let gw: TestGateway | undefined;
  before(async () => {
    backend = await bannerBackend();
  });
  after(() => backend.close());
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  const updateRequest = Buffer.from([3, 1, 0, 0, 0, 0, 0, 64, 0, 48]);
  const pointer = Buffer.from([5, 0, 0, 10, 0, 10]);

  it('closes a console whose browser only asks for screen updates with 1008 "console idle timeout"', async () => {
    gw = await startGateway({ 'porthole.console_idle_timeout': '1' });
    const { ws } = await consoleOf(gw, SERVER_A, backend);
    const end = closed(ws);
    // noVNC's update requests keep coming, and are not input
    const timer = setInterval(() => ws.readyState === ws.OPEN && ws.send(updateRequest), 100);
    try {
      assert.deepEqual(await end, { code: 1008, reason: 'console idle timeout' });
    } finally {
      clearInterval(timer);
    }
    await eventually('the session gone', () => gw!.gateway.sessions.size === 0);
  });

  it('keeps a console with input open past the idle timeout', async () => {
    gw = await startGateway({ 'porthole.console_idle_timeout': '1' });
    const { ws } = await consoleOf(gw, SERVER_A, backend);
    let closedAt: { code: number; reason: string } | undefined;
    void closed(ws).then((c) => (closedAt = c));
    for (let i = 0; i < 25; i++) {
      ws.send(pointer);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(closedAt, undefined, 'still open after 2.5 s of pointer events');
    const end = closed(ws);
    assert.deepEqual(await end, { code: 1008, reason: 'console idle timeout' }, 'and closed once they stop');
  });

  it('closes a console at max_console_duration with 1008 "console session reached its maximum duration", input or not', async () => {
    gw = await startGateway({ 'porthole.max_console_duration': '1', 'porthole.console_idle_timeout': '60' });
    const { ws } = await consoleOf(gw, SERVER_A, backend);
    const end = closed(ws);
    const timer = setInterval(() => ws.readyState === ws.OPEN && ws.send(pointer), 100);
    try {
      assert.deepEqual(await end, { code: 1008, reason: 'console session reached its maximum duration' });
    } finally {
      clearInterval(timer);
    }
  });

  it('closes with the earlier deadline: an expiring token before the maximum duration says the session expired', async () => {
    gw = await startGateway({ 'porthole.max_console_duration': '60', 'consoleauth.enforce_session_timeout': 'true' });
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: SERVER_A, ttl: 2 });
    const { ws } = await openRfbConsole(`ws://127.0.0.1:${gw.port}/websockify?token=${token}`);
    assert.deepEqual(await closed(ws), { code: 1008, reason: 'console session expired' });
  });
});

describe('what counts as input on RFB', () => {
  it('is not input: update requests, continuous updates, fences, alone or together', () => {
    const fence = Buffer.from([248, 0, 0, 0, 0x80, 0, 0, 0, 4, 1, 2, 3, 4]);
    const cu = Buffer.from([150, 1, 0, 0, 0, 0, 0, 64, 0, 48]);
    for (const m of [Buffer.from([3, 1, 0, 0, 0, 0, 0, 64, 0, 48]), fence, cu, Buffer.concat([fence, cu, Buffer.from([3, 0, 0, 0, 0, 0, 0, 1, 0, 1])])]) assert.equal(rfbIsInput(m), false, m.toString('hex'));
  });
  it('is input: keys, pointer, cut text, anything else, and a record cut short', () => {
    for (const m of [Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]), Buffer.from([5, 0, 0, 1, 0, 1]), Buffer.from([6, 0, 0, 0, 0, 0, 0, 1, 0x61]), Buffer.from([255, 0, 0, 1]), Buffer.from([3, 1, 0, 0]), Buffer.concat([Buffer.from([3, 1, 0, 0, 0, 0, 0, 64, 0, 48]), Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61])])]) assert.equal(rfbIsInput(m), true, m.toString('hex'));
  });
});
