/**
 * `GET /servers`, `/servers/detail`, `/servers/{id}` backed by the inventory: what clients need
 * to resolve a name to an id (the openstack client first tries the name as an id and needs a
 * JSON 404, then lists with `?name=^name$`), filtered by project; the detailed view in Nova's
 * shape of the requested microversion (what `openstack server list` and `server show` read).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertFault, startApi, type TestApi } from '../support/api.ts';

const WEB1 = 'a1a1a1a1-0000-4000-8000-000000000001';
const WEB10 = 'a1a1a1a1-0000-4000-8000-000000000010';
const DBWEB1 = 'a1a1a1a1-0000-4000-8000-0000000000db';
const THEIRS = 'b2b2b2b2-0000-4000-8000-000000000001';
const NOBODYS = 'c3c3c3c3-0000-4000-8000-000000000001';

const ids = (body: { servers: { id: string }[] }) => body.servers.map((s) => s.id).sort();

describe('servers', () => {
  let gw: TestApi;

  before(async () => {
    gw = await startApi();
    await gw.addServer({ id: WEB1, name: 'web1', vnc: { host: '127.0.0.1', port: 5901 } });
    await gw.addServer({ id: WEB10, name: 'web10', status: 'SHUTOFF', vnc: null });
    await gw.addServer({ id: DBWEB1, name: 'db-web1', vnc: null });
    await gw.addServer({ id: THEIRS, name: 'web1', projectId: 'other', vnc: null });
    await gw.addServer({ id: NOBODYS, name: 'orphan', projectId: null, vnc: null });
  });
  after(() => gw.close());

  const get = (path: string, token = 'notused') => gw.call('GET', path, { token });

  it("lists the caller's project's servers, with id, name and links", async () => {
    const r = await get('/v2.1/servers');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(ids(r.body), [WEB1, WEB10, DBWEB1].sort());
    const web1 = r.body.servers.find((s: any) => s.id === WEB1);
    assert.deepEqual(Object.keys(web1).sort(), ['id', 'links', 'name']);
    assert.equal(web1.name, 'web1');
    assert.deepEqual(web1.links, [
      { rel: 'self', href: `${gw.apiOrigin}/v2.1/notused/servers/${WEB1}` },
      { rel: 'bookmark', href: `${gw.apiOrigin}/notused/servers/${WEB1}` },
    ]);
  });

  it('lists the same with the project in the URL', async () => {
    const r = await get('/v2.1/notused/servers');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(ids(r.body), [WEB1, WEB10, DBWEB1].sort());
  });

  it('lists details: status and tenant_id', async () => {
    const r = await get('/v2.1/servers/detail');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(ids(r.body), [WEB1, WEB10, DBWEB1].sort());
    const web10 = r.body.servers.find((s: any) => s.id === WEB10);
    for (const key of ['id', 'name', 'status', 'tenant_id', 'links']) assert.ok(key in web10, key);
    assert.equal(web10.status, 'SHUTOFF');
    assert.equal(web10.tenant_id, 'notused');
  });

  it("details as Nova's view at 2.1: image \"\" (booted from volume), an empty flavor with its id, the extended status", async () => {
    const r = await get(`/v2.1/servers/${WEB10}`);
    assert.equal(r.status, 200, r.text);
    const s = r.body.server;
    assert.equal(s.image, '');
    assert.deepEqual(s.flavor, { id: '', links: [] });
    assert.deepEqual(s.addresses, {});
    assert.equal(s.user_id, '');
    assert.equal(s['OS-EXT-STS:vm_state'], 'stopped');
    assert.equal(s['OS-EXT-STS:power_state'], 4);
    assert.equal(s['OS-DCF:diskConfig'], 'MANUAL');
    assert.ok(!('progress' in s), 'no progress for SHUTOFF');
    assert.equal((await get(`/v2.1/servers/${WEB1}`)).body.server.progress, 0);
    for (const later of ['locked', 'description', 'tags', 'trusted_image_certificates', 'locked_reason']) assert.ok(!(later in s), later);
  });

  it('details at the microversion asked: the flavor without id from 2.47, locked 2.9, description 2.19, tags 2.26, locked_reason 2.73', async () => {
    const at = (v: string) => gw.call('GET', `/v2.1/servers/detail?name=%5Eweb10%24`, { token: 'notused', headers: { 'OpenStack-API-Version': `compute ${v}` } });
    const s247 = (await at('2.47')).body.servers[0];
    assert.deepEqual(s247.flavor, { vcpus: 0, ram: 0, disk: 0, ephemeral: 0, swap: 0, original_name: '', extra_specs: {} });
    assert.equal(s247.locked, false);
    assert.equal(s247.description, null);
    assert.deepEqual(s247.tags, []);
    assert.ok(!('locked_reason' in s247));
    const s299 = (await at('2.99')).body.servers[0];
    assert.equal(s299.locked_reason, null);
    assert.equal(s299.pinned_availability_zone, null);
    assert.equal((await at('2.8')).body.servers[0].locked, undefined);
  });

  it("gives a server without a project Nova's empty tenant_id", async () => {
    assert.equal((await get(`/v2.1/servers/${NOBODYS}`, 'admin')).body.server.tenant_id, '');
  });

  it('filters by name: ^name$ exactly, a plain name as a substring, ^prefix', async () => {
    assert.deepEqual(ids((await get('/v2.1/servers?name=%5Eweb1%24')).body), [WEB1]);
    assert.deepEqual(ids((await get('/v2.1/servers?name=web1')).body), [WEB1, WEB10, DBWEB1].sort());
    assert.deepEqual(ids((await get('/v2.1/servers?name=%5Eweb')).body), [WEB1, WEB10].sort());
    assert.deepEqual(ids((await get('/v2.1/servers/detail?name=%5Edb-web1%24')).body), [DBWEB1]);
    assert.deepEqual(ids((await get('/v2.1/servers?name=nothing-like-it')).body), []);
  });

  it('matches a name filter literally, never as a costly expression', async () => {
    const r = await get(`/v2.1/servers?name=${encodeURIComponent('(a+)+$')}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.servers, []);
  });

  it('pages with limit and marker', async () => {
    const all = (await get('/v2.1/servers')).body.servers.map((s: any) => s.id);
    assert.deepEqual((await get('/v2.1/servers?limit=1')).body.servers.map((s: any) => s.id), all.slice(0, 1));
    assert.deepEqual((await get(`/v2.1/servers?marker=${all[0]}`)).body.servers.map((s: any) => s.id), all.slice(1));
  });

  it('shows one server', async () => {
    const r = await get(`/v2.1/servers/${WEB1}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.server.id, WEB1);
    assert.equal(r.body.server.name, 'web1');
    assert.equal(r.body.server.status, 'ACTIVE');
    assert.equal(r.body.server.tenant_id, 'notused');
    assert.equal(r.body.server.links[0].href, `${gw.apiOrigin}/v2.1/notused/servers/${WEB1}`);
  });

  it('answers an unknown id with a JSON 404', async () => {
    const unknown = 'd4d4d4d4-0000-4000-8000-000000000001';
    assertFault(await get(`/v2.1/servers/${unknown}`), 404, `Instance ${unknown} could not be found.`);
  });

  it('answers a name used as an id with a JSON 404, so clients go on to list by name', async () => {
    assertFault(await get('/v2.1/servers/web1'), 404, 'Instance web1 could not be found.');
  });

  it("hides another project's servers from a member: not listed, 404 when shown", async () => {
    assertFault(await get(`/v2.1/servers/${THEIRS}`), 404, `Instance ${THEIRS} could not be found.`);
    assertFault(await get(`/v2.1/servers/${NOBODYS}`), 404, `Instance ${NOBODYS} could not be found.`);
    const theirs = await get('/v2.1/servers?name=%5Eweb1%24', 'bob:other');
    assert.deepEqual(ids(theirs.body), [THEIRS]);
    assertFault(await get(`/v2.1/servers/${WEB1}`, 'bob:other'), 404, `Instance ${WEB1} could not be found.`);
  });

  it('shows an admin every server, of every project and of none', async () => {
    const r = await get('/v2.1/servers', 'admin');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(ids(r.body), [WEB1, WEB10, DBWEB1, THEIRS, NOBODYS].sort());
    assert.equal((await get(`/v2.1/servers/${THEIRS}`, 'admin')).body.server.tenant_id, 'other');
  });

  it('answers unknown routes and methods with a JSON 404', async () => {
    assertFault(await get(`/v2.1/servers/${WEB1}/os-interface`), 404, 'The resource could not be found.');
    assertFault(await gw.call('DELETE', `/v2.1/servers/${WEB1}`, { token: 'notused' }), 404, 'The resource could not be found.');
  });
});
