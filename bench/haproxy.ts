/**
 * @module bench/haproxy
 * Console connections per second through Porthole proxies behind HAProxy: the scale-out set-up
 * of `deploy/haproxy.cfg`, on this machine. Two `porthole serve` processes share a fresh
 * PostgreSQL database on the machine's server (127.0.0.1:5432, dropped after); Debian's
 * `haproxy` runs `deploy/haproxy.cfg` with loopback addresses (as `test/sessions/haproxy.test.ts`
 * does); the backend is `bench/backend.ts`'s banner server (RFB 3.8, security type None).
 *
 * A connection is what a console page does before it can draw: open the WebSocket, do the client
 * half of the RFB handshake (version, None, ClientInit) up to ServerInit, then close. Clients are
 * closed-loop: N of them each open the next connection as soon as the last one reached
 * ServerInit. Three paths, side by side in one run: one proxy directly, HAProxy in front of that
 * one proxy, and HAProxy in front of both.
 *
 * Prints a table and writes it into `bench/RESULTS.md` between `<!-- haproxy -->` and
 * `<!-- /haproxy -->` (before `## History` the first time); the rest of the file is left as is.
 *
 * Usage: node --import tsx bench/haproxy.ts [--quick]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { openStores } from '../src/database/index.ts';
import { startDaemon, startHaproxy, stopDaemon, type Daemon, type Haproxy } from '../test/support/daemon.ts';
import { tempDir } from '../test/support/gateway.ts';
import { freshPostgres, type FreshStore } from '../test/support/stores.ts';
import { freePort } from '../test/support/xvnc.ts';
import { noConsoleLimits } from './procs.ts';
import { writeSection } from './results-file.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(HERE, 'RESULTS.md');
const BEGIN = '<!-- haproxy -->';
const END = '<!-- /haproxy -->';
const TOKENS = 64;

interface Plan {
  readonly quick: boolean;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly rounds: number;
  readonly concurrency: readonly number[];
}
const FULL: Plan = { quick: false, seconds: 5, warmupSeconds: 1, rounds: 3, concurrency: [1, 16] };
const QUICK: Plan = { quick: true, seconds: 2, warmupSeconds: 0.5, rounds: 1, concurrency: [1, 16] };

interface Path {
  readonly name: string;
  readonly port: number;
  /** Processes whose CPU the path costs: the proxies it reaches, and HAProxy. */
  readonly proxies: readonly number[];
  readonly haproxy: number | null;
}

interface Run {
  readonly path: string;
  readonly concurrency: number;
  readonly perSecond: number;
  readonly latencies: number[];
  readonly errors: number;
  readonly proxyCpuPer1000: number;
  readonly haproxyCpuPer1000: number | null;
}

// ---------------------------------------------------------------------------------------------
// CPU from /proc (user + system, the tree's live processes and what they reaped)

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function descendants(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const c of text.split(' ').filter((x) => x.trim())) out.push(Number(c), ...descendants(Number(c)));
  }
  return out;
}

function cpuSeconds(pid: number): number {
  let total = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
      total += (f[11]! + f[12]! + f[13]! + f[14]!) / CLK_TCK;
    } catch {
      // gone
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// The client: open → RFB handshake up to ServerInit → close

function connectOnce(port: number, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/websockify?token=${token}`, ['binary'], { perMessageDeflate: false });
    let step = 0;
    const timer = setTimeout(() => fail(new Error('no ServerInit within 10 s')), 10_000);
    function fail(err: Error) {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    }
    ws.on('message', (data: Buffer) => {
      // Porthole sends one WebSocket message per RFB message: version, security types, SecurityResult, ServerInit
      step++;
      if (step === 1) ws.send(data);
      else if (step === 2) ws.send(Buffer.from([1]));
      else if (step === 3) ws.send(Buffer.from([1]));
      else if (step === 4) {
        clearTimeout(timer);
        const ms = performance.now() - started;
        ws.close();
        resolve(ms);
      }
    });
    ws.on('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', (err) => fail(err));
    ws.on('close', () => step < 4 && fail(new Error('closed before ServerInit')));
  });
}

async function load(port: number, tokens: readonly string[], concurrency: number, seconds: number): Promise<{ latencies: number[]; errors: number; elapsed: number }> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const token = tokens[next++ % tokens.length]!;
        try {
          latencies.push(await connectOnce(port, token));
        } catch {
          errors++;
        }
      }
    }),
  );
  return { latencies, errors, elapsed: (performance.now() - started) / 1000 };
}

async function measure(path: Path, tokens: readonly string[], concurrency: number, plan: Plan): Promise<Run> {
  await load(path.port, tokens, concurrency, plan.warmupSeconds);
  const cpuBefore = path.proxies.map(cpuSeconds);
  const haBefore = path.haproxy === null ? 0 : cpuSeconds(path.haproxy);
  const { latencies, errors, elapsed } = await load(path.port, tokens, concurrency, plan.seconds);
  // the closes of the last connections finish on the proxies
  await new Promise((r) => setTimeout(r, 200));
  const proxyCpu = path.proxies.map(cpuSeconds).reduce((a, c, i) => a + c - cpuBefore[i]!, 0);
  const haCpu = path.haproxy === null ? null : cpuSeconds(path.haproxy) - haBefore;
  const n = Math.max(1, latencies.length);
  return {
    path: path.name,
    concurrency,
    perSecond: latencies.length / elapsed,
    latencies,
    errors,
    proxyCpuPer1000: (proxyCpu / n) * 1000,
    haproxyCpuPer1000: haCpu === null ? null : (haCpu / n) * 1000,
  };
}

// ---------------------------------------------------------------------------------------------

function startBackend(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(HERE, 'backend.ts'), '--bytes', '1024'], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve({ child, port: (JSON.parse(line) as { bannerPort: number }).bannerPort }));
    child.once('exit', (code) => reject(new Error(`bench/backend.ts exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  for (const a of args) if (a !== '--quick') throw new Error(`unknown argument ${a} (usage: bench/haproxy.ts [--quick])`);
  const plan = args.includes('--quick') ? QUICK : FULL;
  const started = new Date();
  const loadBefore = loadavg().map((x) => x.toFixed(2)).join(' ');
  const dir = tempDir('porthole-bench-haproxy-');
  let db: FreshStore | undefined;
  let backend: ChildProcess | undefined;
  const daemons: Daemon[] = [];
  const balancers: Haproxy[] = [];
  try {
    db = await freshPostgres();
    const b = await startBackend();
    backend = b.child;
    const ports = [] as Array<{ consolePort: number; apiPort: number }>;
    for (let i = 0; i < 2; i++) ports.push({ consolePort: await freePort(), apiPort: await freePort() });
    const flags = ['--database-connection', db.url, '--porthole-log_level', 'warn', ...noConsoleLimits()];
    for (const [i, p] of ports.entries()) daemons.push(await startDaemon(`p${i + 1}`, p.consolePort, p.apiPort, flags));
    const both = await startHaproxy(join(dir, 'both'), await freePort(), await freePort(), ports);
    balancers.push(both);
    const one = await startHaproxy(join(dir, 'one'), await freePort(), await freePort(), [ports[0]!, ports[0]!]);
    balancers.push(one);
    await both.allUp();
    await one.allUp();

    const stores = await openStores(db.url, { migrate: false });
    const tokens: string[] = [];
    try {
      for (let i = 0; i < TOKENS; i++) tokens.push((await stores.tokens.create({ consoleType: 'novnc', host: '127.0.0.1', port: b.port, instanceUuid: '0b7c6c4e-6f2b-4d43-9d5e-0c1f3a8e2a11', accessUrlBase: null, ttl: 3600 })).token);
    } finally {
      await stores.close();
    }

    const pid = (d: Daemon) => d.process.pid!;
    const hpid = (h: Haproxy) => h.pid;
    const paths: Path[] = [
      { name: '1 proxy, direct', port: ports[0]!.consolePort, proxies: [pid(daemons[0]!)], haproxy: null },
      { name: 'HAProxy → 1 proxy', port: one.consolePort, proxies: [pid(daemons[0]!)], haproxy: hpid(one) },
      { name: 'HAProxy → 2 proxies', port: both.consolePort, proxies: daemons.map(pid), haproxy: hpid(both) },
    ];
    const runs: Run[] = [];
    for (let round = 0; round < plan.rounds; round++) {
      for (const c of plan.concurrency) {
        for (const p of paths) {
          process.stdout.write(`round ${round + 1}, ${p.name}, ${c} client(s)…\n`);
          runs.push(await measure(p, tokens, c, plan));
        }
      }
    }
    const section = render(plan, started, paths, runs, loadBefore, loadavg().map((x) => x.toFixed(2)).join(' '), haproxyVersion());
    process.stdout.write(`\n${section}\n`);
    writeSection(BEGIN, END, section);
    process.stdout.write(`wrote ${RESULTS}\n`);
  } finally {
    for (const h of balancers) await h.stop();
    for (const d of daemons) await stopDaemon(d);
    backend?.kill('SIGTERM');
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function haproxyVersion(): string {
  try {
    return /version (\S+)/.exec(execFileSync('haproxy', ['-v']).toString())?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function render(plan: Plan, started: Date, paths: Path[], runs: Run[], loadBefore: string, loadAfter: string, version: string): string {
  const rows: string[] = [];
  const perSecond = new Map<string, number>();
  for (const c of plan.concurrency) {
    for (const p of paths) {
      const mine = runs.filter((r) => r.path === p.name && r.concurrency === c);
      const rate = median(mine.map((r) => r.perSecond));
      perSecond.set(`${p.name}/${c}`, rate);
      const lat = mine.flatMap((r) => r.latencies);
      const errors = mine.reduce((a, r) => a + r.errors, 0);
      const ha = mine.map((r) => r.haproxyCpuPer1000).filter((x): x is number => x !== null);
      rows.push(`| ${p.name} | ${c} | ${rate.toFixed(0)} | ${mine.map((r) => r.perSecond.toFixed(0)).join(', ')} | ${percentile(lat, 0.5).toFixed(2)} | ${percentile(lat, 0.99).toFixed(2)} | ${median(mine.map((r) => r.proxyCpuPer1000)).toFixed(2)} | ${ha.length ? median(ha).toFixed(2) : '—'} | ${errors} |`);
    }
  }
  const ratio = (a: string, b: string, c: number) => ((perSecond.get(`${a}/${c}`) ?? NaN) / (perSecond.get(`${b}/${c}`) ?? NaN)).toFixed(2);
  const top = plan.concurrency.at(-1)!;
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  return `${BEGIN}
## Connections per second through HAProxy (\`bench/haproxy.ts\`)

- date: ${started.toISOString()} (${plan.quick ? 'quick run' : 'full run'}); command: \`node --import tsx bench/haproxy.ts${plan.quick ? ' --quick' : ''}\`
- machine: ${model}, ${cpus().length} cores, Linux ${release()}; Node ${process.version}; HAProxy ${version} (Debian); load average before: ${loadBefore}; after: ${loadAfter}
- ${plan.rounds} round(s) of ${plan.seconds} s per path and client count, after ${plan.warmupSeconds} s of warm-up each, the paths taking turns within a round; the rate is the median of the rounds, the latencies are over all of them

| path | clients | connections/s | per round | open → ServerInit p50 ms | p99 ms | proxy CPU ms / connection | HAProxy CPU ms / connection | errors |
|---|---:|---:|---|---:|---:|---:|---:|---:|
${rows.join('\n')}

With ${top} clients: HAProxy → 2 proxies / 1 proxy direct = ${ratio('HAProxy → 2 proxies', '1 proxy, direct', top)}×; HAProxy → 2 proxies / HAProxy → 1 proxy = ${ratio('HAProxy → 2 proxies', 'HAProxy → 1 proxy', top)}×.

How it was measured: two \`porthole serve\` processes (log level warn, otherwise defaults) share a fresh PostgreSQL database on the machine's server; ${TOKENS} tokens minted beforehand are used in turn (Nova's tokens open any number of consoles). Debian's \`haproxy\` runs \`deploy/haproxy.cfg\` with its global section replaced and loopback addresses (two instances: one with both proxies, one with the first proxy as both servers). The backend is \`bench/backend.ts\`'s banner server. A connection is the WebSocket opened with subprotocol \`binary\`, the client half of RFB 3.8 up to ServerInit (for each, Porthole looks the token up in PostgreSQL and in the inventory, dials the backend, does the backend's handshake, serves the client's, and writes the session into the live-sessions registry and out again), then a close; the clients are closed-loop in this one Node process, each starting its next connection when the last reached ServerInit. *Proxy CPU* is user + system time of the proxies' process trees (\`/proc/<pid>/stat\`, children included) over the measured seconds, divided by the connections; *HAProxy CPU* likewise. Everything (client, HAProxy, both proxies, PostgreSQL, the backend) shares the ${cpus().length} cores of one machine, so the second proxy adds no hardware: what the two-proxy rows show is the cost of the balancer and whether one proxy's event loop was the limit, not the gain of a second host; on separate hosts each proxy brings its own cores.
${END}
`;
}


main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
  process.exit(1);
});
