/**
 * @module test/support/daemon
 * Real `porthole serve` processes (`node bin/porthole.js serve`, as a service manager runs it) on
 * loopback ports chosen by the test, with their log lines (`--use_json`) kept for assertions; and a real
 * HAProxy (`haproxy -f CFG -db`, Debian's package, in the foreground) in front of them, configured
 * from the repository's `deploy/haproxy.cfg` with the test's addresses.
 * `kill9()` takes the daemon down as a crash would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { LogLine } from './gateway.ts';
import { cleanEnv, OTHER_CONSOLES_ON_LOOPBACK, PROJECT_ROOT } from './process.ts';

export interface Daemon {
  readonly name: string;
  readonly consolePort: number;
  readonly apiPort: number;
  readonly logs: LogLine[];
  /** Lines on stdout that are not log lines (the start-up summary). */
  readonly stdout: string[];
  readonly process: ChildProcess;
  /** Resolves with the exit code (or the signal's name) when the daemon exits. */
  readonly exited: Promise<number | string>;
  signal(sig: NodeJS.Signals): void;
  kill9(): void;
}

/** Starts `porthole serve` with `flags` and resolves once both its listeners accept connections. */
export async function startDaemon(name: string, consolePort: number, apiPort: number, flags: readonly string[]): Promise<Daemon> {
  const args = [
    'bin/porthole.js',
    'serve',
    ...OTHER_CONSOLES_ON_LOOPBACK,
    '--vnc-novncproxy_host', '127.0.0.1',
    '--vnc-novncproxy_port', String(consolePort),
    '--osapi_compute_listen', '127.0.0.1',
    '--osapi_compute_listen_port', String(apiPort),
    '--web', '/nonexistent',
    '--cert', '/nonexistent',
    // JSON log lines (oslo.log's JSONFormatter keys), read back into pino's shape by logLine()
    '--use_json',
    ...flags,
  ];
  const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith('{')) {
      try {
        logs.push(logLine(JSON.parse(line) as JsonLogLine));
        return;
      } catch {
        // not a log line
      }
    }
    stdout.push(line);
  });
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  // listening on both ports (the log lines that say so are not written below log level info)
  const ready = async () => (await accepting(consolePort)) && (await accepting(apiPort));
  const deadline = Date.now() + 30_000;
  while (!(await ready())) {
    const done = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 50))]);
    if (done !== null) throw new Error(`porthole serve (${name}) exited with ${done} before listening: ${stderr.join('')}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`porthole serve (${name}) did not listen within 30 s: ${stderr.join('')}`);
    }
  }
  return {
    name,
    consolePort,
    apiPort,
    logs,
    stdout,
    process: child,
    exited,
    signal: (sig) => void child.kill(sig),
    kill9: () => void child.kill('SIGKILL'),
  };
}

/** A line of `use_json` (src/log/json.ts). */
interface JsonLogLine {
  message: string;
  name: string;
  levelname: string;
  process: number;
  extra: Record<string, unknown>;
}

const PINO_LEVELS: Record<string, number> = { TRACE: 10, DEBUG: 20, INFO: 30, WARNING: 40, ERROR: 50, CRITICAL: 60 };

/** A `use_json` line as the tests read log lines: pino's level number, `msg`, `pid`, the fields. */
function logLine(j: JsonLogLine): LogLine {
  return { ...j.extra, level: PINO_LEVELS[j.levelname] ?? 30, msg: j.message, name: j.name, pid: j.process };
}

/** Stops a daemon for good (SIGKILL when it does not exit on SIGINT within 5 s). */
export async function stopDaemon(d: Daemon | undefined): Promise<void> {
  if (!d || d.process.exitCode !== null || d.process.signalCode !== null) return;
  d.signal('SIGINT');
  const timer = setTimeout(() => d.kill9(), 5000);
  await d.exited;
  clearTimeout(timer);
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export interface Haproxy {
  readonly consolePort: number;
  readonly apiPort: number;
  readonly config: string;
  readonly pid: number;
  /** Each server's state in each backend (`porthole_console/porthole-1` → `UP`), from HAProxy's stats socket. */
  states(): Promise<Map<string, string>>;
  /** Waits until HAProxy's health checks have every server of every backend UP. */
  allUp(ms?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `deploy/haproxy.cfg` for a test: its global section replaced by a foreground one without
 * chroot, user or syslog, its binds on loopback ports, its servers at the given proxies.
 */
export function haproxyConfig(consolePort: number, apiPort: number, proxies: ReadonlyArray<{ consolePort: number; apiPort: number }>, statsSocket: string): string {
  const text = readFileSync(join(PROJECT_ROOT, 'deploy', 'haproxy.cfg'), 'utf8');
  const sections = text.split(/^(?=\S)/m).filter((s) => !s.startsWith('#'));
  const out: string[] = [`global\n    maxconn 2000\n    stats socket ${statsSocket} mode 600 level admin\n\n`];
  for (const section of sections) {
    if (section.startsWith('global')) continue;
    let s = section.replace(/^\s*log .*\n/m, '').replace(/^\s*option httplog\n/m, '');
    s = s.replace(/bind :6080/, `bind 127.0.0.1:${consolePort}`).replace(/bind :8774/, `bind 127.0.0.1:${apiPort}`);
    s = s.replace(/^(\s*server porthole-(\d+)) \S+:(6080|8774)(.*)$/gm, (_line, head: string, n: string, port: string, rest: string) => {
      const p = proxies[Number(n) - 1];
      if (!p) throw new Error(`deploy/haproxy.cfg names porthole-${n}; the test has ${proxies.length} proxies`);
      return `${head} 127.0.0.1:${port === '6080' ? p.consolePort : p.apiPort}${rest}`;
    });
    out.push(s);
  }
  return out.join('');
}

export async function startHaproxy(dir: string, consolePort: number, apiPort: number, proxies: ReadonlyArray<{ consolePort: number; apiPort: number }>): Promise<Haproxy> {
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, 'haproxy.sock');
  const config = haproxyConfig(consolePort, apiPort, proxies, socket);
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  let child: ChildProcess;
  try {
    child = spawn('haproxy', ['-f', file, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(`cannot run haproxy (Debian's haproxy package): ${(err as Error).message}`);
  }
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown'));
    child.once('error', (err) => resolve(`error: ${err.message} (is Debian's haproxy package installed?)`));
  });
  const deadline = Date.now() + 10_000;
  while (!((await accepting(consolePort)) && (await accepting(apiPort)))) {
    const done = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 50))]);
    if (done !== null) throw new Error(`haproxy exited with ${done}: ${stderr.join('')}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`haproxy did not listen within 10 s: ${stderr.join('')}`);
    }
  }
  const states = async () => {
    const csv = await new Promise<string>((resolve, reject) => {
      const c = connect(socket);
      let out = '';
      c.on('data', (d: Buffer) => (out += d.toString()));
      c.on('end', () => resolve(out));
      c.on('error', reject);
      c.end('show stat\n');
    });
    const map = new Map<string, string>();
    for (const line of csv.split('\n')) {
      const [px, sv, ...rest] = line.split(',');
      if (!px || !sv || px.startsWith('#') || sv === 'FRONTEND' || sv === 'BACKEND') continue;
      // field 18 of `show stat` is the status
      map.set(`${px}/${sv}`, rest[15] ?? '');
    }
    return map;
  };
  return {
    consolePort,
    apiPort,
    config,
    pid: child.pid!,
    states,
    async allUp(ms = 15_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const now = await states();
        if (now.size > 0 && [...now.values()].every((s) => s === 'UP')) return;
        if (Date.now() > deadline) throw new Error(`HAProxy's servers not all UP within ${ms} ms: ${JSON.stringify([...now])}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
