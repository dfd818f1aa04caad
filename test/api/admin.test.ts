/**
 * Porthole's admin API under /porthole/v1 (admins only): the inventory (servers, their console
 * endpoints and backend auth settings), revoking one console token or all of a server's (the
 * proxy then refuses them), and the OpenAPI document of every route, Nova's included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertFault, startApi, tokenOfUrl, websocketUrl, type TestApi } from '../support/api.ts';
import { bannerBackend, openConsole, RFB_BANNER, type TestBackend } from '../support/backends.ts';

const A = '9d8c7b6a-0000-4000-8000-00000000000a';
const B = '9d8c7b6a-0000-4000-8000-00000000000b';
const FORBIDDEN = "Policy doesn't allow porthole:admin to be performed.";
const V26 = { 'X-OpenStack-Nova-API-Version': '2.6' };

describe('admin API', () => {
  let gw: TestApi;
  let backend: TestBackend;

  before(async () => {
    backend = await bannerBackend();
    gw = await startApi();
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  const admin = (method: string, path: string, body?: unknown) => gw.call(method, path, { token: 'admin', body });
  const mint = async (server: string) => {
    const r = await gw.call('POST', `/v2.1/servers/${server}/remote-consoles`, { token: 'admin', headers: V26, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(r.status, 200, r.text);
    return tokenOfUrl(r.body.remote_console.url);
  };
  const opens = async (token: string) => {
    const r = await openConsole(websocketUrl(gw, token));
    r.ws?.close();
    return r;
  };

  describe('servers', () => {
    it('registers a server with its console endpoint and backend auth, never showing the password', async () => {
      const r = await admin('POST', '/porthole/v1/servers', {
        id: A,
        name: 'web-a',
        project_id: 'p',
        status: 'active',
        vnc: { host: '127.0.0.1', port: backend.port },
        backend_auth: { auth_schemes: ['vnc', 'none'], vnc_password: 's3cret', tls_server_name: 'web-a.example.com' },
      });
      assert.equal(r.status, 201, r.text);
      assert.deepEqual(r.body.server, {
        id: A,
        name: 'web-a',
        project_id: 'p',
        status: 'ACTIVE',
        vnc: { host: '127.0.0.1', port: backend.port },
        serial: null,
        spice: null,
        backend_auth: { auth_schemes: ['vnc', 'none'], vnc_username: null, vnc_password_set: true, tls_server_name: 'web-a.example.com' },
        shared_consoles: null,
        record: null,
      });
      assert.ok(!r.text.includes('s3cret'));
      const stored = await gw.gateway.stores.inventory.get(A);
      assert.equal(stored?.backendAuth?.vncPassword, 's3cret');
      assert.deepEqual(stored?.backendAuth?.authSchemes, ['vnc', 'none']);
      const shown = await admin('GET', `/porthole/v1/servers/${A}`);
      assert.equal(shown.status, 200, shown.text);
      assert.deepEqual(shown.body.server, r.body.server);
      assert.ok(!shown.text.includes('s3cret'));
      assert.ok(!gw.rawLog.join('').includes('s3cret'), 'the VNC password was logged');
    });

    it('generates the id when none is given, and the defaults: ACTIVE, no project, the config\'s backend auth', async () => {
      const r = await admin('POST', '/porthole/v1/servers', { name: 'anon', vnc: null });
      assert.equal(r.status, 201, r.text);
      assert.match(r.body.server.id, /^[0-9a-f-]{36}$/);
      assert.equal(r.body.server.status, 'ACTIVE');
      assert.equal(r.body.server.project_id, null);
      assert.equal(r.body.server.backend_auth, null);
      assert.equal((await admin('DELETE', `/porthole/v1/servers/${r.body.server.id}`)).status, 204);
    });

    it('refuses a second POST of the same id, and bad ids', async () => {
      assertFault(await admin('POST', '/porthole/v1/servers', { id: A, name: 'again' }), 400, /already exists/);
      assertFault(await admin('POST', '/porthole/v1/servers', { id: 'web-a', name: 'x' }), 400, "Invalid input for field/attribute id. Value: web-a. 'web-a' is not a 'uuid'");
      assertFault(await admin('POST', '/porthole/v1/servers', { id: A }), 400, /'name' is a required property/);
      assertFault(await admin('POST', '/porthole/v1/servers', { name: 'x', backend_auth: { auth_schemes: ['telnet'] } }), 400, /'telnet' is not one of/);
    });

    it('lists the inventory', async () => {
      const r = await admin('GET', '/porthole/v1/servers');
      assert.equal(r.status, 200, r.text);
      assert.ok(r.body.servers.some((s: any) => s.id === A && s.name === 'web-a'));
      assert.ok(!r.text.includes('s3cret'));
    });

    it('registers or replaces with PUT, the URL naming the server', async () => {
      const created = await admin('PUT', `/porthole/v1/servers/${B.toUpperCase()}`, { name: 'web-b', project_id: 'notused', vnc: { host: '127.0.0.1', port: backend.port } });
      assert.equal(created.status, 200, created.text);
      assert.equal(created.body.server.id, B);
      const replaced = await admin('PUT', `/porthole/v1/servers/${B}`, { name: 'web-b2', project_id: 'notused', status: 'SHUTOFF', vnc: { host: '127.0.0.1', port: backend.port } });
      assert.equal(replaced.status, 200, replaced.text);
      assert.equal(replaced.body.server.name, 'web-b2');
      // the compute API sees the same inventory
      const seen = await gw.call('GET', `/v2.1/servers/${B}`, { token: 'notused' });
      assert.equal(seen.body.server.name, 'web-b2');
      assert.equal(seen.body.server.status, 'SHUTOFF');
      assertFault(await admin('PUT', `/porthole/v1/servers/${B}`, { id: A, name: 'x' }), 400, 'The id in the body differs from the id in the URL');
      assert.equal((await admin('PUT', `/porthole/v1/servers/${B}`, { name: 'web-b', project_id: 'notused', vnc: { host: '127.0.0.1', port: backend.port } })).status, 200);
    });

    it('registers serial and SPICE endpoints, the SPICE TLS port included, and shows them', async () => {
      const id = '9d8c7b6a-0000-4000-8000-00000000000d';
      const r = await admin('PUT', `/porthole/v1/servers/${id}`, { name: 'consoles', serial: { host: '127.0.0.1', port: 4555 }, spice: { host: '::1', port: 5930, tls_port: 5931 } });
      assert.equal(r.status, 200, r.text);
      const expected = { id, name: 'consoles', project_id: null, status: 'ACTIVE', vnc: null, serial: { host: '127.0.0.1', port: 4555 }, spice: { host: '::1', port: 5930, tls_port: 5931 }, backend_auth: null, shared_consoles: null, record: null };
      assert.deepEqual(r.body.server, expected);
      assert.deepEqual((await admin('GET', `/porthole/v1/servers/${id}`)).body.server, expected);
      assert.deepEqual((await admin('GET', '/porthole/v1/servers')).body.servers.find((x: any) => x.id === id), expected);
      const stored = await gw.gateway.stores.inventory.get(id);
      assert.deepEqual(stored?.spice, { host: '::1', port: 5930, tlsPort: 5931 });
      // PUT replaces the whole server: an endpoint left out is gone; a SPICE without a TLS port says null
      const replaced = await admin('PUT', `/porthole/v1/servers/${id}`, { name: 'consoles', spice: { host: '::1', port: 5930 } });
      assert.equal(replaced.status, 200, replaced.text);
      assert.deepEqual(replaced.body.server, { ...expected, serial: null, spice: { host: '::1', port: 5930, tls_port: null } });
      assert.deepEqual((await admin('GET', `/porthole/v1/servers/${id}`)).body.server, replaced.body.server);
      assert.equal((await admin('DELETE', `/porthole/v1/servers/${id}`)).status, 204);
    });

    it('keeps a server\'s shared-console and recording choices, null leaving them to the config, and refuses a non-boolean', async () => {
      const id = '9d8c7b6a-0000-4000-8000-00000000000e';
      const r = await admin('PUT', `/porthole/v1/servers/${id}`, { name: 'shared', vnc: { host: '127.0.0.1', port: 5999 }, shared_consoles: true, record: false });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.server.shared_consoles, true);
      assert.equal(r.body.server.record, false);
      const stored = await gw.gateway.stores.inventory.get(id);
      assert.equal(stored?.sharedConsoles, true);
      assert.equal(stored?.record, false);
      const listed = (await admin('GET', '/porthole/v1/servers')).body.servers.find((x: any) => x.id === id);
      assert.deepEqual([listed.shared_consoles, listed.record], [true, false]);
      const cleared = await admin('PUT', `/porthole/v1/servers/${id}`, { name: 'shared', vnc: { host: '127.0.0.1', port: 5999 }, record: null });
      assert.deepEqual([cleared.body.server.shared_consoles, cleared.body.server.record], [null, null]);
      assert.equal((await gw.gateway.stores.inventory.get(id))?.sharedConsoles ?? null, null);
      assert.equal((await admin('PUT', `/porthole/v1/servers/${id}`, { name: 'shared', shared_consoles: 'yes' })).status, 400);
      assert.equal((await admin('DELETE', `/porthole/v1/servers/${id}`)).status, 204);
    });

    it('refuses malformed serial and SPICE endpoints with Nova\'s 400', async () => {
      const id = '9d8c7b6a-0000-4000-8000-00000000000e';
      const put = (body: object) => admin('PUT', `/porthole/v1/servers/${id}`, { name: 'bad', ...body });
      assertFault(await put({ serial: { host: '127.0.0.1' } }), 400, /^Invalid input for field\/attribute serial\. .*'port' is a required property$/);
      assertFault(await put({ serial: { host: '127.0.0.1', port: 70000 } }), 400, /^Invalid input for field\/attribute port\. Value: 70000\. 70000 is greater than the maximum of 65535$/);
      assertFault(await put({ serial: '127.0.0.1:4555' }), 400, /^Invalid input for field\/attribute serial\. Value: 127\.0\.0\.1:4555\. '127\.0\.0\.1:4555' is not of type 'object'/);
      assertFault(await put({ spice: { host: '127.0.0.1', port: 5930, tls_port: 0 } }), 400, /^Invalid input for field\/attribute tls_port\. Value: 0\. 0 is less than the minimum of 1$/);
      assertFault(await put({ spice: { host: '127.0.0.1', port: 5930, tls: 5931 } }), 400, /Additional properties are not allowed \('tls' was unexpected\)/);
      assertFault(await put({ spice: { host: '', port: 5930 } }), 400, /'' (is too short|should be non-empty)/);
      assertFault(await admin('GET', `/porthole/v1/servers/${id}`), 404, `Server ${id} could not be found.`);
    });

    it('answers an unknown server with 404', async () => {
      const unknown = '9d8c7b6a-0000-4000-8000-0000000000ff';
      assertFault(await admin('GET', `/porthole/v1/servers/${unknown}`), 404, `Server ${unknown} could not be found.`);
      assertFault(await admin('DELETE', `/porthole/v1/servers/${unknown}`), 404, `Server ${unknown} could not be found.`);
    });

    it('removes a server and revokes its tokens', async () => {
      const id = '9d8c7b6a-0000-4000-8000-00000000000c';
      assert.equal((await admin('PUT', `/porthole/v1/servers/${id}`, { name: 'doomed', vnc: { host: '127.0.0.1', port: backend.port } })).status, 200);
      const token = await mint(id);
      assert.equal((await admin('DELETE', `/porthole/v1/servers/${id}`)).status, 204);
      assertFault(await admin('GET', `/porthole/v1/servers/${id}`), 404, `Server ${id} could not be found.`);
      assert.equal((await gw.gateway.stores.tokens.lookup(token)).status, 'unknown');
      assert.equal((await opens(token)).status, 403);
    });
  });

  describe('token revocation', () => {
    it('revokes one token: the proxy refuses it, other tokens still open', async () => {
      const token = await mint(A);
      const other = await mint(A);
      assert.deepEqual((await opens(token)).first, RFB_BANNER);
      assert.equal((await admin('DELETE', `/porthole/v1/tokens/${token}`)).status, 204);
      assert.equal((await opens(token)).status, 403);
      assertFault(await gw.call('GET', `/v2.1/os-console-auth-tokens/${token}`, { token: 'admin', headers: { 'X-OpenStack-Nova-API-Version': '2.31' } }), 404, 'Token not found');
      assertFault(await admin('DELETE', `/porthole/v1/tokens/${token}`), 404, 'Token not found');
      assert.deepEqual((await opens(other)).first, RFB_BANNER);
    });

    it("revokes all of a server's tokens, and only that server's", async () => {
      const a1 = await mint(A);
      const a2 = await mint(A);
      const b1 = await mint(B);
      const r = await admin('DELETE', `/porthole/v1/servers/${A}/tokens`);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.body.revoked >= 2, r.text);
      assert.equal((await opens(a1)).status, 403);
      assert.equal((await opens(a2)).status, 403);
      assert.deepEqual((await opens(b1)).first, RFB_BANNER);
      assert.deepEqual((await admin('DELETE', `/porthole/v1/servers/${A}/tokens`)).body, { revoked: 0 });
    });
  });

  describe('policy', () => {
    for (const [method, path, body] of [
      ['GET', '/porthole/v1/servers', undefined],
      ['POST', '/porthole/v1/servers', { name: 'x' }],
      ['GET', `/porthole/v1/servers/${A}`, undefined],
      ['PUT', `/porthole/v1/servers/${A}`, { name: 'mine now' }],
      ['DELETE', `/porthole/v1/servers/${A}`, undefined],
      ['DELETE', `/porthole/v1/servers/${A}/tokens`, undefined],
      ['DELETE', '/porthole/v1/tokens/6587c1f6-3ba4-4c6d-b82d-a0bf5a8cf81e', undefined],
    ] as const) {
      it(`refuses ${method} ${path.replace(A, '{id}')} to a member (403) and to no one (401)`, async () => {
        assertFault(await gw.call(method, path, { token: 'p', body }), 403, FORBIDDEN);
        assertFault(await gw.call(method, path, { token: 'alice:notused', body }), 403, FORBIDDEN);
        assertFault(await gw.call(method, path, { body }), 401, 'The request you have made requires authentication.');
      });
    }

    it('left the inventory as it was', async () => {
      assert.equal((await gw.gateway.stores.inventory.get(A))?.name, 'web-a');
    });
  });

  describe('GET /porthole/v1/openapi.json', () => {
    let doc: any;
    before(async () => {
      const r = await gw.call('GET', '/porthole/v1/openapi.json');
      assert.equal(r.status, 200, r.text);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      doc = r.body;
    });

    it('is an OpenAPI 3 document', () => {
      assert.match(doc.openapi, /^3\.\d+\.\d+$/);
      assert.equal(typeof doc.info.title, 'string');
      assert.equal(typeof doc.info.version, 'string');
      assert.equal(typeof doc.paths, 'object');
      assert.ok(doc.components.securitySchemes.authToken);
    });

    it('lists the Nova routes, with and without the project, and the admin routes', () => {
      const paths = Object.keys(doc.paths);
      for (const p of [
        '/',
        '/v2.1/',
        '/v2.1/servers',
        '/v2.1/servers/detail',
        '/v2.1/servers/{server_id}',
        '/v2.1/servers/{server_id}/remote-consoles',
        '/v2.1/{project_id}/servers/{server_id}/remote-consoles',
        '/v2.1/servers/{server_id}/action',
        '/v2.1/os-console-auth-tokens/{console_token}',
        '/v2.1/{project_id}/os-console-auth-tokens/{console_token}',
        '/porthole/v1/servers',
        '/porthole/v1/servers/{id}',
        '/porthole/v1/servers/{id}/tokens',
        '/porthole/v1/tokens/{token}',
      ]) assert.ok(paths.includes(p), `${p} missing from ${paths.join(' ')}`);
      assert.ok(doc.paths['/v2.1/servers/{server_id}/remote-consoles'].post.requestBody);
      assert.deepEqual(Object.keys(doc.paths['/porthole/v1/servers/{id}']).sort(), ['delete', 'get', 'put']);
    });

    it('describes the serial and SPICE endpoints of a server, in and out', () => {
      const put = doc.paths['/porthole/v1/servers/{id}'].put;
      const input = put.requestBody.content['application/json'].schema;
      const output = put.responses['200'].content['application/json'].schema.properties.server;
      for (const schema of [input, output]) {
        assert.deepEqual(Object.keys(schema.properties.serial.properties).sort(), ['host', 'port']);
        assert.deepEqual(Object.keys(schema.properties.spice.properties).sort(), ['host', 'port', 'tls_port']);
        assert.equal(schema.properties.spice.properties.tls_port.maximum, 65535);
      }
    });

    it('declares exactly the path parameters of each path, and responses for every operation', () => {
      const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
      for (const [path, item] of Object.entries<any>(doc.paths)) {
        const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
        for (const method of methods.filter((m) => m in item)) {
          const op = item[method];
          const declared = (op.parameters ?? []).filter((p: any) => p.in === 'path');
          assert.deepEqual(declared.map((p: any) => p.name).sort(), inPath, `${method} ${path}: path parameters`);
          for (const p of declared) assert.equal(p.required, true, `${method} ${path}: ${p.name} must be required`);
          for (const p of op.parameters ?? []) assert.ok(['path', 'query', 'header', 'cookie'].includes(p.in), `${method} ${path}: ${p.name} in ${p.in}`);
          assert.ok(op.responses && Object.keys(op.responses).length > 0, `${method} ${path}: no responses`);
          for (const code of Object.keys(op.responses)) assert.match(code, /^([1-5]\d\d|[1-5]XX|default)$/, `${method} ${path}: response ${code}`);
        }
      }
    });
  });
});
