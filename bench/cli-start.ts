/**
 * @module bench/cli-start
 * How long the CLI takes from exec to exit, beside Node itself: `node -e 0`, `porthole --version`
 * and `porthole token create` on a temporary SQLite file (migrated once before), each run N times
 * one after the other (`npm run bench:cli -- 30`; default 20), wall time per run from spawn to
 * exit, median and p90. The porthole commands run as `npx porthole` does (`node bin/porthole.js`):
 * from dist/ when it is fresh (`npm run build` first), and once more from the sources
 * (PORTHOLE_RUN_SOURCES=1) for comparison. Writes its section of bench/RESULTS.md (between
 * `<!-- cli-start -->` markers, so `npm run bench`'s rewrite of the file keeps it), replacing
 * the previous run's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSection } from './results-file.ts';
// @ts-expect-error: bin/launch.js is plain JavaScript without types
import { freshDist } from '../bin/launch.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNS = Number(process.argv[2] ?? 20);
const SERVER = '3f1e2d4c-5b6a-4978-8a6b-5c4d3e2f1a0b';

interface Case {
  readonly name: string;
  readonly argv: string[];
  readonly env?: Record<string, string>;
}

function timeRuns(c: Case): number[] {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, c.argv, { cwd: ROOT, env: { ...process.env, ...c.env }, encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) throw new Error(`${c.name} exited ${r.status}: ${r.stderr}`);
    times.push(ms);
  }
  return times.sort((a, b) => a - b);
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;

const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-cli-'));
try {
  const db = ['--database-connection', `sqlite:///${join(dir, 'bench.db')}`];
  const create = ['bin/porthole.js', 'token', 'create', '--instance-uuid', SERVER, '--host', '127.0.0.1', '--port', '5900', '--json', ...db];
  spawnSync(process.execPath, ['bin/porthole.js', 'db', 'migrate', ...db], { cwd: ROOT });
  const dist = freshDist(ROOT, {}) as boolean;
  const sources = { PORTHOLE_RUN_SOURCES: '1' };
  const cases: Case[] = [
    { name: 'node -e 0', argv: ['-e', '0'] },
    ...(dist ? [{ name: 'porthole --version (dist/)', argv: ['bin/porthole.js', '--version'] }, { name: 'porthole token create (dist/)', argv: create }] : []),
    { name: 'porthole --version (sources, tsx)', argv: ['bin/porthole.js', '--version'], env: sources },
    { name: 'porthole token create (sources, tsx)', argv: create, env: sources },
  ];
  const rows: string[] = [];
  for (const c of cases) {
    const t = timeRuns(c);
    const row = `| ${c.name} | ${quantile(t, 0.5).toFixed(0)} | ${quantile(t, 0.9).toFixed(0)} |`;
    process.stdout.write(`${row}\n`);
    rows.push(row);
  }
  const section = [
    '<!-- cli-start -->',
    `## CLI start-up (${new Date().toISOString().slice(0, 10)}, \`npm run bench:cli -- ${RUNS}\`)`,
    '',
    `Wall time from spawn to exit, ${RUNS} runs each, one after the other; Node ${process.version}, ${cpus().length} CPUs,`,
    `load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end. \`token create\` on a temporary SQLite file,`,
    `already migrated. dist/ ${dist ? 'was fresh (`npm run build`)' : 'was missing or stale: only the sources were timed'}.`,
    '',
    '| command | median ms | p90 ms |',
    '|---|---|---|',
    ...rows,
    '<!-- /cli-start -->',
  ].join('\n');
  writeSection('<!-- cli-start -->', '<!-- /cli-start -->', `${section}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
