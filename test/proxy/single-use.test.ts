/**
 * `[porthole] single_use_tokens` through the real proxy: the first working connection consumes
 * the token, a used token is refused before any backend connection, the same client (address)
 * may come back within `reconnect_grace_seconds` after its session dropped and no one else may,
 * a connection that failed leaves the token unused, and two proxies sharing one PostgreSQL
 * (the machine's, a database of the test's own) never both accept one token.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { bannerBackend, openConsole, openRfbConsole, rfbNoneServer, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { freshPostgres, type FreshStore } from '../support/stores.ts';
import { freePort } from '../support/xvnc.ts';

/** Opens a console WebSocket from another loopback address; resolves with the HTTP status of a refusal, or 101. */
function statusFrom(url: string, localAddress: string): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary'], { localAddress, perMessageDeflate: false });
    ws.once('upgrade', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    ws.once('error', reject);
  });
}

function wsUrl(g: TestGateway, token: string): string {
  return `ws://127.0.0.1:${g.port}/websockify?token=${token}`;
}

async function reopen(url: string): Promise<Awaited<ReturnType<typeof openRfbConsole>>> {
  // the release of the ended session is written a moment after the close
  return eventually('the same client to reconnect', async () => {
    try {
      return await openRfbConsole(url);
    } catch {
      return undefined;
    }
  });
}

describe('single-use tokens through the proxy', () => {
  let backend: TestBackend;
  let gw: TestGateway;

  before(async () => {
    backend = await bannerBackend();
    gw = await startGateway({ 'porthole.single_use_tokens': 'true' });
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  it('opens a console once and refuses the token to a second connection, without dialling the backend', async () => {
    const url = wsUrl(gw, (await gw.mint({ host: '127.0.0.1', port: backend.port })).token);
    const first = await openRfbConsole(url);
    const dialled = backend.connections;
    assert.deepEqual(await openConsole(url), { status: 403 });
    assert.equal((await statusFrom(url, '127.0.0.2')).status, 403);
    assert.equal(backend.connections, dialled);
    assert.ok(gw.logs.some((l) => l.code === 'TOKEN_CONSUMED'));
    first.ws.close();
  });

  it('lets the same client reconnect after its session dropped, and nobody else', async () => {
    const url = wsUrl(gw, (await gw.mint({ host: '127.0.0.1', port: backend.port })).token);
    const first = await openRfbConsole(url);
    first.ws.terminate();
    const again = await reopen(url);
    again.ws.close();
    await eventually('the session to end', () => gw.gateway.sessions.size === 0);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await statusFrom(url, '127.0.0.2')).status, 403, 'another client address');
    const third = await reopen(url);
    third.ws.close();
  });

  it('leaves the token unused when the connection that took it failed', async () => {
    const port = await freePort();
    const url = wsUrl(gw, (await gw.mint({ host: '127.0.0.1', port })).token);
    assert.deepEqual(await openConsole(url), { status: 502 }, 'nothing listens yet');
    const late: Server = createServer((s) => {
      s.on('error', () => {});
      rfbNoneServer(s, (sock) => sock.resume());
    });
    await new Promise<void>((r) => late.listen(port, '127.0.0.1', r));
    try {
      // from another address: the failed attempt did not make the token that client's
      const { status, ws } = await statusFrom(url, '127.0.0.2');
      assert.equal(status, 101);
      ws!.terminate();
    } finally {
      await new Promise<void>((r) => late.close(() => r()));
    }
  });

  it('refuses a dropped session\'s token for good with reconnect_grace_seconds = 0', async () => {
    const strict = await startGateway({ 'porthole.single_use_tokens': 'true', 'porthole.reconnect_grace_seconds': '0' });
    try {
      const url = wsUrl(strict, (await strict.mint({ host: '127.0.0.1', port: backend.port })).token);
      const first = await openRfbConsole(url);
      first.ws.close();
      await eventually('the session to end', () => strict.gateway.sessions.size === 0);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(await openConsole(url), { status: 403 });
    } finally {
      await strict.close();
    }
  });
});

describe('single-use tokens across two proxies on one PostgreSQL', () => {
  const ROUNDS = 15;
  let db: FreshStore;
  let backend: TestBackend;
  let a: TestGateway;
  let b: TestGateway;

  before(async () => {
    db = await freshPostgres();
    backend = await bannerBackend();
    const settings = { 'database.connection': db.url, 'porthole.single_use_tokens': 'true' };
    a = await startGateway(settings);
    b = await startGateway(settings);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await backend?.close();
    await db?.drop();
  });

  it(`accepts exactly one of two simultaneous connections, one per proxy, in each of ${ROUNDS} rounds`, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const { token } = await a.mint({ host: '127.0.0.1', port: backend.port });
      const results = await Promise.all([statusFrom(wsUrl(a, token), '127.0.0.1'), statusFrom(wsUrl(b, token), '127.0.0.1')]);
      assert.deepEqual(results.map((r) => r.status).sort(), [101, 403], `round ${i}`);
      for (const r of results) r.ws?.terminate();
    }
  });
});
