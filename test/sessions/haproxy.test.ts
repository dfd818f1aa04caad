/**
 * Two Porthole proxies behind a real HAProxy, with real peers only: two `porthole serve`
 * processes on loopback ports sharing a fresh PostgreSQL database on the machine's server
 * (127.0.0.1:5432, dropped after), Debian's `haproxy` running the repository's
 * `deploy/haproxy.cfg` (its global section and addresses swapped for the test's), an RFB echo
 * backend, and the `porthole` CLI. Tokens are minted through one proxy's API and opened through
 * HAProxy; `porthole sessions list` and the admin API of either proxy list the sessions of both;
 * a revocation or a kill made on one proxy closes the live console held by the other; a restarted
 * proxy serves the tokens minted before; SIGTERM drains; after a `kill -9` of one proxy new
 * consoles open through the other at once and the dead one leaves the registry.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { hashToken } from '../../src/store/types.ts';
import { call, tokenOfUrl } from '../support/api.ts';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { accepting, startDaemon, startHaproxy, stopDaemon, type Daemon, type Haproxy } from '../support/daemon.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { closeOf, echo } from '../support/live.ts';
import { porthole } from '../support/process.ts';
import { freshPostgres, type FreshStore } from '../support/stores.ts';
import { freePort } from '../support/xvnc.ts';

const SERVER_A = '3f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
const SERVER_B = '4a2f3e4d-5c6b-4a89-9706-b5c4d3e2f1a0';
const ADMIN = 'admin:admin';

interface SessionJson {
  id: string;
  proxy_id: string;
  proxy_address: string;
  instance_uuid: string;
  token_hash_prefix: string;
  bytes_from_client: number;
}
interface ListingJson {
  sessions: SessionJson[];
  proxies: Array<{ id: string; address: string; draining: boolean; sessions: number }>;
}

describe('two proxies behind HAProxy on one PostgreSQL', () => {
  let db: FreshStore;
  let backend: TestBackend;
  let dir: string;
  const daemons: Daemon[] = [];
  let haproxy: Haproxy;
  const ports = { p1: { consolePort: 0, apiPort: 0 }, p2: { consolePort: 0, apiPort: 0 } };
  let flags: string[];
  const open: WebSocket[] = [];

  const start = async (name: 'p1' | 'p2') => {
    const d = await startDaemon(name, ports[name].consolePort, ports[name].apiPort, flags);
    daemons.push(d);
    return d;
  };
  const live = (name: 'p1' | 'p2') => daemons.filter((d) => d.name === name && d.process.exitCode === null && d.process.signalCode === null).at(-1)!;
  const apiOf = (name: 'p1' | 'p2') => ports[name].apiPort;

  /** Mints a console for `server` through the compute API at `apiPort` (a proxy's, or HAProxy's). */
  const mint = async (apiPort: number, server = SERVER_A) => {
    const r = await call(apiPort, 'POST', `/v2.1/servers/${server}/remote-consoles`, { token: ADMIN, headers: { 'X-OpenStack-Nova-API-Version': '2.6' }, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(r.status, 200, r.text);
    const url = r.body.remote_console.url as string;
    assert.ok(url.startsWith(`http://127.0.0.1:${haproxy.consolePort}/vnc_auto.html?path=`), url);
    return tokenOfUrl(url);
  };
  const consoleVia = async (port: number, token: string) => {
    const { ws } = await openRfbConsole(`ws://127.0.0.1:${port}/websockify?token=${encodeURIComponent(token)}`);
    open.push(ws);
    return ws;
  };
  /** Opens a console, sends bytes through it and back, and closes it. */
  const probe = async (port: number, token: string, text: string) => {
    const ws = await consoleVia(port, token);
    await echo(ws, text);
    ws.close();
  };
  const listing = async (apiPort: number): Promise<ListingJson> => {
    const r = await call(apiPort, 'GET', '/porthole/v1/sessions', { token: ADMIN });
    assert.equal(r.status, 200, r.text);
    return r.body as ListingJson;
  };
  const cli = async (args: string[]) => porthole([...args, '--database-connection', db.url]);
  /** The session of `token` as the registry lists it, once it is there. */
  const sessionOf = (token: string) => eventually(`the session of token ${hashToken(token).slice(0, 8)} in the registry`, async () => (await listing(apiOf('p1'))).sessions.find((s) => s.token_hash_prefix === hashToken(token).slice(0, 8)));
  const proxyIdOf = async (name: 'p1' | 'p2') => {
    const l = await eventually(`${name} in the registry`, async () => (await listing(apiOf(name))).proxies.find((p) => p.address === `127.0.0.1:${ports[name].consolePort}`));
    return l.id;
  };
  /** Opens consoles through HAProxy until one lands on `name`; the others are closed. */
  const consoleOn = async (name: 'p1' | 'p2', server = SERVER_A) => {
    const want = await proxyIdOf(name);
    for (let i = 0; i < 6; i++) {
      const token = await mint(apiOf('p1'), server);
      const ws = await consoleVia(haproxy.consolePort, token);
      const s = await sessionOf(token);
      if (s.proxy_id === want) return { token, ws, session: s };
      ws.close();
    }
    throw new Error(`HAProxy sent no console to ${name} in 6 tries`);
  };

  before(async () => {
    dir = tempDir('porthole-haproxy-');
    db = await freshPostgres();
    backend = await echoBackend();
    for (const p of [ports.p1, ports.p2]) {
      p.consolePort = await freePort();
      p.apiPort = await freePort();
    }
    const hc = await freePort();
    const ha = await freePort();
    flags = [
      '--database-connection', db.url,
      '--vnc-novncproxy_base_url', `http://127.0.0.1:${hc}/vnc_auto.html`,
      '--porthole-session_heartbeat_interval', '1',
      '--porthole-drain_seconds', '3',
      '--porthole-log_level', 'info',
    ];
    await start('p1');
    await start('p2');
    haproxy = await startHaproxy(dir, hc, ha, [ports.p1, ports.p2]);
    await haproxy.allUp();
    for (const id of [SERVER_A, SERVER_B]) {
      const r = await call(apiOf('p1'), 'PUT', `/porthole/v1/servers/${id}`, { token: ADMIN, body: { name: `vm-${id.slice(0, 4)}`, project_id: 'p1', vnc: { host: '127.0.0.1', port: backend.port } } });
      assert.equal(r.status, 200, r.text);
    }
  });
  after(async () => {
    for (const ws of open) ws.terminate();
    await haproxy?.stop();
    for (const d of daemons) await stopDaemon(d);
    await backend?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens consoles minted through one proxy\'s API through HAProxy, on both proxies, and lists them from either', async () => {
    const viaBalancer = await mint(haproxy.apiPort, SERVER_B);
    const tokens = [await mint(apiOf('p1')), await mint(apiOf('p1')), await mint(apiOf('p1')), viaBalancer];
    const sockets = [];
    for (const t of tokens) sockets.push(await consoleVia(haproxy.consolePort, t));
    await echo(sockets[0]!, 'through haproxy');
    const [p1, p2] = [await proxyIdOf('p1'), await proxyIdOf('p2')];
    const both = await eventually('sessions on both proxies', async () => {
      const l = await listing(apiOf('p2'));
      return tokens.every((t) => l.sessions.some((s) => s.token_hash_prefix === hashToken(t).slice(0, 8))) && l.sessions.some((s) => s.proxy_id === p1) && l.sessions.some((s) => s.proxy_id === p2) ? l : undefined;
    });
    assert.deepEqual(new Set(both.proxies.map((p) => p.address)), new Set([`127.0.0.1:${ports.p1.consolePort}`, `127.0.0.1:${ports.p2.consolePort}`]));
    // the CLI, with either proxy's configuration (the same store), sees both
    const r = await cli(['sessions', 'list', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const fromCli = JSON.parse(r.stdout) as ListingJson;
    assert.deepEqual(new Set(fromCli.sessions.map((s) => s.proxy_id)), new Set([p1, p2]));
    for (const t of tokens) assert.ok(fromCli.sessions.some((s) => s.token_hash_prefix === hashToken(t).slice(0, 8)));
    assert.equal(r.stdout.includes(tokens[0]!), false);
    const text = await cli(['sessions', 'list']);
    assert.match(text.stdout, new RegExp(`${tokens.length} live session\\(s\\) on 2 proxy\\(ies\\)`));
    for (const ws of sockets) ws.close();
  });

  it('closes a console on one proxy when its token is revoked through the other\'s API', async () => {
    const held = await consoleOn('p2');
    const closing = closeOf(held.ws);
    const r = await call(apiOf('p1'), 'DELETE', `/porthole/v1/tokens/${held.token}`, { token: ADMIN });
    assert.equal(r.status, 204, r.text);
    assert.deepEqual(await closing, { code: 1008, reason: 'console access revoked' });
  });

  it('closes the consoles of a server on both proxies when the CLI revokes all its tokens', async () => {
    const one = await consoleOn('p1', SERVER_B);
    const two = await consoleOn('p2', SERVER_B);
    const bystander = await consoleOn('p2', SERVER_A);
    const closings = [closeOf(one.ws), closeOf(two.ws)];
    const r = await cli(['token', 'revoke', '--instance-uuid', SERVER_B, '--json']);
    assert.equal(r.code, 0, r.stderr);
    for (const c of await Promise.all(closings)) assert.deepEqual(c, { code: 1008, reason: 'console access revoked' });
    await echo(bystander.ws, 'still open');
    bystander.ws.close();
  });

  it('kills a session held by one proxy through the other\'s admin API and through the CLI', async () => {
    const onP1 = await consoleOn('p1');
    const closing1 = closeOf(onP1.ws);
    const r = await call(apiOf('p2'), 'DELETE', `/porthole/v1/sessions/${onP1.session.id}`, { token: ADMIN });
    assert.equal(r.status, 204, r.text);
    assert.deepEqual(await closing1, { code: 1008, reason: 'console session killed by an administrator' });
    const gone = await call(apiOf('p2'), 'DELETE', `/porthole/v1/sessions/${onP1.session.id}`, { token: ADMIN });
    assert.equal(gone.status, 404, gone.text);
    assert.deepEqual(gone.body, { itemNotFound: { code: 404, message: `Session ${onP1.session.id} could not be found.` } });

    const onP2 = await consoleOn('p2');
    const closing2 = closeOf(onP2.ws);
    const k = await cli(['sessions', 'kill', onP2.session.id]);
    assert.equal(k.code, 0, k.stderr);
    assert.equal(k.stdout, `closed session ${onP2.session.id}\n`);
    assert.deepEqual(await closing2, { code: 1008, reason: 'console session killed by an administrator' });
  });

  it('serves the tokens minted before a proxy restarted', async () => {
    const tokens = [await mint(apiOf('p1')), await mint(apiOf('p2'))];
    const p1 = live('p1');
    p1.signal('SIGTERM');
    assert.equal(await p1.exited, 0);
    // meanwhile HAProxy sends every console to p2
    await probe(haproxy.consolePort, tokens[0]!, 'while p1 is down');
    await start('p1');
    // a rolling restart waits for the balancer to see the proxy back before stopping the next
    await haproxy.allUp();
    for (const t of tokens) {
      await probe(ports.p1.consolePort, t, 'restarted p1');
      await probe(haproxy.consolePort, t, 'through haproxy');
    }
  });

  it('drains on SIGTERM: the console runs on, new ones go to the other proxy, then it closes with 1001', async () => {
    const held = await consoleOn('p2');
    const p2Id = held.session.proxy_id;
    const closing = closeOf(held.ws, 15_000);
    const p2 = live('p2');
    p2.signal('SIGTERM');
    await eventually('p2 to stop accepting', async () => !(await accepting(ports.p2.consolePort)));
    const l = await eventually('p2 shown draining', async () => (await listing(apiOf('p1'))).proxies.find((p) => p.id === p2Id && p.draining));
    assert.equal(l.sessions, 1, JSON.stringify(await listing(apiOf('p1'))));
    await echo(held.ws, 'during the drain');
    await probe(haproxy.consolePort, await mint(apiOf('p1')), 'a new console during the drain');
    assert.deepEqual(await closing, { code: 1001, reason: 'proxy shutting down' });
    assert.equal(await p2.exited, 0);
    const after = await listing(apiOf('p1'));
    assert.equal(after.proxies.some((p) => p.id === p2Id), false);
    assert.equal(after.sessions.some((s) => s.proxy_id === p2Id), false);
    assert.ok(p2.logs.some((x) => x.event === 'draining'));
    await start('p2');
    await haproxy.allUp();
  });

  it('opens new consoles through the other proxy at once after a kill -9, and forgets the dead one', async () => {
    const held = await consoleOn('p1');
    const deadId = held.session.proxy_id;
    const dropped = closeOf(held.ws);
    live('p1').kill9();
    // the daemon is gone: the port is free, the console is cut
    await eventually('p1\'s port to refuse', async () => !(await accepting(ports.p1.consolePort)));
    assert.equal((await dropped).code, 1006);
    for (let i = 0; i < 4; i++) await probe(haproxy.consolePort, await mint(apiOf('p2')), `after kill -9, console ${i}`);
    const l = await eventually('the dead proxy gone from the registry', async () => {
      const x = await listing(apiOf('p2'));
      return x.proxies.some((p) => p.id === deadId) ? undefined : x;
    }, 10_000);
    assert.equal(l.sessions.some((s) => s.proxy_id === deadId), false);
    assert.deepEqual(l.proxies.map((p) => p.address), [`127.0.0.1:${ports.p2.consolePort}`]);
  });
});
