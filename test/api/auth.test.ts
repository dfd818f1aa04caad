/**
 * Who may call the compute API under each `[api] auth_strategy`: `noauth2` (Nova's development
 * middleware), `static` tokens from a file that holds only their SHA-256 (made with `porthole
 * api-token create`), and JWT bearer tokens (HS256 with a shared secret, RS256 with a public key,
 * both made here with `jose`); and the policy on top (Nova's defaults: readers read, members
 * open consoles, admins see console auth tokens). Every refusal is Nova's JSON fault.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { newStaticToken } from '../../src/api/auth.ts';
import { assertFault, startApi, type TestApi } from '../support/api.ts';
import { tempDir } from '../support/gateway.ts';
import { porthole } from '../support/process.ts';

const SERVER = 'e5e5e5e5-0000-4000-8000-000000000001';
const THEIRS = 'e5e5e5e5-0000-4000-8000-000000000002';
const UNAUTHENTICATED = 'The request you have made requires authentication.';
const CONSOLE = { remote_console: { protocol: 'vnc', type: 'novnc' } };
const V26 = { 'X-OpenStack-Nova-API-Version': '2.6' };
const V231 = { 'X-OpenStack-Nova-API-Version': '2.31' };

async function withServers(gw: TestApi): Promise<TestApi> {
  await gw.addServer({ id: SERVER, name: 'web1', projectId: 'p', vnc: { host: '127.0.0.1', port: 5901 } });
  await gw.addServer({ id: THEIRS, name: 'web2', projectId: 'other', vnc: { host: '127.0.0.1', port: 5902 } });
  return gw;
}

describe('[api] auth_strategy = noauth2', () => {
  let gw: TestApi;
  before(async () => (gw = await withServers(await startApi())));
  after(() => gw.close());

  it('takes X-Auth-Token user:project as the caller', async () => {
    const r = await gw.call('GET', '/v2.1/servers', { token: 'alice:p' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.servers.map((s: any) => s.id), [SERVER]);
  });

  it('takes a token without a colon as both user and project (the clients send "notused")', async () => {
    const r = await gw.call('GET', '/v2.1/servers', { token: 'p' });
    assert.deepEqual(r.body.servers.map((s: any) => s.id), [SERVER]);
  });

  it('makes the user "admin" an admin', async () => {
    const r = await gw.call('GET', '/v2.1/os-console-auth-tokens/6587c1f6-3ba4-4c6d-b82d-a0bf5a8cf81e', { token: 'admin:p', headers: V231 });
    assertFault(r, 404, 'Token not found');
  });

  it('refuses a request with no token: 401', async () => {
    assertFault(await gw.call('GET', '/v2.1/servers'), 401, UNAUTHENTICATED);
  });
});

describe('[api] auth_strategy = static, tokens from porthole api-token create', () => {
  let gw: TestApi;
  let dir: string;
  let file: string;
  let member: string;
  const reader = newStaticToken('rita', 'p', ['reader']);
  const admin = newStaticToken('root', 'ops', ['admin']);
  const nobody = newStaticToken('nora', 'p', []);
  let created: any;

  before(async () => {
    dir = tempDir('porthole-api-auth-');
    file = join(dir, 'api-tokens');
    const r = await porthole(['api-token', 'create', '--user', 'u', '--project', 'p', '--roles', 'member', '--file', file, '--json']);
    assert.equal(r.code, 0, r.stderr);
    created = JSON.parse(r.stdout);
    member = created.token;
    writeFileSync(file, `${reader.line}\n${admin.line}\n${nobody.line}\n`, { flag: 'a' });
    gw = await withServers(await startApi({ 'api.auth_strategy': 'static', 'porthole.api_tokens_file': file }));
  });
  after(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the token once and writes only its SHA-256 to the file', () => {
    assert.equal(typeof member, 'string');
    assert.ok(member.length >= 32, member);
    assert.equal(created.user, 'u');
    assert.equal(created.project, 'p');
    assert.deepEqual(created.roles, ['member']);
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(member), 'the token is in the file in plain text');
    const first = text.split('\n')[0]!.split(' ');
    assert.match(first[0]!, /^[0-9a-f]{64}$/);
    assert.deepEqual(first.slice(1), ['u', 'p', 'member']);
    assert.equal(statSync(file).mode & 0o077, 0, 'the token file is readable by others');
  });

  it('accepts that token in X-Auth-Token and as a Bearer token', async () => {
    for (const headers of [{ 'X-Auth-Token': member }, { Authorization: `Bearer ${member}` }] as Record<string, string>[]) {
      const r = await gw.call('GET', '/v2.1/servers', { headers });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.servers.map((s: any) => s.id), [SERVER]);
    }
  });

  it("lets a member open a console of the project's servers, and only those", async () => {
    const r = await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: member, headers: V26, body: CONSOLE });
    assert.equal(r.status, 200, r.text);
    assertFault(await gw.call('POST', `/v2.1/servers/${THEIRS}/remote-consoles`, { token: member, headers: V26, body: CONSOLE }), 404, `Instance ${THEIRS} could not be found.`);
  });

  it('refuses no token, an unknown token, a token hash, and noauth2 tokens: 401', async () => {
    assertFault(await gw.call('GET', '/v2.1/servers'), 401, UNAUTHENTICATED);
    assertFault(await gw.call('GET', '/v2.1/servers', { token: `${member}x` }), 401, UNAUTHENTICATED);
    assertFault(await gw.call('GET', '/v2.1/servers', { token: reader.line.split(' ')[0] }), 401, UNAUTHENTICATED);
    assertFault(await gw.call('GET', '/v2.1/servers', { token: 'admin' }), 401, UNAUTHENTICATED);
    assertFault(await gw.call('GET', '/v2.1/servers', { token: 'notused' }), 401, UNAUTHENTICATED);
    assertFault(await gw.call('GET', '/v2.1/servers', { headers: { Authorization: 'Basic dTpw' } }), 401, UNAUTHENTICATED);
    assertFault(await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'nope', headers: V26, body: CONSOLE }), 401, UNAUTHENTICATED);
  });

  it('refuses an unauthenticated request before reading its body, as Nova\'s auth middleware does: 401', async () => {
    const path = `/v2.1/servers/${SERVER}/remote-consoles`;
    for (const [body, headers] of [
      ['{"remote_console": ', { 'Content-Type': 'application/json' }],
      [{ remote_console: { protocol: 'telnet' } }, {}],
      ['<remote_console/>', { 'Content-Type': 'application/xml' }],
      ['x'.repeat(100_000), { 'Content-Type': 'application/json' }],
    ] as [unknown, Record<string, string>][]) {
      assertFault(await gw.call('POST', path, { token: 'nope', body, headers: { ...V26, ...headers } }), 401, UNAUTHENTICATED);
    }
    assertFault(await gw.call('GET', '/v2.1/servers?limit=abc'), 401, UNAUTHENTICATED);
  });

  it('serves the version documents and the OpenAPI document without a token', async () => {
    assert.equal((await gw.call('GET', '/v2.1/')).status, 200);
    assert.equal((await gw.call('GET', '/')).status, 200);
    assert.equal((await gw.call('GET', '/porthole/v1/openapi.json')).status, 200);
  });

  it('lets a reader list and show servers (Nova: project_reader_or_admin)', async () => {
    const r = await gw.call('GET', '/v2.1/servers', { token: reader.token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.servers.map((s: any) => s.id), [SERVER]);
    assert.equal((await gw.call('GET', `/v2.1/servers/${SERVER}`, { token: reader.token })).status, 200);
    assert.equal((await gw.call('GET', '/v2.1/servers/detail', { token: reader.token })).status, 200);
  });

  it('refuses a reader a console: 403 (Nova: project_member_or_admin)', async () => {
    const message = "Policy doesn't allow os_compute_api:os-remote-consoles to be performed.";
    assertFault(await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: reader.token, headers: V26, body: CONSOLE }), 403, message);
    assertFault(await gw.call('POST', `/v2.1/servers/${SERVER}/action`, { token: reader.token, body: { 'os-getVNCConsole': { type: 'novnc' } } }), 403, message);
  });

  it('refuses a caller with no role at all: 403', async () => {
    assertFault(await gw.call('GET', '/v2.1/servers', { token: nobody.token }), 403, "Policy doesn't allow os_compute_api:servers:index to be performed.");
    assertFault(await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: nobody.token, headers: V26, body: CONSOLE }), 403, "Policy doesn't allow os_compute_api:os-remote-consoles to be performed.");
  });

  it('refuses members and readers the console auth tokens (403), not admins', async () => {
    const path = '/v2.1/os-console-auth-tokens/6587c1f6-3ba4-4c6d-b82d-a0bf5a8cf81e';
    assertFault(await gw.call('GET', path, { token: member, headers: V231 }), 403, "Policy doesn't allow os_compute_api:os-console-auth-tokens to be performed.");
    assertFault(await gw.call('GET', path, { token: reader.token, headers: V231 }), 403, "Policy doesn't allow os_compute_api:os-console-auth-tokens to be performed.");
    assertFault(await gw.call('GET', path, { token: admin.token, headers: V231 }), 404, 'Token not found');
  });

  it('lets an admin of another project open any console', async () => {
    const r = await gw.call('POST', `/v2.1/servers/${THEIRS}/remote-consoles`, { token: admin.token, headers: V26, body: CONSOLE });
    assert.equal(r.status, 200, r.text);
  });

  it('never logs an API token', () => {
    const log = gw.rawLog.join('');
    for (const t of [member, reader.token, admin.token]) assert.ok(!log.includes(t));
  });
});

describe('[api] auth_strategy = jwt', () => {
  const ISSUER = 'https://idp.example.com/realms/cloud';
  const AUDIENCE = 'porthole';
  const claims = (extra: JWTPayload = {}): JWTPayload => ({ project_id: 'p', roles: ['member'], ...extra });

  function sign(key: Parameters<SignJWT['sign']>[0], alg: string, payload: JWTPayload, opts: { iss?: string | null; aud?: string | null; exp?: number | string | null; sub?: string } = {}): Promise<string> {
    let jwt = new SignJWT(payload).setProtectedHeader({ alg }).setIssuedAt().setSubject(opts.sub ?? 'alice');
    if (opts.iss !== null) jwt = jwt.setIssuer(opts.iss ?? ISSUER);
    if (opts.aud !== null) jwt = jwt.setAudience(opts.aud ?? AUDIENCE);
    if (opts.exp !== null) jwt = jwt.setExpirationTime(opts.exp ?? '5m');
    return jwt.sign(key);
  }

  describe('HS256 with [porthole] jwt_secret', () => {
    const secret = new TextEncoder().encode('a shared secret of at least thirty-two bytes!');
    const hs = (payload: JWTPayload, opts?: Parameters<typeof sign>[3]) => sign(secret, 'HS256', payload, opts);
    let gw: TestApi;

    before(async () => {
      gw = await withServers(await startApi({
        'api.auth_strategy': 'jwt',
        'porthole.jwt_secret': new TextDecoder().decode(secret),
        'porthole.jwt_issuer': ISSUER,
        'porthole.jwt_audience': AUDIENCE,
      }));
    });
    after(() => gw.close());

    it('accepts a valid token as Bearer and in X-Auth-Token, the project and roles from its claims', async () => {
      const token = await hs(claims());
      for (const headers of [{ Authorization: `Bearer ${token}` }, { 'X-Auth-Token': token }] as Record<string, string>[]) {
        const r = await gw.call('GET', '/v2.1/servers', { headers });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.body.servers.map((s: any) => s.id), [SERVER]);
      }
      const r = await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token, headers: V26, body: CONSOLE });
      assert.equal(r.status, 200, r.text);
    });

    it('takes roles as a space-separated string too', async () => {
      const r = await gw.call('GET', '/v2.1/servers', { token: await hs(claims({ roles: 'reader member' })) });
      assert.equal(r.status, 200, r.text);
    });

    it('applies the roles: reader 403 on consoles, admin sees console auth tokens', async () => {
      const reader = await hs(claims({ roles: ['reader'] }));
      assertFault(await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: reader, headers: V26, body: CONSOLE }), 403, "Policy doesn't allow os_compute_api:os-remote-consoles to be performed.");
      const path = '/v2.1/os-console-auth-tokens/6587c1f6-3ba4-4c6d-b82d-a0bf5a8cf81e';
      assertFault(await gw.call('GET', path, { token: await hs(claims()), headers: V231 }), 403, "Policy doesn't allow os_compute_api:os-console-auth-tokens to be performed.");
      assertFault(await gw.call('GET', path, { token: await hs(claims({ roles: ['admin'] })), headers: V231 }), 404, 'Token not found');
    });

    const refusals: [string, () => Promise<string>][] = [
      ['an expired token', () => hs(claims(), { exp: Math.floor(Date.now() / 1000) - 60 })],
      ['a token without exp', () => hs(claims(), { exp: null })],
      ['a token from another issuer', () => hs(claims(), { iss: 'https://evil.example.com' })],
      ['a token without issuer', () => hs(claims(), { iss: null })],
      ['a token for another audience', () => hs(claims(), { aud: 'nova' })],
      ['a token without audience', () => hs(claims(), { aud: null })],
      ['a token without the project claim', () => hs({ roles: ['member'] })],
      ['a token with an empty project claim', () => hs(claims({ project_id: '' }))],
      ['a token signed with another secret', () => sign(new TextEncoder().encode('another secret, also thirty-two bytes long'), 'HS256', claims())],
      ['an unsigned token (alg none)', async () => new UnsecuredJWT(claims()).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').encode()],
      ['a token with a tampered payload', async () => {
        const [h, , s] = (await hs(claims())).split('.');
        const body = Buffer.from(JSON.stringify({ ...claims({ roles: ['admin'] }), iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
        return `${h}.${body}.${s}`;
      }],
      ['garbage', async () => 'not.a.jwt'],
    ];
    for (const [what, make] of refusals) {
      it(`refuses ${what}: 401`, async () => {
        const token = await make();
        assertFault(await gw.call('GET', '/v2.1/servers', { headers: { Authorization: `Bearer ${token}` } }), 401, UNAUTHENTICATED);
      });
    }

    it('refuses no token: 401', async () => {
      assertFault(await gw.call('GET', '/v2.1/servers'), 401, UNAUTHENTICATED);
    });
  });

  describe('RS256 with [porthole] jwt_public_key_file', () => {
    let gw: TestApi;
    let keys: Awaited<ReturnType<typeof generateKeyPair>>;
    let publicPem: string;
    let dir: string;

    before(async () => {
      keys = await generateKeyPair('RS256', { extractable: true });
      publicPem = await exportSPKI(keys.publicKey);
      dir = tempDir('porthole-api-jwt-');
      const keyFile = join(dir, 'idp.pem');
      writeFileSync(keyFile, publicPem);
      gw = await withServers(await startApi({ 'api.auth_strategy': 'jwt', 'porthole.jwt_public_key_file': keyFile, 'porthole.jwt_issuer': ISSUER, 'porthole.jwt_audience': AUDIENCE }));
    });
    after(async () => {
      await gw.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('accepts a token signed with the private key', async () => {
      const r = await gw.call('GET', '/v2.1/servers', { headers: { Authorization: `Bearer ${await sign(keys.privateKey, 'RS256', claims())}` } });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.servers.map((s: any) => s.id), [SERVER]);
    });

    it('refuses expired, wrong issuer or audience, missing project: 401', async () => {
      for (const token of [
        await sign(keys.privateKey, 'RS256', claims(), { exp: Math.floor(Date.now() / 1000) - 60 }),
        await sign(keys.privateKey, 'RS256', claims(), { iss: 'https://evil.example.com' }),
        await sign(keys.privateKey, 'RS256', claims(), { aud: 'nova' }),
        await sign(keys.privateKey, 'RS256', { roles: ['member'] }),
      ]) {
        assertFault(await gw.call('GET', '/v2.1/servers', { headers: { Authorization: `Bearer ${token}` } }), 401, UNAUTHENTICATED);
      }
    });

    it('refuses a token signed by another key pair: 401', async () => {
      const other = await generateKeyPair('RS256');
      assertFault(await gw.call('GET', '/v2.1/servers', { headers: { Authorization: `Bearer ${await sign(other.privateKey, 'RS256', claims())}` } }), 401, UNAUTHENTICATED);
    });

    it('refuses an HS256 token keyed with the public key (algorithm confusion): 401', async () => {
      const forged = await sign(new TextEncoder().encode(publicPem), 'HS256', claims({ roles: ['admin'] }));
      assertFault(await gw.call('GET', '/v2.1/servers', { headers: { Authorization: `Bearer ${forged}` } }), 401, UNAUTHENTICATED);
    });
  });
});
