/**
 * `POST /servers/{id}/remote-consoles` and the legacy `os-get*Console` actions, checked against
 * Nova's RemoteConsolesController (nova/api/openstack/compute/remote_consoles.py and
 * schemas/remote_consoles.py): the seeds' own requests (Virtuozzo's curl, Huawei ECS's
 * project-scoped route), the URL and the token it carries, and every refusal with Nova's body.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nowSeconds } from '../../src/store/types.ts';
import { assertFault, startApi, tokenOfUrl, UUID4, type TestApi } from '../support/api.ts';

// seed 002 (Virtuozzo): the server, and a Keystone-like token; noauth2 takes it as user and project
const VZ_SERVER = '5a124ea0-36a0-49b8-9bd0-e937d958ca8f';
const VZ_TOKEN = 'gAAAAABnPortholeVirtuozzoSeedToken';
// seed 004 (Huawei ECS)
const HW_PROJECT = '13c67a214ced4afb88d911ae4bd5721a';
const HW_SERVER = '47bc79ae-df61-4ade-9197-283a74e5d70e';

const ACTIVE = '11111111-1111-4111-8111-111111111111';
const SHUTOFF = '22222222-2222-4222-8222-222222222222';
const NO_VNC = '33333333-3333-4333-8333-333333333333';
const OTHERS = '44444444-4444-4444-8444-444444444444';
const UNKNOWN = '55555555-5555-4555-8555-555555555555';

const BASE = 'https://10.136.18.152:6080/vnc_auto.html';
const VNC = { host: '127.0.0.1', port: 5901 };

const novnc = { remote_console: { protocol: 'vnc', type: 'novnc' } };
const v = (version: string) => ({ 'X-OpenStack-Nova-API-Version': version });

describe('remote consoles', () => {
  let gw: TestApi;

  before(async () => {
    gw = await startApi({ 'vnc.novncproxy_base_url': BASE });
    await gw.addServer({ id: VZ_SERVER, name: 'vz1', projectId: VZ_TOKEN, vnc: VNC });
    await gw.addServer({ id: HW_SERVER, name: 'ecs-1', projectId: HW_PROJECT, vnc: { host: '192.0.2.10', port: 5900 } });
    await gw.addServer({ id: ACTIVE, name: 'web1', vnc: VNC });
    await gw.addServer({ id: SHUTOFF, name: 'stopped', status: 'SHUTOFF', vnc: VNC });
    await gw.addServer({ id: NO_VNC, name: 'headless', vnc: null });
    await gw.addServer({ id: OTHERS, name: 'theirs', projectId: 'other', vnc: VNC });
  });
  after(() => gw.close());

  const create = (server: string, headers: Record<string, string>, body: unknown = novnc, token = 'notused', prefix = '/v2.1') =>
    gw.call('POST', `${prefix}/servers/${server}/remote-consoles`, { token, headers, body });
  const action = (server: string, body: unknown, headers: Record<string, string> = {}) =>
    gw.call('POST', `/v2.1/servers/${server}/action`, { token: 'notused', headers, body });

  /** The URL is `<novncproxy_base_url>?path=%3Ftoken%3D<uuid4>`, for a token valid token_ttl (600 s) for that server's console. */
  async function assertConsoleUrl(url: string, server: string, vnc: { host: string; port: number }): Promise<void> {
    const m = /^(.*)\?path=%3Ftoken%3D([0-9a-f-]{36})$/.exec(url);
    assert.ok(m, `URL not in Nova's form: ${url}`);
    assert.equal(m[1], BASE);
    assert.match(m[2]!, UUID4);
    assert.equal(tokenOfUrl(url), m[2]);
    const found = await gw.gateway.stores.tokens.lookup(m[2]!);
    assert.equal(found.status, 'valid');
    assert.ok(found.status === 'valid');
    const now = nowSeconds();
    assert.ok(Math.abs(found.token.expires - (now + 600)) <= 2, `expires ${found.token.expires}, now ${now}`);
    assert.equal(found.token.consoleType, 'novnc');
    assert.equal(found.token.instanceUuid, server);
    assert.equal(found.token.host, vnc.host);
    assert.equal(found.token.port, vnc.port);
    assert.equal(found.token.accessUrlBase, BASE);
    assert.ok(!gw.rawLog.join('').includes(m[2]!), 'the console token was logged');
  }

  describe('the seeds, request for request', () => {
    it("answers Virtuozzo's curl (X-OpenStack-Nova-API-Version: 2.8, X-Auth-Token)", async () => {
      const r = await gw.call('POST', `/v2.1/servers/${VZ_SERVER}/remote-consoles`, {
        headers: { 'Content-Type': 'application/json', 'X-OpenStack-Nova-API-Version': '2.8', 'X-Auth-Token': VZ_TOKEN },
        body: '\n{\n    "remote_console": {\n        "protocol": "vnc",\n        "type": "novnc"\n    }\n}',
      });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(Object.keys(r.body), ['remote_console']);
      assert.deepEqual(Object.keys(r.body.remote_console).sort(), ['protocol', 'type', 'url']);
      assert.equal(r.body.remote_console.protocol, 'vnc');
      assert.equal(r.body.remote_console.type, 'novnc');
      assert.equal(r.headers['x-openstack-nova-api-version'], '2.8');
      await assertConsoleUrl(r.body.remote_console.url, VZ_SERVER, VNC);
    });

    it("answers Huawei ECS's POST /v2.1/{project_id}/servers/{id}/remote-consoles with OpenStack-API-Version: compute 2.6", async () => {
      const r = await gw.call('POST', `/v2.1/${HW_PROJECT}/servers/${HW_SERVER}/remote-consoles`, {
        headers: { 'OpenStack-API-Version': 'compute 2.6', 'X-Auth-Token': `ecs-user:${HW_PROJECT}` },
        body: { remote_console: { type: 'novnc', protocol: 'vnc' } },
      });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(Object.keys(r.body.remote_console).sort(), ['protocol', 'type', 'url']);
      assert.equal(r.body.remote_console.protocol, 'vnc');
      assert.equal(r.body.remote_console.type, 'novnc');
      assert.equal(r.headers['openstack-api-version'], 'compute 2.6');
      await assertConsoleUrl(r.body.remote_console.url, HW_SERVER, { host: '192.0.2.10', port: 5900 });
    });
  });

  describe('POST /servers/{id}/remote-consoles', () => {
    it('mints a new token on every call', async () => {
      const a = await create(ACTIVE, v('2.6'));
      const b = await create(ACTIVE, v('2.6'));
      assert.equal(a.status, 200);
      assert.notEqual(tokenOfUrl(a.body.remote_console.url), tokenOfUrl(b.body.remote_console.url));
    });

    it('lets an admin open a console of any project', async () => {
      const r = await create(OTHERS, v('2.6'), novnc, 'admin');
      assert.equal(r.status, 200, r.text);
      await assertConsoleUrl(r.body.remote_console.url, OTHERS, VNC);
    });

    for (const version of ['2.1', '2.5']) {
      it(`does not exist at ${version} (404, as before Nova's 2.6)`, async () => {
        assertFault(await create(ACTIVE, v(version)), 404, 'The resource could not be found.');
      });
    }
    it('does not exist when no version is asked for (2.1)', async () => {
      assertFault(await create(ACTIVE, {}), 404, 'The resource could not be found.');
    });

    it('refuses a body without remote_console, or missing type or protocol (400)', async () => {
      assertFault(await create(ACTIVE, v('2.6'), {}), 400, /'remote_console' is a required property/);
      assertFault(await create(ACTIVE, v('2.6'), { remote_console: { protocol: 'vnc' } }), 400, /'type' is a required property/);
      assertFault(await create(ACTIVE, v('2.6'), { remote_console: { type: 'novnc' } }), 400, /'protocol' is a required property/);
    });

    it('refuses unknown fields, nested or at the top (400)', async () => {
      assertFault(await create(ACTIVE, v('2.6'), { remote_console: { protocol: 'vnc', type: 'novnc', lang: 'EN' } }), 400, /Additional properties are not allowed \('lang' was unexpected\)/);
      assertFault(await create(ACTIVE, v('2.6'), { ...novnc, extra: 1 }), 400, /Additional properties are not allowed \('extra' was unexpected\)/);
    });

    it('refuses an unknown protocol or type (400)', async () => {
      assertFault(await create(ACTIVE, v('2.6'), { remote_console: { protocol: 'ssh', type: 'novnc' } }), 400, /Invalid input for field\/attribute protocol\. Value: ssh/);
      assertFault(await create(ACTIVE, v('2.6'), { remote_console: { protocol: 'vnc', type: 'vnc.html' } }), 400, /Invalid input for field\/attribute type\. Value: vnc\.html/);
    });

    for (const [protocol, type] of [['vnc', 'spice-html5'], ['vnc', 'xvpvnc'], ['vnc', 'serial'], ['spice', 'novnc'], ['serial', 'rdp-html5']]) {
      it(`refuses the pair ${protocol}+${type}: "Invalid console type ${type}" (400)`, async () => {
        assertFault(await create(ACTIVE, v('2.6'), { remote_console: { protocol, type } }), 400, `Invalid console type ${type}`);
      });
    }

    it('refuses protocol mks and type webmks before 2.8 (400)', async () => {
      assertFault(await create(ACTIVE, v('2.6'), { remote_console: { protocol: 'mks', type: 'webmks' } }), 400, /Invalid input for field\/attribute protocol\. Value: mks/);
      assertFault(await create(ACTIVE, v('2.7'), { remote_console: { protocol: 'vnc', type: 'webmks' } }), 400, /Invalid input for field\/attribute type\. Value: webmks/);
    });

    it('takes mks+webmks from 2.8, and answers that this deployment has no such console (501)', async () => {
      assertFault(await create(ACTIVE, v('2.8'), { remote_console: { protocol: 'mks', type: 'webmks' } }), 501, 'The requested functionality is not supported.');
    });

    it('takes spice-direct only from 2.99', async () => {
      assertFault(await create(ACTIVE, v('2.98'), { remote_console: { protocol: 'spice', type: 'spice-direct' } }), 400, /Invalid input for field\/attribute type\. Value: spice-direct/);
      assertFault(await create(ACTIVE, v('2.99'), { remote_console: { protocol: 'spice', type: 'spice-direct' } }), 501, 'The requested functionality is not supported.');
    });

    for (const [protocol, type] of [['rdp', 'rdp-html5']]) {
      it(`answers ${protocol}+${type}, a console kind this deployment does not offer, with 501`, async () => {
        assertFault(await create(ACTIVE, v('2.6'), { remote_console: { protocol, type } }), 501, 'The requested functionality is not supported.');
      });
    }

    it('answers an unknown server with 404 itemNotFound', async () => {
      assertFault(await create(UNKNOWN, v('2.6')), 404, `Instance ${UNKNOWN} could not be found.`);
    });

    it("answers a member asking for another project's server with the same 404", async () => {
      assertFault(await create(OTHERS, v('2.6')), 404, `Instance ${OTHERS} could not be found.`);
      assertFault(await create(OTHERS, v('2.6'), novnc, 'someone:elsewhere'), 404, `Instance ${OTHERS} could not be found.`);
    });

    it('answers a stopped server with 409 conflictingRequest', async () => {
      assertFault(await create(SHUTOFF, v('2.6')), 409, `Cannot 'get_vnc_console' instance ${SHUTOFF} while it is in vm_state stopped`);
    });

    it('answers a server without a VNC endpoint with 409 "is not ready"', async () => {
      assertFault(await create(NO_VNC, v('2.6')), 409, `Instance ${NO_VNC} is not ready`);
    });

    it('serves the route with the project in the URL', async () => {
      const r = await create(ACTIVE, v('2.6'), novnc, 'notused', '/v2.1/notused');
      assert.equal(r.status, 200, r.text);
    });

    it("refuses a project_id in the URL that is not the caller's (400)", async () => {
      assertFault(await create(ACTIVE, v('2.6'), novnc, 'notused', '/v2.1/someoneelse'), 400, "Malformed request URL: URL's project_id 'someoneelse' doesn't match Context's project_id 'notused'");
    });

    it('validates the body before looking the server up, as Nova does', async () => {
      assertFault(await create(UNKNOWN, v('2.6'), { remote_console: { protocol: 'vnc' } }), 400, /'type' is a required property/);
    });
  });

  describe('legacy server actions (2.1-2.5)', () => {
    for (const headers of [{}, v('2.1'), v('2.5'), { 'OpenStack-API-Version': 'compute 2.5' }] as Record<string, string>[]) {
      it(`answers os-getVNCConsole with {"console": {"type", "url"}} at ${JSON.stringify(headers)}`, async () => {
        const r = await action(ACTIVE, { 'os-getVNCConsole': { type: 'novnc' } }, headers);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.body), ['console']);
        assert.deepEqual(Object.keys(r.body.console).sort(), ['type', 'url']);
        assert.equal(r.body.console.type, 'novnc');
        await assertConsoleUrl(r.body.console.url, ACTIVE, VNC);
      });
    }

    it('ends the console actions at 2.6: 404', async () => {
      assertFault(await action(ACTIVE, { 'os-getVNCConsole': { type: 'novnc' } }, v('2.6')), 404, 'The resource could not be found.');
      assertFault(await action(ACTIVE, { 'os-getVNCConsole': { type: 'novnc' } }, { 'X-OpenStack-Nova-API-Version': 'latest' }), 404, 'The resource could not be found.');
    });

    it('answers an unknown action with 400 "There is no such action"', async () => {
      assertFault(await action(ACTIVE, { 'os-getConsoleOutput': { length: 5 } }), 400, 'There is no such action: os-getConsoleOutput');
      assertFault(await action(ACTIVE, { reboot: { type: 'HARD' } }), 400, 'There is no such action: reboot');
    });

    it("validates each action's body as Nova's schema does (400)", async () => {
      assertFault(await action(ACTIVE, { 'os-getVNCConsole': { type: 'spice-html5' } }), 400, /Invalid input for field\/attribute type\. Value: spice-html5/);
      assertFault(await action(ACTIVE, { 'os-getVNCConsole': {} }), 400, /'type' is a required property/);
      assertFault(await action(ACTIVE, { 'os-getVNCConsole': { type: 'novnc', extra: 1 } }), 400, /Additional properties are not allowed/);
      assertFault(await action(ACTIVE, { 'os-getVNCConsole': null }), 400, /Invalid input for field\/attribute os-getVNCConsole/);
    });

    it('answers xvpvnc, which no driver serves any more, with 400 "Invalid console type"', async () => {
      assertFault(await action(ACTIVE, { 'os-getVNCConsole': { type: 'xvpvnc' } }), 400, 'Invalid console type xvpvnc');
    });

    for (const [name, type] of [['os-getRDPConsole', 'rdp-html5']] as const) {
      it(`answers ${name} with 501`, async () => {
        assertFault(await action(ACTIVE, { [name]: { type } }), 501, 'The requested functionality is not supported.');
      });
    }

    it('answers unknown, foreign, stopped and headless servers as the 2.6 route does', async () => {
      const body = { 'os-getVNCConsole': { type: 'novnc' } };
      assertFault(await action(UNKNOWN, body), 404, `Instance ${UNKNOWN} could not be found.`);
      assertFault(await action(OTHERS, body), 404, `Instance ${OTHERS} could not be found.`);
      assertFault(await action(SHUTOFF, body), 409, `Cannot 'get_vnc_console' instance ${SHUTOFF} while it is in vm_state stopped`);
      assertFault(await action(NO_VNC, body), 409, `Instance ${NO_VNC} is not ready`);
    });
  });
});

/**
 * Serial (`serial`/`serial`) and SPICE (`spice`/`spice-html5`) consoles: URLs for servers whose
 * inventory has the endpoint, with the SPICE TLS port in the token row (Nova's get_spice_console
 * writes `tls_port` for spice-html5 too); Nova's answers where the server has no such console:
 * its libvirt driver's ConsoleTypeUnavailable (400, naming the protocol) for a guest without that
 * device, check_instance_host's 409 for an instance with no console at all.
 */
describe('serial and SPICE remote consoles', () => {
  const CONSOLES = '66666666-6666-4666-8666-666666666666';
  const SERIAL_ONLY = '77777777-7777-4777-8777-777777777777';
  const SPICE_PLAIN = '88888888-8888-4888-8888-888888888888';
  const VNC_ONLY = '99999999-9999-4999-8999-999999999999';
  const NOTHING = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
  const STOPPED = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
  const SERIAL = { host: '127.0.0.1', port: 4555 };
  const SPICE = { host: '127.0.0.1', port: 5930, tlsPort: 5931 };
  const serialBody = { remote_console: { protocol: 'serial', type: 'serial' } };
  const spiceBody = { remote_console: { protocol: 'spice', type: 'spice-html5' } };
  let gw: TestApi;

  before(async () => {
    gw = await startApi();
    await gw.addServer({ id: CONSOLES, vnc: VNC, serial: SERIAL, spice: SPICE });
    await gw.addServer({ id: SERIAL_ONLY, serial: SERIAL });
    await gw.addServer({ id: SPICE_PLAIN, spice: { host: '::1', port: 5940 } });
    await gw.addServer({ id: VNC_ONLY, vnc: VNC });
    await gw.addServer({ id: NOTHING });
    await gw.addServer({ id: STOPPED, status: 'SHUTOFF', serial: SERIAL, spice: SPICE });
  });
  after(() => gw.close());

  const create = (server: string, body: unknown, version = '2.6') =>
    gw.call('POST', `/v2.1/servers/${server}/remote-consoles`, { token: 'notused', headers: v(version), body });
  const showToken = (token: string, version: string) =>
    gw.call('GET', `/v2.1/os-console-auth-tokens/${token}`, { token: 'admin', headers: v(version) });

  /** `<base>?token=<uuid4>` (Nova's access_url for every kind but noVNC), and the row it names. */
  async function tokenRow(url: string, base: string) {
    const m = /^(.*)\?token=([0-9a-f-]{36})$/.exec(url);
    assert.ok(m, `URL not in Nova's form: ${url}`);
    assert.equal(m[1], base);
    assert.match(m[2]!, UUID4);
    const found = await gw.gateway.stores.tokens.lookup(m[2]!);
    assert.ok(found.status === 'valid', found.status);
    assert.equal(found.token.accessUrlBase, base);
    assert.ok(!gw.rawLog.join('').includes(m[2]!), 'the console token was logged');
    return { token: m[2]!, row: found.token };
  }

  it('mints a serial console URL on the serial listener for the server\'s serial endpoint', async () => {
    const r = await create(CONSOLES, serialBody);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.remote_console.protocol, 'serial');
    assert.deepEqual(r.body.remote_console.type, 'serial');
    const base = gw.gateway.proxies.get('serial')!.baseUrl;
    assert.equal(base, `ws://127.0.0.1:${gw.gateway.proxies.get('serial')!.port}/`);
    const { row } = await tokenRow(r.body.remote_console.url, base);
    assert.deepEqual({ type: row.consoleType, host: row.host, port: row.port, tlsPort: row.tlsPort, instance: row.instanceUuid }, { type: 'serial', ...SERIAL, tlsPort: null, instance: CONSOLES });
    const serialOnly = await create(SERIAL_ONLY, serialBody);
    assert.equal(serialOnly.status, 200, serialOnly.text);
  });

  it('mints a spice-html5 URL whose token carries the SPICE TLS port, shown from 2.99', async () => {
    const r = await create(CONSOLES, spiceBody);
    assert.equal(r.status, 200, r.text);
    const base = gw.gateway.proxies.get('spice')!.baseUrl;
    assert.equal(base, `http://127.0.0.1:${gw.gateway.proxies.get('spice')!.port}/spice_auto.html`);
    const { token, row } = await tokenRow(r.body.remote_console.url, base);
    assert.deepEqual({ type: row.consoleType, host: row.host, port: row.port, tlsPort: row.tlsPort }, { type: 'spice-html5', ...SPICE });
    const at299 = await showToken(token, '2.99');
    assert.equal(at299.status, 200, at299.text);
    assert.deepEqual(at299.body.console, { instance_uuid: CONSOLES, host: SPICE.host, port: SPICE.port, tls_port: SPICE.tlsPort, internal_access_path: null });
    const at231 = await showToken(token, '2.31');
    assert.equal(at231.status, 200, at231.text);
    assert.ok(!('tls_port' in at231.body.console), 'tls_port before 2.99');
    assertFault(await showToken(token, '2.30'), 401, 'The requested console type details are not accessible');
  });

  it('shows tls_port null for a SPICE console without a TLS port, and for serial tokens', async () => {
    const spice = await create(SPICE_PLAIN, spiceBody);
    assert.equal(spice.status, 200, spice.text);
    const { token } = await tokenRow(spice.body.remote_console.url, gw.gateway.proxies.get('spice')!.baseUrl);
    const shown = await showToken(token, '2.99');
    assert.deepEqual(shown.body.console, { instance_uuid: SPICE_PLAIN, host: '::1', port: 5940, tls_port: null, internal_access_path: null });
    const serial = await create(SERIAL_ONLY, serialBody);
    const s = await tokenRow(serial.body.remote_console.url, gw.gateway.proxies.get('serial')!.baseUrl);
    assert.equal((await showToken(s.token, '2.99')).body.console.tls_port, null);
  });

  it('answers the legacy os-getSerialConsole and os-getSPICEConsole actions (2.1-2.5)', async () => {
    for (const [name, type, kind] of [['os-getSerialConsole', 'serial', 'serial'], ['os-getSPICEConsole', 'spice-html5', 'spice']] as const) {
      const r = await gw.call('POST', `/v2.1/servers/${CONSOLES}/action`, { token: 'notused', headers: v('2.1'), body: { [name]: { type } } });
      assert.equal(r.status, 200, `${name}: ${r.text}`);
      assert.deepEqual(Object.keys(r.body.console).sort(), ['type', 'url']);
      assert.equal(r.body.console.type, type);
      const { row } = await tokenRow(r.body.console.url, gw.gateway.proxies.get(kind)!.baseUrl);
      assert.equal(row.consoleType, type);
    }
  });

  it('answers a server without that console as Nova\'s libvirt driver does: 400 "Unavailable console type <protocol>."', async () => {
    assertFault(await create(VNC_ONLY, serialBody), 400, 'Unavailable console type serial.');
    assertFault(await create(VNC_ONLY, spiceBody), 400, 'Unavailable console type spice.');
    assertFault(await create(SERIAL_ONLY, novnc), 400, 'Unavailable console type vnc.');
    assertFault(await create(SERIAL_ONLY, spiceBody), 400, 'Unavailable console type spice.');
    assertFault(await gw.call('POST', `/v2.1/servers/${VNC_ONLY}/action`, { token: 'notused', body: { 'os-getSerialConsole': { type: 'serial' } } }), 400, 'Unavailable console type serial.');
    // nothing was minted for them
    const rows = await Promise.all([VNC_ONLY, SERIAL_ONLY].map((id) => gw.gateway.stores.tokens.revokeByInstance(id)));
    assert.ok(rows[0] === 0, 'a token was minted for the VNC-only server');
  });

  it('answers a server with no console at all with 409 "is not ready", a stopped one with 409 naming the protocol', async () => {
    assertFault(await create(NOTHING, serialBody), 409, `Instance ${NOTHING} is not ready`);
    assertFault(await create(NOTHING, spiceBody), 409, `Instance ${NOTHING} is not ready`);
    assertFault(await create(STOPPED, serialBody), 409, `Cannot 'get_serial_console' instance ${STOPPED} while it is in vm_state stopped`);
    assertFault(await create(STOPPED, spiceBody), 409, `Cannot 'get_spice_console' instance ${STOPPED} while it is in vm_state stopped`);
  });

  it('keeps answering spice-direct with 501: Porthole has no spice-direct proxy', async () => {
    assertFault(await create(CONSOLES, { remote_console: { protocol: 'spice', type: 'spice-direct' } }, '2.99'), 501, 'The requested functionality is not supported.');
  });
});

describe('serial and SPICE remote consoles with their listeners switched off', () => {
  const SERVER = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc';
  let gw: TestApi;

  before(async () => {
    gw = await startApi({ 'porthole.serialproxy_enabled': 'false', 'porthole.spicehtml5proxy_enabled': 'false' });
    await gw.addServer({ id: SERVER, serial: { host: '127.0.0.1', port: 4555 }, spice: { host: '127.0.0.1', port: 5930 } });
  });
  after(() => gw.close());

  it('answers 400 "Unavailable console type <type>.", as Nova\'s compute manager with the console disabled', async () => {
    const create = (protocol: string, type: string) =>
      gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'notused', headers: v('2.6'), body: { remote_console: { protocol, type } } });
    assertFault(await create('serial', 'serial'), 400, 'Unavailable console type serial.');
    assertFault(await create('spice', 'spice-html5'), 400, 'Unavailable console type spice-html5.');
  });
});
