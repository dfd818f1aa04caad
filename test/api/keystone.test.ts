/**
 * `[api] auth_strategy = keystone` against a real Keystone (Debian's python3-keystone, served
 * by test/support/keystone.ts) and the real `openstack` client, no shortcut: Porthole is
 * registered in Keystone's catalog as the `compute` endpoint, and the client finds it there.
 * A member's `openstack console url show --novnc` gives a URL that passes tempest's
 * test_novnc to a TigerVNC Xvnc; an application credential works the same; a reader gets 403
 * on a console, another project's member 404, the admin role the admin API. Unknown, revoked
 * and expired Keystone tokens are 401 with `WWW-Authenticate: Keystone uri="..."`. Keystone
 * stopped: 503 (Nova's fault, never 500, never a pass) and, once it is back, the same
 * Porthole authenticates again. Keystone issues 20-second tokens here, so Porthole's own
 * service token is renewed several times during the file, and an expired token is one issued
 * at its start. Tokens never reach Porthole's log.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { unhonouredOptions } from '../../src/config/unhonoured.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createAuthenticator } from '../../src/api/auth.ts';
import { assertFault, startApi, tokenOfUrl, type TestApi } from '../support/api.ts';
import { eventually, flags } from '../support/gateway.ts';
import { haveKeystone, startKeystone, type KeystoneUser, type TestKeystone } from '../support/keystone.ts';
import { run } from '../support/process.ts';
import { startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER = '7b0e9f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const THEIRS = '8c1fa04b-2d3e-4f60-9bac-1d2e3f4a5b6c';
const NAME = 'ks-web1';
const CONSOLE = { remote_console: { protocol: 'vnc', type: 'novnc' } };
const V26 = { 'X-OpenStack-Nova-API-Version': '2.6' };
const UNAUTHENTICATED = 'The request you have made requires authentication.';
const UNAVAILABLE = 'The Keystone service is temporarily unavailable.';
const TEMPEST = join(import.meta.dirname, '..', 'support', 'tempest_novnc.py');
const EXPIRATION = 20;

const member: KeystoneUser = { name: 'mia', password: 'mia-pw-1', project: 'p1' };
const reader: KeystoneUser = { name: 'rex', password: 'rex-pw-1', project: 'p1' };
const other: KeystoneUser = { name: 'otto', password: 'otto-pw-1', project: 'p2' };
const admin: KeystoneUser = { name: 'admin', password: 'bootstrap-admin-pw', project: 'admin' };
const SERVICE_PASSWORD = 'porthole-service-pw';

describe('[api] auth_strategy = keystone, with a real Keystone and the openstack client', { skip: !haveKeystone && 'python3-keystone is not installed (.ci/run installs it)' }, () => {
  let ks: TestKeystone;
  let gw: TestApi;
  let xvnc: Xvnc;
  let p1: string;
  let p2: string;
  /** A member's token issued at the start, used once so Porthole caches it; it expires during the file. */
  let early: { token: string; expiresAt: number };
  const issued: string[] = [];
  let started = 0;

  const keystoneSettings = (extra: Record<string, string> = {}) => ({
    'api.auth_strategy': 'keystone',
    'keystone_authtoken.auth_url': `http://127.0.0.1:${ks.port}`,
    'keystone_authtoken.www_authenticate_uri': `http://127.0.0.1:${ks.port}`,
    'keystone_authtoken.auth_type': 'password',
    'keystone_authtoken.username': 'porthole',
    'keystone_authtoken.password': SERVICE_PASSWORD,
    'keystone_authtoken.user_domain_name': 'Default',
    'keystone_authtoken.project_name': 'service',
    'keystone_authtoken.project_domain_name': 'Default',
    // an outage answers 503 after one more try, not after keystoneauth's three
    'keystone_authtoken.http_request_max_retries': '1',
    ...extra,
  });
  const issue = async (user: KeystoneUser) => {
    const t = await ks.issue(user);
    issued.push(t.token);
    return t;
  };

  before(async () => {
    ks = await startKeystone({ tokenExpiration: EXPIRATION });
    gw = await startApi(keystoneSettings());
    started = Date.now();
    xvnc = await startXvnc({ colour: '#336699' });
    const out = (await ks.batch([
      'project create --domain default p1 -f value -c id',
      'project create --domain default p2 -f value -c id',
      'project create --domain default service -f value -c id',
      'role create service -f value -c id',
      `user create --domain default --password ${member.password} ${member.name} -f value -c id`,
      `user create --domain default --password ${reader.password} ${reader.name} -f value -c id`,
      `user create --domain default --password ${other.password} ${other.name} -f value -c id`,
      `user create --domain default --password ${SERVICE_PASSWORD} porthole -f value -c id`,
      `role add --project p1 --user ${member.name} member`,
      `role add --project p1 --user ${reader.name} reader`,
      `role add --project p2 --user ${other.name} member`,
      'role add --project service --user porthole service',
      'service create --name nova compute -f value -c id',
      `endpoint create --region RegionOne compute public http://127.0.0.1:${gw.apiPort}/v2.1 -f value -c id`,
    ])).trim().split('\n');
    assert.equal(out.length, 10, out.join('\n'));
    [p1, p2] = out as [string, string];
    await gw.addServer({ id: SERVER, name: NAME, projectId: p1, vnc: { host: '127.0.0.1', port: xvnc.port } });
    await gw.addServer({ id: THEIRS, name: 'ks-web2', projectId: p2, vnc: { host: '127.0.0.1', port: xvnc.port } });
    early = await issue(member);
    assert.equal((await gw.call('GET', `/v2.1/servers/${SERVER}`, { token: early.token })).status, 200);
  });
  after(async () => {
    await gw?.close();
    await xvnc?.stop();
    await ks?.close();
  });

  /** `openstack console url show --novnc` as `user`, the compute endpoint from the catalog. */
  const consoleUrl = (user: KeystoneUser, server: string, extra: string[] = []) => ks.openstack([...extra, 'console', 'url', 'show', '--novnc', '-f', 'value', '-c', 'url', server], user);

  it('openstack console url show --novnc as a member, Porthole found through the catalog: a URL that passes tempest\'s test_novnc', async () => {
    const r = await consoleUrl(member, NAME);
    assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const url = r.stdout.trim();
    const found = await gw.gateway.stores.tokens.lookup(tokenOfUrl(url));
    assert.ok(found.status === 'valid', found.status);
    assert.equal(found.token.instanceUuid, SERVER);
    const tempest = await run('/usr/bin/python3', [TEMPEST, url], { timeoutMs: 60_000 });
    assert.match(tempest.stdout, /^PASS test_novnc$/m, `${tempest.stdout}${tempest.stderr}`);
    assert.match(tempest.stdout, /^PASS test_novnc_bad_token$/m, `${tempest.stdout}${tempest.stderr}`);
    const line = gw.logs.filter((l) => l.event === 'api_request' && l.method === 'POST').at(-1)!;
    assert.equal(line.status, 200);
    assert.equal(line.project, p1, 'the caller\'s project is the Keystone project id');
  });

  it('an application credential of the member works (openstack --os-auth-type v3applicationcredential)', async () => {
    const created = await ks.openstack(['application', 'credential', 'create', '--secret', 'app-secret-1', 'portal', '-f', 'value', '-c', 'id'], member);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.trim();
    const r = await ks.openstack(['--os-auth-type', 'v3applicationcredential', '--os-application-credential-id', id, '--os-application-credential-secret', 'app-secret-1', 'console', 'url', 'show', '--novnc', '-f', 'value', '-c', 'url', SERVER], null);
    assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const found = await gw.gateway.stores.tokens.lookup(tokenOfUrl(r.stdout.trim()));
    assert.ok(found.status === 'valid' && found.token.instanceUuid === SERVER);
  });

  it('a reader sees the server but gets 403 on a console, from the client and from the API', async () => {
    const r = await consoleUrl(reader, SERVER);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^HttpException: 403: .*, Policy doesn't allow os_compute_api:os-remote-consoles to be performed\.$/m);
    const { token } = await issue(reader);
    assert.equal((await gw.call('GET', `/v2.1/servers/${SERVER}`, { token })).status, 200);
    assertFault(await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token, headers: V26, body: CONSOLE }), 403, 'Policy doesn\'t allow os_compute_api:os-remote-consoles to be performed.');
  });

  it('another project\'s member gets 404 for the server, from the client and from the API, and sees only their own', async () => {
    const r = await consoleUrl(other, SERVER);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`^No Server found for ${SERVER}$`, 'm'));
    const { token } = await issue(other);
    assertFault(await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token, headers: V26, body: CONSOLE }), 404, `Instance ${SERVER} could not be found.`);
    const listed = await gw.call('GET', '/v2.1/servers', { token });
    assert.deepEqual(listed.body.servers.map((s: { id: string }) => s.id), [THEIRS]);
  });

  it('the admin role: every project\'s servers and the admin API under /porthole/v1; a member gets 403 there', async () => {
    // (openstack server list would also ask the catalog for an image service: there is none here)
    const a = await issue(admin);
    const all = await gw.call('GET', '/v2.1/servers?all_tenants=1', { token: a.token });
    assert.deepEqual(all.body.servers.map((s: { id: string }) => s.id).sort(), [SERVER, THEIRS].sort());
    const r = await consoleUrl(admin, THEIRS);
    assert.equal(r.code, 0, r.stderr);
    // tokens here live EXPIRATION (20 s): the client's start under load can take most of that, so a new one
    const inventory = await gw.call('GET', '/porthole/v1/servers', { token: (await issue(admin)).token });
    assert.equal(inventory.status, 200, inventory.text);
    const m = await issue(member);
    assertFault(await gw.call('GET', '/porthole/v1/servers', { token: m.token }), 403, 'Policy doesn\'t allow porthole:admin to be performed.');
  });

  it('no token, a token Keystone never issued, a malformed one: 401 naming Keystone in WWW-Authenticate', async () => {
    const fernetLike = `gAAAAAB${'x'.repeat(170)}`;
    for (const token of [undefined, fernetLike, 'y'.repeat(9000)]) {
      const r = await gw.call('GET', '/v2.1/servers', { token });
      assertFault(r, 401, UNAUTHENTICATED);
      assert.equal(r.headers['www-authenticate'], `Keystone uri="http://127.0.0.1:${ks.port}"`);
    }
    const refused = gw.logs.filter((l) => l.event === 'api_refused' && l.code === 'UNAUTHORIZED').map((l) => l.msg);
    assert.ok(refused.some((m) => /^Keystone token [0-9a-f]{8} refused: Keystone does not know it/.test(m)), refused.join('\n'));
  });

  it('a revoked token: 401 at once when Porthole never saw it, and once its cache entry ages out when it did (token_cache_time)', async () => {
    const unseen = await issue(member);
    const revoked = await ks.openstack(['token', 'revoke', unseen.token], admin);
    assert.equal(revoked.code, 0, revoked.stderr);
    assertFault(await gw.call('GET', '/v2.1/servers', { token: unseen.token }), 401, UNAUTHENTICATED);

    const short = await startApi(keystoneSettings({ 'keystone_authtoken.token_cache_time': '1' }));
    try {
      const seen = await issue(member);
      assert.equal((await short.call('GET', '/v2.1/servers', { token: seen.token })).status, 200);
      assert.equal((await ks.openstack(['token', 'revoke', seen.token], admin)).code, 0);
      // keystonemiddleware's behaviour too: a revocation reaches a service when its cache entry goes
      await eventually('the revoked token refused', async () => (await short.call('GET', '/v2.1/servers', { token: seen.token })).status === 401, 15_000);
    } finally {
      await short.close();
    }
  });

  it('Porthole\'s service token is renewed before it expires, one renewal for many concurrent validations', async () => {
    const fresh = await startApi(keystoneSettings());
    try {
      const tokens = await Promise.all(Array.from({ length: 8 }, () => issue(member)));
      const before = ks.accessLog().filter((l) => l.includes('"POST /v3/auth/tokens?nocatalog')).length;
      const answers = await Promise.all(tokens.map((t) => fresh.call('GET', '/v2.1/servers', { token: t.token })));
      assert.deepEqual(answers.map((r) => r.status), Array(8).fill(200));
      const after = ks.accessLog().filter((l) => l.includes('"POST /v3/auth/tokens?nocatalog')).length;
      assert.equal(after - before, 1, 'one service authentication for eight concurrent first validations');
    } finally {
      await fresh.close();
    }
  });

  it('an expired token: 401, though Porthole cached it with token_cache_time far longer than its life', async () => {
    await new Promise((r) => setTimeout(r, Math.max(0, early.expiresAt - Date.now() + 500)));
    const r = await gw.call('GET', `/v2.1/servers/${SERVER}`, { token: early.token });
    assertFault(r, 401, UNAUTHENTICATED);
    assert.ok(r.headers['www-authenticate']);
  });

  it('Keystone stopped: 503 with Nova\'s fault for a token not cached, cached ones go on; Keystone back: authenticated again, no restart', async () => {
    const cached = await issue(member);
    const uncached = await issue(member);
    assert.equal((await gw.call('GET', '/v2.1/servers', { token: cached.token })).status, 200);
    await ks.stop();
    try {
      const down = await gw.call('GET', '/v2.1/servers', { token: uncached.token });
      assertFault(down, 503, UNAVAILABLE);
      assertFault(await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: uncached.token, headers: V26, body: CONSOLE }), 503, UNAVAILABLE);
      assert.equal((await gw.call('GET', '/v2.1/servers', { token: cached.token })).status, 200, 'a cached token needs no Keystone');
      const warned = gw.logs.filter((l) => l.event === 'keystone' && l.state === 'unavailable');
      assert.equal(warned.length, 1, 'one warning for the outage');
      assert.match(warned[0]!.msg, /unreachable: connect ECONNREFUSED/);
    } finally {
      await ks.start();
    }
    const back = await gw.call('GET', '/v2.1/servers', { token: uncached.token });
    assert.equal(back.status, 200, back.text);
    assert.equal(gw.logs.filter((l) => l.event === 'keystone' && l.state === 'available').length, 1);
  });

  it('Porthole renewed its own service token in time: past several of its lifetimes, Keystone never refused it', () => {
    assert.ok(Date.now() - started > 2 * EXPIRATION * 1000);
    const staleRefusals = ks.accessLog().filter((l) => /"GET \/v3\/auth\/tokens\?nocatalog HTTP\/1\.[01]" 401/.test(l));
    assert.deepEqual(staleRefusals, []);
  });

  it('never logs a Keystone token or the service password', () => {
    const log = gw.rawLog.join('');
    for (const t of issued) assert.ok(!log.includes(t), 'a Keystone token in the log');
    assert.ok(!log.includes(SERVICE_PASSWORD));
  });
});

describe('[keystone_authtoken] options', () => {
  const load = (settings: Record<string, string>) => loadConfig({ flags: flags({ 'database.connection': 'sqlite:////nonexistent/x.db', ...settings }) });
  const base = {
    'api.auth_strategy': 'keystone', 'keystone_authtoken.auth_url': 'http://127.0.0.1:9/v3', 'keystone_authtoken.username': 'porthole',
    'keystone_authtoken.password': 'pw', 'keystone_authtoken.user_domain_name': 'Default', 'keystone_authtoken.project_name': 'service', 'keystone_authtoken.project_domain_name': 'Default',
  };

  it('warns once each about keystonemiddleware options Porthole does not use, never quoting a secret, and only under auth_strategy = keystone', () => {
    const extra = { 'keystone_authtoken.memcached_servers': '127.0.0.1:11211', 'keystone_authtoken.memcache_secret_key': 'very-secret', 'keystone_authtoken.service_token_roles_required': 'true', 'keystone_authtoken.region_name': 'RegionOne' };
    const lines = unhonouredOptions(load({ ...base, ...extra }));
    assert.equal(lines.length, 4, lines.join('\n'));
    assert.match(lines[0]!, /^test keystone_authtoken\.memcached_servers: \[keystone_authtoken\] memcached_servers = 127\.0\.0\.1:11211 is accepted but not honoured: /);
    assert.ok(lines.every((l) => !l.includes('very-secret')));
    assert.deepEqual(unhonouredOptions(load({ ...extra, 'api.auth_strategy': 'noauth2' })), []);
  });

  it('reads Nova\'s deprecated names (auth_uri, memcache_servers, auth_plugin) as the current ones', () => {
    const loaded = load({ ...base, 'keystone_authtoken.auth_uri': 'http://public:5000', 'keystone_authtoken.memcache_servers': 'm:11211' });
    assert.equal(loaded.config.keystone_authtoken.www_authenticate_uri, 'http://public:5000');
    assert.deepEqual(loaded.config.keystone_authtoken.memcached_servers, ['m:11211']);
  });

  it('refuses to start without what it needs, saying which option', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'keystone_authtoken.auth_url': '' }, /needs \[keystone_authtoken\] auth_url/],
      [{ 'keystone_authtoken.password': '' }, /auth_type = password needs password/],
      [{ 'keystone_authtoken.project_name': '' }, /needs project_name/],
      [{ 'keystone_authtoken.auth_type': 'v3oidcpassword' }, /auth_type = v3oidcpassword is not one Porthole can use/],
      [{ 'keystone_authtoken.cafile': '/nonexistent/ca.pem', 'keystone_authtoken.auth_url': 'https://127.0.0.1:9' }, /cafile \/nonexistent\/ca\.pem/],
    ];
    for (const [settings, message] of cases) {
      await assert.rejects(createAuthenticator(load({ ...base, ...settings }).config), (err: Error) => message.test(err.message));
    }
  });
});
