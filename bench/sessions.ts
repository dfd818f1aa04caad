/**
 * @module bench/sessions
 * Session-scale measurements of the relay benchmark, per path (raw TCP, websockify, Porthole):
 *
 * - `idleSessions`: N consoles opened (bounded concurrency, each to ServerInit through the `echo`
 *   backend, so through a proxy each is a live relayed session) and held open together; then every
 *   one sends 4 bytes and must get them echoed by the backend ("held end to end"); the proxy's
 *   memory (PSS of its process tree) before and with all N open; failures counted by kind. A
 *   proxy that stops accepting does not hang the run: every open has a deadline and the opening
 *   stops after a run of consecutive failures. Everything is closed after, and the call returns
 *   only when the proxy's sessions are gone (its file descriptors and per-connection children are
 *   back to where they were);
 * - `openRate`: closed loop of C clients (50), each opening a console to ServerInit on the
 *   `banner` backend, closing it, waiting for the close, and opening the next, for a fixed time
 *   after a warm-up: sessions per second, open → ServerInit p50/p99 under that load, errors, the
 *   proxy tree's CPU per session;
 * - `echoRoundTrips`: on one open session of the `echo` backend, M sequential 1-byte round trips
 *   (client send → byte back), p50/p99.
 *
 * The proxy whose memory and CPU count is `opts.pid` if given, else `path.pid`. websockify serves
 * one target per process, so for it pass the pid of the websockify serving the target measured
 * (`echo` for `idleSessions`, `banner` for `openRate`).
 *
 * Needs many file descriptors: call `raiseFileLimit` (bench/procs.ts) before starting any peer;
 * `idleSessions` opens fewer sessions than asked when a limit in effect cannot hold them.
 *
 * Run by `npm run bench` (bench/relay.ts), which starts the peers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { open, rfbHandshake, type Connection, type Path, type Target } from './client.ts';
import { descendants, fileLimit, sleep, treePss, treeUsage } from './procs.ts';

// ---------------------------------------------------------------------------------------------
// shared helpers

/** Failures of one kind: how many, and the first few messages as they came. */
export interface Failure {
  /** `open` (before ServerInit), `check` (the echo of a held session), `round trip` */
  readonly phase: 'open' | 'check' | 'round trip';
  /** e.g. `timeout`, `ECONNREFUSED`, `HTTP 503`, `closed 1011`, `socket hang up` */
  readonly kind: string;
  count: number;
  readonly samples: string[];
}

const SAMPLES_PER_KIND = 3;

class Failures {
  private readonly byKey = new Map<string, Failure>();
  total = 0;

  add(phase: Failure['phase'], err: unknown): void {
    this.total++;
    const message = err instanceof Error ? err.message : String(err);
    const kind = failureKind(err);
    const key = `${phase}\0${kind}`;
    let f = this.byKey.get(key);
    if (!f) {
      f = { phase, kind, count: 0, samples: [] };
      this.byKey.set(key, f);
    }
    f.count++;
    if (f.samples.length < SAMPLES_PER_KIND) f.samples.push(message.slice(0, 300));
  }

  list(): Failure[] {
    return [...this.byKey.values()].sort((a, b) => b.count - a.count);
  }
}

/** A deadline hit on our side (the proxy neither answered nor failed). */
class Timeout extends Error {}

function failureKind(err: unknown): string {
  if (err instanceof Timeout) return 'timeout';
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  let m = /\b(E[A-Z]{3,})\b/.exec(message);
  if (m) return m[1]!;
  m = /(?:Unexpected server response: |upgrade refused: HTTP\/1\.[01] )(\d+)/.exec(message);
  if (m) return `HTTP ${m[1]}`;
  m = /WebSocket closed \((\d+)/.exec(message);
  if (m) return `closed ${m[1]}`;
  if (/connection closed/.test(message)) return 'closed';
  if (/socket hang up/.test(message)) return 'socket hang up';
  return message.replace(/^[^:]*: /, '').replace(/\d+/g, 'N').slice(0, 60);
}

/** Nearest rank, as bench/relay.ts: with 200 samples p99 is the 198th smallest. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}

/** Open file descriptors of a process tree (sockets, mostly, on a proxy), or of the process alone. */
export function treeFds(pid: number, tree = true): number {
  let n = 0;
  for (const p of tree ? [pid, ...descendants(pid)] : [pid]) {
    try {
      n += readdirSync(`/proc/${p}/fd`).length;
    } catch {
      // gone in the meantime
    }
  }
  return n;
}

/**
 * Opens one console to ServerInit within `ms`. One timer, cleared when the handshake settles; on
 * failure the connection is destroyed and the error thrown.
 */
async function openConsole(path: Path, target: Target, ms: number): Promise<{ c: Connection; readyNs: bigint }> {
  const c = open(path, target);
  const timer = setTimeout(() => {
    c.inbox.end(new Timeout(`${path.name}: no ServerInit within ${ms} ms`));
    c.destroy();
  }, ms);
  try {
    const h = await rfbHandshake(c);
    return { c, readyNs: h.ready };
  } catch (err) {
    c.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Settles when all settle or after `ms`, whichever is first; true if all settled. */
async function allWithin(promises: readonly Promise<unknown>[], ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([Promise.allSettled(promises).then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** /proc/sys/net/ipv4/ip_local_port_range: the ephemeral ports each side's connect() draws from. */
export function ephemeralPorts(): { low: number; high: number; count: number } {
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number) as [number, number];
  return { low, high, count: high - low + 1 };
}

// ---------------------------------------------------------------------------------------------
// 1. many idle sessions at once

export interface IdleSessionsOptions {
  /** the process tree whose memory counts (default `path.pid`; websockify: the one serving `echo`) */
  readonly pid?: number | null;
  /** opens in flight at once (default 64) */
  readonly concurrency?: number;
  /** per open, to ServerInit (default 10 000 ms) */
  readonly openDeadlineMs?: number;
  /** stop opening after this many failures in a row (default 200) */
  readonly maxConsecutiveFailures?: number;
  /** wait between the last open and the memory reading (default 1000 ms) */
  readonly settleMs?: number;
  /** for all the echo checks together (default 30 000 ms) */
  readonly checkDeadlineMs?: number;
  /** for the proxy's sessions to be gone after closing (default 60 000 ms) */
  readonly drainDeadlineMs?: number;
  /** progress lines on stderr (default false) */
  readonly verbose?: boolean;
  /** the proxy's children hold the sessions between them, not each all (cluster workers) */
  readonly spreadOverChildren?: boolean;
}

export interface IdleSessionsResult {
  readonly path: string;
  /** N as asked */
  readonly requested: number;
  /** N actually tried: fewer when the open-files limits in effect could not hold N */
  readonly target: number;
  /** why `target` < `requested`, if it is */
  readonly capped: string | null;
  /** opens started (fewer than `target` when the opening stopped after consecutive failures) */
  readonly attempted: number;
  /** reached ServerInit */
  readonly opened: number;
  /** of those, still open when all were opened and the check ran, that echoed 4 bytes back */
  readonly held: number;
  /** the opening gave up after `maxConsecutiveFailures` failures in a row */
  readonly stoppedEarly: boolean;
  /** from the first open to the last settled */
  readonly openSeconds: number;
  /** open and check failures by kind, most frequent first */
  readonly failures: readonly Failure[];
  /** PSS of the proxy tree (KiB): before opening, with all open (after settleMs), after closing; null for raw TCP */
  readonly pssKiB: { readonly baseline: number; readonly open: number; readonly afterClose: number } | null;
  /** KiB per session: the slope of the proxy's PSS over the sessions open, sampled 40 times while opening; null for raw TCP or none held */
  readonly pssPerSessionKiB: number | null;
  /** processes in the proxy tree with all open (websockify: one per session) */
  readonly proxyProcesses: number | null;
  /** open file descriptors of the proxy tree: before, with all open */
  readonly proxyFds: { readonly baseline: number; readonly open: number } | null;
  /** the bench process's RSS (KiB) before opening and with all open: the client's own cost */
  readonly clientRssKiB: { readonly baseline: number; readonly open: number };
  /** the proxy's sessions were gone (fds and children back to baseline) within drainDeadlineMs */
  readonly drained: boolean;
  /** from the first close to the proxy's sessions gone */
  readonly drainMs: number;
}

/**
 * Opens `n` consoles on `path`'s `echo` target and holds them all; see the module comment.
 * Never throws for a proxy's failures: they are counted.
 */
export async function idleSessions(path: Path, n: number, opts: IdleSessionsOptions = {}): Promise<IdleSessionsResult> {
  const pid = opts.pid === undefined ? path.pid : opts.pid;
  const concurrency = opts.concurrency ?? 64;
  const openDeadlineMs = opts.openDeadlineMs ?? 10_000;
  const maxConsecutive = opts.maxConsecutiveFailures ?? 200;
  const log = (s: string) => {
    if (opts.verbose) process.stderr.write(`  sessions ${path.name}: ${s}\n`);
  };

  // file descriptors: one per session in the client, two in a proxy process (client and backend
  // side), beyond those already open and a few spare
  const SPARE = 64;
  const free = (p: number | 'self') => fileLimit(p).soft - (p === 'self' ? readdirSync('/proc/self/fd').length : treeFds(p, false)) - SPARE;
  const limits = [{ who: `the client's open-files limit (${fileLimit('self').soft}, one per session)`, fds: free('self') }];
  if (pid !== null && opts.spreadOverChildren) {
    // a cluster primary hands each connection to a worker and keeps nothing of it
    const children = descendants(pid);
    limits.push({ who: `the open-files limits of the proxy's ${children.length} workers (two per session each)`, fds: children.reduce((sum, p) => sum + Math.floor(free(p) / 2), 0) });
  } else if (pid !== null) {
    for (const p of [pid, ...descendants(pid)]) limits.push({ who: `the proxy's open-files limit (${fileLimit(p).soft}, two per session)`, fds: Math.floor(free(p) / 2) });
  }
  const tightest = limits.reduce((a, b) => (b.fds < a.fds ? b : a));
  const target = Math.max(0, Math.min(n, tightest.fds));
  const capped = target < n ? `${tightest.who} holds about ${Math.max(0, tightest.fds)}` : null;
  if (capped) process.stderr.write(`bench: warning: ${path.name}: opening ${target} of ${n} sessions: ${capped}\n`);

  const failures = new Failures();
  const conns: Connection[] = [];
  const baselineKids = new Set(pid === null ? [] : descendants(pid));
  const baselineFds = pid === null ? 0 : treeFds(pid);
  const pssBaseline = treePss(pid);
  const rssBaseline = Math.round(process.memoryUsage().rss / 1024);

  // open with bounded concurrency
  let next = 0;
  let consecutive = 0;
  let stoppedEarly = false;
  const t0 = performance.now();
  // PSS as the sessions come: the garbage collector makes any one reading jump by megabytes, so
  // the cost per session is the slope of a line fitted through all of them
  const samples: [number, number][] = pssBaseline === null ? [] : [[0, pssBaseline]];
  const sampleEvery = Math.max(1, Math.floor(target / 40));
  const worker = async (): Promise<void> => {
    while (!stoppedEarly && next < target) {
      next++;
      try {
        const { c } = await openConsole(path, 'echo', openDeadlineMs);
        conns.push(c);
        consecutive = 0;
        if (pssBaseline !== null && conns.length % sampleEvery === 0) samples.push([conns.length, treePss(pid) ?? NaN]);
        if (opts.verbose && conns.length % 1000 === 0) log(`${conns.length} open`);
      } catch (err) {
        failures.add('open', err);
        if (++consecutive >= maxConsecutive && !stoppedEarly) {
          stoppedEarly = true;
          log(`stopped opening after ${consecutive} failures in a row (${conns.length} open)`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, target)) }, worker));
  const openSeconds = (performance.now() - t0) / 1000;
  const opened = conns.length;
  log(`${opened} of ${next} opened in ${openSeconds.toFixed(1)} s${pid === null ? '' : `; proxy root process holds ${treeFds(pid, false)} fds`}`);

  // the memory with all open, after a short settle
  await sleep(opts.settleMs ?? 1000);
  const pssOpen = treePss(pid);
  if (pssOpen !== null) samples.push([conns.length, pssOpen]);
  const fdsOpen = pid === null ? 0 : treeFds(pid);
  const processes = pid === null ? null : 1 + descendants(pid).length;
  const rssOpen = Math.round(process.memoryUsage().rss / 1024);

  // held end to end: every session sends 4 bytes of its own and must get exactly them back
  let held = 0;
  const checks = conns.map(async (c, i) => {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(i);
    try {
      c.write(payload);
      const back = await c.inbox.read(4);
      if (!back.equals(payload)) throw new Error(`echo mismatch: sent ${payload.toString('hex')}, got ${back.toString('hex')}`);
      held++;
    } catch (err) {
      failures.add('check', err);
    }
  });
  if (!(await allWithin(checks, opts.checkDeadlineMs ?? 30_000))) {
    for (const c of conns) c.inbox.end(new Timeout(`${path.name}: no echo within ${opts.checkDeadlineMs ?? 30_000} ms`));
    await Promise.all(checks);
  }
  log(`${held} of ${opened} held`);

  // close all, then wait until the proxy's sessions are gone
  const tClose = performance.now();
  for (const c of conns) c.close();
  if (!(await allWithin(conns.map((c) => c.closed), 15_000))) for (const c of conns) c.destroy();
  await Promise.all(conns.map((c) => c.closed));
  conns.length = 0;
  let drained = pid === null;
  const drainDeadline = Date.now() + (opts.drainDeadlineMs ?? 60_000);
  while (!drained && Date.now() < drainDeadline) {
    drained = treeFds(pid!) <= baselineFds + 4 && descendants(pid!).every((p) => baselineKids.has(p));
    if (!drained) await sleep(100);
  }
  const drainMs = performance.now() - tClose;
  if (!drained) process.stderr.write(`bench: warning: ${path.name}: proxy still holds ${treeFds(pid!) - baselineFds} more fds than before after ${Math.round(drainMs)} ms\n`);
  const pssAfter = treePss(pid);

  const pssKiB = pssBaseline !== null && pssOpen !== null ? { baseline: pssBaseline, open: pssOpen, afterClose: pssAfter ?? NaN } : null;
  return {
    path: path.name,
    requested: n,
    target,
    capped,
    attempted: next,
    opened,
    held,
    stoppedEarly,
    openSeconds,
    failures: failures.list(),
    pssKiB,
    // a slope at or below zero is the garbage collector's swing, not a measurement
    pssPerSessionKiB: pssKiB && held > 0 ? positive(slope(samples.filter(([, kib]) => Number.isFinite(kib)))) : null,
    proxyProcesses: processes,
    proxyFds: pid === null ? null : { baseline: baselineFds, open: fdsOpen },
    clientRssKiB: { baseline: rssBaseline, open: rssOpen },
    drained,
    drainMs,
  };
}

function positive(n: number | null): number | null {
  return n !== null && n > 0 ? n : null;
}

/** Least-squares slope of y over x. */
function slope(points: readonly (readonly [number, number])[]): number | null {
  if (points.length < 2) return null;
  const mx = points.reduce((a, [x]) => a + x, 0) / points.length;
  const my = points.reduce((a, [, y]) => a + y, 0) / points.length;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx === 0 ? null : points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx;
}

// ---------------------------------------------------------------------------------------------
// 2. sessions opened per second under concurrent clients

export interface OpenRateOptions {
  /** the process tree whose CPU counts (default `path.pid`; websockify: the one serving `banner`) */
  readonly pid?: number | null;
  /** concurrent closed-loop clients (default 50) */
  readonly clients?: number;
  /** measured time (default 5 s; 2 s is the quick run's) */
  readonly seconds?: number;
  /** before the measured time, not counted (default 1 s) */
  readonly warmupSeconds?: number;
  /** backend (default `banner`) */
  readonly target?: Target;
  /** per open, to ServerInit (default 10 000 ms) */
  readonly openDeadlineMs?: number;
}

export interface OpenRateResult {
  readonly path: string;
  readonly clients: number;
  readonly seconds: number;
  /** sessions that reached ServerInit within the measured time */
  readonly sessions: number;
  readonly perSecond: number;
  /** open → ServerInit of those sessions, ms */
  readonly readyP50Ms: number;
  readonly readyP99Ms: number;
  /** failed opens within the measured time */
  readonly errors: number;
  readonly failures: readonly Failure[];
  /** the proxy tree's CPU over the measured time per session, ms (user + sys); null for raw TCP */
  readonly proxyCpuMsPerSession: number | null;
  readonly proxyUserMsPerSession: number | null;
  readonly proxySysMsPerSession: number | null;
  /** this process's CPU over the measured time per session, ms: the client shares the machine */
  readonly clientCpuMsPerSession: number;
}

/** Closed loop: each client opens a console to ServerInit, closes it, waits for the close, and opens the next. */
export async function openRate(path: Path, opts: OpenRateOptions = {}): Promise<OpenRateResult> {
  const pid = opts.pid === undefined ? path.pid : opts.pid;
  const clients = opts.clients ?? 50;
  const seconds = opts.seconds ?? 5;
  const target = opts.target ?? 'banner';
  const openDeadlineMs = opts.openDeadlineMs ?? 10_000;
  const failures = new Failures();
  const readyMs: number[] = [];
  let errors = 0;

  const start = performance.now();
  const from = start + (opts.warmupSeconds ?? 1) * 1000;
  const to = from + seconds * 1000;
  let before = treeUsage(pid);
  let after = before;
  let clientBefore = process.cpuUsage();
  let client = { user: 0, system: 0 };
  const t1 = setTimeout(() => {
    before = treeUsage(pid);
    clientBefore = process.cpuUsage();
  }, from - start);
  const t2 = setTimeout(() => {
    after = treeUsage(pid);
    client = process.cpuUsage(clientBefore);
  }, to - start);
  const baselineKids = new Set(pid === null ? [] : descendants(pid));

  const loop = async (): Promise<void> => {
    while (performance.now() < to) {
      try {
        const { c, readyNs } = await openConsole(path, target, openDeadlineMs);
        const now = performance.now();
        if (now >= from && now < to) readyMs.push(Number(readyNs) / 1e6);
        c.close();
        await c.closed;
      } catch (err) {
        const now = performance.now();
        if (now >= from && now < to) {
          errors++;
          failures.add('open', err);
        }
        // a proxy that refuses at once would otherwise make this a busy loop
        await sleep(5);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, loop));
  clearTimeout(t1);
  clearTimeout(t2);
  // websockify's per-connection children exit after the close: let them go before the next trial
  if (pid !== null) {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !descendants(pid).every((p) => baselineKids.has(p))) await sleep(20);
  }

  readyMs.sort((a, b) => a - b);
  const sessions = readyMs.length;
  const per = (s: number) => (pid === null || sessions === 0 ? null : (s * 1000) / sessions);
  return {
    path: path.name,
    clients,
    seconds,
    sessions,
    perSecond: sessions / seconds,
    readyP50Ms: percentile(readyMs, 0.5),
    readyP99Ms: percentile(readyMs, 0.99),
    errors,
    failures: failures.list(),
    proxyCpuMsPerSession: per(after.user + after.sys - before.user - before.sys),
    proxyUserMsPerSession: per(after.user - before.user),
    proxySysMsPerSession: per(after.sys - before.sys),
    clientCpuMsPerSession: sessions === 0 ? NaN : (client.user + client.system) / 1000 / sessions,
  };
}

// ---------------------------------------------------------------------------------------------
// 3. 1-byte echo round trips on one open session

export interface EchoOptions {
  /** the process tree whose CPU counts (default `path.pid`; websockify: the one serving `echo`) */
  readonly pid?: number | null;
  /** measured round trips (default 2000; 500 is the quick run's) */
  readonly count?: number;
  /** round trips before, not counted (default 100) */
  readonly warmup?: number;
  /** for the whole run (default 60 000 ms) */
  readonly deadlineMs?: number;
}

export interface EchoResult {
  readonly path: string;
  readonly count: number;
  /** client send → the byte back, microseconds */
  readonly p50Us: number;
  readonly p99Us: number;
  readonly minUs: number;
  readonly meanUs: number;
  /** the proxy tree's CPU per round trip, microseconds; null for raw TCP */
  readonly proxyCpuUsPerRoundTrip: number | null;
  /** every round trip, microseconds, in order */
  readonly samplesUs: readonly number[];
}

/** One result from several runs of `echoRoundTrips` on the same path (interleaved with other paths). */
export function mergeEcho(runs: readonly EchoResult[]): EchoResult {
  const samples = runs.flatMap((r) => r.samplesUs);
  const sorted = [...samples].sort((a, b) => a - b);
  const cpu = runs.every((r) => r.proxyCpuUsPerRoundTrip !== null) ? runs.reduce((a, r) => a + r.proxyCpuUsPerRoundTrip! * r.count, 0) / samples.length : null;
  return { path: runs[0]!.path, count: samples.length, p50Us: percentile(sorted, 0.5), p99Us: percentile(sorted, 0.99), minUs: sorted[0]!, meanUs: sorted.reduce((a, b) => a + b, 0) / sorted.length, proxyCpuUsPerRoundTrip: cpu, samplesUs: samples };
}

/** Sequential 1-byte round trips on one session of the `echo` backend. Throws if the session fails. */
export async function echoRoundTrips(path: Path, opts: EchoOptions = {}): Promise<EchoResult> {
  const pid = opts.pid === undefined ? path.pid : opts.pid;
  const count = opts.count ?? 2000;
  const warmup = opts.warmup ?? 100;
  const ms = opts.deadlineMs ?? 60_000;
  const { c } = await openConsole(path, 'echo', 10_000);
  const timer = setTimeout(() => {
    c.inbox.end(new Timeout(`${path.name}: ${warmup + count} round trips not done within ${ms} ms`));
    c.destroy();
  }, ms);
  const samples = new Float64Array(count);
  const one = Buffer.from([0x2a]);
  let before = treeUsage(pid);
  try {
    for (let i = -warmup; i < count; i++) {
      if (i === 0) before = treeUsage(pid);
      const t0 = process.hrtime.bigint();
      c.write(one);
      const back = await c.inbox.read(1);
      const t1 = process.hrtime.bigint();
      if (back[0] !== 0x2a) throw new Error(`${path.name}: echo sent 0x2a, got 0x${back[0]!.toString(16)}`);
      if (i >= 0) samples[i] = Number(t1 - t0) / 1000;
    }
  } catch (err) {
    c.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const after = treeUsage(pid);
  c.close();
  await c.closed;
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    path: path.name,
    count,
    p50Us: percentile(sorted, 0.5),
    p99Us: percentile(sorted, 0.99),
    minUs: sorted[0]!,
    meanUs: sorted.reduce((a, b) => a + b, 0) / count,
    proxyCpuUsPerRoundTrip: pid === null ? null : ((after.user + after.sys - before.user - before.sys) * 1e6) / count,
    samplesUs: [...samples],
  };
}
