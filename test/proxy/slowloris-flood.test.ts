/**
 * Slowloris and a connection flood against one proxy while a good console keeps relaying
 * (issue 15, item 6). The gateway is a real `porthole serve` in a child process, so its
 * descriptors and resident memory are its own (`/proc/<pid>`), and a crash is a failed test.
 *
 *  a. 2 000 half-open upgrades: TCP connected, then part of an upgrade request's headers trickled
 *     a line at a time, or sent once and stalled, or nothing at all. The good console keeps
 *     echoing and a new one opens while they are held; the proxy closes every one of them by
 *     `[porthole] handshake_timeout`; its descriptors come back to the baseline.
 *  b. A flood for a few seconds: connect and close at once, garbage, upgrades without a key,
 *     upgrades with unknown tokens, as fast as 128 clients can. The good console keeps echoing, a
 *     new one opens during the flood, nothing is left open after.
 *
 * Echo round trips of the good console are timed in quiet and during each storm and printed
 * (figures for the README; the test asserts outcomes, never times). Both sides need descriptors:
 * this process holds 2 000 client sockets and the gateway 2 000 more, so the soft limit is raised
 * to what the hard limit allows (`prlimit`), which the child inherits, or the test says why not.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { optionSpec } from '../../src/config/options.ts';
import { echoBackend, type TestBackend } from '../support/backends.ts';
import { startDaemon, stopDaemon, type Daemon } from '../support/daemon.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { connectionsTo, leakMeter, openDescriptors, settled, type LeakMeter, type Counts } from '../support/leak-meter.ts';
import { porthole } from '../support/process.ts';
import { RawClient, upgradeRequest } from '../support/raw-ws.ts';
import { goodConsole, type GoodConsole } from '../support/storm.ts';
import { freePort } from '../support/xvnc.ts';

const HALF_OPEN = 2000;
/** `[porthole] handshake_timeout`, seconds: long enough that all 2 000 are held at once. */
const DEADLINE_S = 5;
const FLOOD_MS = 4000;
const FLOOD_CLIENTS = 128;
/** Descriptors this process and the gateway each need beyond the half-open ones. */
const SPARE_FDS = 1000;

/** Soft and hard `Max open files` of a process. */
function fdLimits(pid: number | 'self' = 'self'): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!;
  const [soft, hard] = line.split(/\s+/).slice(3, 5).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  return { soft: soft!, hard: hard! };
}

/** Raises this process's soft descriptor limit to `need` if the hard one allows; the daemon inherits it. */
function ensureFds(need: number): string | undefined {
  const { soft, hard } = fdLimits();
  if (soft >= need) return undefined;
  if (hard < need) return `the hard limit of open files is ${hard}; ${need} are needed`;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${need}:${hard === Infinity ? 'unlimited' : hard}`]);
  } catch (err) {
    return `cannot raise the soft limit of open files from ${soft} to ${need}: ${(err as Error).message}`;
  }
  return fdLimits().soft >= need ? undefined : `the soft limit of open files stayed at ${fdLimits().soft}`;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Echo round trips through the good console, timed, until `stop()`; failures kept. */
function timedEchoes(good: GoodConsole, everyMs = 20): { stop(): Promise<{ ms: number[]; failures: string[] }> } {
  const ms: number[] = [];
  const failures: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        await good.echo();
        ms.push(performance.now() - t0);
      } catch (err) {
        failures.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ms: ms.sort((a, b) => a - b), failures };
    },
  };
}

const figure = (label: string, ms: number[]) => `${label}: ${ms.length} echoes, p50 ${percentile(ms, 50).toFixed(2)} ms, p99 ${percentile(ms, 99).toFixed(2)} ms`;

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

describe('slowloris and a connection flood against one proxy (issue 15)', () => {
  const noFds = ensureFds(2 * HALF_OPEN + SPARE_FDS);
  let d: Daemon;
  let echo: TestBackend;
  let goodToken: string;
  let good: GoodConsole;
  let meter: LeakMeter;
  let baseline: Counts;
  let quiet: number[];
  const wsUrl = () => `ws://127.0.0.1:${d.consolePort}/websockify?token=${goodToken}`;

  before(async () => {
    if (noFds) return;
    echo = await echoBackend();
    const dir = tempDir('porthole-slowloris-');
    const db = `sqlite:///${join(dir, 'porthole.db')}`;
    const opt = (name: string, value: string) => (optionSpec('porthole', name) ? [`--porthole-${name}`, value] : []);
    d = await startDaemon('slowloris', await freePort(), await freePort(), [
      '--database-connection', db,
      '--porthole-handshake_timeout', String(DEADLINE_S),
      '--porthole-rfb_handshake_timeout', String(DEADLINE_S),
      // every storm client is 127.0.0.1: the per-address budgets have their own tests and would
      // turn the flood's unknown tokens into 429s for the good console too
      ...opt('failed_lookup_budget', '0'),
      ...opt('max_consoles_per_client', '0'),
    ]);
    const r = await porthole(['token', 'create', '--instance-uuid', '11e4a7c0-0000-4000-8000-c00000000001', '--host', '127.0.0.1', '--port', String(echo.port), '--ttl', '3600', '--json', '--database-connection', db]);
    assert.equal(r.code, 0, r.stderr);
    goodToken = (JSON.parse(r.stdout) as { token: string }).token;
    const pid = d.process.pid!;
    const limits = fdLimits(pid);
    assert.ok(limits.soft >= HALF_OPEN + SPARE_FDS, `the gateway may open only ${limits.soft} files`);
    meter = leakMeter({
      'gateway descriptors': () => openDescriptors(pid),
      'connections to the backend': () => connectionsTo(echo.port),
    });
    good = await goodConsole(wsUrl());
    const echoes = timedEchoes(good);
    await new Promise((r) => setTimeout(r, 2000));
    const q = await echoes.stop();
    assert.deepEqual(q.failures, []);
    quiet = q.ms;
    console.log(`# ${figure('quiet', quiet)}; gateway RSS ${mib(rssOf(pid))}, soft fd limit ${limits.soft}`);
    baseline = await meter.read();
  });
  after(async () => {
    good?.close();
    await stopDaemon(d);
    await echo?.close();
  });

  it(`a. ${HALF_OPEN} half-open upgrades: the good console relays, each is closed by handshake_timeout, descriptors come back`, { skip: noFds }, async () => {
    const pid = d.process.pid!;
    const rssBefore = rssOf(pid);
    const echoes = timedEchoes(good);
    const clients: RawClient[] = [];
    const trickles: NodeJS.Timeout[] = [];
    const head = upgradeRequest(d.consolePort, `/websockify?token=${goodToken}`).split('\r\n');
    try {
      // in batches, as the listen backlog allows
      for (let i = 0; i < HALF_OPEN; i += 200) {
        const batch = await Promise.all(Array.from({ length: Math.min(200, HALF_OPEN - i) }, () => RawClient.open(d.consolePort)));
        for (const [j, c] of batch.entries()) {
          const kind = (i + j) % 3;
          if (kind === 0) {
            // the request line and one header, then one more header line every 500 ms, never the blank line
            c.write(`${head[0]}\r\n${head[1]}\r\n`);
            let n = 0;
            trickles.push(setInterval(() => c.write(`X-Slow-${n++}: ${'a'.repeat(10)}\r\n`), 500));
          } else if (kind === 1) c.write(`${head.slice(0, 4).join('\r\n')}\r\n`);
          // kind 2: connected, nothing sent
        }
        clients.push(...batch);
      }
      // all of them are held by the gateway at once (once it accepted the last from its backlog), or the test tried less than it says
      const stillOpen = clients.filter((c) => !c.ended).length;
      let held = 0;
      await eventually('the gateway holding the half-open connections', () => (held = openDescriptors(pid)) - baseline['gateway descriptors']! >= stillOpen * 0.95, 3000).catch(() => {
        assert.fail(`the gateway holds ${held - baseline['gateway descriptors']!} more descriptors with ${stillOpen} half-open connections`);
      });
      const rssHeld = rssOf(pid);
      const fresh = await goodConsole(wsUrl());
      await fresh.echo();
      fresh.close();
      // each is closed by the gateway (the clients never close): within the deadline and Node's check interval
      await eventually('every half-open connection closed by the gateway', () => clients.every((c) => c.ended), (DEADLINE_S + 10) * 1000);
      const { ms, failures } = await echoes.stop();
      assert.deepEqual(failures, [], 'the good console failed during the slowloris');
      const statuses = new Map<string, number>();
      for (const c of clients) statuses.set(String(c.status ?? 'none'), (statuses.get(String(c.status ?? 'none')) ?? 0) + 1);
      const after = await settled(meter, baseline, 10_000);
      console.log(`# a. slowloris: ${HALF_OPEN} half-open connections, ${stillOpen} held at once; gateway descriptors ${baseline['gateway descriptors']} -> ${held} -> ${after['gateway descriptors']}; RSS ${mib(rssBefore)} -> ${mib(rssHeld)} held -> ${mib(rssOf(pid))} after; answers ${[...statuses].map(([k, v]) => `${k}: ${v}`).join(', ')}; ${figure('echo during', ms)}`);
    } finally {
      for (const t of trickles) clearInterval(t);
      for (const c of clients) c.destroy();
      await echoes.stop();
    }
  });

  it('b. a connection flood: the good console relays, a new one opens during it, nothing is left open', { skip: noFds }, async () => {
    const pid = d.process.pid!;
    const rssBefore = rssOf(pid);
    const echoes = timedEchoes(good);
    const counts = { 'connect/close': 0, garbage: 0, 'no key': 0, 'unknown token': 0 };
    const errors: string[] = [];
    const until = Date.now() + FLOOD_MS;
    const bad = upgradeRequest(d.consolePort, '/websockify?token=no-such-token-0000');
    const noKey = upgradeRequest(d.consolePort, '/websockify?token=no-such-token').replace(/Sec-WebSocket-Key: .*\r\n/, '');
    const once = (i: number) =>
      new Promise<void>((resolve) => {
        const s: Socket = connect({ port: d.consolePort, host: '127.0.0.1' });
        const kind = i % 4;
        s.on('error', (err) => {
          if (errors.length < 3) errors.push(err.message);
          resolve();
        });
        s.on('close', () => resolve());
        s.on('data', () => {});
        s.once('connect', () => {
          if (kind === 0) {
            counts['connect/close']++;
            s.destroy();
            resolve();
          } else if (kind === 1) {
            counts.garbage++;
            s.end('\x16\x03\x01\x00\xff garbage\r\n\r\n');
          } else if (kind === 2) {
            counts['no key']++;
            s.write(noKey);
          } else {
            counts['unknown token']++;
            s.write(bad);
          }
          // the proxy answers each with a status (or a close) and closes; the client goes after a while regardless
          setTimeout(() => s.destroy(), 2000).unref();
        });
      });
    const worker = async (w: number) => {
      for (let i = w; Date.now() < until; i += FLOOD_CLIENTS) await once(i);
    };
    const flood = Promise.all(Array.from({ length: FLOOD_CLIENTS }, (_, w) => worker(w)));
    await new Promise((r) => setTimeout(r, FLOOD_MS / 2));
    const rssDuring = rssOf(pid);
    const fdsDuring = openDescriptors(pid);
    const fresh = await goodConsole(wsUrl());
    await fresh.echo();
    fresh.close();
    await flood;
    const { ms, failures } = await echoes.stop();
    assert.deepEqual(failures, [], 'the good console failed during the flood');
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    assert.ok(total > 1000, `only ${total} connections in the flood`);
    await good.echo();
    const after = await settled(meter, baseline, 10_000);
    console.log(`# b. flood: ${total} connections in ${FLOOD_MS / 1000} s (${Math.round(total / (FLOOD_MS / 1000))}/s: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}; ${errors.length} client errors${errors.length ? `: ${errors[0]}` : ''}); gateway descriptors ${baseline['gateway descriptors']} -> ${fdsDuring} during -> ${after['gateway descriptors']}; RSS ${mib(rssBefore)} -> ${mib(rssDuring)} during -> ${mib(rssOf(pid))} after; ${figure('echo during', ms)} (${figure('quiet', quiet)})`);
  });
});
