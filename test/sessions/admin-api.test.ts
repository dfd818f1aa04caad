/**
 * The admin API's session routes on a real gateway (its SQLite store, an RFB echo backend):
 * `GET /porthole/v1/sessions` lists the live console sessions and the proxies, `DELETE
 * /porthole/v1/sessions/{id}` closes one; admins only, Nova's error bodies, both routes in the
 * OpenAPI document.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashToken } from '../../src/store/types.ts';
import { assertFault, startApi, type TestApi } from '../support/api.ts';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually } from '../support/gateway.ts';
import { closeOf } from '../support/live.ts';

const SERVER = '9c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f';
const FORBIDDEN = 'Policy doesn\'t allow porthole:admin to be performed.';

describe('admin API: live sessions', () => {
  let gw: TestApi;
  let backend: TestBackend;

  before(async () => {
    backend = await echoBackend();
    gw = await startApi();
    await gw.addServer({ id: SERVER, name: 'web-1', vnc: { host: '127.0.0.1', port: backend.port } });
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  it('lists the live sessions with the proxy that holds them, and kills one', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: SERVER });
    const { ws } = await openRfbConsole(`ws://127.0.0.1:${gw.port}/websockify?token=${token}`);
    const listed = await eventually('the session listed', async () => {
      const r = await gw.call('GET', '/porthole/v1/sessions', { token: 'admin:admin' });
      return r.status === 200 && r.body.sessions.length === 1 ? r : undefined;
    });
    const [session] = listed.body.sessions;
    const [proxy] = listed.body.proxies;
    assert.deepEqual(Object.keys(listed.body).sort(), ['proxies', 'sessions']);
    assert.equal(session.instance_uuid, SERVER);
    assert.equal(session.server_name, 'web-1');
    assert.equal(session.console_type, 'novnc');
    assert.equal(session.token_hash_prefix, hashToken(token).slice(0, 8));
    assert.equal(session.proxy_id, proxy.id);
    assert.equal(session.proxy_address, `127.0.0.1:${gw.port}`);
    assert.equal(session.backend, `127.0.0.1:${backend.port}`);
    assert.match(session.client, /^127\.0\.0\.1:\d+$/);
    assert.ok(!Number.isNaN(Date.parse(session.started_at)));
    assert.deepEqual({ address: proxy.address, pid: proxy.pid, draining: proxy.draining, sessions: proxy.sessions }, { address: `127.0.0.1:${gw.port}`, pid: process.pid, draining: false, sessions: 1 });
    assert.equal(listed.text.includes(token), false);

    const closing = closeOf(ws);
    const r = await gw.call('DELETE', `/porthole/v1/sessions/${session.id}`, { token: 'admin:admin' });
    assert.equal(r.status, 204, r.text);
    assert.deepEqual(await closing, { code: 1008, reason: 'console session killed by an administrator' });
    assertFault(await gw.call('DELETE', `/porthole/v1/sessions/${session.id}`, { token: 'admin:admin' }), 404, `Session ${session.id} could not be found.`);
  });

  it('closes the sessions of a server removed through the API', async () => {
    const other = '0d4e5f6a-7b8c-4d9e-8f0a-2b3c4d5e6f7a';
    await gw.addServer({ id: other, name: 'web-2', vnc: { host: '127.0.0.1', port: backend.port } });
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: other });
    const { ws } = await openRfbConsole(`ws://127.0.0.1:${gw.port}/websockify?token=${token}`);
    const closing = closeOf(ws);
    assert.equal((await gw.call('DELETE', `/porthole/v1/servers/${other}`, { token: 'admin:admin' })).status, 204);
    assert.deepEqual(await closing, { code: 1008, reason: 'console access revoked' });
  });

  for (const [method, path] of [['GET', '/porthole/v1/sessions'], ['DELETE', '/porthole/v1/sessions/5b0f6c2e-2f7e-4a4c-9f0e-0d6f3f1c2a77']] as const) {
    it(`refuses ${method} ${path.replace(/[0-9a-f-]{36}$/, '{id}')} to a member (403) and to no one (401)`, async () => {
      assertFault(await gw.call(method, path, { token: 'alice:notused' }), 403, FORBIDDEN);
      assertFault(await gw.call(method, path), 401, 'The request you have made requires authentication.');
    });
  }

  it('answers a session id longer than any with Nova\'s 400', async () => {
    assertFault(await gw.call('DELETE', `/porthole/v1/sessions/${'x'.repeat(65)}`, { token: 'admin:admin' }), 400, /id/);
  });

  it('documents both routes in the OpenAPI document', async () => {
    const doc = (await gw.call('GET', '/porthole/v1/openapi.json')).body;
    assert.ok(doc.paths['/porthole/v1/sessions'].get);
    assert.ok(doc.paths['/porthole/v1/sessions/{id}'].delete);
  });
});
