import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { setOwnBufferLimit } from '../../src/proxy/backend.ts';
import { hashToken } from '../../src/store/types.ts';
import { bannerBackend, connectTunnelBackend, echoBackend, openConsole, openRfbConsole, RFB_BANNER, rfbNoneServer, sourceBackend, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { freePort } from '../support/xvnc.ts';

describe('console WebSocket upgrade', () => {
  let gw: TestGateway;
  let backend: TestBackend;

  before(async () => {
    gw = await startGateway({ 'console.allowed_origins': 'portal.example.com', 'porthole.handshake_timeout': '0.5' });
    backend = await bannerBackend();
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  const wsUrl = (query: string, path = '/') => `ws://127.0.0.1:${gw.port}${path}${query}`;

  function refusalLogged(code: string) {
    return eventually(`a refusal log line with ${code}`, () => gw.logs.find((l) => l.event === 'refused' && l.code === code));
  }

  it('opens a console for a valid token, with the binary subprotocol, and logs the session', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const r = await openConsole(wsUrl(`?token=${token}`));
    assert.equal(r.protocol, 'binary');
    assert.deepEqual(r.first, RFB_BANNER);
    r.ws!.close();
    const { ws } = await openRfbConsole(wsUrl(`?token=${token}`));
    ws.close();
    const line = await eventually('session log line', () => gw.logs.find((l) => l.event === 'session' && l.tokenHash === hashToken(token).slice(0, 8)));
    assert.equal(line.bytesFromBackend, 0);
    assert.equal(line.backendAuth, 'None');
    assert.match(String(line.client), /^127\.0\.0\.1:\d+$/);
    assert.equal(typeof line.durationMs, 'number');
  });

  it('takes the token from /websockify, from the noVNC path parameter and from cookies', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    for (const [url, headers] of [
      [wsUrl(`?token=${token}`, '/websockify'), {}],
      [wsUrl(`?path=${encodeURIComponent(`?token=${token}`)}`, '/websockify'), {}],
      [wsUrl('', '/websockify'), { Cookie: `token=${token}` }],
      // tempest sends the page URL's query string as its Cookie header
      [wsUrl('', '/websockify'), { Cookie: `path=%3Ftoken%3D${token}` }],
      [wsUrl('', '/'), { Cookie: `junk; =x; other="a b"; token=${token}` }],
    ] as const) {
      const r = await openConsole(url, { headers });
      assert.deepEqual(r.first, RFB_BANNER, `${url} ${JSON.stringify(headers)}`);
      r.ws!.close();
    }
  });

  it('uses the last token query value, as Nova does', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const r = await openConsole(wsUrl(`?token=not-this-one&token=${token}`));
    assert.deepEqual(r.first, RFB_BANNER);
    r.ws!.close();
  });

  it('refuses an unknown token with 403, an empty body and no backend connection', async () => {
    const before = backend.connections;
    const r = await openConsole(wsUrl('?token=3f0c2a8e-0000-4000-8000-000000000000'));
    assert.equal(r.status, 403);
    assert.equal(backend.connections, before);
    await refusalLogged('TOKEN_UNKNOWN');
  });

  it('refuses an expired token', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    await gw.gateway.stores.database!.db.updateTable('console_auth_tokens').set({ expires: Math.floor(Date.now() / 1000) - 1 }).where('token_hash', '=', hashToken(token)).execute();
    const before = backend.connections;
    assert.equal((await openConsole(wsUrl(`?token=${token}`))).status, 403);
    assert.equal(backend.connections, before);
    await refusalLogged('TOKEN_EXPIRED');
  });

  it('refuses a revoked token', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    assert.equal(await gw.gateway.stores.tokens.revoke(token), true);
    const before = backend.connections;
    assert.equal((await openConsole(wsUrl(`?token=${token}`))).status, 403);
    assert.equal(backend.connections, before);
  });

  it('refuses a request without a token with 400', async () => {
    assert.equal((await openConsole(wsUrl(''))).status, 400);
    await refusalLogged('TOKEN_MISSING');
  });

  it('checks Origin against Host and [console] allowed_origins (CVE-2015-0259)', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const before = backend.connections;
    assert.equal((await openConsole(wsUrl(`?token=${token}`), { origin: 'http://evil.example.net' })).status, 403);
    assert.equal(backend.connections, before);
    await refusalLogged('ORIGIN_MISMATCH');
    // same hostname as Host, any port: allowed
    const same = await openConsole(wsUrl(`?token=${token}`), { origin: 'http://127.0.0.1:9999' });
    assert.deepEqual(same.first, RFB_BANNER);
    same.ws!.close();
    const allowed = await openConsole(wsUrl(`?token=${token}`), { origin: 'http://portal.example.com' });
    assert.deepEqual(allowed.first, RFB_BANNER);
    allowed.ws!.close();
  });

  it('refuses an Origin whose scheme differs from the console URL, honouring X-Forwarded-Proto', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    assert.equal((await openConsole(wsUrl(`?token=${token}`), { origin: 'https://127.0.0.1' })).status, 403);
    await refusalLogged('ORIGIN_PROTO_MISMATCH');
    const n = gw.logs.length;
    assert.equal((await openConsole(wsUrl(`?token=${token}`), { origin: 'http://127.0.0.1', headers: { 'X-Forwarded-Proto': 'https' } })).status, 403);
    await eventually('second proto refusal', () => gw.logs.slice(n).find((l) => l.code === 'ORIGIN_PROTO_MISMATCH'));
    assert.equal((await openConsole(wsUrl(`?token=${token}`), { origin: 'null' })).status, 403);
  });

  it('refuses request paths that start with // (CVE-2021-3654) and unknown paths', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const before = backend.connections;
    assert.equal((await openConsole(`ws://127.0.0.1:${gw.port}//evil.example.net/?token=${token}`)).status, 400);
    await refusalLogged('DOUBLE_SLASH_PATH');
    assert.equal((await openConsole(wsUrl(`?token=${token}`, '/other'))).status, 404);
    assert.equal(backend.connections, before);
    const res = await fetch(`http://127.0.0.1:${gw.port}//evil.example.net/`);
    assert.equal(res.status, 400);
  });

  it('refuses a token whose console port no longer belongs to its server (CVE-2013-0335)', async () => {
    const id = '0b7b6f7e-7c3e-4d3a-9a56-0d6c2f1d9e01';
    await gw.gateway.stores.inventory.put({ id, name: 'web-1', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: backend.port } });
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: id });
    const ok = await openConsole(wsUrl(`?token=${token}`));
    assert.deepEqual(ok.first, RFB_BANNER);
    ok.ws!.close();
    // the server moved: its console is now elsewhere, the old port may belong to another VM
    await gw.gateway.stores.inventory.put({ id, name: 'web-1', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: backend.port + 1 } });
    const before = backend.connections;
    assert.equal((await openConsole(wsUrl(`?token=${token}`))).status, 403);
    assert.equal(backend.connections, before);
    await refusalLogged('CONSOLE_PORT_MISMATCH');
  });

  it('answers 502 when the backend is unreachable, and says so in the log', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: await freePort() });
    assert.equal((await openConsole(wsUrl(`?token=${token}`))).status, 502);
    const line = await refusalLogged('BACKEND_UNREACHABLE');
    assert.match(line.msg, /ECONNREFUSED/);
  });

  it('performs the internal_access_path CONNECT handshake before relaying', async () => {
    const tunnel = await connectTunnelBackend('/console/abc');
    try {
      const { token } = await gw.mint({ host: '127.0.0.1', port: tunnel.port, internalAccessPath: '/console/abc' });
      const r = await openConsole(wsUrl(`?token=${token}`));
      assert.deepEqual(r.first, RFB_BANNER);
      r.ws!.close();
      assert.deepEqual(tunnel.requests, ['CONNECT /console/abc HTTP/1.1']);
      const bad = await gw.mint({ host: '127.0.0.1', port: tunnel.port, internalAccessPath: '/wrong' });
      assert.equal((await openConsole(wsUrl(`?token=${bad.token}`))).status, 502);
      await refusalLogged('BACKEND_PROTOCOL');
    } finally {
      await tunnel.close();
    }
  });

  it('drops a client that does not finish its request headers in time', async () => {
    const sock = connect(gw.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('GET /?token=x HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    sock.resume();
    const closed = await new Promise<boolean>((resolve) => {
      sock.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 5000);
    });
    assert.equal(closed, true);
  });

  it('never writes a token into the log', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const r = await openConsole(wsUrl(`?token=${token}`));
    r.ws!.close();
    await openConsole(wsUrl(`?token=${token}x`));
    await eventually('log lines', () => gw.logs.some((l) => l.tokenHash === hashToken(token).slice(0, 8)));
    assert.ok(!gw.rawLog.join('').includes(token));
  });
});

/** RFB None up to ServerInit; then, once the client has sent a byte, `size` bytes of connection `seed()`'s pattern. */
function patternBackend(seed: () => number, size: number, byteAt: (seed: number, j: number) => number): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    const k = seed();
    const chunk = (from: number) => Buffer.from(Array.from({ length: Math.min(256 * 1024, size - from) }, (_, i) => byteAt(k, from + i)));
    rfbNoneServer(sock, (s) => {
      let sent = 0;
      const pump = () => {
        while (sent < size) {
          const c = chunk(sent);
          sent += c.length;
          if (!s.write(c)) return void s.once('drain', pump);
        }
      };
      s.once('data', pump);
      s.resume();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  })));
}

describe('console relay', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw.close();
  });

  it('relays bytes exactly both ways', async () => {
    const echo = await echoBackend();
    try {
      const { token } = await gw.mint({ host: '127.0.0.1', port: echo.port });
      const { ws } = await openRfbConsole(`ws://127.0.0.1:${gw.port}/?token=${token}`);
      const sent: Buffer[] = [];
      for (let i = 0; i < 64; i++) {
        const chunk = Buffer.alloc(1 + ((i * 7919) % 40000));
        for (let j = 0; j < chunk.length; j++) chunk[j] = (i * 31 + j * 17) & 0xff;
        sent.push(chunk);
      }
      const expected = Buffer.concat(sent);
      const received: Buffer[] = [];
      let got = 0;
      const done = new Promise<void>((resolve) => ws.on('message', (d: Buffer) => {
        received.push(d);
        got += d.length;
        if (got >= expected.length) resolve();
      }));
      for (const c of sent) ws.send(c);
      await done;
      assert.ok(Buffer.concat(received).equals(expected));
      ws.close();
    } finally {
      await echo.close();
    }
  });

  it('keeps the bytes of concurrent consoles apart and in order', async () => {
    // backend sockets read into a shared buffer or into pooled ones (src/proxy/backend.ts): a relay
    // that forwarded a view of the shared one, or reused a pooled one before its write was done,
    // would send one console's bytes to another
    const SIZE = 16 * 1024 * 1024;
    const CONSOLES = 6;
    const byteAt = (seed: number, j: number) => (seed * 131 + j * 7 + (j >> 11)) & 0xff;
    let seeds = 0;
    const pattern = await patternBackend(() => seeds++, SIZE, byteAt);
    try {
      const { token } = await gw.mint({ host: '127.0.0.1', port: pattern.port });
      const consoles = await Promise.all(Array.from({ length: CONSOLES }, () => openRfbConsole(`ws://127.0.0.1:${gw.port}/?token=${token}`)));
      // one browser reads nothing until the others are through: once the kernel's buffers toward
      // it are full, the proxy's writes to it wait while the others stream, so a read buffer
      // given back before its write is done would carry their bytes
      consoles[0]!.ws.pause();
      // two buffers of their own for six streams: one given back is the next taken
      setOwnBufferLimit(2);
      for (const { ws } of consoles) ws.send(Buffer.from([1]));
      const seedOf = (first: number) => Array.from({ length: CONSOLES }, (_, k) => k).find((k) => byteAt(k, 0) === first) ?? -1;
      const received = consoles.map(({ ws }) => new Promise<string>((resolve) => {
        let seed = -1;
        let j = 0;
        let bad = '';
        const take = (d: Buffer) => {
          for (let i = 0; i < d.length; i++, j++) {
            if (j === 0) seed = seedOf(d[0]!);
            if (!bad && d[i] !== byteAt(seed, j)) bad = `byte ${j} is ${d[i]}, expected ${byteAt(seed, j)} (seed ${seed})`;
          }
          if (j >= SIZE) resolve(bad || (j === SIZE ? 'ok' : `${j} bytes, more than ${SIZE}`));
        };
        ws.on('message', take);
      }));
      const others = await Promise.all(received.slice(1));
      consoles[0]!.ws.resume();
      setOwnBufferLimit(32);
      assert.deepEqual([await received[0], ...others], Array(CONSOLES).fill('ok'));
      for (const { ws } of consoles) ws.close();
    } finally {
      await pattern.close();
    }
  });

  it('pauses the backend while the browser does not read (backpressure)', async () => {
    const source = await sourceBackend();
    try {
      const { token } = await gw.mint({ host: '127.0.0.1', port: source.port });
      const { ws } = await openRfbConsole(`ws://127.0.0.1:${gw.port}/?token=${token}`);
      ws.removeAllListeners('message');
      ws.pause();
      // without backpressure the proxy would read the endless source into memory;
      // with it, the source stalls once the kernel buffers on both legs are full
      await eventually('the source to stall', async () => {
        const a = source.written();
        await new Promise((r) => setTimeout(r, 300));
        return source.written() === a;
      }, 10000);
      assert.ok(source.written() < 64 * 1024 * 1024, `source wrote ${source.written()} bytes into a paused console`);
      let got = 0;
      ws.on('message', (d: Buffer) => (got += d.length));
      ws.resume();
      await eventually('bytes flowing again', () => got > 0);
      ws.terminate();
    } finally {
      await source.close();
    }
  });

  it('ends the session with the backend and logs the bytes each way', async () => {
    const echo = await echoBackend();
    try {
      const { token } = await gw.mint({ host: '127.0.0.1', port: echo.port });
      const { ws } = await openRfbConsole(`ws://127.0.0.1:${gw.port}/?token=${token}`);
      ws.send(Buffer.from('hello'));
      await new Promise((r) => ws.once('message', r));
      const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
      for (const s of echo.sockets) s.end();
      assert.equal(await closed, 1000);
      const line = await eventually('session line', () => gw.logs.find((l) => l.event === 'session' && l.bytesFromClient === 5));
      assert.equal(line.bytesFromBackend, 5);
      assert.equal(line.reason, 'backend closed');
    } finally {
      await echo.close();
    }
  });
});

describe('client address behind a balancer ([porthole] trusted_proxies)', () => {
  let trusting: TestGateway;
  let plain: TestGateway;
  let backend: TestBackend;
  before(async () => {
    trusting = await startGateway({ 'porthole.trusted_proxies': '127.0.0.1,192.0.2.1' });
    plain = await startGateway();
    backend = await bannerBackend();
  });
  after(async () => {
    await trusting.close();
    await plain.close();
    await backend.close();
  });

  async function refusedClient(gw: TestGateway, xff: string): Promise<unknown> {
    const n = gw.logs.length;
    const r = await openConsole(`ws://127.0.0.1:${gw.port}/?token=0b1e2d3c-0000-4000-8000-000000000000`, { headers: { 'X-Forwarded-For': xff } });
    assert.equal(r.status, 403);
    return (await eventually('the refusal line', () => gw.logs.slice(n).find((l) => l.event === 'refused'))).client;
  }

  it('takes the right-most forwarded address that is not a trusted proxy', async () => {
    assert.equal(await refusedClient(trusting, '203.0.113.7'), '203.0.113.7');
    // the left part is whatever the client claimed: never read
    assert.equal(await refusedClient(trusting, '10.9.9.9, 203.0.113.7'), '203.0.113.7');
    // a second trusted balancer in the chain is skipped
    assert.equal(await refusedClient(trusting, '203.0.113.7, 192.0.2.1'), '203.0.113.7');
    // garbage is not an address: the balancer's own address stays
    assert.match(String(await refusedClient(trusting, 'not-an-ip')), /^127\.0\.0\.1:\d+$/);
  });

  it('ignores X-Forwarded-For unless the peer is a trusted proxy', async () => {
    assert.match(String(await refusedClient(plain, '203.0.113.7')), /^127\.0\.0\.1:\d+$/);
  });

  it('logs a session with the forwarded client', async () => {
    const { token } = await trusting.mint({ host: '127.0.0.1', port: backend.port });
    const { ws } = await openRfbConsole(`ws://127.0.0.1:${trusting.port}/?token=${token}`, { headers: { 'X-Forwarded-For': '203.0.113.9' } });
    ws.close();
    const line = await eventually('session line', () => trusting.logs.find((l) => l.event === 'session' && l.tokenHash === hashToken(token).slice(0, 8)));
    assert.equal(line.client, '203.0.113.9');
  });
});
