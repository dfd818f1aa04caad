/**
 * A console token never reaches the log (issue 11, item 4), wherever a client puts it: in the
 * URL path (`/websockify/<token>`, `/websockify;token=<token>`, `/<token>`), in the query with
 * bad percent-encoding, in every header a client controls (a broken cookie, Origin, Host,
 * the WebSocket headers, X-Forwarded-For, Authorization), as the method, on plain HTTP requests
 * for pages and token state, and on the API's port; with a valid token, an unknown one, and past
 * the per-address budget of failed lookups. Each request is sent raw (`net`), its answer waited
 * for, and every raw log line written since is searched for the token's text.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { RawClient, upgradeRequest, WS_KEY } from '../support/raw-ws.ts';
import { scriptedRfbBackend } from '../support/storm.ts';
import { freePort } from '../support/xvnc.ts';
import type { CountingServer } from '../support/leak-meter.ts';

/** Sends `request` raw to `port` and waits for the answer to end (or 3 s); then drops the connection. */
async function send(port: number, request: string | Buffer): Promise<number | undefined> {
  const c = await RawClient.open(port);
  try {
    c.write(request);
    // an upgrade that succeeds gets its first frame (ProtocolVersion); anything else an answer or a close
    await c.until(() => c.ended || (c.status !== undefined && c.status !== 101) || c.frames.length > 0, 3000);
    return c.status;
  } finally {
    c.destroy();
  }
}

/** A plain HTTP request with `headers` (a string: raw header lines). */
function httpRequest(port: number, target: string, headers = '', method = 'GET'): string {
  return `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${headers ? `${headers}\r\n` : ''}Connection: close\r\n\r\n`;
}

describe('the raw token never reaches the log (issue 11)', () => {
  let gw: TestGateway;
  let backend: CountingServer;

  before(async () => {
    gw = await startGateway({ 'console.allowed_origins': 'portal.example.com' });
    backend = await scriptedRfbBackend({});
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  /**
   * Sends each request and returns, for each one whose log lines hold a token's text, what it was
   * and the line: the list a failure prints.
   */
  async function leaks(tokens: readonly string[], cases: ReadonlyArray<readonly [string, number, string | Buffer]>): Promise<string[]> {
    const found: string[] = [];
    for (const [name, port, request] of cases) {
      const from = gw.rawLog.length;
      await send(port, request);
      // refusals are logged as they are decided, sessions when they end: a turn for either
      await new Promise((r) => setTimeout(r, 20));
      for (const line of gw.rawLog.slice(from)) {
        for (const t of tokens) if (line.includes(t)) found.push(`${name}: ${line.trim().slice(0, 300)}`);
      }
    }
    return found;
  }

  /** `upgradeRequest` on the console port, with a Sec-WebSocket-Protocol of `protocol` when given. */
  const up = (target: string, extra: Record<string, string> | string = {}, protocol?: string | null) => upgradeRequest(gw.port, target, extra, { protocol });

  it('keeps a valid token out of the log wherever a URL or a cookie can carry it', async () => {
    const { token: t } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const p = gw.port;
    const cases: Array<readonly [string, number, string | Buffer]> = [
      // in the path: the NOT_FOUND refusal must not print it
      ['upgrade /websockify/<token>', p, up(`/websockify/${t}`)],
      ['upgrade /websockify;token=<token>', p, up(`/websockify;token=${t}`)],
      ['upgrade /<token>', p, up(`/${t}`)],
      ['upgrade //<token>', p, up(`//${t}`)],
      ['upgrade /websockify/<token>?token=<token>', p, up(`/websockify/${t}?token=${t}`)],
      ['upgrade /%2e%2e/<token>', p, up(`/%2e%2e/${t}`)],
      ['upgrade absolute-form URL', p, up(`http://127.0.0.1:${p}/websockify/${t}`)],
      ['upgrade path with a fragment', p, up(`/websockify#token=${t}`)],
      // in the query, well and badly encoded
      ['upgrade ?token=<token>%zz', p, up(`/websockify?token=${t}%zz`)],
      ['upgrade ?token=%<token>', p, up(`/websockify?token=%${t}`)],
      ['upgrade ?path=%3Ftoken%3D<token>%E0%A4%A', p, up(`/websockify?path=%3Ftoken%3D${t}%E0%A4%A`)],
      ['upgrade ?tok%65n=<token>', p, up(`/websockify?tok%65n=${t}`)],
      ['upgrade ?token=<token> padded past 255 characters', p, up(`/websockify?token=${t}${'x'.repeat(300)}`)],
      ['upgrade ?token=<token>&token=', p, up(`/websockify?token=${t}&token=`)],
      // in cookies, broken ones too
      ['upgrade Cookie token=<token>%zz', p, up('/websockify', { Cookie: `token=${t}%zz` })],
      ['upgrade Cookie token="<token>', p, up('/websockify', { Cookie: `token="${t}` })],
      ['upgrade Cookie path=%3Ftoken%3D<token>; =x', p, up('/websockify', { Cookie: `path=%3Ftoken%3D${t}; =x; ;;` })],
      ['upgrade Cookie with a control byte', p, up('/websockify', { Cookie: `token=${t}\x01` })],
      ['upgrade Referer', p, up('/websockify', { Referer: `http://127.0.0.1:${p}/vnc.html?token=${t}` })],
      // the request around a good token broken in other ways: each refusal's line
      ['upgrade Origin https:// scheme mismatch', p, up(`/websockify?token=${t}`, { Origin: 'https://portal.example.com' })],
      ['upgrade Sec-WebSocket-Protocol missing', p, up(`/websockify?token=${t}`, {}, null)],
      ['upgrade with a Content-Length body', p, up(`/websockify?token=${t}`, { 'Content-Length': String(t.length) }) + t],
      ['upgrade with a chunked body', p, `${up(`/websockify?token=${t}`, { 'Transfer-Encoding': 'chunked' })}${t.length.toString(16)}\r\n${t}\r\n0\r\n\r\n`],
      ['upgrade without the HTTP version', p, up(`/websockify?token=${t}`).replace(' HTTP/1.1\r\n', '\r\n')],
      ['upgrade POST', p, up(`/websockify?token=${t}`).replace(/^GET/, 'POST')],
      ['upgrade header block over max_header_size', p, up(`/websockify?token=${t}`, { 'X-Big': 'a'.repeat(20_000) })],
      ['upgrade with a bad Sec-WebSocket-Key', p, up(`/websockify?token=${t}`).replace(WS_KEY, 'short')],
      // plain HTTP on the console port
      ['GET /websockify/<token>', p, httpRequest(p, `/websockify/${t}`)],
      ['GET /<token>', p, httpRequest(p, `/${t}`)],
      ['GET /vnc.html?token=<token>', p, httpRequest(p, `/vnc.html?token=${t}`)],
      ['GET /vnc_auto.html?path=%3Ftoken%3D<token>', p, httpRequest(p, `/vnc_auto.html?path=%3Ftoken%3D${t}`)],
      ['GET /vnc.html?token=<token>%zz', p, httpRequest(p, `/vnc.html?token=${t}%zz`)],
      ['GET /porthole/token-state?token=<token>', p, httpRequest(p, `/porthole/token-state?token=${t}`)],
      ['GET /porthole/token-state/<token>', p, httpRequest(p, `/porthole/token-state/${t}`)],
      ['GET /vnc.html Cookie token=<token>%zz', p, httpRequest(p, '/vnc.html', `Cookie: token=${t}%zz`)],
      ['POST /websockify?token=<token>', p, httpRequest(p, `/websockify?token=${t}`, `Content-Length: ${t.length}`, 'POST') + t],
    ];
    const api = gw.gateway.api;
    if (api) {
      const a = api.port;
      cases.push(
        ['API GET /v2.1/os-console-auth-tokens/<token>', a, httpRequest(a, `/v2.1/os-console-auth-tokens/${t}`)],
        ['API GET /v2.1/<token>/os-console-auth-tokens/<token>', a, httpRequest(a, `/v2.1/${t}/os-console-auth-tokens/${t}`)],
        ['API GET /<token>', a, httpRequest(a, `/${t}`)],
        ['API GET /v2.1/os-console-auth-tokens/<token>%zz', a, httpRequest(a, `/v2.1/os-console-auth-tokens/${t}%zz`)],
        ['API POST with the token in a body that is not JSON', a, httpRequest(a, '/v2.1/servers/x/remote-consoles', `Content-Type: application/json\r\nContent-Length: ${t.length + 1}`, 'POST') + `{${t}`],
      );
    }
    // and a console that opens with it, whose session line is written when it ends
    cases.push(['a good upgrade', p, up(`/websockify?token=${t}`)]);
    const found = await leaks([t], cases);
    assert.deepEqual(found, [], `the raw token is in the log:\n  ${found.join('\n  ')}`);
    assert.ok(gw.rawLog.length >= cases.length / 2, `only ${gw.rawLog.length} log lines for ${cases.length} requests: is the gateway logging at all?`);
  });

  it('keeps a valid token out of the log when a client puts it in headers that never carry one', async () => {
    const { token: t } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const p = gw.port;
    const cases: Array<readonly [string, number, string | Buffer]> = [
      ['upgrade Origin http://<token>.example.com', p, up(`/websockify?token=${t}`, { Origin: `http://${t}.example.com` })],
      ['upgrade Origin <token>', p, up(`/websockify?token=${t}`, { Origin: t })],
      ['upgrade X-Forwarded-Proto <token>', p, up(`/websockify?token=${t}`, { 'X-Forwarded-Proto': t, Origin: `http://127.0.0.1:${p}` })],
      ['upgrade X-Forwarded-For', p, up(`/websockify?token=${t}`, { 'X-Forwarded-For': `${t}, 10.0.0.1` })],
      ['upgrade Authorization', p, up('/websockify', { Authorization: `Bearer ${t}` })],
      ['upgrade X-Auth-Token', p, up('/websockify', { 'X-Auth-Token': t })],
      ['upgrade User-Agent', p, up('/websockify', { 'User-Agent': t })],
      ['upgrade Sec-WebSocket-Protocol <token>', p, up(`/websockify?token=${t}`, {}, t)],
      ['upgrade Sec-WebSocket-Protocol binary, <token>', p, up(`/websockify?token=${t}`, {}, `binary, ${t}`)],
      ['upgrade Sec-WebSocket-Key <token>', p, up(`/websockify?token=${t}`).replace(WS_KEY, t)],
      ['upgrade Sec-WebSocket-Version <token>', p, up(`/websockify?token=${t}`).replace('Sec-WebSocket-Version: 13', `Sec-WebSocket-Version: ${t}`)],
      ['upgrade Upgrade <token>', p, up(`/websockify?token=${t}`).replace('Upgrade: websocket', `Upgrade: ${t}`)],
      ['upgrade Host <token>', p, up(`/websockify?token=${t}`).replace(`Host: 127.0.0.1:${p}`, `Host: ${t}`)],
      ['upgrade duplicate Host', p, up(`/websockify?token=${t}`, { Host: t })],
      ['upgrade header name <token>', p, up(`/websockify?token=${t}`, `${t}: 1`)],
      ['upgrade header with latin-1 bytes', p, Buffer.from(up(`/websockify?token=${t}`, `X-Note: \xe9${t}\xff`), 'latin1')],
      ['method <token>', p, up(`/websockify?token=${t}`).replace(/^GET/, t.replace(/-/g, '').toUpperCase())],
      ['upgrade header block over max_header_size', p, up(`/websockify?token=${t}`, { 'X-Big': `${t}${'a'.repeat(20_000)}` })],
    ];
    const found = await leaks([t], cases);
    assert.deepEqual(found, [], `the raw token is in the log:\n  ${found.join('\n  ')}`);
  });

  it('keeps unknown tokens out of the log, also past the budget of failed lookups', async () => {
    const p = gw.port;
    const unknown = Array.from({ length: 30 }, (_, i) => `6b1f0c3e-${String(i).padStart(4, '0')}-4000-8000-${'7'.repeat(12)}`);
    const cases: Array<readonly [string, number, string]> = [];
    for (const [i, u] of unknown.entries()) {
      const target = [`/websockify?token=${u}`, `/websockify/${u}`, `/?path=%3Ftoken%3D${u}`][i % 3]!;
      cases.push([`upgrade ${target.replace(u, '<unknown>')}`, p, upgradeRequest(p, target)]);
      if (i % 5 === 0) cases.push([`GET /porthole/token-state?token=<unknown>`, p, httpRequest(p, `/porthole/token-state?token=${u}`)]);
    }
    // a token for a backend that is gone: BACKEND_UNREACHABLE names the backend, not the token
    const dead = await freePort();
    const { token: toDead } = await gw.mint({ host: '127.0.0.1', port: dead });
    cases.push(['upgrade with a token for a backend that is gone', p, upgradeRequest(p, `/websockify?token=${toDead}`)]);
    const found = await leaks([...unknown, toDead], cases);
    assert.deepEqual(found, [], `a token is in the log:\n  ${found.join('\n  ')}`);
  });
});
