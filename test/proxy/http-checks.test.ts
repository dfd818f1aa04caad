/**
 * Requests the console listener's HTTP parser lets through but Porthole must refuse before it
 * dials a backend (issue 11, item 10): a request line without a version (HTTP/0.9 to llhttp),
 * HTTP/1.0, two Host headers, an upgrade with a body (Content-Length or chunked), a malformed
 * Sec-WebSocket-Protocol; and a backend's reason string with a right-to-left override, which the
 * log must show escaped.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { upgradeProblem } from '../../src/http/request-checks.ts';
import { bannerBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import type { IncomingMessage } from 'node:http';

/** Sends `request` as raw bytes and returns everything the proxy answered before closing. */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1');
    let got = '';
    c.on('data', (d) => (got += d.toString('latin1')));
    c.on('close', () => resolve(got));
    c.on('error', reject);
    c.write(request);
    setTimeout(() => c.destroy(), 3000).unref();
  });
}

describe('requests refused before the backend is dialled', () => {
  let gw: TestGateway;
  let backend: TestBackend;
  let token: string;

  before(async () => {
    gw = await startGateway();
    backend = await bannerBackend();
    ({ token } = await gw.mint({ host: '127.0.0.1', port: backend.port }));
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  const upgrade = (opts: { line?: string; host?: string; extra?: string; body?: string } = {}) =>
    `${opts.line ?? `GET /?token=${token} HTTP/1.1`}\r\n${opts.host ?? `Host: 127.0.0.1:${gw.port}\r\n`}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n${opts.extra ?? ''}\r\n${opts.body ?? ''}`;

  it('upgrades the well-formed request these cases are made from', async () => {
    const before = backend.connections;
    const reply = await raw(gw.port, upgrade());
    assert.match(reply, /^HTTP\/1\.1 101 /);
    await eventually('the backend connection', () => backend.connections === before + 1);
  });

  const cases: [string, () => string][] = [
    ['a request line without an HTTP version', () => upgrade({ line: `GET /?token=${token}` })],
    ['HTTP/1.0', () => upgrade({ line: `GET /?token=${token} HTTP/1.0` })],
    ['two Host headers', () => upgrade({ host: `Host: 127.0.0.1:${gw.port}\r\nHost: evil.example\r\n` })],
    ['no Host header', () => upgrade({ host: '' })],
    ['a Content-Length body', () => upgrade({ extra: 'Content-Length: 5\r\n', body: 'hello' })],
    ['a chunked body', () => upgrade({ extra: 'Transfer-Encoding: chunked\r\n', body: '5\r\nhello\r\n0\r\n\r\n' })],
    ['a malformed Sec-WebSocket-Protocol (bin ary, ,)', () => upgrade({ extra: 'Sec-WebSocket-Protocol: bin ary, ,\r\n' })],
  ];
  for (const [what, request] of cases) {
    it(`answers an upgrade with ${what} with 400 and never dials the backend`, async () => {
      const before = backend.connections;
      const reply = await raw(gw.port, request());
      assert.match(reply, /^HTTP\/1\.1 400 /, JSON.stringify(reply.slice(0, 60)));
      assert.doesNotMatch(reply, /101 Switching/);
      assert.equal(backend.connections, before);
    });
  }

  it('still opens consoles after all of them', async () => {
    const { ws, messages } = await openRfbConsole(`ws://127.0.0.1:${gw.port}/?token=${token}`);
    assert.ok(messages.length > 0);
    ws.close();
  });
});

describe('upgradeProblem', () => {
  const req = (headers: Record<string, string>, version = '1.1', method = 'GET') => {
    const rawHeaders = Object.entries(headers).flat();
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    const [major, minor] = version.split('.').map(Number);
    return { method, httpVersion: version, httpVersionMajor: major, httpVersionMinor: minor, rawHeaders, headers: lower } as unknown as IncomingMessage;
  };
  const good = { Host: 'a', Upgrade: 'websocket', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' };

  it('accepts subprotocol lists as ws parses them and refuses the rest', () => {
    for (const p of ['binary', 'binary, base64', 'binary,base64', 'a ,b']) assert.equal(upgradeProblem(req({ ...good, 'Sec-WebSocket-Protocol': p })), undefined, p);
    for (const p of ['', ' binary', 'binary ', 'bin ary', 'binary,', ',binary', 'binary, binary', 'bin/ary', 'a,,b']) {
      assert.equal(upgradeProblem(req({ ...good, 'Sec-WebSocket-Protocol': p }))?.code, 'BAD_REQUEST', JSON.stringify(p));
    }
  });

  it('accepts Content-Length: 0 and refuses any other body framing', () => {
    assert.equal(upgradeProblem(req({ ...good, 'Content-Length': '0' })), undefined);
    assert.equal(upgradeProblem(req({ ...good, 'Content-Length': '1' }))?.code, 'BAD_REQUEST');
    assert.equal(upgradeProblem(req({ ...good, 'Transfer-Encoding': 'identity' }))?.code, 'BAD_REQUEST');
  });

  it('refuses methods other than GET and keys that are not 16 bytes of base64', () => {
    assert.equal(upgradeProblem(req(good, '1.1', 'POST'))?.code, 'BAD_REQUEST');
    assert.equal(upgradeProblem(req({ ...good, 'Sec-WebSocket-Key': 'short==' }))?.code, 'BAD_REQUEST');
  });
});

describe("a backend's reason string in the log", () => {
  let gw: TestGateway;
  let server: Server;
  const REASON = 'locked \u202Egnp.exe\u202C by \u2066admin\u2069\u0007';

  before(async () => {
    gw = await startGateway();
    // RFB 3.8 server that refuses with no security types and the reason above (§7.1.2)
    server = createServer((s) => {
      s.on('error', () => {});
      s.write('RFB 003.008\n');
      s.once('data', () => {
        const r = Buffer.from(REASON);
        const head = Buffer.alloc(5);
        head.writeUInt32BE(r.length, 1);
        s.end(Buffer.concat([head, r]));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    await gw.close();
    server.close();
  });

  it('escapes bidirectional overrides, isolates and controls', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
    await openRfbConsole(`ws://127.0.0.1:${gw.port}/?token=${token}`).then(({ ws }) => ws.close(), () => {});
    const line = await eventually('the refusal', () => gw.rawLog.find((l) => l.includes('BACKEND_AUTH_FAILED')));
    for (const c of ['\u202E', '\u202C', '\u2066', '\u2069', '\u0007']) assert.ok(!JSON.parse(line).msg.includes(c), `raw U+${c.charCodeAt(0).toString(16)} in the log message`);
    assert.match(JSON.parse(line).msg, /locked \\u202egnp\.exe\\u202c by \\u2066admin\\u2069\\u0007/);
  });
});

describe('page requests', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(() => gw.close());

  it('answers HTTP/0.9 and two Host headers with 400, and serves HTTP/1.0 without Host', async () => {
    assert.match(await raw(gw.port, 'GET /vnc.html\r\nHost: a\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.match(await raw(gw.port, 'GET /vnc.html HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.match(await raw(gw.port, 'GET /vnc.html HTTP/1.0\r\n\r\n'), /^HTTP\/1\.1 200 /);
    assert.match(await raw(gw.port, 'GET /vnc.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /);
  });
});
