/**
 * @module bench/store
 * What the token store costs per backend: token validation latency (the lookup every console
 * connection makes before anything else), p50 and p99; mint throughput, one at a time and with
 * 16 in flight (the API under load); and, for single-use tokens, the consume + release pair.
 * Backends: the embedded SQLite file, and the machine's PostgreSQL (127.0.0.1:5432), MariaDB
 * (127.0.0.1:3306) and Redis (127.0.0.1:6379), each in a fresh database or key prefix made for
 * the run and removed after. Everything goes through `openStores`, as the proxy does (pool,
 * timeouts and error mapping included).
 *
 * Prints a table and writes it into `bench/RESULTS.md` between `<!-- store -->` and
 * `<!-- /store -->`, replacing an earlier run's block, or before `## History` the first time;
 * the rest of the file is left as it is.
 *
 * Usage: node --import tsx bench/store.ts [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStores, type OpenedStores as Stores } from '../src/database/index.ts';
import type { ConsoleToken, NewConsoleToken } from '../src/store/types.ts';
import { freshMariadb, freshPostgres, freshRedis } from '../test/support/stores.ts';
import { writeSection } from './results-file.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(HERE, 'RESULTS.md');
const BEGIN = '<!-- store -->';
const END = '<!-- /store -->';
const CONCURRENCY = 16;

interface Plan {
  readonly quick: boolean;
  readonly warmup: number;
  readonly lookups: number;
  readonly mintsSequential: number;
  readonly mintsConcurrent: number;
  readonly consumes: number;
}
const FULL: Plan = { quick: false, warmup: 200, lookups: 5000, mintsSequential: 2000, mintsConcurrent: 5000, consumes: 1000 };
const QUICK: Plan = { quick: true, warmup: 50, lookups: 1000, mintsSequential: 500, mintsConcurrent: 1000, consumes: 300 };

interface Backend {
  readonly name: string;
  /** Server version, for the report. */
  readonly version: string;
  readonly stores: Stores;
  cleanup(): Promise<void>;
}

interface Result {
  readonly name: string;
  readonly version: string;
  readonly lookupMs: number[];
  readonly mintSequentialPerSec: number;
  readonly mintConcurrentPerSec: number;
  readonly consumeMs: number[];
}

const SPEC: NewConsoleToken = { consoleType: 'novnc', host: '192.0.2.10', port: 5901, instanceUuid: '0b7c6c4e-6f2b-4d43-9d5e-0c1f3a8e2a11', accessUrlBase: 'http://127.0.0.1:6080/vnc_auto.html', ttl: 3600 };

async function sqliteBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-store-'));
  const stores = await openStores(`sqlite:///${join(dir, 'porthole.db')}`, { migrate: true });
  const { default: Sqlite } = await import('better-sqlite3');
  const version = (new Sqlite(':memory:').prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  return { name: 'SQLite (file, WAL)', version: `SQLite ${version}`, stores, cleanup: async () => { await stores.close(); rmSync(dir, { recursive: true, force: true }); } };
}

async function postgresBackend(): Promise<Backend> {
  const db = await freshPostgres();
  const [row] = await db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  const stores = await openStores(db.url, { migrate: true });
  return { name: 'PostgreSQL', version: `PostgreSQL ${row!.v.split(' ')[0]}`, stores, cleanup: async () => { await stores.close(); await db.drop(); } };
}

async function mariadbBackend(): Promise<Backend> {
  const db = await freshMariadb();
  const [row] = await db.query<{ v: string }>('SELECT VERSION() AS v');
  const stores = await openStores(db.url, { migrate: true });
  return { name: 'MariaDB', version: `MariaDB ${row!.v.split('-')[0]}`, stores, cleanup: async () => { await stores.close(); await db.drop(); } };
}

async function redisBackend(): Promise<Backend> {
  const r = await freshRedis();
  const info = await r.redis.info('server');
  const stores = await openStores(r.url, { migrate: true, redisKeyPrefix: r.prefix });
  return { name: 'Redis', version: `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'}`, stores, cleanup: async () => { await stores.close(); await r.drop(); } };
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
}

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

async function measure(b: Backend, plan: Plan): Promise<Result> {
  const { tokens } = b.stores;
  const minted: string[] = [];
  for (let i = 0; i < plan.warmup; i++) minted.push((await tokens.create(SPEC)).token);

  let t = process.hrtime.bigint();
  for (let i = 0; i < plan.mintsSequential; i++) minted.push((await tokens.create(SPEC)).token);
  const mintSequentialPerSec = plan.mintsSequential / (ms(t) / 1000);

  t = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next++ < plan.mintsConcurrent) minted.push((await tokens.create(SPEC)).token);
  }));
  const mintConcurrentPerSec = plan.mintsConcurrent / (ms(t) / 1000);

  for (let i = 0; i < plan.warmup; i++) await tokens.lookup(minted[i % minted.length]!);
  const lookupMs: number[] = [];
  for (let i = 0; i < plan.lookups; i++) {
    const token = minted[Math.floor(Math.random() * minted.length)]!;
    const s = process.hrtime.bigint();
    const found = await tokens.lookup(token);
    lookupMs.push(ms(s));
    if (found.status !== 'valid') throw new Error(`${b.name}: a minted token was ${found.status}`);
  }

  const records: ConsoleToken[] = [];
  for (let i = 0; i < plan.consumes; i++) {
    const found = await tokens.lookup(minted[i]!);
    if (found.status === 'valid') records.push(found.token);
  }
  const consumeMs: number[] = [];
  for (const record of records) {
    const s = process.hrtime.bigint();
    if ((await tokens.consume(record, '198.51.100.7', 30)) !== 'first') throw new Error(`${b.name}: consume did not win`);
    await tokens.release(record, '198.51.100.7');
    consumeMs.push(ms(s));
  }
  return { name: b.name, version: b.version, lookupMs, mintSequentialPerSec, mintConcurrentPerSec, consumeMs };
}

function render(plan: Plan, started: Date, results: Result[], load: { before: string; after: string }): string {
  const f = (n: number) => n.toFixed(3);
  const rows = results.map((r) => `| ${r.name} | ${r.version} | ${f(percentile(r.lookupMs, 0.5))} | ${f(percentile(r.lookupMs, 0.99))} | ${Math.round(r.mintSequentialPerSec)} | ${Math.round(r.mintConcurrentPerSec)} | ${f(percentile(r.consumeMs, 0.5))} | ${f(percentile(r.consumeMs, 0.99))} |`);
  return `${BEGIN}
## Token store benchmark

Latest run of \`node --import tsx bench/store.ts${plan.quick ? ' --quick' : ''}\`; rewritten by every run of that script (the other sections are not its own).

- date: ${started.toISOString()} (${plan.quick ? 'quick run' : 'full run'})
- machine: ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores, Linux ${release()}; Node ${process.version}
- load average (1, 5, 15 min) before the run: ${load.before}; after: ${load.after}
- per store: ${plan.mintsSequential} mints one at a time, ${plan.mintsConcurrent} mints ${CONCURRENCY} in flight, ${plan.lookups} validations, ${plan.consumes} consume + release pairs, after ${plan.warmup} warm-up mints and validations

| store | server | validate p50 ms | validate p99 ms | mint /s (1 at a time) | mint /s (${CONCURRENCY} in flight) | consume + release p50 ms | p99 ms |
|---|---|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}

How it was measured: one process, this script, opens each store with \`openStores\` as the proxy does (default \`[porthole] store_*\` options: a pool of 10 for PostgreSQL and MariaDB, one connection for Redis, one SQLite file in WAL mode with synchronous = NORMAL), in a fresh database or key prefix on the machine's own servers, all on 127.0.0.1 (no network between client and server). *Validate* is \`tokens.lookup(token)\` of a random token minted earlier: hash, one SELECT by \`token_hash\` (Redis: one HGETALL), sequential, timed one by one; it is what every console connection waits for before the backend is dialled. *Mint* is \`tokens.create\` (a UUID4, its SHA-256, one INSERT; Redis: one Lua script setting the token hash, its expiry and the instance index), timed over the whole batch. *Consume + release* is what a single-use token adds to a session: the INSERT … ON CONFLICT DO NOTHING (MariaDB: INSERT IGNORE; Redis: a Lua script) at connect and the UPDATE at the end. p99 is nearest-rank. The database servers are the distribution's defaults and share the machine's cores with this script: compare rows of one run, not numbers across runs or machines.
${END}
`;
}


async function main(): Promise<void> {
  const args = process.argv.slice(2);
  for (const a of args) if (a !== '--quick') throw new Error(`unknown argument ${a} (usage: bench/store.ts [--quick])`);
  const plan = args.includes('--quick') ? QUICK : FULL;
  const started = new Date();
  const before = loadavg().map((x) => x.toFixed(2)).join(' ');
  const results: Result[] = [];
  for (const open of [sqliteBackend, postgresBackend, mariadbBackend, redisBackend]) {
    const backend = await open();
    try {
      process.stdout.write(`${backend.name}…\n`);
      results.push(await measure(backend, plan));
    } finally {
      await backend.cleanup();
    }
  }
  const section = render(plan, started, results, { before, after: loadavg().map((x) => x.toFixed(2)).join(' ') });
  process.stdout.write(`\n${section}\n`);
  writeSection(BEGIN, END, section);
  process.stdout.write(`wrote ${RESULTS}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
  process.exit(1);
});
