/**
 * systemd's notification protocol as a `Type=notify` unit (deploy/systemd/) relies on it, with
 * the real daemon (`node bin/porthole.js serve`, as the unit runs it) and a Unix datagram socket
 * bound by the test in place of systemd's (`unix-dgram`, as the daemon uses): READY=1 only once
 * both listeners accept connections, with STATUS= and MAINPID=; WATCHDOG=1 again and again with
 * $WATCHDOG_USEC; SIGHUP (the units' ExecReload) does not stop the daemon; STOPPING=1 on
 * SIGTERM; with `[porthole] workers = 2`, one READY=1 from the primary once every worker
 * listens; an abstract or missing $NOTIFY_SOCKET costs one warning and nothing else.
 * No systemd runs here (PID 1 is not systemd): the socket is the only part played by the test.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { accepting } from '../support/daemon.ts';
import { cleanEnv, OTHER_CONSOLES_ON_LOOPBACK, PROJECT_ROOT } from '../support/process.ts';
import { freePort } from '../support/xvnc.ts';

interface DatagramSocket {
  bind(path: string): void;
  close(): void;
  on(event: 'error', listener: (err: Error) => void): void;
}
const dgram = createRequire(import.meta.url)('unix-dgram') as {
  createSocket(type: 'unix_dgram', listener: (buf: Buffer) => void): DatagramSocket;
};

/** One datagram as systemd would receive it, and what the test saw when it arrived. */
interface Notification {
  readonly fields: ReadonlyMap<string, string>;
  /** Whether both of the daemon's ports accepted a connection right after it arrived. */
  accepting?: Promise<boolean>;
}

/** A stand-in for systemd's notification socket: a bound datagram socket that keeps every message. */
class NotifySocket {
  readonly messages: Notification[] = [];
  private waiters: Array<() => void> = [];
  private readonly socket: DatagramSocket;
  onMessage?: (n: Notification) => void;

  constructor(readonly path: string) {
    this.socket = dgram.createSocket('unix_dgram', (buf) => {
      const fields = new Map(buf.toString().split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]));
      const n: Notification = { fields };
      this.onMessage?.(n);
      this.messages.push(n);
      for (const w of this.waiters.splice(0)) w();
    });
    this.socket.on('error', (err) => assert.fail(`notify socket: ${err.message}`));
    this.socket.bind(path);
  }

  with(key: string): Notification[] {
    return this.messages.filter((m) => m.fields.get(key) === '1');
  }

  /** Resolves once `count` messages with `key=1` arrived; rejects when the daemon exits first or after `ms`. */
  async waitFor(key: string, count: number, exited: Promise<unknown>, ms = 30_000): Promise<Notification[]> {
    const deadline = Date.now() + ms;
    let gone = false;
    void exited.then(() => (gone = true));
    while (this.with(key).length < count) {
      if (gone) throw new Error(`the daemon exited before ${count} × ${key}=1 (got ${this.with(key).length})`);
      if (Date.now() > deadline) throw new Error(`no ${count} × ${key}=1 within ${ms} ms (got ${this.with(key).length})`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.with(key);
  }

  close(): void {
    this.socket.close();
  }
}

interface Started {
  readonly child: ChildProcess;
  readonly consolePort: number;
  readonly apiPort: number;
  readonly exited: Promise<number | string>;
  output(): string;
}

async function startServe(dir: string, env: Record<string, string>, flags: readonly string[] = []): Promise<Started> {
  const consolePort = await freePort();
  const apiPort = await freePort();
  const args = [
    'bin/porthole.js', 'serve', ...OTHER_CONSOLES_ON_LOOPBACK,
    '--vnc-novncproxy_host', '127.0.0.1', '--vnc-novncproxy_port', String(consolePort),
    '--osapi_compute_listen', '127.0.0.1', '--osapi_compute_listen_port', String(apiPort),
    '--database-connection', `sqlite:///${join(dir, `porthole-${consolePort}.db`)}`,
    ...flags,
  ];
  const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')));
  return { child, consolePort, apiPort, exited, output: () => out };
}

async function stop(s: Started | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill('SIGINT');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 10_000);
  await s.exited;
  clearTimeout(timer);
}

/** Waits until both ports accept, the daemon exits, or 30 s pass. */
async function listening(s: Started): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!((await accepting(s.consolePort)) && (await accepting(s.apiPort)))) {
    if (s.child.exitCode !== null || s.child.signalCode !== null) throw new Error(`the daemon exited: ${s.output()}`);
    if (Date.now() > deadline) throw new Error(`the daemon did not listen within 30 s: ${s.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('sd_notify', () => {
  let dir: string;
  const daemons: Started[] = [];
  const sockets: NotifySocket[] = [];

  const notifySocket = (name: string, s?: { current?: Started }) => {
    const socket = new NotifySocket(join(dir, name));
    sockets.push(socket);
    // the listeners are checked as soon as READY=1 arrives, before anything else happens
    socket.onMessage = (n) => {
      const d = s?.current;
      if (d && n.fields.get('READY') === '1') n.accepting = (async () => (await accepting(d.consolePort)) && (await accepting(d.apiPort)))();
    };
    return socket;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'porthole-sd-notify-'));
  });
  after(async () => {
    for (const d of daemons) await stop(d);
    for (const s of sockets) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends READY=1 once listening, WATCHDOG=1 repeatedly, survives SIGHUP, STOPPING=1 on SIGTERM', async () => {
    const ref: { current?: Started } = {};
    const socket = notifySocket('notify', ref);
    const d = await startServe(dir, { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '200000' });
    ref.current = d;
    daemons.push(d);

    const [ready] = await socket.waitFor('READY', 1, d.exited);
    assert.equal(await ready!.accepting, true, 'READY=1 came before both listeners accepted connections');
    assert.equal(ready!.fields.get('MAINPID'), String(d.child.pid));
    // every listener of serve: noVNC, serial and SPICE (free ports of the test's), the API
    assert.match(ready!.fields.get('STATUS') ?? '', new RegExp(`^listening: novnc 127\\.0\\.0\\.1:${d.consolePort}, serial 127\\.0\\.0\\.1:\\d+, spice 127\\.0\\.0\\.1:\\d+, compute API 127\\.0\\.0\\.1:${d.apiPort}$`));

    // 200 ms of watchdog: a ping every 100 ms
    const readyAt = socket.messages.indexOf(ready!);
    await socket.waitFor('WATCHDOG', 3, d.exited);
    assert.ok(socket.messages.findIndex((m) => m.fields.get('WATCHDOG') === '1') > readyAt, 'WATCHDOG=1 before READY=1');

    // ExecReload=/bin/kill -HUP $MAINPID: the logs are reopened, the daemon keeps serving
    d.child.kill('SIGHUP');
    const pings = socket.with('WATCHDOG').length;
    await socket.waitFor('WATCHDOG', pings + 3, d.exited);
    assert.equal(d.child.exitCode, null, `SIGHUP stopped the daemon: ${d.output()}`);
    assert.equal(await accepting(d.consolePort), true);

    assert.equal(socket.with('STOPPING').length, 0);
    d.child.kill('SIGTERM');
    const [stopping] = await socket.waitFor('STOPPING', 1, new Promise(() => {}), 10_000);
    assert.match(stopping!.fields.get('STATUS') ?? '', /^draining console sessions/);
    assert.equal(await d.exited, 0);
    assert.equal(socket.with('READY').length, 1);
  });

  it('with two workers: one READY=1 from the primary once both listen, STOPPING=1 on SIGTERM', async () => {
    const ref: { current?: Started } = {};
    const socket = notifySocket('notify-workers', ref);
    const d = await startServe(dir, { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '200000' }, ['--porthole-workers', '2']);
    ref.current = d;
    daemons.push(d);

    const [ready] = await socket.waitFor('READY', 1, d.exited);
    assert.equal(await ready!.accepting, true, 'READY=1 came before both listeners accepted connections');
    assert.equal(ready!.fields.get('MAINPID'), String(d.child.pid), 'READY=1 does not name the primary');
    assert.match(ready!.fields.get('STATUS') ?? '', new RegExp(`^2 workers listening: novnc 127\\.0\\.0\\.1:${d.consolePort}, serial 127\\.0\\.0\\.1:\\d+, spice 127\\.0\\.0\\.1:\\d+, compute API 127\\.0\\.0\\.1:${d.apiPort}$`));
    await socket.waitFor('WATCHDOG', 3, d.exited);
    // a worker that inherited NOTIFY_SOCKET would have sent a READY=1 of its own
    assert.equal(socket.with('READY').length, 1, 'more than one READY=1: the workers notify too');

    // ExecReload=/bin/kill -HUP $MAINPID reaches the primary only
    d.child.kill('SIGHUP');
    const pings = socket.with('WATCHDOG').length;
    await socket.waitFor('WATCHDOG', pings + 3, d.exited);
    assert.equal(d.child.exitCode, null, `SIGHUP stopped the primary: ${d.output()}`);
    assert.doesNotMatch(d.output(), /exited unexpectedly/, 'SIGHUP ended a worker');

    d.child.kill('SIGTERM');
    await socket.waitFor('STOPPING', 1, new Promise(() => {}), 10_000);
    assert.equal(await d.exited, 0);
    assert.equal(socket.with('READY').length, 1);
  });

  it('ignores WATCHDOG_USEC meant for another process (WATCHDOG_PID)', async () => {
    const socket = notifySocket('notify-other-pid');
    const d = await startServe(dir, { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '100000', WATCHDOG_PID: '1' });
    daemons.push(d);
    await socket.waitFor('READY', 1, d.exited);
    // the daemon's own pings would be every 50 ms: a second of none is not a slow machine
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(socket.with('WATCHDOG').length, 0);
    await stop(d);
  });

  for (const [what, notify] of [['an abstract socket', '@porthole-test-abstract'], ['a socket that does not exist', '/nonexistent/porthole-notify']] as const) {
    it(`keeps serving with ${what} in NOTIFY_SOCKET, after one warning`, async () => {
      const d = await startServe(dir, { NOTIFY_SOCKET: notify, WATCHDOG_USEC: '100000' });
      daemons.push(d);
      await listening(d);
      // the watchdog's pings fail too, every 50 ms: still one warning
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(d.child.exitCode, null);
      const warnings = d.output().split('\n').filter((l) => l.includes('NOTIFY_SOCKET'));
      assert.equal(warnings.length, 1, d.output());
      assert.ok(warnings[0]!.includes(notify), warnings[0]);
      await stop(d);
    });
  }
});
