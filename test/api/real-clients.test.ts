/**
 * The real OpenStack clients from Debian (python3-openstackclient, python3-novaclient) against a
 * running Porthole with no Keystone (`--os-auth-type none`: they send `X-Auth-Token: notused`,
 * which noauth2 takes as user and project `notused`). Each prints a console URL; the URL then
 * opens the console through the proxy (the backend's RFB banner arrives) and passes tempest's
 * own noVNC checks. `openstack server list` and `server show` (and `nova list`, `nova show`)
 * read the servers' detailed view at the client's microversions without Glance or flavors. The clients run with an empty HOME and only the environment given here, so
 * no user configuration leaks in.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startApi, tokenOfUrl, UUID4, websocketUrl, type TestApi } from '../support/api.ts';
import { bannerBackend, openConsole, RFB_BANNER, type TestBackend } from '../support/backends.ts';
import { tempDir } from '../support/gateway.ts';
import { run } from '../support/process.ts';

const OPENSTACK = '/usr/bin/openstack';
const NOVA = '/usr/bin/nova';
// Debian's interpreter: python3-tempest is installed for it, not for other pythons on PATH
const PYTHON = '/usr/bin/python3';
const TEMPEST = join(import.meta.dirname, '..', 'support', 'tempest_novnc.py');
const SERVER = '5a124ea0-36a0-49b8-9bd0-e937d958ca8f';
const NAME = 'web1';

describe('real OpenStack clients against Porthole', () => {
  let gw: TestApi;
  let backend: TestBackend;
  let home: string;
  let endpoint: string;

  before(async () => {
    for (const file of [OPENSTACK, NOVA, TEMPEST]) assert.ok(existsSync(file), `${file} is required (.ci/run installs python3-openstackclient, python3-novaclient, python3-tempest)`);
    home = tempDir('porthole-clients-home-');
    backend = await bannerBackend();
    gw = await startApi();
    await gw.addServer({ id: SERVER, name: NAME, projectId: 'notused', vnc: { host: '127.0.0.1', port: backend.port } });
    // a server of another project with the same name must not confuse the lookup by name
    await gw.addServer({ id: '6b235fb1-47b1-4ac9-9ce0-fa48e0a69d90', name: NAME, projectId: 'someone-else', vnc: { host: '127.0.0.1', port: backend.port } });
    endpoint = `http://127.0.0.1:${gw.apiPort}/v2.1`;
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  /** Runs a client with an empty HOME and no inherited OS_* or proxy variables. */
  async function client(command: string, args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
    const env = { PATH: '/usr/bin:/bin', HOME: home, LC_ALL: 'C.UTF-8', ...extraEnv };
    const r = await run(command, args, { env, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `${command} ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  }

  const openstack = (server: string, extra: string[] = []) =>
    client(OPENSTACK, ['--os-auth-type', 'none', '--os-endpoint', endpoint, ...extra, 'console', 'url', 'show', '--novnc', '-f', 'value', '-c', 'url', server]);
  // novaclient wants these even with --os-auth-type none, and never calls the URL
  const nova = (server: string, extra: string[] = []) =>
    client(NOVA, ['--os-auth-type', 'none', '--os-endpoint', endpoint, ...extra, 'get-vnc-console', server, 'novnc'], { OS_USERNAME: 'notused', OS_PROJECT_ID: 'notused', OS_AUTH_URL: 'http://127.0.0.1:9/identity/v3' });

  /** The console URL printed by a client, after checking its form and its token. */
  async function urlFrom(stdout: string): Promise<string> {
    const urls = stdout.match(/https?:\/\/\S+?token%3D[0-9a-f-]{36}/g) ?? [];
    assert.equal(urls.length, 1, `expected one console URL in:\n${stdout}`);
    const url = urls[0]!;
    assert.ok(url.startsWith(`${gw.gateway.novnc!.baseUrl}?path=%3Ftoken%3D`), url);
    const token = tokenOfUrl(url);
    assert.match(token, UUID4);
    const found = await gw.gateway.stores.tokens.lookup(token);
    assert.equal(found.status, 'valid');
    assert.ok(found.status === 'valid' && found.token.instanceUuid === SERVER);
    return url;
  }

  /** A WebSocket to the proxy with the URL's token gets the backend's RFB banner. */
  async function assertOpens(url: string): Promise<void> {
    const r = await openConsole(websocketUrl(gw, tokenOfUrl(url)));
    assert.deepEqual(r.first, RFB_BANNER);
    r.ws!.close();
  }

  async function assertTempestPasses(url: string): Promise<void> {
    const r = await run(PYTHON, [TEMPEST, url], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, `tempest failed:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^PASS test_novnc$/m);
    assert.match(r.stdout, /^PASS test_novnc_bad_token$/m);
  }

  /** The compute route the last POST went to (the API logs route patterns, never URLs). */
  function lastPostRoute(): string | undefined {
    return gw.logs.filter((l) => l.event === 'api_request' && l.method === 'POST').at(-1)?.route as string | undefined;
  }

  it('openstack console url show --novnc SERVER-NAME prints a URL that opens the console and passes tempest', async () => {
    const url = await urlFrom(await openstack(NAME));
    assert.equal(lastPostRoute(), '/v2.1/servers/:server_id/remote-consoles');
    await assertOpens(url);
    await assertTempestPasses(url);
  });

  it('openstack console url show --novnc SERVER-ID', async () => {
    const url = await urlFrom(await openstack(SERVER));
    await assertOpens(url);
  });

  it('openstack --os-compute-api-version 2.1 uses the legacy os-getVNCConsole action', async () => {
    const url = await urlFrom(await openstack(NAME, ['--os-compute-api-version', '2.1']));
    assert.equal(lastPostRoute(), '/v2.1/servers/:server_id/action');
    await assertOpens(url);
  });

  /** `openstack ... -f json` output, parsed. */
  async function openstackJson(args: string[]): Promise<any> {
    const out = await client(OPENSTACK, ['--os-auth-type', 'none', '--os-endpoint', endpoint, ...args, '-f', 'json']);
    return JSON.parse(out);
  }

  // 2.1 is the client's default; 2.47 embeds the flavor without its id; 2.92 is the client's newest
  for (const version of ['2.1', '2.47', '2.92']) {
    it(`openstack --os-compute-api-version ${version} server list [--long] lists the project's server, booted from volume, no flavor`, async () => {
      for (const long of [[], ['--long']]) {
        const rows = await openstackJson(['--os-compute-api-version', version, 'server', 'list', ...long]);
        assert.deepEqual(rows.map((r: any) => [r.ID, r.Name, r.Status]), [[SERVER, NAME, 'ACTIVE']]);
        assert.equal(rows[0].Image ?? rows[0]['Image Name'], 'N/A (booted from volume)');
        if (long.length > 0) assert.equal(rows[0]['Power State'], 1); // Nova's RUNNING: JSON output keeps the number
      }
    });

    it(`openstack --os-compute-api-version ${version} server show, by id and by name`, async () => {
      for (const which of [SERVER, NAME]) {
        const server = await openstackJson(['--os-compute-api-version', version, 'server', 'show', which]);
        assert.equal(server.id, SERVER);
        assert.equal(server.name, NAME);
        assert.equal(server.status, 'ACTIVE');
        assert.equal(server.project_id, 'notused');
        assert.equal(server.image, 'N/A (booted from volume)');
      }
    });
  }

  it('nova list and nova show SERVER-NAME', async () => {
    const env = { OS_USERNAME: 'notused', OS_PROJECT_ID: 'notused', OS_AUTH_URL: 'http://127.0.0.1:9/identity/v3' };
    const list = await client(NOVA, ['--os-auth-type', 'none', '--os-endpoint', endpoint, 'list'], env);
    assert.match(list, new RegExp(`\\|\\s*${SERVER}\\s*\\|\\s*${NAME}\\s*\\|\\s*ACTIVE\\s*\\|`));
    assert.doesNotMatch(list, /6b235fb1/);
    const show = await client(NOVA, ['--os-auth-type', 'none', '--os-endpoint', endpoint, 'show', NAME], env);
    assert.match(show, new RegExp(`\\|\\s*id\\s*\\|\\s*${SERVER}\\s*\\|`));
  });

  it('nova get-vnc-console SERVER-NAME novnc prints a URL that opens the console and passes tempest', async () => {
    const stdout = await nova(NAME);
    assert.match(stdout, /\|\s*novnc\s*\|/);
    const url = await urlFrom(stdout);
    assert.equal(lastPostRoute(), '/v2.1/servers/:server_id/remote-consoles');
    await assertOpens(url);
    await assertTempestPasses(url);
  });

  it('nova --os-compute-api-version 2.1 get-vnc-console SERVER-ID novnc uses the legacy action', async () => {
    const url = await urlFrom(await nova(SERVER, ['--os-compute-api-version', '2.1']));
    assert.equal(lastPostRoute(), '/v2.1/servers/:server_id/action');
    await assertOpens(url);
  });
});
