/**
 * @module bench/procs
 * The benchmarks' child processes and their accounting: every child is tracked and killed with
 * its descendants however the run ends; CPU time, page faults and memory of a process tree come
 * from /proc. Loopback only.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LOOPBACK = '127.0.0.1';
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------------------------
// child processes: every one is tracked and killed, with its descendants, however the run ends

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** the last few KiB of its stderr, for error messages */
  stderrTail(): string;
}

export const children = new Set<Child>();
/** temporary directories (Porthole's token database), removed however the run ends */
export const tempDirs = new Set<string>();

/**
 * The flags that lift `[porthole] max_consoles*` for a benchmark: every one of its consoles comes
 * from 127.0.0.1, mostly to one server, far past the defaults (50 per server, 200 per client).
 * Empty for a checkout from before those options (`--baseline`, `--porthole-root`).
 */
export function noConsoleLimits(root: string = ROOT): string[] {
  let options = '';
  try {
    options = readFileSync(join(root, 'src/config/options.ts'), 'utf8');
  } catch {
    return [];
  }
  if (!options.includes('max_consoles_per_server')) return [];
  return ['--porthole-max_consoles', '0', '--porthole-max_consoles_per_server', '0', '--porthole-max_consoles_per_client', '0', '--porthole-max_consoles_per_project', '0'];
}

/**
 * The command line (after `node` and its own flags) of a benchmarked `porthole novncproxy` from
 * checkout `root`: on loopback at `port`, with the SQLite `database`, log level warn, no console limits.
 */
export function novncproxyArgs(root: string, port: number, database: string): string[] {
  return [
    join(root, 'bin/porthole.js'), 'novncproxy',
    '--vnc-novncproxy_host', LOOPBACK,
    '--vnc-novncproxy_port', String(port),
    '--database-connection', database,
    '--porthole-log_level', 'warn',
    ...noConsoleLimits(root),
  ];
}

export function startChild(name: string, command: string, args: string[]): Child {
  const proc = spawn(command, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  let tail = '';
  proc.stderr!.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4096);
  });
  // a full pipe would block the child: keep stdout flowing once its first line has been read
  proc.stdin!.on('error', () => {});
  const child: Child = { name, proc, pid: proc.pid, stderrTail: () => tail };
  children.add(child);
  proc.once('exit', () => children.delete(child));
  return child;
}

export function firstLine(child: Child, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error(`${child.name} printed nothing within ${ms} ms: ${child.stderrTail()}`)), ms);
    const onData = (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(undefined, buf.slice(0, nl));
    };
    const onExit = (code: number | null) => done(new Error(`${child.name} exited (${code}) before it was ready: ${child.stderrTail()}`));
    const done = (err?: Error, line?: string) => {
      clearTimeout(timer);
      child.proc.stdout!.off('data', onData);
      child.proc.off('exit', onExit);
      child.proc.stdout!.resume();
      if (err) reject(err);
      else resolve(line!);
    };
    child.proc.stdout!.on('data', onData);
    child.proc.once('exit', onExit);
  });
}

export function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let text = '';
      try {
        text = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const c of text.split(' ')) {
        if (!c.trim()) continue;
        out.push(Number(c));
        walk(Number(c));
      }
    }
  };
  walk(pid);
  return out;
}

export function signalTree(pid: number, signal: NodeJS.Signals): void {
  for (const p of [...descendants(pid).reverse(), pid]) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
}

export async function stopAll(): Promise<void> {
  const running = [...children];
  for (const c of running) signalTree(c.pid, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (children.size > 0 && Date.now() < deadline) await sleep(50);
  for (const c of children) signalTree(c.pid, 'SIGKILL');
}

process.on('exit', () => {
  for (const c of children) signalTree(c.pid, 'SIGKILL');
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping children\n`);
    void stopAll().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

export interface Usage {
  /** CPU seconds in user mode and in the kernel */
  readonly user: number;
  readonly sys: number;
  readonly faults: number;
}

export const NO_USAGE: Usage = { user: 0, sys: 0, faults: 0 };

/** Usage of a process and of its reaped children (cutime, cstime, cminflt). */
export function processUsage(pid: number): Usage {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name, which may itself hold spaces and parentheses; f[0] is
    // field 3 (state): minflt 10, cminflt 11, utime 14, stime 15, cutime 16, cstime 17 (proc(5))
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return { user: (f[11]! + f[13]!) / CLK_TCK, sys: (f[12]! + f[14]!) / CLK_TCK, faults: f[7]! + f[8]! };
  } catch {
    return NO_USAGE;
  }
}

/** Usage of a process tree: live descendants plus everything already reaped into the root. */
export function treeUsage(pid: number | null): Usage {
  if (pid === null) return NO_USAGE;
  let user = 0;
  let sys = 0;
  let faults = 0;
  for (const p of [...descendants(pid), pid]) {
    const u = processUsage(p);
    user += u.user;
    sys += u.sys;
    faults += u.faults;
  }
  return { user, sys, faults };
}

/**
 * Waits until a tree has no descendants beyond those it had before a trial (websockify's
 * per-connection children have exited and been reaped into the parent's cutime/cstime), so that
 * a reading neither misses nor double-counts a child.
 */
export async function settle(pid: number | null, before: ReadonlySet<number>): Promise<void> {
  if (pid === null) return;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (descendants(pid).every((p) => before.has(p))) return;
    await sleep(5);
  }
  throw new Error(`process ${pid} still has per-connection children 5 s after the trial`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function waitForPort(child: Child, port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode}): ${child.stderrTail()}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: LOOPBACK, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${child.name} did not listen on ${port} within ${ms} ms: ${child.stderrTail()}`);
    await sleep(50);
  }
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// memory and open-file limits

/**
 * Proportional set size of a process tree in KiB: `Pss:` of /proc/<pid>/smaps_rollup summed over
 * the root and its live descendants, so pages shared between them (websockify's forked children,
 * Porthole's cluster workers) count once in all. Null for no process or when unreadable.
 */
export function treePss(pid: number | null): number | null {
  if (pid === null) return null;
  let total = 0;
  let read = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const m = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (m) {
        total += Number(m[1]);
        read++;
      }
    } catch {
      // gone in the meantime
    }
  }
  return read > 0 ? total : null;
}

/** The open-files limit (RLIMIT_NOFILE) of a process, from /proc/<pid>/limits. */
export function fileLimit(pid: number | 'self' = 'self'): { soft: number; hard: number } {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    const n = (s: string | undefined) => (s === undefined || s === 'unlimited' ? Infinity : Number(s));
    if (m) return { soft: n(m[1]), hard: n(m[2]) };
  } catch {
    // gone
  }
  return { soft: 0, hard: 0 };
}

/**
 * Raises this process's open-files limit, soft and hard, to at least `n` with prlimit(1) (needs
 * root or CAP_SYS_RESOURCE to go above the hard limit), so that thousands of sessions fit. Call it
 * before starting any child: children inherit the limit (Node raises its soft limit to the hard one
 * by itself; Python keeps what it inherits). Never lowers a limit. On failure prints a warning with
 * the limit in effect and goes on. Returns the soft limit now in effect.
 */
export function raiseFileLimit(n: number): number {
  const before = fileLimit();
  if (before.soft >= n && before.hard >= n) return before.soft;
  const want = Math.max(n, before.hard === Infinity ? n : before.hard);
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${want}:${want}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const why = ((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim().replace(/^prlimit: /, '');
    // raising a hard limit takes CAP_SYS_RESOURCE (bit 24), which root in a container may lack
    const caps = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    const hint = caps !== undefined && (BigInt(`0x${caps}`) & (1n << 24n)) === 0n ? ' (no CAP_SYS_RESOURCE)' : '';
    process.stderr.write(`bench: warning: could not raise the open-files limit to ${want}: prlimit: ${why}${hint}; the limit in effect is ${before.soft} (hard ${before.hard}), so the many-sessions measurement may open fewer sessions than asked\n`);
  }
  return fileLimit().soft;
}
