/**
 * @module bench/open-rate
 * The open-rate part of `npm run bench` alone, for A/B work on the cost of opening a console:
 * one `banner` backend (bench/backend.ts), Porthole from this checkout and, with `--baseline DIR`,
 * Porthole from another checkout side by side (each one process, SQLite token store, sessions
 * registry as the daemon sets it up, no console limits), then `--reps N` rounds of `openRate`
 * (bench/sessions.ts: 50 clients in a closed loop, open to ServerInit, close, next) interleaved
 * over the Porthole(s) so that both see the same load. Prints per round and per Porthole the
 * sessions per second, the proxy's CPU per session (user + sys, from /proc), open → ServerInit
 * p50/p99 and the load average, then the medians and the ratio to the baseline.
 *
 * `--cpu-prof` runs this checkout's Porthole under `node --cpu-prof` and prints the profile's
 * top functions (self time, and inclusive time with `--inclusive`) when it exits.
 * `--strace N` runs `strace -c -f` on each proxy over N opens (the same closed loop of clients)
 * after the rounds and prints the syscall summary and the calls per open.
 * `--direct` adds raw TCP to the backend as a path (no proxy); `--tcp-relay` adds bench/tcp-relay.ts
 * (a Node process that only pipes: the floor of CPU per session for any proxy in Node); `--ws-floor`
 * adds bench/ws-floor.ts (Node's HTTP server, the backend dialled, `ws`'s 101, messages relayed
 * both ways, nothing else: the floor for a WebSocket console proxy in Node).
 * `--latency N`: before the rounds, N sequential opens (one client, no other load) per path,
 * open → ServerInit p50/p90 (the issue's "within 0.3 ms of a direct connection": use with --direct),
 * and the p50 of each step as the client sees it: open → ProtocolVersion (for a proxy: the 101
 * and its version, one segment), → security types (after the client's version), → SecurityResult
 * (after its choice), → ServerInit (after its ClientInit). Where a proxy's time goes, step by step.
 *
 * Never writes bench/RESULTS.md.
 *
 * `--root DIR` measures another checkout as "Porthole" (a worktree of a commit with only the
 * changes under test, when others' work is under way in this one).
 *
 * Usage: node --import tsx bench/open-rate.ts [--root DIR] [--baseline DIR] [--reps 3] [--seconds 3] [--clients 50] [--cpu-prof] [--inclusive] [--strace N] [--direct] [--tcp-relay] [--ws-floor] [--latency N]
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rfbHandshake, open as openConnection, type Connection, type Path } from './client.ts';
import { printInclusive, printTop } from './profile-top.ts';
import { openRate, type OpenRateResult } from './sessions.ts';
import { firstLine, freePort, loadAverage, LOOPBACK, novncproxyArgs, raiseFileLimit, ROOT, sleep, startChild, stopAll, tempDirs, waitForPort, type Child } from './procs.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

interface Options {
  baseline: string | null;
  /** the checkout measured as "Porthole" (default: this one) */
  root: string;
  reps: number;
  seconds: number;
  clients: number;
  cpuProf: string | null;
  inclusive: boolean;
  strace: number;
  direct: boolean;
  tcpRelay: boolean;
  wsFloor: boolean;
  latency: number;
}

function parseArgs(args: readonly string[]): Options {
  const o: Options = { baseline: null, root: ROOT, reps: 3, seconds: 3, clients: 50, cpuProf: null, inclusive: false, strace: 0, direct: false, tcpRelay: false, wsFloor: false, latency: 0 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--baseline') o.baseline = resolve(value());
    else if (a === '--root') o.root = resolve(value());
    else if (a === '--reps') o.reps = Number(value());
    else if (a === '--seconds') o.seconds = Number(value());
    else if (a === '--clients') o.clients = Number(value());
    else if (a === '--cpu-prof') o.cpuProf = join(HERE, 'profiles', `open-rate-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    else if (a === '--inclusive') o.inclusive = true;
    else if (a === '--strace') o.strace = Number(value());
    else if (a === '--direct') o.direct = true;
    else if (a === '--tcp-relay') o.tcpRelay = true;
    else if (a === '--ws-floor') o.wsFloor = true;
    else if (a === '--latency') o.latency = Number(value());
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

function porthole(root: string, args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(process.execPath, [join(root, 'bin/porthole.js'), ...args], { cwd: root, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`porthole ${args.slice(0, 2).join(' ')}: ${err.message} ${stderr}`));
      else resolvePromise(stdout);
    });
  });
}

/** One Porthole daemon (one process) with a token for the banner backend. */
async function startPorthole(root: string, bannerPort: number, name: string, nodeArgs: readonly string[]): Promise<Path & { child: Child }> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-openrate-'));
  tempDirs.add(dir);
  const database = `sqlite:///${join(dir, 'porthole.db')}`;
  const proxyPort = await freePort();
  const out = await porthole(root, ['token', 'create', '--instance-uuid', randomUUID(), '--host', LOOPBACK, '--port', String(bannerPort), '--ttl', '86400', '--json', '--database-connection', database]);
  const url = `ws://${LOOPBACK}:${proxyPort}/?token=${(JSON.parse(out) as { token: string }).token}`;
  const child = startChild(name, process.execPath, [...nodeArgs, ...novncproxyArgs(root, proxyPort, database)]);
  child.proc.stdout!.resume();
  await waitForPort(child, proxyPort, 30_000);
  return { name, pid: child.pid, child, targets: { source: url, closing: url, banner: url, echo: url } };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** `strace -c -f` attached to `pid` over `n` opens by `clients` clients in a closed loop. */
async function straceOpens(path: Path, n: number, clients: number): Promise<string> {
  const st = spawn('strace', ['-c', '-f', '-p', String(path.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  st.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await sleep(500);
  let left = n;
  const loop = async () => {
    while (left-- > 0) {
      const c = openConnection(path, 'banner');
      await rfbHandshake(c);
      c.close();
      await c.closed;
    }
  };
  await Promise.all(Array.from({ length: clients }, loop));
  await sleep(300);
  st.kill('SIGINT');
  await new Promise((r) => st.once('exit', r));
  return out;
}

/** Milliseconds from the connection attempt to the server's ProtocolVersion, security types, SecurityResult and ServerInit. */
type StepTimes = readonly [number, number, number, number];

/** The client half of RFB 3.8 as bench/client.ts's `rfbHandshake` does it, with the time of each server message. */
async function steppedHandshake(c: Connection): Promise<StepTimes> {
  const at = () => Number(process.hrtime.bigint() - c.t0) / 1e6;
  const version = await c.inbox.read(12);
  const v = at();
  if (version.toString('latin1') !== 'RFB 003.008\n') throw new Error(`not an RFB 3.8 server: ${JSON.stringify(version.toString('latin1'))}`);
  c.write(Buffer.from('RFB 003.008\n', 'latin1'));
  const types = await c.inbox.read((await c.inbox.read(1))[0]!);
  const t = at();
  if (!types.includes(1)) throw new Error(`security type None not offered: ${[...types].join(', ')}`);
  c.write(Buffer.from([1]));
  const result = (await c.inbox.read(4)).readUInt32BE(0);
  const r = at();
  if (result !== 0) throw new Error(`SecurityResult ${result}`);
  c.write(Buffer.from([1]));
  const head = await c.inbox.read(24);
  await c.inbox.read(head.readUInt32BE(20));
  return [v, t, r, at()];
}

/** The profile's start-up and warm-up, left out of its summary. */
let skipMs = 0;

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  raiseFileLimit(65_536);
  try {
    const backend = startChild('backend', process.execPath, ['--import', 'tsx', join(HERE, 'backend.ts'), '--bytes', '1024']);
    const ports = JSON.parse(await firstLine(backend, 20_000)) as { bannerPort: number };
    const paths: (Path & { child?: Child })[] = [];
    if (o.direct) paths.push({ name: 'raw TCP', pid: null, targets: { source: ports.bannerPort, closing: ports.bannerPort, banner: ports.bannerPort, echo: ports.bannerPort } });
    if (o.tcpRelay) {
      const relay = startChild('TCP relay', process.execPath, ['--import', 'tsx', join(HERE, 'tcp-relay.ts'), String(ports.bannerPort)]);
      const port = (JSON.parse(await firstLine(relay, 20_000)) as Record<string, number>)[String(ports.bannerPort)]!;
      paths.push({ name: 'TCP relay', pid: relay.pid, targets: { source: port, closing: port, banner: port, echo: port } });
    }
    if (o.wsFloor) {
      const floor = startChild('WS floor', process.execPath, ['--import', 'tsx', join(HERE, 'ws-floor.ts'), String(ports.bannerPort)]);
      const port = (JSON.parse(await firstLine(floor, 20_000)) as Record<string, number>)[String(ports.bannerPort)]!;
      const url = `ws://${LOOPBACK}:${port}/`;
      paths.push({ name: 'WS floor', pid: floor.pid, targets: { source: url, closing: url, banner: url, echo: url } });
    }
    if (o.baseline) paths.push(await startPorthole(o.baseline, ports.bannerPort, 'baseline', []));
    const spawnedAt = performance.now();
    const ph = await startPorthole(o.root, ports.bannerPort, 'Porthole', o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProf] : []);
    paths.push(ph);
    process.stdout.write(`open rate: ${o.clients} clients, ${o.reps} × ${o.seconds} s per path, load ${loadAverage()}\n`);
    // warm-up: JIT and the token store's caches
    for (const p of paths) await openRate(p, { clients: o.clients, seconds: 3, warmupSeconds: 0.5 });
    skipMs = performance.now() - spawnedAt;
    if (o.latency > 0) {
      // interleaved one by one, so that both see the same moments of the machine's load
      const samples = new Map<string, StepTimes[]>(paths.map((p) => [p.name, []]));
      for (let i = 0; i < o.latency; i++) {
        // the order turns over each time: the work a proxy does after a close would otherwise always overlap the same next one's open
        for (const p of i % 2 ? [...paths].reverse() : paths) {
          const c = openConnection(p, 'banner');
          samples.get(p.name)!.push(await steppedHandshake(c));
          c.close();
          await c.closed;
        }
      }
      process.stdout.write(`sequential opens, open → ServerInit (${o.latency} each, interleaved), load ${loadAverage()}:\n`);
      const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.5)]!;
      for (const [name, ts] of samples) {
        const xs = ts.map((t) => t[3]).sort((a, b) => a - b);
        const steps = [0, 1, 2, 3].map((k) => p50(ts.map((t) => t[k]! - (k ? t[k - 1]! : 0))).toFixed(3));
        process.stdout.write(`  ${name.padEnd(9)} p50 ${xs[Math.floor(xs.length * 0.5)]!.toFixed(3)} ms  p90 ${xs[Math.floor(xs.length * 0.9)]!.toFixed(3)} ms  min ${xs[0]!.toFixed(3)} ms  steps p50: version ${steps[0]}, types ${steps[1]}, result ${steps[2]}, ServerInit ${steps[3]} ms\n`);
      }
    }
    const all = new Map<string, OpenRateResult[]>(paths.map((p) => [p.name, []]));
    for (let rep = 1; rep <= o.reps; rep++) {
      for (const p of rep % 2 ? paths : [...paths].reverse()) {
        const r = await openRate(p, { clients: o.clients, seconds: o.seconds, warmupSeconds: 1 });
        all.get(p.name)!.push(r);
        process.stdout.write(`  rep ${rep} ${p.name.padEnd(9)} ${r.perSecond.toFixed(0).padStart(6)}/s  cpu ${r.proxyCpuMsPerSession?.toFixed(3) ?? '-'} ms/session (user ${r.proxyUserMsPerSession?.toFixed(3) ?? '-'}, sys ${r.proxySysMsPerSession?.toFixed(3) ?? '-'})  ready p50 ${r.readyP50Ms.toFixed(2)} p99 ${r.readyP99Ms.toFixed(2)} ms  errors ${r.errors}  client ${r.clientCpuMsPerSession.toFixed(3)} ms  load ${loadAverage()}\n`);
      }
    }
    process.stdout.write('medians:\n');
    const base = o.baseline ? all.get('baseline')! : null;
    for (const [name, rs] of all) {
      const rate = median(rs.map((r) => r.perSecond));
      const cpu = median(rs.map((r) => r.proxyCpuMsPerSession ?? NaN));
      const p50 = median(rs.map((r) => r.readyP50Ms));
      const ratio = base && name !== 'baseline' ? `  rate ×${(rate / median(base.map((r) => r.perSecond))).toFixed(2)}, cpu ×${(cpu / median(base.map((r) => r.proxyCpuMsPerSession ?? NaN))).toFixed(2)}` : '';
      process.stdout.write(`  ${name.padEnd(9)} ${rate.toFixed(0).padStart(6)}/s  cpu ${Number.isNaN(cpu) ? '-' : `${cpu.toFixed(3)} ms/session (= ${(1000 / cpu).toFixed(0)} opens per CPU-second)`}  ready p50 ${p50.toFixed(2)} ms${ratio}\n`);
    }
    process.stdout.write(`load ${loadAverage()}\n`);
    if (o.strace > 0) {
      for (const p of paths) {
        if (p.pid === null) continue;
        const out = await straceOpens(p, o.strace, o.clients);
        // per open: the calls column of each syscall row
        const rows = [...out.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/gm)].map((m) => `${m[2]} ${(Number(m[1]) / o.strace).toFixed(2)}`);
        process.stdout.write(`\nstrace -c -f over ${o.strace} opens of ${p.name} (${o.clients} clients), calls per open: ${rows.join(', ')}\n${out}\n`);
      }
    }
  } finally {
    await stopAll();
  }
  if (o.cpuProf) {
    const profiles = existsSync(o.cpuProf) ? readdirSync(o.cpuProf).map((f) => join(o.cpuProf!, f)) : [];
    const main = profiles.sort((a, b) => statSync(b).size - statSync(a).size)[0];
    if (main) {
      process.stdout.write(`CPU profile of ${o.root}'s Porthole without its first ${(skipMs / 1000).toFixed(1)} s (start-up, warm-up):\n`);
      printTop(main, 40, skipMs);
      if (o.inclusive) printInclusive(main, 70, skipMs);
    }
  }
}

await main();
