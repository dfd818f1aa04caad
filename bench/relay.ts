/**
 * @module bench/relay
 * `npm run bench`: Porthole side by side with raw loopback TCP (the physical limit), a bare Node
 * TCP relay (the floor for a proxy in Node), Debian's websockify and Debian's nova-novncproxy, on
 * the same run, the same machine and the same backends (minimal RFB 3.8 servers in their own
 * process, `bench/backend.ts`); the client does the client half of the RFB handshake on every
 * path, because the security proxies speak RFB to both sides before they relay. For each path:
 *
 * - download throughput (N bytes after ServerInit: min / median / max of several trials, and each
 *   trial's ratio to raw TCP's download of the same round, min / median / max) and the proxy
 *   process tree's CPU seconds and page faults per GiB relayed (/proc/<pid>/stat, children
 *   included: websockify and nova-novncproxy fork one process per connection);
 * - open → first RFB byte and open → ServerInit, over many sequential connections, p50 and p99;
 * - completeness: how many of N bytes arrive when the backend closes right after writing them;
 * - 1-byte echo round trips, sessions opened per second under 50 clients, and many idle
 *   sessions held at once with the proxy's memory per session (`bench/sessions.ts`);
 * - the security proxy's handshake with None and VeNCrypt X509None against TigerVNC
 *   (`bench/rfb-handshake.ts`);
 * - then, as a run of its own after this one's peers are stopped, the serial console relay
 *   against raw TCP, websockify and nova-serialproxy (`bench/serial.ts`, `--quick` passed on).
 *
 * Every peer runs in its own process; only the client lives here. Trials are interleaved path by
 * path so drift on a shared machine hits all paths alike. Prints the tables, with ratios and the
 * targets of issue 7, and rewrites `bench/RESULTS.md`, keeping the other benchmarks' sections and
 * the History. `--quick` is the under-a-minute regression guard; `--baseline DIR` measures
 * another checkout (a `git worktree` of an earlier commit) side by side; `--cpu-prof` profiles the
 * measured Porthole; `--workers N` sets the workers of the extra Porthole in the session tables.
 *
 * Usage: npm run bench [-- --quick] [-- --baseline DIR] [-- --cpu-prof] [-- --workers N]
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rfbHandshake, withConnection, type Handshake, type Path, type Target } from './client.ts';
import { novaUrl, novaVersion, startNovaNovncproxy } from './nova-novncproxy.ts';
import { printTop } from './profile-top.ts';
import { writeSection } from './results-file.ts';
import { measureRfbSecurity, SECURITY_BEGIN, SECURITY_END, type SecurityRow } from './rfb-handshake.ts';
import { echoRoundTrips, ephemeralPorts, idleSessions, mergeEcho, openRate, type EchoResult, type IdleSessionsResult, type OpenRateResult } from './sessions.ts';
import { CLK_TCK, descendants, firstLine, freePort, loadAverage, LOOPBACK, novncproxyArgs, raiseFileLimit, ROOT, settle, startChild, stopAll, tempDirs, treeUsage, waitForPort, type Child } from './procs.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const HERE = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(HERE, 'RESULTS.md');
const WEBSOCKIFY = '/usr/bin/websockify';

interface Plan {
  readonly quick: boolean;
  /** bytes per download */
  readonly bytes: number;
  /** measured downloads per path, after one warm-up download */
  readonly trials: number;
  /** measured connections per path, after the warm-up ones */
  readonly connections: number;
  readonly warmupConnections: number;
  /** nova-novncproxy forks and loads Nova per connection (~0.1 s each): it gets fewer */
  readonly novaConnections: number;
  readonly echoRoundTrips: number;
  /** measured seconds of the 50-client open rate, after 1 s of warm-up */
  readonly rateSeconds: number;
  readonly idleSessions: number;
  /** nova-novncproxy holds a ~36 MiB Python process per session */
  readonly novaIdleSessions: number;
}

const FULL: Plan = { quick: false, bytes: 256 * MiB, trials: 5, connections: 200, warmupConnections: 10, novaConnections: 50, echoRoundTrips: 2000, rateSeconds: 5, idleSessions: 10_000, novaIdleSessions: 100 };
const QUICK: Plan = { quick: true, bytes: 64 * MiB, trials: 2, connections: 50, warmupConnections: 5, novaConnections: 10, echoRoundTrips: 500, rateSeconds: 1, idleSessions: 200, novaIdleSessions: 10 };

interface PathResult {
  readonly name: string;
  readonly mibPerSec: number[];
  proxyCpuSeconds: number;
  proxyUserSeconds: number;
  proxySysSeconds: number;
  /** minor page faults of the proxy tree: a relay that reads into fresh memory pays one per page */
  proxyFaults: number;
  clientCpuSeconds: number;
  backendCpuSeconds: number;
  bytesMeasured: number;
  /** open → ProtocolVersion and open → ServerInit, per connection */
  readonly bannerMs: number[];
  readonly readyMs: number[];
  /** bytes that arrived from the backend that closes right after writing */
  delivered: number;
}

/** Nanoseconds from the end of the handshake to the last of `bytes` bytes. */
function download(path: Path, bytes: number): Promise<bigint> {
  return withConnection(path, 'source', 120_000, async (c) => {
    await rfbHandshake(c);
    const t0 = process.hrtime.bigint();
    const t1 = await new Promise<bigint>((resolve, reject) => {
      c.inbox.onCount = (n) => {
        if (n >= bytes) resolve(process.hrtime.bigint());
      };
      c.closed.then(() => reject(new Error(`${path.name}: closed after ${c.inbox.counted} of ${bytes} bytes`)));
      c.inbox.count();
      c.inbox.onCount(c.inbox.counted);
    });
    c.inbox.onCount = undefined;
    c.close();
    const counted = c.inbox.counted;
    if (counted > bytes) throw new Error(`${path.name}: got ${counted} bytes, more than the ${bytes} sent`);
    return t1 - t0;
  });
}

/** Bytes after ServerInit from the backend that closes after its last byte, until the proxy closes. */
function readUntilClosed(path: Path): Promise<number> {
  return withConnection(path, 'closing', 120_000, async (c) => {
    await rfbHandshake(c);
    c.inbox.count();
    await c.closed;
    return c.inbox.counted;
  });
}

/**
 * One connection to ServerInit, closed and gone before it returns: the per-connection process of
 * websockify or nova-novncproxy has exited too, so its teardown does not run into the next
 * path's measurement.
 */
async function handshakeTimes(path: Path): Promise<Handshake> {
  const pid = path.pids?.banner ?? path.pid;
  const before = new Set(pid === null ? [] : descendants(pid));
  const times = await withConnection(path, 'banner', 10_000, async (c) => {
    const t = await rfbHandshake(c);
    c.close();
    await c.closed;
    return t;
  });
  await settle(pid, before);
  return times;
}
// ---------------------------------------------------------------------------------------------
// starting the peers

interface Backend {
  readonly child: Child;
  readonly sourcePort: number;
  readonly closingPort: number;
  readonly bannerPort: number;
  readonly echoPort: number;
}

async function startBackend(bytes: number): Promise<Backend> {
  const child = startChild('backend', process.execPath, ['--import', 'tsx', join(HERE, 'backend.ts'), '--bytes', String(bytes)]);
  const ports = JSON.parse(await firstLine(child, 20_000)) as Omit<Backend, 'child'>;
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

function porthole(root: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(root, 'bin/porthole.js'), ...args], { cwd: root, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`porthole ${args.slice(0, 2).join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Echo round trips are measured in this many rounds over the paths. */
const ECHO_ROUNDS = 4;

/** The TCP relay that only pipes (bench/tcp-relay.ts): the floor for any proxy in Node. */
async function startTcpRelay(backend: Backend): Promise<Path> {
  const child = startChild('TCP relay', process.execPath, ['--import', 'tsx', join(HERE, 'tcp-relay.ts'), String(backend.sourcePort), String(backend.closingPort), String(backend.bannerPort), String(backend.echoPort)]);
  const ports = JSON.parse(await firstLine(child, 20_000)) as Record<string, number>;
  const via = (port: number) => ports[String(port)]!;
  return { name: TCP_RELAY, pid: child.pid, targets: { source: via(backend.sourcePort), closing: via(backend.closingPort), banner: via(backend.bannerPort), echo: via(backend.echoPort) } };
}

const TCP_RELAY = 'TCP relay (Node pipe)';

/** `porthole novncproxy` (from `root`) with a SQLite token database and a token per backend. */
/** `commit subject` of a checkout, for the report. */
function describeCheckout(root: string): string {
  try {
    return execFileSync('git', ['-C', root, 'log', '-1', '--format=%h'], { encoding: 'utf8' }).trim();
  } catch {
    return root;
  }
}

/** The name of the path `--baseline` adds. */
const BASELINE = 'Porthole (baseline)';

async function startPorthole(root: string, backend: Backend, workers: number, nodeArgs: readonly string[], label?: string): Promise<Path> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-'));
  tempDirs.add(dir);
  const database = `sqlite:///${join(dir, 'porthole.db')}`;
  const mint = async (port: number) => {
    const out = await porthole(root, ['token', 'create', '--instance-uuid', randomUUID(), '--host', LOOPBACK, '--port', String(port), '--ttl', '86400', '--json', '--database-connection', database]);
    return `ws://${LOOPBACK}:${proxyPort}/?token=${(JSON.parse(out) as { token: string }).token}`;
  };
  const proxyPort = await freePort();
  const urls: string[] = [];
  for (const port of [backend.sourcePort, backend.closingPort, backend.bannerPort, backend.echoPort]) urls.push(await mint(port));
  const [source, closing, banner, echo] = urls;
  const name = label ?? (workers > 1 ? `Porthole, ${workers} workers` : 'Porthole');
  const child = startChild(name, process.execPath, [...nodeArgs, ...novncproxyArgs(root, proxyPort, database), ...(workers > 1 ? ['--porthole-workers', String(workers)] : [])]);
  child.proc.stdout!.resume();
  await waitForPort(child, proxyPort, 30_000);
  return { name, pid: child.pid, targets: { source: source!, closing: closing!, banner: banner!, echo: echo! } };
}

// ---------------------------------------------------------------------------------------------
// the run

async function measure(paths: Path[], plan: Plan, backendPid: number): Promise<PathResult[]> {
  const results = paths.map((p): PathResult => ({ name: p.name, mibPerSec: [], proxyCpuSeconds: 0, clientCpuSeconds: 0, backendCpuSeconds: 0, bytesMeasured: 0, bannerMs: [], readyMs: [], delivered: 0, proxyUserSeconds: 0, proxySysSeconds: 0, proxyFaults: 0 }));

  // one warm-up download per path (JIT, socket buffers, page cache of the Python modules)
  for (const path of paths) await download(path, plan.bytes);

  for (const [i, path] of paths.entries()) {
    const r = results[i]!;
    const pid = path.pids?.closing ?? path.pid;
    const baseline = new Set(pid === null ? [] : descendants(pid));
    r.delivered = await readUntilClosed(path);
    await settle(pid, baseline);
    process.stdout.write(`  closing backend ${path.name.padEnd(11)} delivered ${r.delivered} of ${plan.bytes} bytes\n`);
  }

  for (let trial = 1; trial <= plan.trials; trial++) {
    for (const [i, path] of paths.entries()) {
      const r = results[i]!;
      const baseline = new Set(path.pid === null ? [] : descendants(path.pid));
      const proxyBefore = treeUsage(path.pid);
      const backendBefore = treeUsage(backendPid);
      const clientBefore = process.cpuUsage();
      const ns = await download(path, plan.bytes);
      const client = process.cpuUsage(clientBefore);
      await settle(path.pid, baseline);
      const proxyAfter = treeUsage(path.pid);
      const backendAfter = treeUsage(backendPid);
      r.proxyUserSeconds += proxyAfter.user - proxyBefore.user;
      r.proxySysSeconds += proxyAfter.sys - proxyBefore.sys;
      r.proxyCpuSeconds = r.proxyUserSeconds + r.proxySysSeconds;
      r.proxyFaults += proxyAfter.faults - proxyBefore.faults;
      r.backendCpuSeconds += backendAfter.user + backendAfter.sys - backendBefore.user - backendBefore.sys;
      r.clientCpuSeconds += (client.user + client.system) / 1e6;
      r.bytesMeasured += plan.bytes;
      const mibs = plan.bytes / MiB / (Number(ns) / 1e9);
      r.mibPerSec.push(mibs);
      // paths[0] is raw TCP: each trial's ratio is over raw TCP's download of the same round
      const rawMibs = results[0]!.mibPerSec[trial - 1]!;
      process.stdout.write(`  download ${trial}/${plan.trials} ${path.name.padEnd(11)} ${mibs.toFixed(1).padStart(8)} MiB/s${i === 0 ? '' : ` ${(mibs / rawMibs).toFixed(3)}× raw TCP`}\n`);
    }
  }

  // nova-novncproxy forks and starts Nova per connection (~0.1 s): it takes part in fewer rounds
  const rounds = (path: Path) => (path.name === 'nova-novncproxy' ? plan.novaConnections : plan.connections);
  for (let i = 0; i < plan.warmupConnections; i++) for (const path of paths) if (i < rounds(path)) await handshakeTimes(path);
  for (let i = 0; i < plan.connections; i++) {
    for (const [j, path] of paths.entries()) {
      if (i >= rounds(path)) continue;
      const t = await handshakeTimes(path);
      results[j]!.bannerMs.push(Number(t.banner) / 1e6);
      results[j]!.readyMs.push(Number(t.ready) / 1e6);
    }
  }
  for (const r of results.slice(1)) {
    const ratios = trialRatios(r, results[0]!);
    process.stdout.write(`  throughput ${r.name.padEnd(22)} MiB/s min / median / max ${Math.min(...r.mibPerSec).toFixed(1)} / ${median(r.mibPerSec).toFixed(1)} / ${Math.max(...r.mibPerSec).toFixed(1)}; × raw TCP per trial ${Math.min(...ratios).toFixed(3)} / ${median(ratios).toFixed(3)} / ${Math.max(...ratios).toFixed(3)}\n`);
  }
  for (const r of results) {
    process.stdout.write(`  handshake ${r.name.padEnd(11)} first byte p50 ${percentile(r.bannerMs, 0.5).toFixed(3)} ms p99 ${percentile(r.bannerMs, 0.99).toFixed(3)} ms; ServerInit p50 ${percentile(r.readyMs, 0.5).toFixed(3)} ms p99 ${percentile(r.readyMs, 0.99).toFixed(3)} ms\n`);
  }
  return results;
}

interface Options {
  readonly plan: Plan;
  /** another checkout whose `bin/porthole.js` is measured (before/after tables) */
  readonly portholeRoot: string;
  /** `[porthole] workers` of the extra Porthole measured for sessions (0: none) */
  readonly workers: number;
  /** run the (one-process) Porthole under `node --cpu-prof`, writing its profile into this directory */
  readonly cpuProfDir: string | null;
  /** another checkout measured side by side as "Porthole (baseline)": before/after in one run */
  readonly baselineRoot: string | null;
}

function parseArgs(args: readonly string[]): Options {
  const usage = 'usage: bench/relay.ts [--quick] [--porthole-root DIR] [--baseline DIR] [--workers N] [--cpu-prof]';
  let quick = false;
  let portholeRoot = ROOT;
  let workers = 2;
  let cpuProfDir: string | null = null;
  let baselineRoot: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--porthole-root' && args[i + 1]) portholeRoot = resolve(args[++i]!);
    else if (a === '--workers' && /^\d+$/.test(args[i + 1] ?? '')) workers = Number(args[++i]);
    else if (a === '--baseline' && args[i + 1]) baselineRoot = resolve(args[++i]!);
    else if (a === '--cpu-prof') cpuProfDir = join(HERE, 'profiles', new Date().toISOString().replace(/[:.]/g, '-'));
    else throw new Error(`unknown argument ${a} (${usage})`);
  }
  for (const [flag, root] of [['--porthole-root', portholeRoot], ['--baseline', baselineRoot]] as const) {
    if (root !== null && !existsSync(join(root, 'bin/porthole.js'))) throw new Error(`${flag} ${root}: no bin/porthole.js there`);
  }
  return { plan: quick ? QUICK : FULL, portholeRoot, workers, cpuProfDir, baselineRoot };
}

/** What the run found beyond the download and handshake tables, per path name. */
export interface SessionFigures {
  readonly echo: Map<string, EchoResult>;
  readonly rate: Map<string, OpenRateResult>;
  readonly idle: Map<string, IdleSessionsResult>;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const plan = opts.plan;
  if (!existsSync(WEBSOCKIFY)) throw new Error(`${WEBSOCKIFY} not found (Debian package websockify)`);
  const started = new Date();
  runStarted = started.getTime();
  const loadBefore = loadAverage();
  // 10 000 sessions take 10 000 descriptors here and 20 000 in a one-process proxy
  const fdLimit = raiseFileLimit(2 * plan.idleSessions + 1024);
  process.stdout.write(`relay benchmark (${plan.quick ? 'quick' : 'full'}): ${plan.trials} × ${plan.bytes / MiB} MiB downloads, ${plan.connections} connections, ${plan.idleSessions} idle sessions per path; open-files limit ${fdLimit}\n`);

  try {
    const backend = await startBackend(plan.bytes);
    const [tcpRelay, wsSource, wsClosing, wsBanner, wsEcho, ph, phWorkers, nova, baseline] = await Promise.all([
      startTcpRelay(backend),
      startWebsockify(backend.sourcePort, 'download'),
      startWebsockify(backend.closingPort, 'closing'),
      startWebsockify(backend.bannerPort, 'banner'),
      startWebsockify(backend.echoPort, 'echo'),
      startPorthole(opts.portholeRoot, backend, 1, opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir] : []),
      opts.workers > 1 ? startPorthole(opts.portholeRoot, backend, opts.workers, []) : undefined,
      startNova(backend),
      opts.baselineRoot ? startPorthole(opts.baselineRoot, backend, 1, [], BASELINE) : undefined,
    ]);
    const wsUrl = (port: number) => `ws://${LOOPBACK}:${port}/`;
    const websockify: Path = {
      name: 'websockify',
      pid: wsSource.child.pid,
      pids: { closing: wsClosing.child.pid, banner: wsBanner.child.pid, echo: wsEcho.child.pid },
      targets: { source: wsUrl(wsSource.port), closing: wsUrl(wsClosing.port), banner: wsUrl(wsBanner.port), echo: wsUrl(wsEcho.port) },
    };
    const raw: Path = { name: 'raw TCP', pid: null, targets: { source: backend.sourcePort, closing: backend.closingPort, banner: backend.bannerPort, echo: backend.echoPort } };
    const proxies: Path[] = [websockify, ...(nova.path ? [nova.path] : []), ...(baseline ? [baseline] : []), ph];
    phase('peers started');
    const results = await measure([raw, tcpRelay, ...proxies], plan, backend.child.pid);
    phase('downloads and connections');
    const figures = await measureSessions([raw, tcpRelay, ...proxies], [raw, ...proxies, ...(phWorkers ? [phWorkers] : [])], plan, nova.path?.name);
    phase('echo, opening rate, idle sessions');
    const security = await measureRfbSecurity(plan.quick, opts.portholeRoot);
    phase('RFB security proxy');
    const extra: Extra = { nova: nova.skipped, workers: phWorkers ? opts.workers : 0, fdLimit, baseline: opts.baselineRoot ? describeCheckout(opts.baselineRoot) : undefined };
    const report = render(plan, results, figures, security, extra);
    process.stdout.write(`\n${report.table}\n`);
    writeSection(SECURITY_BEGIN, SECURITY_END, security.section);
    writeResults(opts, started, report, { before: loadBefore, after: loadAverage() }, extra);
    process.stdout.write(`\nwrote ${RESULTS}\n`);
  } finally {
    await stopAll();
  }
  // the serial console relay (issue 14: raw TCP, websockify, nova-serialproxy and Porthole, in
  // one run of its own) belongs to the same `npm run bench`; after this run's peers are gone
  await runSerialBenchmark(plan.quick);
  if (opts.cpuProfDir) {
    // written when Porthole exits; the largest is the daemon's (tsx's loader thread writes one too)
    const profiles = existsSync(opts.cpuProfDir) ? readdirSync(opts.cpuProfDir).map((f) => join(opts.cpuProfDir!, f)) : [];
    const main = profiles.sort((a, b) => statSync(b).size - statSync(a).size)[0];
    if (main) {
      process.stdout.write(`\nPorthole's CPU profile over the whole run (open it in Chrome DevTools or speedscope for a flame graph):\n`);
      printTop(main, 25);
    } else process.stderr.write(`bench: no CPU profile in ${opts.cpuProfDir}\n`);
  }
}

let runStarted = Date.now();

/** A progress line with the time since the run started. */
function phase(done: string): void {
  process.stdout.write(`[${((Date.now() - runStarted) / 1000).toFixed(1)} s] ${done}\n`);
}

/** nova-novncproxy where it can run; otherwise the reason it was left out. */
async function startNova(backend: Backend): Promise<{ path?: Path; skipped?: string }> {
  if (novaVersion() === null) return { skipped: 'Debian package nova-consoleproxy not installed' };
  try {
    const nova = await startNovaNovncproxy([backend.sourcePort, backend.closingPort, backend.bannerPort, backend.echoPort].map((port) => ({ host: LOOPBACK, port })));
    const [source, closing, banner, echo] = nova.tokens.map((t) => novaUrl(nova.port, t));
    return { path: { name: 'nova-novncproxy', pid: nova.child.pid, targets: { source: source!, closing: closing!, banner: banner!, echo: echo! } } };
  } catch (err) {
    process.stderr.write(`bench: nova-novncproxy left out: ${(err as Error).message}\n`);
    return { skipped: (err as Error).message.split('\n')[0]!.slice(0, 200) };
  }
}

/**
 * Echo round trips, sessions per second under 50 clients, then many idle sessions (last: it
 * leaves websockify after a run of failures). nova-novncproxy forks a Python process of about
 * 36 MiB per session, so its idle sessions are capped (see bench/nova-novncproxy.ts).
 */
async function measureSessions(echoPaths: readonly Path[], paths: readonly Path[], plan: Plan, novaName: string | undefined): Promise<SessionFigures> {
  const figures: SessionFigures = { echo: new Map(), rate: new Map(), idle: new Map() };
  const pidFor = (p: Path, t: Target) => p.pids?.[t] ?? p.pid;
  // in rounds that take turns over the paths, each after the last path's per-connection process
  // is gone: a tail of one path's p99 is then not another's teardown or a moment of the machine
  const runs = new Map<string, EchoResult[]>();
  for (let round = 0; round < ECHO_ROUNDS; round++) {
    for (const path of echoPaths) {
      const pid = pidFor(path, 'echo');
      const before = new Set(pid === null ? [] : descendants(pid));
      const e = await echoRoundTrips(path, { pid, count: Math.ceil(plan.echoRoundTrips / ECHO_ROUNDS) });
      await settle(pid, before);
      runs.set(path.name, [...(runs.get(path.name) ?? []), e]);
    }
  }
  phase('echo round trips');
  for (const [name, r] of runs) {
    const e = mergeEcho(r);
    figures.echo.set(name, e);
    process.stdout.write(`  echo ${name.padEnd(22)} p50 ${e.p50Us.toFixed(0)} µs p99 ${e.p99Us.toFixed(0)} µs\n`);
  }
  for (const path of paths) {
    const r = await openRate(path, { pid: pidFor(path, 'banner'), clients: 50, seconds: plan.rateSeconds, warmupSeconds: 1 });
    figures.rate.set(path.name, r);
    process.stdout.write(`  50 clients ${path.name.padEnd(16)} ${r.perSecond.toFixed(0)} sessions/s, ServerInit p50 ${r.readyP50Ms.toFixed(2)} ms, ${r.errors} errors\n`);
  }
  phase('opening rate');
  for (const path of paths) {
    const n = path.name === novaName ? plan.novaIdleSessions : plan.idleSessions;
    const s = await idleSessions(path, n, { pid: pidFor(path, 'echo'), spreadOverChildren: / workers$/.test(path.name) });
    figures.idle.set(path.name, s);
    process.stdout.write(`  idle ${path.name.padEnd(22)} ${s.held} of ${s.requested} held${s.pssPerSessionKiB !== null ? `, ${s.pssPerSessionKiB.toFixed(1)} KiB each` : ''}${s.capped ? ` (capped: ${s.capped})` : ''}\n`);
  }
  return figures;
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

/** Each trial's throughput over `raw`'s in the same round (trials rotate over the paths). */
function trialRatios(r: PathResult, raw: PathResult): number[] {
  return r.mibPerSec.map((v, t) => v / raw.mibPerSec[t]!);
}

/** `min / median / max` of `values`. */
function spread(values: readonly number[], digits: number): string {
  return `${Math.min(...values).toFixed(digits)} / ${median(values).toFixed(digits)} / ${Math.max(...values).toFixed(digits)}`;
}

function delivered(n: number, of: number): string {
  return n === of ? `all ${of / MiB} MiB` : `${(n / MiB).toFixed(2)} of ${of / MiB} MiB`;
}

function perGiB(seconds: number, bytes: number): number {
  return seconds / (bytes / GiB);
}

interface Report {
  readonly table: string;
  /** one line for the History section */
  readonly summary: string;
}

interface Extra {
  /** why nova-novncproxy is not in the tables, if it is not */
  readonly nova?: string;
  /** `[porthole] workers` of the extra Porthole in the session tables (0: none) */
  readonly workers: number;
  readonly fdLimit: number;
  /** what `--baseline` measured, for the ratio row (the checkout's commit) */
  readonly baseline?: string;
}

function render(plan: Plan, results: PathResult[], figures: SessionFigures, security: { rows: SecurityRow[] }, extra: Extra): Report {
  const byName = (n: string) => results.find((r) => r.name === n);
  const raw = byName('raw TCP')!;
  const wsf = byName('websockify')!;
  const nova = byName('nova-novncproxy');
  const ph = byName('Porthole')!;
  const thr = (r: PathResult) => median(r.mibPerSec);
  const cpu = (r: PathResult) => perGiB(r.proxyCpuSeconds, r.bytesMeasured);
  const ms = (values: readonly number[], p: number) => percentile(values, p).toFixed(3);
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const lines = [
    '### Download (256 MiB after ServerInit) and what it costs'.replace('256', String(plan.bytes / MiB)),
    '',
    `| path | MiB/s (median of ${plan.trials}) | min – max | × raw TCP per trial min / median / max | proxy CPU s/GiB | proxy page faults /MiB | client CPU s/GiB | backend CPU s/GiB | delivered when backend closes |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const isRaw = r === raw;
    const proxyCpu = isRaw ? '—' : `${cpu(r).toFixed(2)} (${perGiB(r.proxyUserSeconds, r.bytesMeasured).toFixed(2)} user + ${perGiB(r.proxySysSeconds, r.bytesMeasured).toFixed(2)} sys)`;
    const faults = isRaw ? '—' : (r.proxyFaults / (r.bytesMeasured / MiB)).toFixed(1);
    lines.push(`| ${r.name} | ${thr(r).toFixed(1)} | ${Math.min(...r.mibPerSec).toFixed(1)} – ${Math.max(...r.mibPerSec).toFixed(1)} | ${isRaw ? '—' : spread(trialRatios(r, raw), 3)} | ${proxyCpu} | ${faults} | ${perGiB(r.clientCpuSeconds, r.bytesMeasured).toFixed(2)} | ${perGiB(r.backendCpuSeconds, r.bytesMeasured).toFixed(2)} | ${delivered(r.delivered, plan.bytes)} |`);
  }
  const us = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(0));
  lines.push(
    '',
    '### One console: opening it, and a keystroke\'s round trip',
    '',
    '| path | connections | open → first RFB byte p50 ms | p99 ms | open → ServerInit p50 ms | p99 ms | 1-byte echo p50 µs | p99 µs |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const r of results) {
    const e = figures.echo.get(r.name);
    lines.push(`| ${r.name} | ${r.bannerMs.length} | ${ms(r.bannerMs, 0.5)} | ${ms(r.bannerMs, 0.99)} | ${ms(r.readyMs, 0.5)} | ${ms(r.readyMs, 0.99)} | ${us(e?.p50Us)} | ${us(e?.p99Us)} |`);
  }
  lines.push(
    '',
    '### Through the RFB security proxy (TigerVNC Xvnc; details in the section below)',
    '',
    '| security | path | open → first byte p50 ms | p99 ms | open → ServerInit p50 ms | p99 ms |',
    '|---|---|---:|---:|---:|---:|',
    ...security.rows.map((r) => `| ${r.security} | ${r.path} | ${r.firstP50.toFixed(3)} | ${r.firstP99.toFixed(3)} | ${r.readyP50.toFixed(3)} | ${r.readyP99.toFixed(3)} |`),
    '',
    '### Many consoles: opening under 50 concurrent clients, and holding idle sessions',
    '',
    '| path | sessions opened /s | open → ServerInit p50 ms | p99 ms | errors | proxy CPU ms / session | idle sessions held | of | proxy PSS idle → all open MiB | PSS per session KiB | refusals |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  );
  const mib = (k: number) => (k / 1024).toFixed(1);
  for (const name of figures.idle.keys()) {
    const rate = figures.rate.get(name)!;
    const idle = figures.idle.get(name)!;
    const of = `${idle.requested}${idle.capped ? ` (tried ${idle.target}: ${idle.capped})` : ''}`;
    const pss = idle.pssKiB ? `${mib(idle.pssKiB.baseline)} → ${mib(idle.pssKiB.open)}` : '—';
    const refusals = idle.failures.length === 0 ? 'none' : idle.failures.map((f) => `${f.count} × ${f.kind}`).join(', ') + (idle.stoppedEarly ? '; stopped after 200 in a row' : '');
    lines.push(`| ${name} | ${rate.perSecond.toFixed(0)} | ${rate.readyP50Ms.toFixed(2)} | ${rate.readyP99Ms.toFixed(2)} | ${rate.errors} | ${rate.proxyCpuMsPerSession?.toFixed(2) ?? '—'} | ${idle.held} | ${of} | ${pss} | ${idle.pssPerSessionKiB?.toFixed(1) ?? '—'} | ${refusals} |`);
  }

  const ratioRow = (label: string, other: PathResult) => {
    const eo = figures.echo.get(other.name);
    const ep = figures.echo.get(ph.name)!;
    const ro = figures.rate.get(other.name);
    const rp = figures.rate.get(ph.name)!;
    return `| ${label} | ${x(thr(ph), thr(other))} | ${other === raw ? '—' : x(cpu(ph), cpu(other))} | ${x(percentile(ph.bannerMs, 0.5), percentile(other.bannerMs, 0.5))} | ${x(percentile(ph.bannerMs, 0.99), percentile(other.bannerMs, 0.99))} | ${eo ? x(ep.p50Us, eo.p50Us) : '—'} | ${eo ? x(ep.p99Us, eo.p99Us) : '—'} | ${ro ? x(rp.perSecond, ro.perSecond) : '—'} |`;
  };
  lines.push(
    '',
    '### Ratios (Porthole over the other; below 1× is less time, CPU or throughput)',
    '',
    '| Porthole / | throughput | proxy CPU per GiB | first byte p50 | first byte p99 | echo p50 | echo p99 | sessions opened /s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ratioRow('raw TCP', raw),
    ratioRow('websockify', wsf),
    ...(nova ? [ratioRow('nova-novncproxy', nova)] : []),
    ...(byName(BASELINE) ? [ratioRow(`${BASELINE}: ${extra.baseline ?? ''}`, byName(BASELINE)!)] : []),
  );

  // the issue's targets, as measured in this run
  const idlePh = [...figures.idle.values()].filter((i) => i.path.startsWith('Porthole'));
  const best = idlePh.reduce((a, b) => (b.held > a.held ? b : a), idlePh[0]!);
  const vencrypt = security.rows.find((r) => r.security.startsWith('VeNCrypt') && r.path === 'Porthole');
  const verdict = (ok: boolean | null) => (ok === null ? 'not judged in a quick run' : ok ? 'met' : '**not met**');
  // a quick run opens too few sessions for their memory to show through the garbage collector's swings
  const memory = plan.quick ? null : best.held >= plan.idleSessions && (best.pssPerSessionKiB ?? Infinity) < 32;
  const targets: [string, string, boolean | null][] = [
    ['throughput ≥ 0.9× raw TCP in every trial (per-trial ratio min / median / max)', `${spread(trialRatios(ph, raw), 3)}×`, Math.min(...trialRatios(ph, raw)) >= 0.9],
    ['proxy CPU per GiB ≤ ½ websockify\'s', `${x(cpu(ph), cpu(wsf))}`, cpu(ph) <= 0.5 * cpu(wsf)],
    ['open → first byte p50 ≤ 0.5 ms', `${ms(ph.bannerMs, 0.5)} ms`, percentile(ph.bannerMs, 0.5) <= 0.5],
    ['open → first byte p99 ≤ 1.5 ms', `${ms(ph.bannerMs, 0.99)} ms`, percentile(ph.bannerMs, 0.99) <= 1.5],
    ['first byte through VeNCrypt X509None p50 < 5 ms', vencrypt ? `${vencrypt.firstP50.toFixed(3)} ms` : '—', vencrypt !== undefined && vencrypt.firstP50 < 5],
    [`${plan.idleSessions} concurrent sessions held at < 32 KiB each`, `${best.held} held by ${best.path}, ${best.pssPerSessionKiB?.toFixed(1) ?? '—'} KiB each`, memory],
  ];
  lines.push('', '### The targets of issue 7, in this run', '', '| target | measured | |', '|---|---|---|', ...targets.map(([t, m, ok]) => `| ${t} | ${m} | ${verdict(ok)} |`));
  if (extra.nova) lines.push('', `nova-novncproxy was left out of this run: ${extra.nova}.`);

  const summary = `Porthole ${thr(ph).toFixed(1)} MiB/s = ${(thr(ph) / thr(raw)).toFixed(3)} × raw TCP (${thr(raw).toFixed(1)} MiB/s), ${x(cpu(ph), cpu(wsf))} websockify's CPU/GiB, first byte p50 ${ms(ph.bannerMs, 0.5)} ms, echo p50 ${us(figures.echo.get(ph.name)?.p50Us)} µs, ${figures.rate.get(ph.name)!.perSecond.toFixed(0)} sessions/s, ${best.held} idle sessions at ${best.pssPerSessionKiB?.toFixed(1) ?? '—'} KiB`;
  return { table: lines.join('\n'), summary };
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

/** Sections other benchmarks keep in RESULTS.md between `<!-- name … -->` and `<!-- /name -->`. */
function otherSections(): string[] {
  if (!existsSync(RESULTS)) return [];
  const text = readFileSync(RESULTS, 'utf8');
  return [...text.matchAll(/<!-- ([a-z0-9-]+)[^>]*-->[\s\S]*?<!-- \/\1 -->/g)].map((m) => m[0]);
}

function writeResults(opts: Options, started: Date, report: Report, load: { before: string; after: string }, extra: Extra): void {
  const plan = opts.plan;
  const m = machine();
  const flags = [plan.quick ? '--quick' : '', opts.cpuProfDir ? '--cpu-prof' : '', opts.portholeRoot !== ROOT ? `--porthole-root ${opts.portholeRoot}` : '', opts.baselineRoot ? `--baseline ${opts.baselineRoot}` : '', opts.workers !== 2 ? `--workers ${opts.workers}` : ''].filter(Boolean).join(' ');
  const command = `npm run bench${flags ? ` -- ${flags}` : ''}   (node --import tsx bench/relay.ts${flags ? ` ${flags}` : ''})`;
  const history = [...previousHistory(), `- ${started.toISOString()} ${plan.quick ? 'quick' : 'full'}${opts.portholeRoot !== ROOT ? ` (Porthole from ${opts.portholeRoot})` : ''}: ${report.summary}`];
  const ports = ephemeralPorts();
  const text = `# Relay benchmark

Latest run; overwritten by every \`npm run bench\` (the History section at the end keeps one line per run).

- date: ${started.toISOString()} (${plan.quick ? 'quick run' : 'full run'})
- machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}
- Node ${process.version}; websockify ${m.websockify} and nova-novncproxy ${novaVersion() ?? '(not installed)'} (Debian)
- command: \`${command}\`
- load average (1, 5, 15 min) before the run: ${load.before}; after: ${load.after}
- downloads: ${plan.trials} measured trials of ${plan.bytes / MiB} MiB per path after one warm-up; handshake timing: ${plan.connections} sequential connections per path (nova-novncproxy: ${plan.novaConnections}) after ${plan.warmupConnections} warm-up ones; echo: ${plan.echoRoundTrips} round trips in ${ECHO_ROUNDS} rounds over the paths, each after 100 unmeasured; opening rate: 50 clients for ${plan.rateSeconds} s after 1 s; idle sessions: ${plan.idleSessions} per path (nova-novncproxy: ${plan.novaIdleSessions})
- open-files limit of this process and the peers it started: ${extra.fdLimit}; ephemeral ports ${ports.low}–${ports.high}

${report.table}

## How it was measured

- The processes: the backend (\`bench/backend.ts\`, Node: minimal RFB 3.8 servers offering security type None: a source, one that closes after its last byte, a silent one, an echo), websockify (\`websockify 127.0.0.1:P 127.0.0.1:BACKEND\`, one per backend, plain target mode, its defaults), nova-novncproxy (Debian's package, SQLite \`[database]\`, tokens minted by Nova's own \`ConsoleAuthToken.authorize\`, a stub nova-compute answering its \`validate_console_port\` RPC over the machine's RabbitMQ: \`bench/nova-novncproxy.ts\`), Porthole (\`node bin/porthole.js novncproxy\` with a SQLite token database, log level warn, otherwise defaults; tokens minted with \`porthole token create\`)${extra.workers > 1 ? `, a second Porthole with \`--porthole-workers ${extra.workers}\` for the many-consoles table` : ''}, and this script, the only client. Everything is on 127.0.0.1.
- **TCP relay (Node pipe)** (\`bench/tcp-relay.ts\`): a Node process that only \`pipe()\`s each TCP connection to the backend and back, with no WebSocket, token or RFB: the least any proxy written in Node pays to carry bytes through a process of its own (the download, connection and echo tables; the client speaks plain TCP to it).
- **The client** is \`bench/ws-client.ts\`: a WebSocket client written for the benchmark (the upgrade by hand, a frame parser that counts payload without copying it), so that it costs about what the raw TCP client costs and the figures measure the proxies; every proxy goes through the same client. Client CPU per GiB is in the first table.
- **RFB on every path**: Porthole and nova-novncproxy run an RFB security proxy: the RFB handshake with the backend (ProtocolVersion, Security, SecurityResult) before the WebSocket is accepted, then their own handshake with the client, forwarding ClientInit / ServerInit; they relay byte for byte only after that. So the client does the client half of RFB 3.8 (version, None, shared ClientInit, ServerInit) on all paths; websockify and raw TCP just carry those bytes. Porthole has no plain-relay console listener yet (serial and SPICE are future work), so its "first byte" is its own ProtocolVersion, sent after the token lookup, the backend connect and the backend's handshake up to SecurityResult; websockify's is the backend's, relayed.
- **Download**: after ServerInit the backend writes N bytes in 1 MiB writes as fast as its socket drains (standing in for framebuffer updates; no proxy parses them); the client counts them and hangs up after the N-th byte. Time runs from ServerInit to the last byte. MiB/s is N / that time, the median of the trials, with their spread; each trial's ratio to raw TCP is over raw TCP's download of the same round, and the throughput target holds only if the smallest of those ratios does. Trials rotate over the paths so that drift on a shared machine hits all alike. The backend does not close first: websockify 0.10 can then drop what it still queues for the client (see the last column).
- **CPU per GiB**: utime and stime, with cutime and cstime, of the proxy's process tree from \`/proc/<pid>/stat\`, before and after each trial, after waiting for per-connection children (websockify, nova-novncproxy) to exit and be reaped, divided by the GiB relayed. For nova-novncproxy this includes its per-connection fork and Nova's start-up in the child (about 0.1 s), which is not negligible next to a download. Clock tick is 1/${CLK_TCK} s. Page faults are the tree's minor faults per MiB.
- **Open → first RFB byte / → ServerInit**: from the connection attempt to holding the 12-byte \`RFB 003.008\\n\`, and to holding the whole ServerInit after answering version, security type and ClientInit. Sequential; each connection is closed and gone before the next. p99 is nearest-rank (with ${plan.connections} samples the ${Math.ceil(0.99 * plan.connections)}th smallest).
- **1-byte echo**: on one open session of the echo backend, sequential round trips of one byte: client send → the byte back (client → proxy → backend → proxy → client).
- **Sessions opened per second**: 50 clients in this process, each opening a console to ServerInit on the silent backend, closing it, waiting for the close, and opening the next; sessions that reached ServerInit in the measured seconds, their open → ServerInit, and the proxy tree's CPU over those seconds per session.
- **Idle sessions**: N consoles opened (64 at a time) on the echo backend and held; then every one sends 4 bytes and must get them back ("held"); the proxy tree's PSS (\`/proc/<pid>/smaps_rollup\`, summed over its processes) before opening and with all open; per session is the slope of a least-squares line through 40 PSS readings taken while the sessions open (any one reading moves by megabytes with the garbage collector). It stops after 200 failed opens in a row. One process holds two file descriptors per session (client and backend): with the open-files limit above (\`prlimit\` cannot raise it without CAP_SYS_RESOURCE), a one-process proxy cannot hold ${plan.idleSessions} sessions when the limit is below twice that, and the table says so; Porthole with workers spreads them over processes.
- Caveats: one machine with ${m.cores} cores runs backend, proxy and client at once, so a download through a proxy has three busy processes on ${m.cores} cores where raw TCP has two: a proxy can reach raw TCP's throughput only by costing nothing. Numbers from a shared or virtual machine move between runs; compare ratios from the same run. A load average well above 0 before the run means other work shared the CPUs.
${otherSections().map((sec) => `\n${sec}\n`).join('')}
## History

${history.join('\n')}
`;
  writeFileSync(RESULTS, text);
}

/** `bench/serial.ts` as a child process (it writes its own section of RESULTS.md). */
function runSerialBenchmark(quick: boolean): Promise<void> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(dirname(fileURLToPath(import.meta.url)), 'serial.ts'), ...(quick ? ['--quick'] : [])], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolveRun() : reject(new Error(`bench/serial.ts exited with ${code ?? signal}`))));
  });
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench: ${(err as Error)?.stack ?? err}\n`);
  await stopAll();
  process.exitCode = 1;
}
