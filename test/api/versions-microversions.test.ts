/**
 * The version documents and microversion negotiation of the compute API, as Nova serves them
 * (nova/api/openstack/compute/versions.py, wsgi.Request.set_api_version_request,
 * api_version_request.APIVersionRequest): both request headers, `latest`, the range checks and
 * their messages, and the headers every response carries.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApi, type ApiResponse, type TestApi } from '../support/api.ts';

const SERVER = '7d0c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d';

function assertVersionHeaders(r: ApiResponse, version: string): void {
  assert.equal(r.headers['openstack-api-version'], `compute ${version}`);
  assert.equal(r.headers['x-openstack-nova-api-version'], version);
  const vary = String(r.headers.vary ?? '').toLowerCase();
  assert.match(vary, /(^|,\s*)openstack-api-version(\s*,|$)/, `Vary: ${vary}`);
  assert.match(vary, /(^|,\s*)x-openstack-nova-api-version(\s*,|$)/, `Vary: ${vary}`);
}

describe('compute API versions and microversions', () => {
  let gw: TestApi;

  before(async () => {
    gw = await startApi();
    await gw.addServer({ id: SERVER, name: 'web1', projectId: 'notused', vnc: { host: '127.0.0.1', port: 5901 } });
  });
  after(() => gw.close());

  describe('version documents', () => {
    it('serves GET / without credentials, 200 with the v2.1 entry as Nova does', async () => {
      const r = await gw.call('GET', '/');
      assert.equal(r.status, 200, r.text);
      const v21 = (r.body.versions as any[]).find((v) => v.id === 'v2.1');
      assert.ok(v21, r.text);
      assert.equal(v21.status, 'CURRENT');
      assert.equal(v21.min_version, '2.1');
      assert.equal(v21.version, '2.99');
      assert.equal(v21.updated, '2013-07-23T11:33:21Z');
      assert.deepEqual(v21.links.find((l: any) => l.rel === 'self'), { rel: 'self', href: `${gw.apiOrigin}/v2.1/` });
    });

    for (const path of ['/v2.1', '/v2.1/']) {
      it(`serves GET ${path} without credentials, with the microversion range and links`, async () => {
        const r = await gw.call('GET', path);
        assert.equal(r.status, 200, r.text);
        const v = r.body.version;
        assert.equal(v.id, 'v2.1');
        assert.equal(v.status, 'CURRENT');
        assert.equal(v.min_version, '2.1');
        assert.equal(v.version, '2.99');
        assert.deepEqual(v.links[0], { rel: 'self', href: `${gw.apiOrigin}/v2.1/` });
        assert.deepEqual(v.links[1], { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' });
        assert.deepEqual(v['media-types'], [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }]);
      });
    }

    it('builds the links from X-Forwarded-Proto and Host, as seen by the client', async () => {
      const r = await gw.call('GET', '/v2.1/', { headers: { Host: 'compute.example.com:8774', 'X-Forwarded-Proto': 'https' } });
      assert.equal(r.body.version.links[0].href, 'https://compute.example.com:8774/v2.1/');
    });
  });

  describe('request headers', () => {
    it('serves 2.1 when no version is asked for, and says so', async () => {
      const r = await gw.call('GET', '/v2.1/servers', { token: 'notused' });
      assert.equal(r.status, 200, r.text);
      assertVersionHeaders(r, '2.1');
    });

    it('takes the version from OpenStack-API-Version: compute X', async () => {
      const r = await gw.call('GET', '/v2.1/servers', { token: 'notused', headers: { 'OpenStack-API-Version': 'compute 2.6' } });
      assert.equal(r.status, 200, r.text);
      assertVersionHeaders(r, '2.6');
    });

    it('takes the version from X-OpenStack-Nova-API-Version: X', async () => {
      const r = await gw.call('GET', '/v2.1/servers', { token: 'notused', headers: { 'X-OpenStack-Nova-API-Version': '2.8' } });
      assert.equal(r.status, 200, r.text);
      assertVersionHeaders(r, '2.8');
    });

    it('prefers OpenStack-API-Version over the legacy header, as microversion_parse does', async () => {
      const r = await gw.call('GET', '/v2.1/servers', { token: 'notused', headers: { 'OpenStack-API-Version': 'compute 2.31', 'X-OpenStack-Nova-API-Version': '2.8' } });
      assertVersionHeaders(r, '2.31');
    });

    it('reads the compute entry among other services in OpenStack-API-Version', async () => {
      const r = await gw.call('GET', '/v2.1/servers', { token: 'notused', headers: { 'OpenStack-API-Version': 'volume 3.50, compute 2.12' } });
      assertVersionHeaders(r, '2.12');
    });

    for (const [name, headers] of [
      ['OpenStack-API-Version: compute latest', { 'OpenStack-API-Version': 'compute latest' }],
      ['X-OpenStack-Nova-API-Version: latest', { 'X-OpenStack-Nova-API-Version': 'latest' }],
    ] as const) {
      it(`answers ${name} at the maximum, 2.99, named in the response headers`, async () => {
        const r = await gw.call('GET', '/v2.1/servers', { token: 'notused', headers });
        assert.equal(r.status, 200, r.text);
        assertVersionHeaders(r, '2.99');
      });
    }

    it('names the version on error responses of a route too', async () => {
      const r = await gw.call('GET', '/v2.1/servers/00000000-0000-4000-8000-000000000000', { token: 'notused', headers: { 'X-OpenStack-Nova-API-Version': '2.6' } });
      assert.equal(r.status, 404);
      assertVersionHeaders(r, '2.6');
    });
  });

  describe('versions out of range or malformed', () => {
    for (const [version, headers] of [
      ['2.100', { 'OpenStack-API-Version': 'compute 2.100' }],
      ['2.100', { 'X-OpenStack-Nova-API-Version': '2.100' }],
      ['3.0', { 'X-OpenStack-Nova-API-Version': '3.0' }],
      ['3.0', { 'OpenStack-API-Version': 'compute 3.0' }],
      ['2.0', { 'X-OpenStack-Nova-API-Version': '2.0' }],
      ['1.1', { 'X-OpenStack-Nova-API-Version': '1.1' }],
    ] as const) {
      it(`answers ${JSON.stringify(headers)} with 406 and Nova's message`, async () => {
        const r = await gw.call('GET', '/v2.1/servers', { token: 'notused', headers });
        assert.equal(r.status, 406, r.text);
        // Nova has no fault name for 406: wsgi.Fault falls back to computeFault
        assert.deepEqual(r.body, { computeFault: { code: 406, message: `Version ${version} is not supported by the API. Minimum is 2.1 and maximum is 2.99.` } });
      });
    }

    for (const bad of ['2', '2.x', 'two', '2.1.1', '2.01', '02.1', '-2.1', '2. 1']) {
      it(`answers the malformed version ${JSON.stringify(bad)} with 400 and Nova's message`, async () => {
        const r = await gw.call('GET', '/v2.1/servers', { token: 'notused', headers: { 'X-OpenStack-Nova-API-Version': bad } });
        assert.equal(r.status, 400, r.text);
        assert.deepEqual(r.body, { badRequest: { code: 400, message: `API Version String ${bad} is of invalid format. Must be of format MajorNum.MinorNum.` } });
      });
    }
  });
});
