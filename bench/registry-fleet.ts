/**
 * @module bench/registry-fleet
 * What a fleet of proxies costs the sessions registry's store (issue 20): P proxies (each a
 * `SessionTracker` with its own registry and token-check handles, in this process, with the
 * concurrent-console limits on so each writes its counts and reads the others') hold N idle
 * consoles between them (sessions with no sockets, each with a real token row or key) on one
 * PostgreSQL database or one Redis prefix, at the default 5 s heartbeat. Over a steady window it
 * counts what the store is asked and does:
 *
 * - PostgreSQL: statements (a Kysely plugin on every handle), rows written and rows read
 *   (`pg_stat_user_tables` deltas of Porthole's tables), and the CPU of every `postgres` process
 *   (`/proc`);
 * - Redis: commands (`INFO commandstats` deltas: MULTI/EXEC and the commands scripts run
 *   included, the whole server, so nothing else should use it meanwhile), of which script calls,
 *   and the server's CPU (`INFO cpu`);
 * - the proxies' CPU (this process).
 *
 * Then it fits ops/s = a·P + b·N by least squares over the runs and extrapolates to 20 proxies
 * and 100 000 consoles. Writes its `<!-- registry-fleet -->` section of bench/RESULTS.md.
 *
 * Usage: npm run bench:fleet [-- --quick]   (--quick: 2 heartbeats a run instead of 4)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { pino } from 'pino';
import { openStores, type OpenedStores } from '../src/database/index.ts';
import { RedisRegistry } from '../src/database/redis/registry.ts';
import { SqlRegistry } from '../src/database/sql/registry.ts';
import { SqlTokenPresence } from '../src/database/sql/token-presence.ts';
import { ConsoleLimits } from '../src/proxy/console-limits.ts';
import { SessionTracker } from '../src/sessions/tracker.ts';
import type { RegistryBackend, TokenPresence } from '../src/sessions/types.ts';
import { hashToken } from '../src/store/types.ts';
import { fakeSession, SqlCounter, withoutEvents } from '../test/support/store-ops.ts';
import { freshPostgres, freshRedis } from '../test/support/stores.ts';
import { writeSection } from './results-file.ts';

const HEARTBEAT_MS = 5000;
const BEATS = process.argv.includes('--quick') ? 2 : 4;
// FLEET_RUNS=4x0,1x4000 runs those alone (for a look at one case)
const ONLY = process.env['FLEET_RUNS']?.split(',').map((r) => r.split('x').map(Number) as [number, number]);
const PROXIES = [1, 2, 4];
const CONSOLES = [0, 4000];
const TARGET = { proxies: 20, consoles: 100_000 };
/** Tokens in the PostgreSQL table besides the consoles' own. */
const PAD_TOKENS = 100_000;
const log = pino({ level: 'silent' });

interface Probe {
  /** Operations, rows written, rows read (SQL) or script calls (Redis), store CPU seconds (by process), so far. */
  read(): Promise<{ ops: number; written: number; read: number; tokenRead?: number; exists?: number; cpu: Map<string, number> }>;
}

interface StoreKind {
  readonly name: string;
  readonly opsName: string;
  /** A proxy's registry and token check, on handles of its own. */
  proxy(): Promise<{ registry: RegistryBackend; presence: TokenPresence; close(): Promise<void> }>;
  readonly stores: OpenedStores;
  readonly probe: Probe;
  cleanup(): Promise<void>;
}

interface Run {
  readonly proxies: number;
  readonly consoles: number;
  readonly opsPerS: number;
  /** Redis: the commands the proxies sent (those that scripts ran taken off: the token check's EXISTS, all EXISTS but the heartbeats' own). */
  readonly sentPerS: number;
  readonly writtenPerS: number;
  readonly readPerS: number;
  readonly tokenReadPerS: number;
  readonly storeCpu: number;
  readonly proxyCpu: number;
}

/** CPU seconds of each `postgres` process by pid (backends come and go: a delta counts those of both reads, and new ones whole). */
function postgresCpu(): Map<string, number> {
  const tick = 100;
  const out = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out.set(pid, (Number(fields[11]) + Number(fields[12])) / tick);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function cpuDelta(before: Map<string, number>, after: Map<string, number>): number {
  let d = 0;
  for (const [pid, t] of after) d += t - (before.get(pid) ?? 0);
  return d;
}

async function postgres(): Promise<StoreKind> {
  const db = await freshPostgres();
  const stores = await openStores(db.url, { migrate: true });
  // a token table of a busy cloud's size, so that PostgreSQL plans the token check as it would
  // there (index probes; on a table of a few thousand rows it scans the table instead)
  await db.query("INSERT INTO console_auth_tokens (token_hash, console_type, host, port, instance_uuid, expires) SELECT encode(sha256(('pad' || i)::bytea), 'hex'), 'novnc', '127.0.0.1', 5900, '7a1b2c3d-4e5f-4a6b-8c7d-1e2f3a4b5c6d', 2000000000 FROM generate_series(1, $1::int) i", [PAD_TOKENS]);
  await db.query('ANALYZE console_auth_tokens');
  const plugins: SqlCounter[] = [];
  const handles: OpenedStores[] = [];
  return {
    name: 'PostgreSQL',
    opsName: 'statements',
    stores,
    async proxy() {
      const own = await openStores(db.url, { migrate: false });
      handles.push(own);
      const h = own.handles.own!;
      if (h.kind !== 'sql') throw new Error('not SQL');
      const plugin = new SqlCounter(h.database.db);
      plugins.push(plugin);
      const counted = { ...h.database, db: h.database.db.withPlugin(plugin) };
      return { registry: new SqlRegistry(counted, { pollMs: 500, idlePollMs: HEARTBEAT_MS }), presence: new SqlTokenPresence(counted), close: () => own.close() };
    },
    probe: {
      async read() {
        if (process.env['FLEET_TABLES']) process.stdout.write(`${JSON.stringify(await db.query("SELECT relname, seq_scan, seq_tup_read, idx_scan, idx_tup_fetch, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relname LIKE 'porthole_%' OR relname = 'console_auth_tokens'"))}\n`);
        // the registry's tables; the token table's reads are the token check's, apart
        const rows = await db.query<{ w: string; r: string; t: string }>(
          "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FILTER (WHERE relname <> 'console_auth_tokens')::text AS w, sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)) FILTER (WHERE relname <> 'console_auth_tokens')::text AS r, sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)) FILTER (WHERE relname = 'console_auth_tokens')::text AS t FROM pg_stat_user_tables WHERE relname IN ('porthole_proxies', 'porthole_sessions', 'porthole_session_events', 'console_auth_tokens')",
        );
        return { ops: plugins.reduce((n, p) => n + p.statements.length, 0), written: Number(rows[0]?.w ?? 0), read: Number(rows[0]?.r ?? 0), tokenRead: Number(rows[0]?.t ?? 0), cpu: postgresCpu() };
      },
    },
    async cleanup() {
      for (const h of handles) await h.close().catch(() => {});
      await stores.close();
      await db.drop();
    },
  };
}

async function redis(): Promise<StoreKind> {
  const r = await freshRedis();
  const stores = await openStores(r.url, { migrate: true, redisKeyPrefix: r.prefix });
  const handles: OpenedStores[] = [];
  const stat = async () => {
    const info = await r.redis.info('commandstats');
    let calls = 0;
    let evals = 0;
    let exists = 0;
    for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) {
      if (m[1] !== 'info') calls += Number(m[2]);
      if (m[1] === 'exists') exists += Number(m[2]);
      if (m[1] === 'eval' || m[1] === 'evalsha') evals += Number(m[2]);
    }
    const cpu = await r.redis.info('cpu');
    const sec = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0);
    return { calls, evals, exists, cpu: sec('used_cpu_user') + sec('used_cpu_sys') };
  };
  return {
    name: 'Redis',
    opsName: 'commands',
    stores,
    async proxy() {
      const own = await openStores(r.url, { migrate: false, redisKeyPrefix: r.prefix });
      handles.push(own);
      const h = own.handles.own!;
      if (h.kind !== 'redis') throw new Error('not Redis');
      return { registry: new RedisRegistry(h.redis), presence: own.presence!, close: () => own.close() };
    },
    probe: {
      async read() {
        const s = await stat();
        return { ops: s.calls, written: 0, read: s.evals, exists: s.exists, cpu: new Map([['redis', s.cpu]]) };
      },
    },
    async cleanup() {
      for (const h of handles) await h.close().catch(() => {});
      await stores.close();
      await r.drop();
    },
  };
}

async function runOne(kind: StoreKind, tokens: string[], proxies: number, consoles: number): Promise<Run> {
  const fleet: Array<{ tracker: SessionTracker; limits: ConsoleLimits; close(): Promise<void> }> = [];
  for (let p = 0; p < proxies; p++) {
    const { registry, presence, close } = await kind.proxy();
    const limits = new ConsoleLimits({ total: 1_000_000, perServer: 1000, perProject: 0, perClient: 1000, refreshMs: HEARTBEAT_MS, log });
    const tracker = new SessionTracker(withoutEvents(registry), presence, { heartbeatMs: HEARTBEAT_MS, address: `127.0.0.1:${6080 + p}`, log, load: () => limits.load() });
    await tracker.start();
    await limits.watch({ proxies: () => registry.proxies(), ownProxyId: tracker.proxy.id });
    fleet.push({ tracker, limits, close });
  }
  for (let i = 0; i < consoles; i++) {
    const s = fakeSession(tokens[i]!, i);
    const owner = fleet[i % proxies]!;
    owner.limits.admit({ instance: s.info.instanceUuid, project: null, client: s.info.client.split(':')[0]! });
    owner.tracker.started(s);
  }
  // the sessions written, the first heartbeats past
  await new Promise((r) => setTimeout(r, HEARTBEAT_MS + 1500));
  const before = await kind.probe.read();
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, BEATS * HEARTBEAT_MS));
  const after = await kind.probe.read();
  const cpu = process.cpuUsage(cpu0);
  const s = (Date.now() - t0) / 1000;
  for (const f of fleet) {
    await f.limits.close();
    await f.tracker.stop();
    await f.close();
  }
  return {
    proxies,
    consoles,
    opsPerS: (after.ops - before.ops) / s,
    sentPerS: (after.ops - before.ops) / s - (after.exists === undefined ? 0 : Math.max(0, (after.exists - (before.exists ?? 0)) / s - proxies / (HEARTBEAT_MS / 1000))),
    writtenPerS: (after.written - before.written) / s,
    readPerS: (after.read - before.read) / s,
    tokenReadPerS: ((after.tokenRead ?? 0) - (before.tokenRead ?? 0)) / s,
    storeCpu: cpuDelta(before.cpu, after.cpu) / s,
    proxyCpu: (cpu.user + cpu.system) / 1e6 / s,
  };
}

/**
 * The cost per proxy from the runs without consoles (least squares of y = a·P + c·P²: each
 * proxy's sweep and limits read every proxy's record), and per console from the single-proxy
 * runs (y(1, N) − y(1, 0)) / N: there a proxy holds more than 1 200 consoles, past the token
 * check's minimum of 100 a heartbeat, as a proxy of the target fleet (5 000) does.
 */
function fit(runs: readonly Run[], y: (r: Run) => number): { a: number; b: number; c: number } {
  const empty = runs.filter((r) => r.consoles === 0);
  let pp = 0, pq = 0, qq = 0, py = 0, qy = 0;
  for (const r of empty) {
    const p = r.proxies, q = p * p;
    pp += p * p;
    pq += p * q;
    qq += q * q;
    py += p * y(r);
    qy += q * y(r);
  }
  const det = pp * qq - pq * pq;
  const one = runs.filter((r) => r.proxies === 1).sort((x, z) => x.consoles - z.consoles);
  const b = one.length >= 2 ? (y(one.at(-1)!) - y(one[0]!)) / (one.at(-1)!.consoles - one[0]!.consoles) : 0;
  return { a: (py * qq - qy * pq) / det, b, c: (pp * qy - pq * py) / det };
}

const f = (n: number, d = 1) => n.toFixed(d);
const sections: string[] = [];
for (const open of [postgres, redis]) {
  const kind = await open();
  try {
    const tokens: string[] = [];
    const max = Math.max(...CONSOLES);
    for (let i = 0; i < max; i += 50) {
      const made = await Promise.all(Array.from({ length: Math.min(50, max - i) }, () => kind.stores.tokens.create({ consoleType: 'novnc', host: '127.0.0.1', port: 5900, instanceUuid: '7a1b2c3d-4e5f-4a6b-8c7d-1e2f3a4b5c6d', accessUrlBase: null, ttl: 7200 })));
      tokens.push(...made.map((m) => hashToken(m.token)));
    }
    const runs: Run[] = [];
    for (const p of PROXIES) {
      for (const n of CONSOLES) {
        if (ONLY && !ONLY.some(([op, on]) => op === p && on === n)) continue;
        const r = await runOne(kind, tokens, p, n);
        runs.push(r);
        process.stdout.write(`${kind.name} P=${p} N=${n}: ${f(r.opsPerS)} ${kind.opsName}/s, ${f(r.writtenPerS)} rows written/s, ${f(r.readPerS)} ${kind.name === 'Redis' ? 'script calls' : 'registry rows read'}/s, ${f(r.tokenReadPerS)} token rows read/s, store CPU ${f(r.storeCpu * 100, 2)} %, proxies' CPU ${f(r.proxyCpu * 100, 2)} %\n`);
      }
    }
    const ops = fit(runs, (r) => r.opsPerS);
    const sent = fit(runs, (r) => r.sentPerS);
    const rd = fit(runs, (r) => r.readPerS);
    const tk = fit(runs, (r) => r.tokenReadPerS);
    const cpu = fit(runs, (r) => r.storeCpu);
    const pcpu = fit(runs, (r) => r.proxyCpu);
    const at = (x: { a: number; b: number; c: number }) => x.a * TARGET.proxies + x.c * TARGET.proxies * TARGET.proxies + x.b * TARGET.consoles;
    const readName = kind.name === 'Redis' ? 'of which script calls/s' : 'registry rows read/s (pg_stat_user_tables)';
    const sql = kind.name !== 'Redis';
    sections.push(
      [
        `### ${kind.name}`,
        '',
        `| proxies | idle consoles | ${kind.opsName}/s | ${sql ? 'registry rows written/s | ' : 'sent by the proxies/s | '}${readName} | ${sql ? 'token rows read/s | ' : ''}store CPU % of a core | proxies' CPU % of a core |`,
        `|---|---|---|---|${sql ? '---|' : ''}---|---|---|`,
        ...runs.map((r) => `| ${r.proxies} | ${r.consoles} | ${f(r.opsPerS)} | ${sql ? `${f(r.writtenPerS)} | ` : `${f(r.sentPerS)} | `}${f(r.readPerS)} | ${sql ? `${f(r.tokenReadPerS)} | ` : ''}${f(r.storeCpu * 100, 2)} | ${f(r.proxyCpu * 100, 2)} |`),
        '',
        `Fitted, y = a·P + c·P² + b·N (a and c by least squares over the runs without consoles, b from the single-proxy runs): ${kind.opsName}/s a = ${f(ops.a, 2)}, c = ${f(ops.c, 3)}, b = ${f(ops.b, 4)} per console; ${readName.split(' (')[0]} a = ${f(rd.a, 2)}, c = ${f(rd.c, 3)}, b = ${f(rd.b, 4)}${sql ? `; token rows read/s b = ${f(tk.b, 4)} per console` : ''}; store CPU ${f(cpu.a * 100, 3)} % per proxy, ${f(cpu.b * 100 * 1000, 4)} % per 1 000 consoles; proxies' CPU ${f(pcpu.a * 100, 3)} % per proxy, ${f(pcpu.b * 100 * 1000, 4)} % per 1 000 consoles.`,
        '',
        sql ? `The token table holds ${PAD_TOKENS.toLocaleString('en')} other tokens besides the consoles' own, so that the token check is planned as in a busy cloud (index probes: N/60 rows a second; on a table of a few thousand rows PostgreSQL scans it instead).` : 'Commands per console are the EXISTS that the token-check script runs (N/60 a second); the commands a proxy sends are one script call per heartbeat for them.',
        '',
        `**At ${TARGET.proxies} proxies × ${TARGET.consoles.toLocaleString('en')} consoles**: ${f(at(ops), 0)} ${kind.opsName}/s${sql ? '' : ` (${f(at(sent), 0)} sent by the proxies, the rest run by the token-check scripts)`}, ${f(at(rd), 0)} ${readName.split(' (')[0]}${sql ? `, ${f(at(tk), 0)} token rows read/s (the token check)` : ''}, store CPU about ${f((Math.max(...runs.filter((r) => r.consoles === 0).map((r) => r.storeCpu)) + Math.max(0, cpu.b) * TARGET.consoles) * 100, 1)} % of a core (the busiest run without consoles, plus the single proxy's CPU per console times ${TARGET.consoles.toLocaleString('en')}: the per-proxy CPU is below what is measured here, ${f(Math.min(...runs.map((r) => r.storeCpu)) * 100, 2)}–${f(Math.max(...runs.map((r) => r.storeCpu)) * 100, 2)} % in every run, 10 ms ticks over ${BEATS * HEARTBEAT_MS / 1000} s and the store's own housekeeping).`,
        '',
      ].join('\n'),
    );
  } finally {
    await kind.cleanup();
  }
}

const section = [
  '<!-- registry-fleet -->',
  `## Sessions registry: a fleet on one store (${new Date().toISOString().slice(0, 10)}, \`npm run bench:fleet\`)`,
  '',
  `P proxies (session trackers in one process, each with its own store handles, limits on) holding N idle consoles between them,`,
  `heartbeat ${HEARTBEAT_MS / 1000} s (the default), ${BEATS} heartbeats measured per run after the sessions were written; Node ${process.version},`,
  `${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end. Before issue 20 the same fleet cost`,
  '(P + N)/5 row writes/s and 0.2·P·N rows read/s on PostgreSQL, (7P + P² + 5N + P·N)/5 commands/s on Redis (issue 20\'s figures):',
  'about 20 000 UPDATEs/s and 500 000 Redis commands/s at 20 × 100 000. Now a console costs a write when it opens and ends;',
  'what remains per console is the token check going round every live token once a minute: one SELECT … IN per proxy per',
  'heartbeat on PostgreSQL (N/60 index probes a second), one script of EXISTS per proxy per heartbeat on Redis (N/60 EXISTS',
  'a second, counted in its commands).',
  '',
  ...sections,
  '<!-- /registry-fleet -->',
].join('\n');
writeSection('<!-- registry-fleet -->', '<!-- /registry-fleet -->', `${section}\n`);
process.stdout.write('written to bench/RESULTS.md\n');
process.exit(0);
