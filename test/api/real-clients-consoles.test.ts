/**
 * Debian's real `openstack` client (python3-openstackclient) asking Porthole for serial and SPICE
 * console URLs: `openstack console url show --serial SERVER` and `--spice SERVER`, at 2.1 (the
 * legacy os-getSerialConsole / os-getSPICEConsole actions) and at 2.6 (remote-consoles; the
 * client's own default is newer). Each URL is in Nova's form for its kind and its token
 * opens that kind's listener, which relays the backend's first bytes (a plain relay: any TCP
 * peer that speaks first shows it). A server without the console gets Nova's 400, which the
 * client prints. No Keystone: `--os-auth-type none`, as in real-clients.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startApi, UUID4, type TestApi } from '../support/api.ts';
import { bannerBackend, openConsole, RFB_BANNER, type TestBackend } from '../support/backends.ts';
import { tempDir } from '../support/gateway.ts';
import { run, type RunResult } from '../support/process.ts';
import type { ConsoleToken } from '../../src/store/types.ts';

const OPENSTACK = '/usr/bin/openstack';
const SERVER = 'c0a8d3e2-5f1b-4c7a-9e6d-2b4f8a1c3e5d';
const NAME = 'consoles1';
const VNC_ONLY = 'd1b9e4f3-6a2c-4d8b-8f7e-3c5a9b2d4f6e';

describe('openstack console url show --serial and --spice against Porthole', () => {
  let gw: TestApi;
  let backend: TestBackend;
  let home: string;
  let endpoint: string;

  before(async () => {
    assert.ok(existsSync(OPENSTACK), `${OPENSTACK} is required (.ci/run installs python3-openstackclient)`);
    home = tempDir('porthole-clients-home-');
    // one backend for both consoles: the relay is byte for byte, so its banner is what arrives
    backend = await bannerBackend();
    gw = await startApi();
    const at = { host: '127.0.0.1', port: backend.port };
    await gw.addServer({ id: SERVER, name: NAME, projectId: 'notused', serial: at, spice: { ...at, tlsPort: 5931 } });
    await gw.addServer({ id: VNC_ONLY, name: 'vnc-only', projectId: 'notused', vnc: at });
    endpoint = `http://127.0.0.1:${gw.apiPort}/v2.1`;
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  /** The client with an empty HOME and no inherited OS_* or proxy variables. */
  function openstack(args: string[]): Promise<RunResult> {
    return run(OPENSTACK, ['--os-auth-type', 'none', '--os-endpoint', endpoint, ...args], { env: { PATH: '/usr/bin:/bin', HOME: home, LC_ALL: 'C.UTF-8' }, timeoutMs: 60_000 });
  }

  async function consoleUrl(kindFlag: '--serial' | '--spice', server: string, version: string[]): Promise<string> {
    const r = await openstack([...version, 'console', 'url', 'show', kindFlag, '-f', 'value', '-c', 'url', server]);
    assert.equal(r.code, 0, `exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** The token in `<base>?token=<uuid4>` and its row, after checking the base and the row. */
  async function tokenOf(url: string, base: string, consoleType: string): Promise<{ token: string; row: ConsoleToken }> {
    assert.ok(url.startsWith(`${base}?token=`), `${url} does not start with ${base}?token=`);
    const token = new URL(url).searchParams.get('token')!;
    assert.match(token, UUID4);
    const found = await gw.gateway.stores.tokens.lookup(token);
    assert.ok(found.status === 'valid', found.status);
    assert.equal(found.token.instanceUuid, SERVER);
    assert.equal(found.token.consoleType, consoleType);
    return { token, row: found.token };
  }

  function lastPostRoute(): string | undefined {
    return gw.logs.filter((l) => l.event === 'api_request' && l.method === 'POST').at(-1)?.route as string | undefined;
  }

  for (const [version, route] of [[['--os-compute-api-version', '2.1'], '/v2.1/servers/:server_id/action'], [['--os-compute-api-version', '2.6'], '/v2.1/servers/:server_id/remote-consoles']] as const) {
    const at = ` ${version.join(' ')}`;
    it(`openstack${at} console url show --serial SERVER-NAME: a ws:// URL that opens the serial console`, async () => {
      const url = await consoleUrl('--serial', NAME, [...version]);
      assert.equal(lastPostRoute(), route);
      const serial = gw.gateway.proxies.get('serial')!;
      await tokenOf(url, serial.baseUrl, 'serial');
      // Nova's serial URL is the WebSocket itself
      const r = await openConsole(url);
      assert.deepEqual(r.first, RFB_BANNER, 'the backend\'s first bytes through the serial listener');
      r.ws!.close();
    });

    it(`openstack${at} console url show --spice SERVER-ID: the spice_auto.html URL whose token opens the SPICE listener`, async () => {
      const url = await consoleUrl('--spice', SERVER, [...version]);
      assert.equal(lastPostRoute(), route);
      const spice = gw.gateway.proxies.get('spice')!;
      const { token, row } = await tokenOf(url, spice.baseUrl, 'spice-html5');
      assert.equal(row.tlsPort, 5931, 'the server\'s SPICE TLS port in the token row');
      const r = await openConsole(`ws://127.0.0.1:${spice.port}/websockify?token=${token}`);
      assert.deepEqual(r.first, RFB_BANNER, 'the backend\'s first bytes through the SPICE listener');
      r.ws!.close();
    });
  }

  it('prints Nova\'s 400 for a server without a serial console', async () => {
    const r = await openstack(['--os-compute-api-version', '2.6', 'console', 'url', 'show', '--serial', VNC_ONLY]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^BadRequestException: 400: .*remote-consoles, Unavailable console type serial\.$/m);
  });
});
