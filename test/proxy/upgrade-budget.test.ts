/**
 * The failed-lookup budget on the console WebSocket (issue 11, item 7): past
 * `[porthole] failed_lookup_budget` failed lookups from one address, its upgrades are answered
 * 429 with an empty body before any lookup or dial, even with a valid token; the refusals are
 * not logged one by one (the budget logs the address once per window); other addresses are not
 * affected (simulated through a trusted balancer's X-Forwarded-For).
 */
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { bannerBackend, openConsole, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';

describe('failed token lookups on the console WebSocket', () => {
  let gw: TestGateway;
  let backend: TestBackend;

  before(async () => {
    gw = await startGateway({ 'porthole.failed_lookup_budget': '3', 'porthole.failed_lookup_window': '3600', 'porthole.trusted_proxies': '127.0.0.1' });
    backend = await bannerBackend();
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  const url = (token: string) => `ws://127.0.0.1:${gw.port}/?token=${token}`;
  const from = (ip: string) => ({ headers: { 'X-Forwarded-For': ip } });

  it('refuses an address with 429 after its budget, valid token or not, without dialling', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    for (let i = 0; i < 3; i++) assert.equal((await openConsole(url(`guess-${i}`), from('198.51.100.7'))).status, 403);
    const dialled = backend.connections;
    for (const t of ['guess-4', token]) {
      const r = await openConsole(url(t), from('198.51.100.7'));
      assert.equal(r.status, 429, t);
    }
    assert.equal(backend.connections, dialled);
    const refused = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gw.port, path: `/?token=${token}`, headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13', 'X-Forwarded-For': '198.51.100.7' } });
      req.on('response', resolve).on('upgrade', () => reject(new Error('upgraded'))).on('error', reject).end();
    });
    assert.equal(refused.statusCode, 429);
    assert.ok(Number(refused.headers['retry-after']) > 0 && Number(refused.headers['retry-after']) <= 3600, String(refused.headers['retry-after']));
    assert.equal(refused.headers['content-length'], '0');
    refused.resume();
    assert.equal(gw.logs.filter((l) => l.event === 'refused' && l.code === 'TOO_MANY_FAILED_LOOKUPS').length, 0);
    assert.equal(gw.logs.filter((l) => l.event === 'lookup_budget').length, 1);
  });

  it('keeps serving other addresses', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const { ws } = await openRfbConsole(url(token), from('203.0.113.9'));
    ws.close();
  });
});
