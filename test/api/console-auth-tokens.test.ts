/**
 * `GET /os-console-auth-tokens/{console_token}` as Nova's ConsoleAuthTokensController
 * (nova/api/openstack/compute/console_auth_tokens.py): admin only, before 2.31 only rdp-html5
 * tokens (401 for others), `tls_port` from 2.99, 404 for unknown and expired tokens; and an
 * expired token minted by the API is refused by the proxy too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashToken, nowSeconds } from '../../src/store/types.ts';
import { assertFault, startApi, tokenOfUrl, websocketUrl, type TestApi } from '../support/api.ts';
import { bannerBackend, openConsole, RFB_BANNER, type TestBackend } from '../support/backends.ts';

const SERVER = '0b6e7f28-9c3d-4e1a-8b5f-6d7c8e9fa0b1';
const v = (version: string) => ({ 'X-OpenStack-Nova-API-Version': version });

describe('os-console-auth-tokens', () => {
  let gw: TestApi;
  let backend: TestBackend;
  let token: string;

  before(async () => {
    backend = await bannerBackend();
    gw = await startApi();
    await gw.addServer({ id: SERVER, name: 'web1', vnc: { host: '127.0.0.1', port: backend.port } });
    const r = await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'notused', headers: v('2.6'), body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(r.status, 200, r.text);
    token = tokenOfUrl(r.body.remote_console.url);
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  const show = (t: string, headers: Record<string, string>, caller = 'admin', prefix = '/v2.1') =>
    gw.call('GET', `${prefix}/os-console-auth-tokens/${encodeURIComponent(t)}`, { token: caller, headers });

  for (const version of ['2.31', '2.98']) {
    it(`shows an admin the connection of a noVNC token at ${version}, without tls_port`, async () => {
      const r = await show(token, v(version));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { console: { instance_uuid: SERVER, host: '127.0.0.1', port: backend.port, internal_access_path: null } });
    });
  }

  it('adds tls_port from 2.99', async () => {
    const r = await show(token, v('2.99'));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { console: { instance_uuid: SERVER, host: '127.0.0.1', port: backend.port, tls_port: null, internal_access_path: null } });
    const latest = await show(token, { 'OpenStack-API-Version': 'compute latest' });
    assert.ok('tls_port' in latest.body.console);
  });

  it('serves the route with the project in the URL', async () => {
    const r = await show(token, v('2.31'), 'admin', '/v2.1/admin');
    assert.equal(r.status, 200, r.text);
  });

  for (const headers of [{}, v('2.1'), v('2.30')]) {
    it(`refuses the details of a noVNC token before 2.31 (${JSON.stringify(headers)}): 401`, async () => {
      assertFault(await show(token, headers), 401, 'The requested console type details are not accessible');
    });
  }

  it('shows an rdp-html5 token before 2.31, as Nova does', async () => {
    const { token: rdp } = await gw.gateway.stores.tokens.create({ consoleType: 'rdp-html5', host: '192.0.2.7', port: 3389, instanceUuid: SERVER, accessUrlBase: 'http://127.0.0.1:6083/', ttl: 600, internalAccessPath: 'xyz' });
    const r = await show(rdp, v('2.1'));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { console: { instance_uuid: SERVER, host: '192.0.2.7', port: 3389, internal_access_path: 'xyz' } });
  });

  it('is for admins only: a member gets 403', async () => {
    assertFault(await show(token, v('2.31'), 'notused'), 403, "Policy doesn't allow os_compute_api:os-console-auth-tokens to be performed.");
    assertFault(await show(token, v('2.31'), 'alice:notused'), 403, "Policy doesn't allow os_compute_api:os-console-auth-tokens to be performed.");
  });

  it('answers an unknown token with 404 "Token not found"', async () => {
    assertFault(await show('6587c1f6-3ba4-4c6d-b82d-a0bf5a8cf81e', v('2.31')), 404, 'Token not found');
    assertFault(await show('not-even-a-uuid', v('2.31')), 404, 'Token not found');
  });

  it('answers an expired token with 404 and the proxy refuses it (403 before the upgrade)', async () => {
    const r = await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'notused', headers: v('2.6'), body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    const expiring = tokenOfUrl(r.body.remote_console.url);
    // valid first: the console opens
    const open = await openConsole(websocketUrl(gw, expiring));
    assert.deepEqual(open.first, RFB_BANNER);
    open.ws!.close();
    const updated = await gw.gateway.stores.database!.db
      .updateTable('console_auth_tokens')
      .set({ expires: nowSeconds() - 5 })
      .where('token_hash', '=', hashToken(expiring))
      .executeTakeFirst();
    assert.equal(Number(updated.numUpdatedRows), 1);
    assert.equal((await gw.gateway.stores.tokens.lookup(expiring)).status, 'expired');
    assertFault(await show(expiring, v('2.31')), 404, 'Token not found');
    const connections = backend.connections;
    const refused = await openConsole(websocketUrl(gw, expiring));
    assert.equal(refused.status, 403);
    assert.equal(backend.connections, connections, 'the proxy reached the backend for an expired token');
  });

  it('never writes the token to the log', () => {
    assert.ok(!gw.rawLog.join('').includes(token));
  });
});
