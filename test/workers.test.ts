/**
 * `[porthole] workers = 2`: real `porthole serve` daemons (bin/porthole.js, as a service manager
 * runs them) whose primary process supervises two worker processes sharing the console and API
 * ports, on a fresh SQLite file and on a fresh PostgreSQL database of the machine's server
 * (127.0.0.1:5432, dropped after), with an RFB echo backend. Consoles opened on the one port land
 * on both workers, each a proxy of its own in the sessions registry; `porthole sessions list`
 * shows them all; revoking a token or killing a session closes the console in whichever worker
 * holds it; a worker killed with SIGKILL is replaced while the other one keeps serving; SIGTERM
 * drains every worker and the daemon exits 0. On SQLite also: the start-up summary is printed once
 * and its demo console (served by the primary) opens through a worker; a crash loop makes the
 * primary give up with exit 1; workers die with their primary; a worker that cannot listen fails
 * the start; the option's bounds.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { loadConfig } from '../src/config/load.ts';
import { hashToken } from '../src/store/types.ts';
import { MAX_WORKERS, workerCount } from '../src/workers.ts';
import { call, tokenOfUrl } from './support/api.ts';
import { echoBackend, openRfbConsole, type TestBackend } from './support/backends.ts';
import { accepting, startDaemon, stopDaemon, type Daemon } from './support/daemon.ts';
import { eventually, flags as settings, tempDir } from './support/gateway.ts';
import { closeOf, echo } from './support/live.ts';
import { cleanEnv, OTHER_CONSOLES_ON_LOOPBACK, porthole, PROJECT_ROOT } from './support/process.ts';
import { freshPostgres } from './support/stores.ts';
import { freePort } from './support/xvnc.ts';

const SERVER = '5c3d4e5f-6a7b-4c8d-9e0f-a1b2c3d4e5f6';
const ADMIN = 'admin:admin';

interface ProxyJson {
  id: string;
  address: string;
  pid: number;
  draining: boolean;
  sessions: number;
}
interface SessionJson {
  id: string;
  proxy_id: string;
  proxy_address: string;
  token_hash_prefix: string;
}
interface ListingJson {
  sessions: SessionJson[];
  proxies: ProxyJson[];
}

interface Store {
  readonly url: string;
  drop(): Promise<void>;
}

async function sqliteStore(): Promise<Store> {
  const dir = tempDir('porthole-workers-');
  return { url: `sqlite:///${join(dir, 'porthole.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
}

/** Whether the process with this pid still runs (a zombie has exited: only its parent's wait is missing). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** The running node processes whose parent is `pid` (tsx's esbuild service is not one). */
function nodeChildrenOf(pid: number): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => {
    try {
      return parentOf(p) === pid && alive(p) && readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'node';
    } catch {
      return false;
    }
  });
}

/** The primary's pid, from its log lines. */
function primaryPid(d: Daemon): number {
  const line = d.logs.find((l) => l.role === 'primary');
  assert.ok(line, 'no log line of the primary');
  return line.pid as number;
}

/** The pids of the workers the primary started and has not seen exit, from its log lines. */
function workerPids(d: Daemon): number[] {
  const started = d.logs.filter((l) => l.event === 'worker_started').map((l) => l.workerPid as number);
  const gone = new Set(d.logs.filter((l) => l.event === 'worker_exited' || l.event === 'worker_stopped').map((l) => l.workerPid as number));
  return started.filter((p) => !gone.has(p));
}

function workersOn(name: string, openStore: () => Promise<Store>, opts: { summary?: boolean } = {}): void {
  describe(`two workers on ${name}`, () => {
    let store: Store;
    let backend: TestBackend;
    let daemon: Daemon;
    const open: WebSocket[] = [];
    const seen = new Set<string>();

    const cli = (args: string[]) => porthole([...args, '--database-connection', store.url]);
    const listing = async (): Promise<ListingJson> => {
      const r = await call(daemon.apiPort, 'GET', '/porthole/v1/sessions', { token: ADMIN });
      assert.equal(r.status, 200, r.text);
      return r.body as ListingJson;
    };
    /** The two workers as the registry lists them, once both are there (and no other). */
    const workers = () => eventually('two workers in the registry', async () => {
      const l = await listing();
      return l.proxies.length === 2 && !l.proxies.some((p) => p.draining) ? l.proxies : undefined;
    }, 10_000);
    const mint = async () => {
      const r = await call(daemon.apiPort, 'POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: ADMIN, headers: { 'X-OpenStack-Nova-API-Version': '2.6' }, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
      assert.equal(r.status, 200, r.text);
      return tokenOfUrl(r.body.remote_console.url as string);
    };
    /** Mints a token and opens a console with it on the shared port; resolves with its session as the registry lists it. */
    const consoleAnywhere = async () => {
      const token = await mint();
      const { ws } = await openRfbConsole(`ws://127.0.0.1:${daemon.consolePort}/websockify?token=${encodeURIComponent(token)}`);
      open.push(ws);
      const session = await eventually(`the session of ${hashToken(token).slice(0, 8)} in the registry`, async () => (await listing()).sessions.find((s) => s.token_hash_prefix === hashToken(token).slice(0, 8) && !seen.has(s.id)));
      seen.add(session.id);
      return { token, ws, session };
    };
    /**
     * node:cluster hands connections to the workers in turn, but skips a worker that has not yet
     * acknowledged its last one: under a loaded machine (the whole suite on 2 cores) 8 sequential
     * consoles were once all seen on one worker, so a few more tries are allowed.
     */
    const TRIES = 24;
    /** Opens consoles until one lands on the worker registered as `proxyId`; the others are closed. */
    const consoleOn = async (proxyId: string) => {
      for (let i = 0; i < TRIES; i++) {
        const c = await consoleAnywhere();
        if (c.session.proxy_id === proxyId) return c;
        c.ws.close();
      }
      throw new Error(`no console landed on worker ${proxyId} in ${TRIES} tries`);
    };

    before(async () => {
      store = await openStore();
      backend = await echoBackend();
      daemon = await startDaemon(`workers on ${name}`, await freePort(), await freePort(), [
        '--database-connection', store.url,
        '--porthole-workers', '2',
        '--porthole-session_heartbeat_interval', '0.5',
        '--porthole-drain_seconds', '2',
        '--porthole-log_level', 'info',
        ...(opts.summary ? ['--demo'] : []),
      ]);
      const r = await call(daemon.apiPort, 'PUT', `/porthole/v1/servers/${SERVER}`, { token: ADMIN, body: { name: 'vm-workers', project_id: 'p1', vnc: { host: '127.0.0.1', port: backend.port } } });
      assert.equal(r.status, 200, r.text);
      await workers();
    });
    after(async () => {
      for (const ws of open) ws.terminate();
      await stopDaemon(daemon);
      await backend?.close();
      await store?.drop();
    });

    it('runs two workers on one port, each a proxy of its own in the registry with its own pid', async () => {
      const proxies = await workers();
      assert.equal(new Set(proxies.map((p) => p.id)).size, 2);
      assert.equal(new Set(proxies.map((p) => p.pid)).size, 2);
      assert.deepEqual(proxies.map((p) => p.address), [`127.0.0.1:${daemon.consolePort}`, `127.0.0.1:${daemon.consolePort}`]);
      const primary = primaryPid(daemon);
      assert.ok(!proxies.some((p) => p.pid === primary), 'the primary registered as a proxy');
      assert.deepEqual(new Set(proxies.map((p) => p.pid)), new Set(workerPids(daemon)));
      // the workers are the primary's own children, two node processes and no more, and the
      // primary is the process the service manager started
      assert.equal(primary, daemon.process.pid);
      assert.deepEqual(new Set(nodeChildrenOf(primary)), new Set(proxies.map((p) => p.pid)));
    });

    if (opts.summary) {
      it('prints the start-up summary once, and its demo console, served by the primary, opens through a worker', async () => {
        await eventually('the compute API line', () => daemon.stdout.some((l) => l.startsWith('Compute API: ')));
        assert.equal(daemon.stdout.filter((l) => l.startsWith('Porthole is running.')).length, 1, daemon.stdout.join('\n'));
        assert.equal(daemon.stdout.filter((l) => l.startsWith('Compute API: ')).length, 1, daemon.stdout.join('\n'));
        const url = daemon.stdout.map((l) => l.trim()).find((l) => l.startsWith(`http://127.0.0.1:${daemon.consolePort}/vnc_auto.html?path=`));
        assert.ok(url, daemon.stdout.join('\n'));
        const { ws, messages } = await openRfbConsole(`ws://127.0.0.1:${daemon.consolePort}/websockify?token=${encodeURIComponent(tokenOfUrl(url))}`);
        open.push(ws);
        assert.match(messages.at(-1)!.toString('latin1'), /Porthole demo/);
        ws.close();
      });
    }

    it('spreads consoles over both workers, and porthole sessions list shows every one', async () => {
      const ids = new Set((await workers()).map((p) => p.id));
      const held: Awaited<ReturnType<typeof consoleAnywhere>>[] = [];
      for (let i = 0; i < TRIES && new Set(held.map((c) => c.session.proxy_id)).size < 2; i++) held.push(await consoleAnywhere());
      assert.deepEqual(new Set(held.map((c) => c.session.proxy_id)), ids, 'consoles did not land on both workers');
      for (const c of held) await echo(c.ws, `through ${c.session.proxy_id}`);
      const r = await cli(['sessions', 'list', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const fromCli = JSON.parse(r.stdout) as ListingJson;
      for (const c of held) assert.equal(fromCli.sessions.find((s) => s.id === c.session.id)?.proxy_id, c.session.proxy_id);
      assert.deepEqual(new Set(fromCli.proxies.map((p) => p.id)), ids);
      const text = await cli(['sessions', 'list']);
      assert.equal(text.code, 0, text.stderr);
      // one address, two workers: the pids tell them apart
      for (const p of fromCli.proxies) assert.ok(text.stdout.includes(`127.0.0.1:${daemon.consolePort} pid ${p.pid}`), text.stdout);
      for (const c of held) c.ws.close();
    });

    it('closes the console of a revoked token on whichever worker holds it', async () => {
      const [w1, w2] = await workers();
      const one = await consoleOn(w1!.id);
      const two = await consoleOn(w2!.id);
      const bystander = await consoleOn(w1!.id);
      const closing1 = closeOf(one.ws);
      const closing2 = closeOf(two.ws);
      const r = await cli(['token', 'revoke', one.token]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await closing1, { code: 1008, reason: 'console access revoked' });
      const d = await call(daemon.apiPort, 'DELETE', `/porthole/v1/tokens/${two.token}`, { token: ADMIN });
      assert.equal(d.status, 204, d.text);
      assert.deepEqual(await closing2, { code: 1008, reason: 'console access revoked' });
      await echo(bystander.ws, 'still open');
      bystander.ws.close();
    });

    it('kills a session on whichever worker holds it', async () => {
      const [w1, w2] = await workers();
      const one = await consoleOn(w1!.id);
      const two = await consoleOn(w2!.id);
      const closing1 = closeOf(one.ws);
      const k = await cli(['sessions', 'kill', one.session.id]);
      assert.equal(k.code, 0, k.stderr);
      assert.equal(k.stdout, `closed session ${one.session.id}\n`);
      assert.deepEqual(await closing1, { code: 1008, reason: 'console session killed by an administrator' });
      const closing2 = closeOf(two.ws);
      const d = await call(daemon.apiPort, 'DELETE', `/porthole/v1/sessions/${two.session.id}`, { token: ADMIN });
      assert.equal(d.status, 204, d.text);
      assert.deepEqual(await closing2, { code: 1008, reason: 'console session killed by an administrator' });
    });

    it('replaces a worker killed with SIGKILL, and keeps serving consoles meanwhile', async () => {
      const [victim, survivor] = await workers();
      const held = await consoleOn(victim!.id);
      const other = await consoleOn(survivor!.id);
      const dropped = closeOf(held.ws);
      process.kill(victim!.pid, 'SIGKILL');
      assert.equal((await dropped).code, 1006);
      await eventually('the primary to log the death', () => daemon.logs.some((l) => l.event === 'worker_exited' && l.workerPid === victim!.pid && l.signal === 'SIGKILL'));
      // meanwhile the other worker takes every new console, and the API answers
      for (let i = 0; i < 3; i++) {
        const c = await consoleAnywhere();
        await echo(c.ws, `while a worker is replaced, ${i}`);
        c.ws.close();
      }
      await echo(other.ws, 'the other worker\'s console runs on');
      const after = await eventually('a replacement in the registry, and the dead worker gone from it', async () => {
        const l = await listing();
        return l.proxies.length === 2 && !l.proxies.some((p) => p.id === victim!.id) ? l : undefined;
      }, 10_000);
      const replacement = after.proxies.find((p) => p.id !== survivor!.id)!;
      assert.notEqual(replacement.pid, victim!.pid);
      assert.equal(alive(victim!.pid), false);
      // the replacement serves consoles too
      await consoleOn(replacement.id).then((c) => echo(c.ws, 'on the replacement'));
      other.ws.close();
    });

    it('drains every worker on SIGTERM and exits 0 once all have exited', async () => {
      const [w1, w2] = await workers();
      const held = [await consoleOn(w1!.id), await consoleOn(w2!.id)];
      const closings = held.map((c) => closeOf(c.ws, 15_000));
      const pids = workerPids(daemon);
      assert.equal(pids.length, 2);
      daemon.signal('SIGTERM');
      await eventually('the shared port to stop accepting', async () => !(await accepting(daemon.consolePort)));
      for (const c of held) await echo(c.ws, 'during the drain');
      for (const c of await Promise.all(closings)) assert.deepEqual(c, { code: 1001, reason: 'proxy shutting down' });
      assert.equal(await daemon.exited, 0);
      for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} still runs`);
      assert.equal(daemon.logs.filter((l) => l.event === 'draining').length, 2);
      const r = await cli(['sessions', 'list', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { sessions: [], proxies: [] });
    });
  });
}

workersOn('SQLite', sqliteStore, { summary: true });
workersOn('PostgreSQL', freshPostgres);

describe('workers: supervision', () => {
  const daemons: Daemon[] = [];
  let store: Store;
  before(async () => {
    store = await sqliteStore();
  });
  after(async () => {
    for (const d of daemons) await stopDaemon(d);
    await store?.drop();
  });
  const start = async (extra: string[] = []) => {
    const d = await startDaemon('workers', await freePort(), await freePort(), ['--database-connection', store.url, '--porthole-workers', '2', '--porthole-log_level', 'info', ...extra]);
    daemons.push(d);
    await eventually('both workers listening', () => d.logs.some((l) => l.event === 'workers_listening'), 10_000);
    return d;
  };

  it('gives up with exit 1 when workers die 5 times within a minute', async () => {
    const d = await start();
    const killed = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const pid = await eventually(`a worker to kill (${i + 1})`, () => workerPids(d).find((p) => !killed.has(p)), 10_000);
      killed.add(pid);
      process.kill(pid, 'SIGKILL');
      await eventually(`the primary to see death ${i + 1}`, () => d.logs.filter((l) => l.event === 'worker_exited').length === i + 1, 10_000);
    }
    assert.equal(await d.exited, 1);
    assert.ok(d.logs.some((l) => l.event === 'worker_exited' && l.level === 60 && l.deaths === 5), JSON.stringify(d.logs.filter((l) => l.event === 'worker_exited')));
    // no worker was started after the fifth death (a restart still waiting then is called off)
    const fatal = d.logs.findIndex((l) => l.level === 60);
    assert.ok(fatal > 0 && !d.logs.slice(fatal).some((l) => l.event === 'worker_started'));
    for (const l of d.logs.filter((x) => x.event === 'worker_started')) assert.equal(alive(l.workerPid as number), false);
  });

  it('takes the workers down with the primary', async () => {
    const d = await start();
    const pids = workerPids(d);
    const primary = primaryPid(d);
    d.kill9();
    await eventually('the primary and its workers to exit', () => !alive(primary) && pids.every((p) => !alive(p)), 10_000);
    assert.equal(await accepting(d.consolePort), false);
  });

  it('runs novncproxy and api with workers too', async () => {
    const [consolePort, apiPort] = [await freePort(), await freePort()];
    const common = ['--vnc-novncproxy_host', '127.0.0.1', '--vnc-novncproxy_port', String(consolePort), '--osapi_compute_listen', '127.0.0.1', '--osapi_compute_listen_port', String(apiPort), '--database-connection', store.url, '--porthole-workers', '2', '--porthole-session_heartbeat_interval', '0.5', '--web', '/nonexistent', '--cert', '/nonexistent'];
    const daemons = (['novncproxy', 'api'] as const).map((command) => {
      const child = spawn(process.execPath, ['bin/porthole.js', command, ...common], { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')));
      return { child, exited, out: () => out };
    });
    const [proxy, api] = daemons as [(typeof daemons)[0], (typeof daemons)[0]];
    try {
      await eventually('novncproxy\'s two workers in the registry', async () => {
        const r = await porthole(['sessions', 'list', '--json', '--database-connection', store.url]);
        return r.code === 0 && (JSON.parse(r.stdout) as ListingJson).proxies.filter((p) => p.address === `127.0.0.1:${consolePort}`).length === 2;
      }, 20_000);
      await eventually('the API\'s start-up summary', () => api.out().includes('Compute API: '), 20_000);
      const r = await call(apiPort, 'GET', '/v2.1', { token: ADMIN });
      assert.equal(r.status, 200, r.text);
      assert.equal(api.out().split('Compute API: ').length, 2, api.out());
      assert.equal(await accepting(apiPort), true);
      for (const d of daemons) d.child.kill('SIGTERM');
      assert.equal(await proxy.exited, 0, proxy.out());
      assert.equal(await api.exited, 0, api.out());
    } finally {
      for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    }
  });

  it('fails the start with exit 1 when a worker cannot listen', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await porthole(['serve', ...OTHER_CONSOLES_ON_LOOPBACK, '--vnc-novncproxy_host', '127.0.0.1', '--vnc-novncproxy_port', String(port), '--osapi_compute_listen', '127.0.0.1', '--osapi_compute_listen_port', String(await freePort()), '--database-connection', store.url, '--porthole-workers', '2', '--web', '/nonexistent', '--cert', '/nonexistent']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(\\[vnc\\] novncproxy_port\\): address already in use`));
      assert.match(r.stdout, / ERROR porthole \[-\] worker \d+ \(pid \d+\) exited .*before it listened; stopping .*event=worker_exited/);
    } finally {
      taken.close();
    }
  });

  it('refuses [porthole] shared_consoles with workers: a shared console needs one process', async () => {
    const r = await porthole(['serve', ...OTHER_CONSOLES_ON_LOOPBACK, '--vnc-novncproxy_host', '127.0.0.1', '--vnc-novncproxy_port', String(await freePort()), '--osapi_compute_listen', '127.0.0.1', '--osapi_compute_listen_port', String(await freePort()), '--database-connection', store.url, '--porthole-workers', '2', '--porthole-shared_consoles', '--web', '/nonexistent', '--cert', '/nonexistent']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /\[porthole\] shared_consoles needs one process: set \[porthole\] workers = 1/);
  });

  it('takes workers from the flag and the environment, 0 as one per CPU, and refuses more than 64', async () => {
    assert.equal(workerCount(loadConfig({ flags: settings({ 'porthole.workers': '3' }) }).config), 3);
    assert.equal(workerCount(loadConfig({ env: { PORTHOLE_PORTHOLE_WORKERS: '2' } }).config), 2);
    assert.equal(workerCount(loadConfig({}).config), 1);
    assert.equal(workerCount(loadConfig({ flags: settings({ 'porthole.workers': '0' }) }).config), Math.min(availableParallelism(), MAX_WORKERS));
    const [flag, env, help] = await Promise.all([
      porthole(['serve', '--porthole-workers', '65', '--database-connection', store.url]),
      porthole(['serve', '--database-connection', store.url], { PORTHOLE_PORTHOLE_WORKERS: '-1' }),
      porthole(['help', 'options']),
    ]);
    assert.match(help.stdout, /^ {2}workers \(int, default 1\)$/m);
    assert.equal(flag.code, 1);
    assert.equal(flag.stderr, 'porthole: flag --porthole-workers: [porthole] workers = "65": expected a value between 0 and 64\n');
    assert.equal(env.code, 1);
    assert.equal(env.stderr, 'porthole: environment PORTHOLE_PORTHOLE_WORKERS: [porthole] workers = "-1": expected a value between 0 and 64\n');
  });
});
