/**
 * @module bench/serial-first-byte
 * The serial console's open → first byte (issue 19: p50 ≤ 0.5 ms, p99 ≤ 1.5 ms), placed against
 * what the machine allows: raw TCP to the console port, the floor of any WebSocket proxy in Node
 * (`bench/ws-floor.ts`), `porthole serialproxy` from this checkout and, with `--baseline DIR`,
 * from another checkout. The backend is `bench/serial.ts --backend`'s console port (it greets with
 * one byte). The client is lean, so that it measures the proxies and not itself: the upgrade
 * request is one prebuilt write on a plain socket, the 101 is found by its blank line and the
 * greeting by the 3 bytes of its frame (a `ws` client adds about 0.3 ms of its own per open
 * here). Sequential connections, interleaved path by path (the order turning over each round),
 * each closed and gone before the next; prints open → 101 (for raw TCP: connect) and open →
 * first byte, p50 / p90 / p99 (nearest rank), and each proxy's CPU per open (utime + stime over
 * the measured connections, 10 ms ticks). Never writes bench/RESULTS.md.
 *
 * Usage: node --import tsx bench/serial-first-byte.ts [--connections 1000] [--root DIR] [--baseline DIR]
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { firstLine, freePort, loadAverage, LOOPBACK, noConsoleLimits, processUsage, ROOT, startChild, stopAll, tempDirs, waitForPort } from './procs.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

interface Target {
  readonly name: string;
  /** `tcp:PORT`, else a ws:// URL */
  readonly url: string;
  readonly pid: number | null;
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
}

async function startPorthole(root: string, name: string, consolePort: number): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-first-byte-'));
  tempDirs.add(dir);
  const port = await freePort();
  const common = ['--database-connection', `sqlite:///${join(dir, 'porthole.db')}`, '--serial_console-serialproxy_host', LOOPBACK, '--serial_console-serialproxy_port', String(port)];
  const minted = execFileSync(process.execPath, [join(root, 'bin/porthole.js'), 'token', 'create', '--console-type', 'serial', '--instance-uuid', randomUUID(), '--host', LOOPBACK, '--port', String(consolePort), '--ttl', '86400', '--json', ...common], { cwd: root, env: { ...process.env, NODE_OPTIONS: '' } });
  const child = startChild(name, process.execPath, [join(root, 'bin/porthole.js'), 'serialproxy', ...common, '--porthole-log_level', 'warn', ...noConsoleLimits(root)]);
  child.proc.stdout!.resume();
  await waitForPort(child, port, 30_000);
  return { name, url: (JSON.parse(minted.toString()) as { url: string }).url, pid: child.pid };
}

/** One connection: [open → 101 (raw TCP: connected), open → first byte] in ms, closed and gone before it resolves. */
function once(target: Target): Promise<[number, number]> {
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    let t101 = 0n;
    const raw = target.url.startsWith('tcp:');
    const u = raw ? null : new URL(target.url);
    const s = connect({ host: LOOPBACK, port: raw ? Number(target.url.slice(4)) : Number(u!.port), noDelay: true });
    const done = () => {
      const t1 = process.hrtime.bigint();
      s.removeAllListeners('data');
      s.destroy();
      s.once('close', () => resolvePromise([Number(t101 - t0) / 1e6, Number(t1 - t0) / 1e6]));
    };
    s.once('error', reject);
    if (raw) {
      s.once('connect', () => (t101 = process.hrtime.bigint()));
      s.once('data', done);
      return;
    }
    s.once('connect', () => s.write(`GET ${u!.pathname}${u!.search} HTTP/1.1\r\nHost: ${u!.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n`));
    let got = Buffer.alloc(0);
    let head = -1;
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (head < 0) {
        head = got.indexOf('\r\n\r\n');
        if (head < 0) return;
        if (!got.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 101')) return reject(new Error(`${target.name}: ${got.subarray(0, got.indexOf('\r\n')).toString('latin1')}`));
        t101 = process.hrtime.bigint();
      }
      // a binary frame of the 1-byte greeting: 0x82, length 1, the byte
      if (got.length >= head + 4 + 3) done();
    });
  });
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

async function main(): Promise<void> {
  const n = Number(option('--connections') ?? 1000);
  const root = resolve(option('--root') ?? ROOT);
  const baseline = option('--baseline');
  const backend = startChild('backend', process.execPath, ['--import', 'tsx', join(HERE, 'serial.ts'), '--backend', '1024']);
  const { consolePort } = JSON.parse(await firstLine(backend, 20_000)) as { consolePort: number };
  const floor = startChild('WS floor', process.execPath, ['--import', 'tsx', join(HERE, 'ws-floor.ts'), String(consolePort)]);
  const floorPort = (JSON.parse(await firstLine(floor, 20_000)) as Record<string, number>)[String(consolePort)]!;
  const targets: Target[] = [
    { name: 'raw TCP', url: `tcp:${consolePort}`, pid: null },
    { name: 'WS floor', url: `ws://${LOOPBACK}:${floorPort}/`, pid: floor.pid },
    await startPorthole(root, 'Porthole', consolePort),
  ];
  if (baseline) targets.push(await startPorthole(resolve(baseline), 'baseline', consolePort));
  for (let i = 0; i < 50; i++) for (const t of targets) await once(t);
  const cpu = (t: Target) => (t.pid === null ? 0 : processUsage(t.pid).user + processUsage(t.pid).sys);
  const before = targets.map(cpu);
  const samples = targets.map(() => ({ open: [] as number[], first: [] as number[] }));
  process.stdout.write(`serial first byte: ${n} sequential connections per path, interleaved, load ${loadAverage()}\n`);
  for (let i = 0; i < n; i++) {
    const order = i % 2 ? [...targets.keys()].reverse() : [...targets.keys()];
    for (const k of order) {
      const [open, first] = await once(targets[k]!);
      samples[k]!.open.push(open);
      samples[k]!.first.push(first);
    }
  }
  const after = targets.map(cpu);
  const f = (x: number) => x.toFixed(3);
  for (const [k, t] of targets.entries()) {
    const s = samples[k]!;
    const perOpen = t.pid === null ? '' : `  proxy CPU per open ${f(((after[k]! - before[k]!) * 1000) / n)} ms`;
    process.stdout.write(`  ${t.name.padEnd(9)} ${t.url.startsWith('tcp:') ? 'connect' : '101    '} p50 ${f(quantile(s.open, 0.5))} ms | first byte p50 ${f(quantile(s.first, 0.5))}  p90 ${f(quantile(s.first, 0.9))}  p99 ${f(quantile(s.first, 0.99))} ms${perOpen}\n`);
  }
  process.stdout.write(`load ${loadAverage()}\n`);
}

try {
  await main();
} finally {
  await stopAll();
}
