/**
 * @module bench/relay
 * The relay benchmark: Porthole side by side with raw loopback TCP and Debian's websockify on
 * the same run, the same machine and the same backends. For each path it measures
 *
 * - download throughput: a backend writes N bytes as fast as it can; the client reads them (over
 *   a WebSocket for the proxies, `ws` without permessage-deflate) and hangs up — median of several
 *   trials, and the proxy process tree's CPU seconds per GiB relayed (utime+stime from
 *   /proc/<pid>/stat, children included: websockify forks one process per connection);
 * - open → first backend byte: from the start of the connection attempt to the 12-byte RFB
 *   banner arriving, over many sequential connections, p50 and p99;
 * - completeness: once per proxy, how many of N bytes arrive when the backend closes right after
 *   writing them (websockify 0.10 drops what it still queues for the client).
 *
 * Every peer runs in its own process (backend, websockify, Porthole via its real CLI); only the
 * client lives here. Trials are interleaved path by path so drift on a shared machine hits all
 * paths alike. Prints a table and rewrites `bench/RESULTS.md`, keeping its History section.
 *
 * Usage: npm run bench [-- --quick]    (node --import tsx bench/relay.ts [--quick])
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const RESULTS = join(HERE, 'RESULTS.md');
const WEBSOCKIFY = '/usr/bin/websockify';
const BANNER_LENGTH = 12;
const LOOPBACK = '127.0.0.1';

interface Plan {
  readonly quick: boolean;
  /** bytes per download */
  readonly bytes: number;
  /** measured downloads per path, after one warm-up download */
  readonly trials: number;
  /** measured connections per path, after the warm-up ones */
  readonly connections: number;
  readonly warmupConnections: number;
}

const FULL: Plan = { quick: false, bytes: 256 * MiB, trials: 5, connections: 200, warmupConnections: 10 };
const QUICK: Plan = { quick: true, bytes: 64 * MiB, trials: 2, connections: 50, warmupConnections: 5 };

/** One way for the client to reach the backends: straight, or through a proxy. */
interface Path {
  readonly name: string;
  readonly kind: 'tcp' | 'ws';
  /** the process tree whose CPU is the proxy's cost (none for raw TCP) */
  readonly pid: number | null;
  readonly sourceTarget: string | number;
  readonly closingTarget: string | number;
  readonly bannerTarget: string | number;
}

interface PathResult {
  readonly name: string;
  readonly mibPerSec: number[];
  proxyCpuSeconds: number;
  clientCpuSeconds: number;
  backendCpuSeconds: number;
  bytesMeasured: number;
  readonly latencyMs: number[];
  /** bytes that arrived from the backend that closes right after writing */
  delivered: number;
}

// ---------------------------------------------------------------------------------------------
// child processes: every one is tracked and killed, with its descendants, however the run ends

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** the last few KiB of its stderr, for error messages */
  stderrTail(): string;
}

const children = new Set<Child>();

function startChild(name: string, command: string, args: string[]): Child {
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

function firstLine(child: Child, ms: number): Promise<string> {
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

function descendants(pid: number): number[] {
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

function signalTree(pid: number, signal: NodeJS.Signals): void {
  for (const p of [...descendants(pid).reverse(), pid]) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
}

async function stopAll(): Promise<void> {
  const running = [...children];
  for (const c of running) signalTree(c.pid, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (children.size > 0 && Date.now() < deadline) await sleep(50);
  for (const c of children) signalTree(c.pid, 'SIGKILL');
}

process.on('exit', () => {
  for (const c of children) signalTree(c.pid, 'SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping children\n`);
    void stopAll().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** utime+stime of the process and of its reaped children (cutime+cstime), in clock ticks */
function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name, which may itself hold spaces and parentheses
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0;
  }
}

/** CPU seconds of a process tree: live descendants plus everything already reaped into the root. */
function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of descendants(pid)) ticks += processTicks(p);
  return (ticks + processTicks(pid)) / CLK_TCK;
}

/**
 * Waits until a tree has no descendants beyond those it had before a trial (websockify's
 * per-connection children have exited and been reaped into the parent's cutime/cstime), so that
 * a reading neither misses nor double-counts a child.
 */
async function settle(pid: number | null, before: ReadonlySet<number>): Promise<void> {
  if (pid === null) return;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (descendants(pid).every((p) => before.has(p))) return;
    await sleep(20);
  }
  throw new Error(`process ${pid} still has per-connection children 5 s after the trial`);
}

// ---------------------------------------------------------------------------------------------
// the client side of one download and one banner read

function tcpDownload(port: number, expected: number): Promise<bigint> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let t1 = 0n;
    let n = 0;
    const socket = connect({ host: LOOPBACK, port, noDelay: true });
    const timer = setTimeout(() => socket.destroy(new Error('download timed out')), 120_000);
    socket.on('data', (d: Buffer) => {
      n += d.length;
      if (n >= expected && t1 === 0n) {
        t1 = process.hrtime.bigint();
        socket.end();
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (n === expected) resolve(t1 - t0);
      else reject(new Error(`raw TCP download: got ${n} bytes, expected ${expected}`));
    });
  });
}

function wsDownload(url: string, expected: number, name: string): Promise<bigint> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let t1 = 0n;
    let n = 0;
    const ws = new WebSocket(url, 'binary', { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`${name} download timed out after ${n} bytes`));
    }, 120_000);
    ws.on('message', (d: Buffer) => {
      n += d.length;
      if (n >= expected && t1 === 0n) {
        t1 = process.hrtime.bigint();
        ws.close(1000);
        setTimeout(() => ws.terminate(), 2000).unref();
      }
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${name} download: ${err.message}`));
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      if (n === expected) resolve(t1 - t0);
      else reject(new Error(`${name} download: got ${n} bytes, expected ${expected} (close ${code})`));
    });
  });
}

function tcpFirstBytes(port: number): Promise<bigint> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let t1 = 0n;
    let n = 0;
    const socket = connect({ host: LOOPBACK, port, noDelay: true });
    const timer = setTimeout(() => socket.destroy(new Error('no banner within 10 s')), 10_000);
    socket.on('data', (d: Buffer) => {
      n += d.length;
      if (n >= BANNER_LENGTH && t1 === 0n) {
        t1 = process.hrtime.bigint();
        socket.end();
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (t1 !== 0n) resolve(t1 - t0);
      else reject(new Error(`raw TCP: connection closed after ${n} bytes of the banner`));
    });
  });
}

function wsFirstBytes(url: string, name: string): Promise<bigint> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let t1 = 0n;
    let n = 0;
    const ws = new WebSocket(url, 'binary', { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`${name}: no banner within 10 s`));
    }, 10_000);
    ws.on('message', (d: Buffer) => {
      n += d.length;
      if (n >= BANNER_LENGTH && t1 === 0n) {
        t1 = process.hrtime.bigint();
        ws.close(1000);
        // the next connection starts only when this one is gone; a peer that does not answer
        // the close frame does not hold the run up
        setTimeout(() => ws.terminate(), 2000).unref();
      }
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${name}: ${err.message}`));
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      if (t1 !== 0n) resolve(t1 - t0);
      else reject(new Error(`${name}: closed (${code}) after ${n} bytes of the banner`));
    });
  });
}

/** Reads until the proxy closes; resolves with the byte count. */
function wsReadAll(url: string, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const ws = new WebSocket(url, 'binary', { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`${name}: the download from the closing backend did not end within 120 s`));
    }, 120_000);
    ws.on('message', (d: Buffer) => {
      n += d.length;
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${name}: ${err.message}`));
    });
    ws.on('close', () => {
      clearTimeout(timer);
      resolve(n);
    });
  });
}

function tcpReadAll(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const socket = connect({ host: LOOPBACK, port, noDelay: true });
    socket.on('data', (d: Buffer) => {
      n += d.length;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(n));
  });
}

function download(path: Path, bytes: number): Promise<bigint> {
  return path.kind === 'tcp' ? tcpDownload(path.sourceTarget as number, bytes) : wsDownload(path.sourceTarget as string, bytes, path.name);
}

function firstBytes(path: Path): Promise<bigint> {
  return path.kind === 'tcp' ? tcpFirstBytes(path.bannerTarget as number) : wsFirstBytes(path.bannerTarget as string, path.name);
}

// ---------------------------------------------------------------------------------------------
// starting the peers

function freePort(): Promise<number> {
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

async function waitForPort(child: Child, port: number, ms: number): Promise<void> {
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

async function startBackend(bytes: number): Promise<{ child: Child; sourcePort: number; closingPort: number; bannerPort: number }> {
  const child = startChild('backend', process.execPath, ['--import', 'tsx', join(HERE, 'backend.ts'), '--bytes', String(bytes)]);
  const ports = JSON.parse(await firstLine(child, 20_000)) as { sourcePort: number; closingPort: number; bannerPort: number };
  return { child, ...ports };
}

async function startWebsockify(targetPort: number, label: string): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const child = startChild(`websockify (${label})`, WEBSOCKIFY, [`${LOOPBACK}:${port}`, `${LOOPBACK}:${targetPort}`]);
  // websockify logs every connection; nobody reads it, but the pipe must not fill up
  child.proc.stdout!.resume();
  await waitForPort(child, port, 15_000);
  return { child, port };
}

function porthole(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(ROOT, 'bin/porthole.js'), ...args], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`porthole ${args.slice(0, 2).join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

async function startPorthole(sourcePort: number, closingPort: number, bannerPort: number): Promise<{ child: Child; port: number; sourceToken: string; closingToken: string; bannerToken: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-'));
  const database = `sqlite:///${join(dir, 'porthole.db')}`;
  const mint = async (port: number) => {
    const out = await porthole(['token', 'create', '--instance-uuid', randomUUID(), '--host', LOOPBACK, '--port', String(port), '--ttl', '86400', '--json', '--database-connection', database]);
    return (JSON.parse(out) as { token: string }).token;
  };
  const sourceToken = await mint(sourcePort);
  const closingToken = await mint(closingPort);
  const bannerToken = await mint(bannerPort);
  const port = await freePort();
  const child = startChild('porthole novncproxy', process.execPath, [
    join(ROOT, 'bin/porthole.js'), 'novncproxy',
    '--vnc-novncproxy_host', LOOPBACK,
    '--vnc-novncproxy_port', String(port),
    '--database-connection', database,
    '--porthole-log_level', 'warn',
  ]);
  child.proc.stdout!.resume();
  await waitForPort(child, port, 30_000);
  return { child, port, sourceToken, closingToken, bannerToken, dir };
}

// ---------------------------------------------------------------------------------------------
// the run

async function measure(paths: Path[], plan: Plan, backendPid: number): Promise<PathResult[]> {
  const results = paths.map((p): PathResult => ({ name: p.name, mibPerSec: [], proxyCpuSeconds: 0, clientCpuSeconds: 0, backendCpuSeconds: 0, bytesMeasured: 0, latencyMs: [], delivered: 0 }));

  // one warm-up download per path (JIT, socket buffers, page cache of the Python modules)
  for (const path of paths) await download(path, plan.bytes);

  for (const [i, path] of paths.entries()) {
    const r = results[i]!;
    const baseline = new Set(path.pid === null ? [] : descendants(path.pid));
    r.delivered = path.kind === 'tcp' ? await tcpReadAll(path.closingTarget as number) : await wsReadAll(path.closingTarget as string, path.name);
    await settle(path.pid, baseline);
    process.stdout.write(`  closing backend ${path.name.padEnd(11)} delivered ${r.delivered} of ${plan.bytes} bytes\n`);
  }

  for (let trial = 1; trial <= plan.trials; trial++) {
    for (const [i, path] of paths.entries()) {
      const r = results[i]!;
      const baseline = new Set(path.pid === null ? [] : descendants(path.pid));
      const proxyBefore = path.pid === null ? 0 : treeCpuSeconds(path.pid);
      const backendBefore = treeCpuSeconds(backendPid);
      const clientBefore = process.cpuUsage();
      const ns = await download(path, plan.bytes);
      const client = process.cpuUsage(clientBefore);
      await settle(path.pid, baseline);
      r.proxyCpuSeconds += path.pid === null ? 0 : treeCpuSeconds(path.pid) - proxyBefore;
      r.backendCpuSeconds += treeCpuSeconds(backendPid) - backendBefore;
      r.clientCpuSeconds += (client.user + client.system) / 1e6;
      r.bytesMeasured += plan.bytes;
      const mibs = plan.bytes / MiB / (Number(ns) / 1e9);
      r.mibPerSec.push(mibs);
      process.stdout.write(`  download ${trial}/${plan.trials} ${path.name.padEnd(11)} ${mibs.toFixed(1).padStart(8)} MiB/s\n`);
    }
  }

  for (let i = 0; i < plan.warmupConnections; i++) for (const path of paths) await firstBytes(path);
  for (let i = 0; i < plan.connections; i++) {
    for (const [j, path] of paths.entries()) results[j]!.latencyMs.push(Number(await firstBytes(path)) / 1e6);
  }
  for (const r of results) {
    process.stdout.write(`  first byte ${r.name.padEnd(11)} p50 ${percentile(r.latencyMs, 0.5).toFixed(3)} ms  p99 ${percentile(r.latencyMs, 0.99).toFixed(3)} ms\n`);
  }
  return results;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  for (const a of args) if (a !== '--quick') throw new Error(`unknown argument ${a} (usage: bench/relay.ts [--quick])`);
  const plan = args.includes('--quick') ? QUICK : FULL;
  if (!existsSync(WEBSOCKIFY)) throw new Error(`${WEBSOCKIFY} not found (Debian package websockify)`);
  const started = new Date();
  process.stdout.write(`relay benchmark (${plan.quick ? 'quick' : 'full'}): ${plan.trials} × ${plan.bytes / MiB} MiB downloads, ${plan.connections} connections per path\n`);

  let portholeDir: string | undefined;
  try {
    const backend = await startBackend(plan.bytes);
    const wsSource = await startWebsockify(backend.sourcePort, 'download');
    const wsClosing = await startWebsockify(backend.closingPort, 'closing');
    const wsBanner = await startWebsockify(backend.bannerPort, 'banner');
    const ph = await startPorthole(backend.sourcePort, backend.closingPort, backend.bannerPort);
    portholeDir = ph.dir;
    const phUrl = (token: string) => `ws://${LOOPBACK}:${ph.port}/?token=${token}`;
    const paths: Path[] = [
      { name: 'raw TCP', kind: 'tcp', pid: null, sourceTarget: backend.sourcePort, closingTarget: backend.closingPort, bannerTarget: backend.bannerPort },
      { name: 'websockify', kind: 'ws', pid: wsSource.child.pid, sourceTarget: `ws://${LOOPBACK}:${wsSource.port}/`, closingTarget: `ws://${LOOPBACK}:${wsClosing.port}/`, bannerTarget: `ws://${LOOPBACK}:${wsBanner.port}/` },
      { name: 'Porthole', kind: 'ws', pid: ph.child.pid, sourceTarget: phUrl(ph.sourceToken), closingTarget: phUrl(ph.closingToken), bannerTarget: phUrl(ph.bannerToken) },
    ];
    const results = await measure(paths, plan, backend.child.pid);
    const report = render(plan, started, results);
    process.stdout.write(`\n${report.table}\n`);
    writeResults(plan, started, results, report);
    process.stdout.write(`\nwrote ${RESULTS}\n`);
  } finally {
    await stopAll();
    if (portholeDir) rmSync(portholeDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// report

function percentile(values: readonly number[], p: number): number {
  // nearest rank: with 200 samples p99 is the 198th smallest, with 50 it is the largest
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function delivered(n: number, of: number): string {
  return n === of ? `all ${of / MiB} MiB` : `${(n / MiB).toFixed(2)} of ${of / MiB} MiB`;
}

function perGiB(seconds: number, bytes: number): number {
  return seconds / (bytes / GiB);
}

interface Report {
  readonly table: string;
  readonly ratioToRaw: number;
}

function render(plan: Plan, _started: Date, results: PathResult[]): Report {
  const byName = (n: string) => results.find((r) => r.name === n)!;
  const raw = byName('raw TCP');
  const wsf = byName('websockify');
  const ph = byName('Porthole');
  const lines = [
    `| path | download MiB/s (median of ${plan.trials}) | min – max | proxy CPU s/GiB | client CPU s/GiB | backend CPU s/GiB | open → banner p50 ms | p99 ms | delivered when backend closes |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const proxyCpu = r.name === 'raw TCP' ? '—' : perGiB(r.proxyCpuSeconds, r.bytesMeasured).toFixed(2);
    lines.push(`| ${r.name} | ${median(r.mibPerSec).toFixed(1)} | ${Math.min(...r.mibPerSec).toFixed(1)} – ${Math.max(...r.mibPerSec).toFixed(1)} | ${proxyCpu} | ${perGiB(r.clientCpuSeconds, r.bytesMeasured).toFixed(2)} | ${perGiB(r.backendCpuSeconds, r.bytesMeasured).toFixed(2)} | ${percentile(r.latencyMs, 0.5).toFixed(3)} | ${percentile(r.latencyMs, 0.99).toFixed(3)} | ${delivered(r.delivered, plan.bytes)} |`);
  }
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const thr = (r: PathResult) => median(r.mibPerSec);
  const p50 = (r: PathResult) => percentile(r.latencyMs, 0.5);
  const p99 = (r: PathResult) => percentile(r.latencyMs, 0.99);
  const cpu = (r: PathResult) => perGiB(r.proxyCpuSeconds, r.bytesMeasured);
  lines.push(
    '',
    '| ratio | throughput | proxy CPU per GiB | first byte p50 | first byte p99 |',
    '|---|---:|---:|---:|---:|',
    `| Porthole / raw TCP | ${ratio(thr(ph), thr(raw))} | — | ${ratio(p50(ph), p50(raw))} | ${ratio(p99(ph), p99(raw))} |`,
    `| Porthole / websockify | ${ratio(thr(ph), thr(wsf))} | ${ratio(cpu(ph), cpu(wsf))} | ${ratio(p50(ph), p50(wsf))} | ${ratio(p99(ph), p99(wsf))} |`,
  );
  return { table: lines.join('\n'), ratioToRaw: thr(ph) / thr(raw) };
}

function machine(): { cpu: string; cores: number; kernel: string; websockify: string } {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  let websockify = 'unknown';
  try {
    websockify = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'websockify']).toString().trim();
  } catch {
    // not a Debian system: the version stays unknown
  }
  return { cpu: model, cores: cpus().length, kernel: release(), websockify };
}

function previousHistory(): string[] {
  if (!existsSync(RESULTS)) return [];
  const text = readFileSync(RESULTS, 'utf8');
  const at = text.indexOf('\n## History\n');
  if (at < 0) return [];
  return text.slice(at).split('\n').filter((l) => l.startsWith('- '));
}

function writeResults(plan: Plan, started: Date, results: PathResult[], report: Report): void {
  const m = machine();
  const command = `npm run bench${plan.quick ? ' -- --quick' : ''}   (node --import tsx bench/relay.ts${plan.quick ? ' --quick' : ''})`;
  const ph = results.find((r) => r.name === 'Porthole')!;
  const raw = results.find((r) => r.name === 'raw TCP')!;
  const history = [
    ...previousHistory(),
    `- ${started.toISOString()} ${plan.quick ? 'quick' : 'full'}: Porthole ${median(ph.mibPerSec).toFixed(1)} MiB/s = ${report.ratioToRaw.toFixed(3)} × raw TCP (${median(raw.mibPerSec).toFixed(1)} MiB/s), first byte p50 ${percentile(ph.latencyMs, 0.5).toFixed(3)} ms`,
  ];
  const text = `# Relay benchmark

Latest run; overwritten by every \`npm run bench\` (the History section at the end keeps one line per run).

- date: ${started.toISOString()} (${plan.quick ? 'quick run' : 'full run'})
- machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}
- Node ${process.version}; websockify ${m.websockify} (Debian, \`${WEBSOCKIFY}\`)
- command: \`${command}\`
- downloads: ${plan.trials} measured trials of ${plan.bytes / MiB} MiB per path after one warm-up; first byte: ${plan.connections} sequential connections per path after ${plan.warmupConnections} warm-up ones

${report.table}

## How it was measured

- Four kinds of process: the backend (\`bench/backend.ts\`, Node), websockify (\`websockify 127.0.0.1:P 127.0.0.1:BACKEND\`, plain target mode, its defaults), Porthole (\`node bin/porthole.js novncproxy\` with a SQLite token database, log level warn; tokens minted with \`porthole token create\`), and this script, which is the only client. Everything is on 127.0.0.1.
- **Download**: the backend writes N bytes in 1 MiB writes as fast as its socket drains; the client reads over a WebSocket (\`ws\`, permessage-deflate off, subprotocol \`binary\`) or, for raw TCP, a plain socket, and hangs up after the N-th byte. Time runs from \`new WebSocket\` / \`connect()\` to the last of the N bytes, so the handshake is included (negligible at this size). The backend does not close first: websockify 0.10 then drops what it still queues for the client (see the last column), and a truncated download would not be a throughput.
- **Delivered when backend closes**: one download per path from a backend that closes the moment its last byte is written, read until the proxy closes the WebSocket; the column says whether all N bytes arrived. MiB/s is N / that time; the table shows the median and the spread of the measured trials. Trials rotate raw TCP → websockify → Porthole so that drift on a shared machine hits all three alike.
- **CPU per GiB**: utime+stime (+cutime+cstime) of the proxy's process tree from \`/proc/<pid>/stat\`, before and after each trial, after waiting for websockify's per-connection child to exit and be reaped; summed over the measured trials and divided by the GiB relayed. Clock tick is 1/${CLK_TCK} s. Client CPU is the bench process's \`process.cpuUsage()\`; backend CPU is the backend's process tree. The client and the backend work in all three columns, so they show how much of the machine the proxy leaves to them.
- **Open → first byte**: time from \`new WebSocket(url, 'binary')\` (raw TCP: \`connect()\`) to holding the 12-byte \`RFB 003.008\\n\` that the banner backend writes on accept; each connection is closed and gone before the next starts. For the proxies this includes the HTTP upgrade, Porthole's token lookup in SQLite and its backend connect, and for websockify its fork per connection. p99 is nearest-rank (with ${plan.connections} samples: the ${Math.ceil(0.99 * plan.connections)}th smallest).
- Caveats: one machine with ${m.cores} cores runs backend, proxy and client at once, so a download through a proxy has three busy processes on ${m.cores} cores where raw TCP has two; a proxy that needs less CPU leaves more to the others. Numbers from a shared or virtual machine move by several percent between runs; compare ratios from the same run, not absolute numbers across runs.

## History

${history.join('\n')}
`;
  writeFileSync(RESULTS, text);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench: ${(err as Error)?.stack ?? err}\n`);
  await stopAll();
  process.exitCode = 1;
}
