/**
 * @module bench/serial
 * `npm run bench:serial`: the serial console path (a plain byte relay, no RFB) side by side on one
 * run: raw loopback TCP, Debian's websockify, Debian's nova-serialproxy and `porthole
 * serialproxy`, against the same backends in their own process (`--backend`): a console port
 * that greets with one byte and then echoes (as a serial console answers what is typed), and a
 * source that writes N bytes and stays open. For each path:
 *
 * - open → first byte (the greeting), over sequential connections: p50 and p99 (the open starts
 *   before the TCP connect, so it includes the WebSocket upgrade and the proxy's token lookup and
 *   backend dial);
 * - download throughput of N bytes: min / median / max of the trials, and each trial's ratio to
 *   raw TCP's trial of the same round (min / median / max of those ratios: the goal holds only if
 *   it holds in every trial); the proxy process tree's CPU seconds per GiB relayed (user + sys,
 *   per-connection children included) and its ratio to websockify's;
 * - 1-byte echo round trips on one open console, after 100 unmeasured ones: p50 and p99.
 *
 * After each connection of a path the run waits until the proxy's per-connection children are gone
 * (websockify and nova-serialproxy fork one), as bench/relay.ts does, so that their exit is not
 * measured as the next path's latency.
 *
 * nova-serialproxy runs as a deployment runs it (its own nova.conf, a SQLite cell database with
 * Nova's schema, tokens minted by Nova's own code for get_serial_console, the stub nova-compute
 * answering its validate_console_port RPC on the machine's RabbitMQ: bench/nova_peer.py, as for
 * bench/nova-novncproxy.ts); it forks and loads Nova per connection, so it gets fewer
 * connections. The Node TCP relay (`bench/tcp-relay.ts`, a process that only `pipe()`s) is the
 * floor for any relay written in Node: a third process on the path, as every proxy is. The goals of
 * issues 14 and 19 are printed beside the figures; the section `<!-- serial -->` of
 * bench/RESULTS.md is rewritten unless `--no-results` (figures printed only) is given.
 * `--no-nova` leaves nova-serialproxy out (its start needs RabbitMQ and takes a while).
 *
 * Usage: npm run bench:serial [-- --quick] [-- --no-results] [-- --no-nova]
 */
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { novaVersion } from './nova-novncproxy.ts';
import { descendants, firstLine, freePort, loadAverage, LOOPBACK, noConsoleLimits, ROOT, settle, startChild, stopAll, tempDirs, treeUsage, waitForPort, type Child } from './procs.ts';
import { writeSection } from './results-file.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const WEBSOCKIFY = '/usr/bin/websockify';
const NOVA_SERIALPROXY = '/usr/bin/nova-serialproxy';
const PYTHON = '/usr/bin/python3';
const RABBITMQ_PORT = 5672;
const GREETING = 0x3e; // '>'

interface Plan {
  readonly bytes: number;
  readonly trials: number;
  readonly connections: number;
  readonly novaConnections: number;
  readonly echoes: number;
}

/** A path from the client to the backends: how to open a console to each backend. */
interface Path {
  readonly name: string;
  /** `tcp:PORT` for raw TCP, else a ws:// URL */
  readonly console: string;
  readonly source: string;
  /** fewer connections for a proxy that forks per connection */
  readonly connections?: number;
  /** the proxy process (tree) whose CPU a download costs; none for raw TCP */
  readonly pid?: number;
  /** the process (tree) serving `console`, when not `pid` (websockify: one per backend) */
  readonly consolePid?: number;
}

/**
 * Runs `f` on `p`'s console and waits until the proxy's per-connection children that `f` made
 * have exited (websockify, nova-serialproxy): their teardown must not run into the next path's
 * measurement, which would charge one path's exit to another's latency.
 */
async function settled<T>(p: Path, f: () => Promise<T>): Promise<T> {
  const pid = p.consolePid ?? p.pid ?? null;
  const before = new Set(pid === null ? [] : descendants(pid));
  const out = await f();
  await settle(pid, before);
  return out;
}

/** One open console: bytes arrive through `onData`. */
interface Stream {
  onData(f: (chunk: Buffer) => void): void;
  send(b: Buffer): void;
  close(): void;
  readonly ended: Promise<void>;
}

function open(target: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    if (target.startsWith('tcp:')) {
      const s: Socket = connect({ host: LOOPBACK, port: Number(target.slice(4)), noDelay: true });
      const ended = new Promise<void>((r) => s.once('close', () => r()));
      s.once('error', reject);
      s.once('connect', () => resolve({ onData: (f) => s.on('data', f), send: (b) => s.write(b), close: () => s.destroy(), ended }));
      return;
    }
    const ws = new WebSocket(target, ['binary'], { perMessageDeflate: false });
    const ended = new Promise<void>((r) => ws.once('close', () => r()));
    // frames that came with the 101 are emitted before the open promise's continuation runs:
    // held here until the caller listens (a proxy that dials before its 101 sends the greeting so)
    let sink: ((chunk: Buffer) => void) | null = null;
    const early: Buffer[] = [];
    ws.on('message', (d: Buffer) => (sink ? sink(d) : early.push(d)));
    const onData = (f: (chunk: Buffer) => void) => {
      sink = f;
      for (const d of early.splice(0)) f(d);
    };
    ws.once('error', reject);
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode} from ${target.replace(/token=[^&]+/, 'token=***')}`)));
    ws.once('open', () => {
      (ws as unknown as { _socket: Socket })._socket.setNoDelay(true);
      resolve({ onData, send: (b) => ws.send(b), close: () => ws.terminate(), ended });
    });
  });
}

/** open → first byte of the greeting, in ms; the console is closed and gone before it returns. */
async function firstByte(target: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const s = await open(target);
  const first = await new Promise<bigint>((resolve) => s.onData(() => resolve(process.hrtime.bigint())));
  s.close();
  await s.ended;
  return Number(first - t0) / 1e6;
}

/** Downloads the source's bytes; MiB/s from the first byte to the last. */
async function download(target: string, bytes: number): Promise<number> {
  const s = await open(target);
  let got = 0;
  let t0 = 0n;
  const t1 = await new Promise<bigint>((resolve, reject) => {
    s.onData((d) => {
      if (got === 0) t0 = process.hrtime.bigint();
      got += d.length;
      if (got >= bytes) resolve(process.hrtime.bigint());
    });
    void s.ended.then(() => reject(new Error(`${target.replace(/token=.*/, 'token=***')}: closed after ${got} of ${bytes} bytes`)));
  });
  s.close();
  await s.ended;
  return bytes / MiB / (Number(t1 - t0) / 1e9);
}

/** Round trips before the measured ones on each console (JIT, socket buffers), as bench/sessions.ts does. */
const ECHO_WARMUP = 100;

/** 1-byte round trips on one console, in µs (after `ECHO_WARMUP` unmeasured ones). */
async function echoes(target: string, n: number): Promise<number[]> {
  const s = await open(target);
  let waiting: (() => void) | null = null;
  let greeted = false;
  s.onData(() => {
    if (!greeted) {
      greeted = true;
      return;
    }
    const w = waiting;
    waiting = null;
    w?.();
  });
  await new Promise((r) => setTimeout(r, 50));
  const out: number[] = [];
  const one = Buffer.from([0x61]);
  for (let i = -ECHO_WARMUP; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      waiting = resolve;
      s.send(one);
    });
    if (i >= 0) out.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  s.close();
  await s.ended;
  return out;
}

/** `p`, or a rejection naming `what` after `ms`: a path that hangs must not hang the run. */
function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

// ---------------------------------------------------------------------------------------------
// the peers

/** `--backend BYTES`: the console port (greeting, then echo) and the source, on loopback. */
async function runBackend(bytes: number): Promise<void> {
  const listen = (onSocket: (s: Socket) => void) => new Promise<number>((resolve) => {
    const server = createServer({ noDelay: true }, (s) => {
      s.on('error', () => {});
      onSocket(s);
    });
    server.listen(0, LOOPBACK, () => resolve((server.address() as { port: number }).port));
  });
  const consolePort = await listen((s) => {
    s.write(Buffer.from([GREETING]));
    s.pipe(s);
  });
  const chunk = Buffer.alloc(256 * 1024, 0x55);
  const sourcePort = await listen((s) => {
    s.resume();
    let left = bytes;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void s.once('drain', pump);
      }
      // left open: the client closes once it has every byte (websockify drops the tail of what
      // a target writes just before it closes, which would measure that, not throughput)
    };
    pump();
  });
  process.stdout.write(`${JSON.stringify({ consolePort, sourcePort })}\n`);
}

async function startWebsockify(target: number): Promise<number> {
  const port = await freePort();
  const child = startChild('websockify', WEBSOCKIFY, [`${LOOPBACK}:${port}`, `${LOOPBACK}:${target}`]);
  child.proc.stdout!.resume();
  await waitForPort(child, port, 15_000);
  websockifyPids.set(port, child.pid);
  return port;
}

const websockifyPids = new Map<number, number>();

const TCP_RELAY = 'TCP relay (Node pipe)';

/** bench/tcp-relay.ts in front of both backends: the floor for a relay written in Node. */
async function startTcpRelay(consolePort: number, sourcePort: number): Promise<Path> {
  const child = startChild('TCP relay', process.execPath, ['--import', 'tsx', join(HERE, 'tcp-relay.ts'), String(consolePort), String(sourcePort)]);
  const ports = JSON.parse(await firstLine(child, 20_000)) as Record<string, number>;
  return { name: TCP_RELAY, console: `tcp:${ports[String(consolePort)]}`, source: `tcp:${ports[String(sourcePort)]}`, pid: child.pid };
}

function porthole(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(ROOT, 'bin/porthole.js'), ...args], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`porthole ${args.slice(0, 2).join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

async function startPorthole(consolePort: number, sourcePort: number): Promise<Path> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-serial-'));
  tempDirs.add(dir);
  const port = await freePort();
  const common = ['--database-connection', `sqlite:///${join(dir, 'porthole.db')}`, '--serial_console-serialproxy_host', LOOPBACK, '--serial_console-serialproxy_port', String(port)];
  const mint = async (backend: number) => JSON.parse(await porthole(['token', 'create', '--console-type', 'serial', '--instance-uuid', randomUUID(), '--host', LOOPBACK, '--port', String(backend), '--ttl', '86400', '--json', ...common])) as { url: string };
  const [c, s] = [await mint(consolePort), await mint(sourcePort)];
  const child = startChild('porthole serialproxy', process.execPath, [join(ROOT, 'bin/porthole.js'), 'serialproxy', ...common, '--porthole-log_level', 'warn', ...noConsoleLimits()]);
  child.proc.stdout!.resume();
  await waitForPort(child, port, 30_000);
  return { name: 'Porthole', console: c.url, source: s.url, pid: child.pid };
}

function ini(sections: Record<string, Record<string, string | number>>): string {
  return Object.entries(sections).map(([s, opts]) => `[${s}]\n${Object.entries(opts).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`).join('\n');
}

/** Debian's nova-serialproxy with its own nova.conf, Nova-minted serial tokens and the stub compute. */
async function startNovaSerialproxy(consolePort: number, sourcePort: number, connections: number): Promise<Path> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-nova-serial-'));
  tempDirs.add(dir);
  const run = `porthole-bench-${randomUUID().slice(0, 8)}`;
  const port = await freePort();
  const conf = join(dir, 'nova.conf');
  const logging = join(dir, 'logging.conf');
  writeFileSync(logging, ini({
    loggers: { keys: 'root,rpc_client' }, handlers: { keys: 'stderr' }, formatters: { keys: 'plain' },
    logger_root: { level: 'WARNING', handlers: 'stderr' },
    logger_rpc_client: { level: 'ERROR', handlers: '', qualname: 'oslo_messaging.rpc.client' },
    handler_stderr: { class: 'StreamHandler', args: '(sys.stderr,)', formatter: 'plain' },
    formatter_plain: { format: '%(asctime)s %(process)d %(levelname)s %(name)s %(message)s' },
  }));
  writeFileSync(conf, ini({
    DEFAULT: { transport_url: `rabbit://guest:guest@${LOOPBACK}:${RABBITMQ_PORT}/`, control_exchange: run, log_config_append: logging },
    database: { connection: `sqlite:///${join(dir, 'nova.sqlite')}` },
    serial_console: { serialproxy_host: LOOPBACK, serialproxy_port: port, base_url: `ws://${LOOPBACK}:${port}/` },
    consoleauth: { token_ttl: 86_400 },
    oslo_messaging_rabbit: { amqp_auto_delete: 'true', rabbit_transient_queues_ttl: 60 },
    oslo_concurrency: { lock_path: join(dir, 'lock') },
  }));
  const peer = join(HERE, 'nova_peer.py');
  const compute = startChild(`nova-compute stub (${run})`, PYTHON, [peer, 'compute', conf, run]);
  const minter = startChild('nova mint-serial', PYTHON, [peer, 'mint-serial', conf, run, `${LOOPBACK}:${consolePort}`, `${LOOPBACK}:${sourcePort}`]);
  const [ready, minted] = await Promise.all([firstLine(compute, 90_000), firstLine(minter, 90_000)]);
  if ((JSON.parse(ready) as { ready?: string }).ready !== run) throw new Error(`nova-compute stub: unexpected ${ready}`);
  const [consoleToken, sourceToken] = (JSON.parse(minted) as { tokens: string[] }).tokens;
  const child: Child = startChild('nova-serialproxy', NOVA_SERIALPROXY, ['--config-file', conf]);
  child.proc.stdout!.resume();
  await waitForPort(child, port, 90_000);
  // Nova's own URL form: <base_url>?token=<token>
  return { name: 'nova-serialproxy', console: `ws://${LOOPBACK}:${port}/?token=${consoleToken}`, source: `ws://${LOOPBACK}:${port}/?token=${sourceToken}`, connections, pid: child.pid };
}

// ---------------------------------------------------------------------------------------------
// the run

interface Row {
  readonly name: string;
  firstMs: number[];
  /** one per trial, in trial order (trial t of every path ran in the same round) */
  mibPerSec: number[];
  echoUs: number[];
  /** the proxy tree's CPU seconds over the measured downloads */
  cpuSeconds: number;
  bytesMeasured: number;
}

/** min / median / max of `values`, formatted. */
function spread(values: readonly number[], digits: number): string {
  return `${Math.min(...values).toFixed(digits)} / ${median(values).toFixed(digits)} / ${Math.max(...values).toFixed(digits)}`;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const writeResults = !process.argv.includes('--no-results');
  const plan: Plan = quick
    ? { bytes: 16 * MiB, trials: 3, connections: 60, novaConnections: 10, echoes: 500 }
    : { bytes: 64 * MiB, trials: 5, connections: 300, novaConnections: 30, echoes: 3000 };
  if (!existsSync(WEBSOCKIFY)) throw new Error(`${WEBSOCKIFY} not found (Debian package websockify)`);
  const backend = startChild('serial backends', process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--backend', String(plan.bytes)]);
  const { consolePort, sourcePort } = JSON.parse(await firstLine(backend, 20_000)) as { consolePort: number; sourcePort: number };
  const paths: Path[] = [{ name: 'raw TCP', console: `tcp:${consolePort}`, source: `tcp:${sourcePort}` }, await startTcpRelay(consolePort, sourcePort)];
  const [wc, wsrc] = [await startWebsockify(consolePort), await startWebsockify(sourcePort)];
  // the downloads' CPU is the source's websockify (it forks a child per connection: counted in its tree)
  paths.push({ name: 'websockify', console: `ws://${LOOPBACK}:${wc}/`, source: `ws://${LOOPBACK}:${wsrc}/`, pid: websockifyPids.get(wsrc), consolePid: websockifyPids.get(wc) });
  const nova = novaVersion();
  if (nova && existsSync(NOVA_SERIALPROXY) && !process.argv.includes('--no-nova')) {
    try {
      paths.push(await startNovaSerialproxy(consolePort, sourcePort, plan.novaConnections));
    } catch (err) {
      process.stdout.write(`nova-serialproxy left out: ${(err as Error).message.split('\n')[0]}\n`);
    }
  }
  paths.push(await startPorthole(consolePort, sourcePort));
  process.stdout.write(`paths: ${paths.map((p) => p.name).join(', ')}; load average ${loadAverage()}\n`);

  const rows: Row[] = paths.map((p) => ({ name: p.name, firstMs: [], mibPerSec: [], echoUs: [], cpuSeconds: 0, bytesMeasured: 0 }));
  const say = (text: string) => process.stdout.write(`  ${text} (load average ${loadAverage()})\n`);
  // warm-up: JIT, Python imports, socket buffers
  for (const p of paths) {
    for (let i = 0; i < 5; i++) await within(`${p.name} first byte`, 30_000, firstByte(p.console));
    await within(`${p.name} download`, 120_000, download(p.source, plan.bytes));
    say(`warmed up ${p.name}`);
  }
  // first byte: interleaved path by path in rounds, so drift on a shared machine hits all alike
  const rounds = 10;
  for (let r = 0; r < rounds; r++) {
    for (const [i, p] of paths.entries()) {
      const n = Math.ceil((p.connections ?? plan.connections) / rounds);
      for (let k = 0; k < n; k++) rows[i]!.firstMs.push(await settled(p, () => within(`${p.name} first byte`, 30_000, firstByte(p.console))));
    }
  }
  say('first bytes measured');
  for (let t = 0; t < plan.trials; t++) {
    for (const [i, p] of paths.entries()) {
      const row = rows[i]!;
      const pid = p.pid ?? null;
      const before = new Set(pid === null ? [] : descendants(pid));
      const u0 = treeUsage(pid);
      row.mibPerSec.push(await within(`${p.name} download`, 120_000, download(p.source, plan.bytes)));
      // a per-connection child (websockify, nova-serialproxy) is reaped into its parent's cutime first
      await settle(pid, before);
      const u1 = treeUsage(pid);
      row.cpuSeconds += u1.user + u1.sys - u0.user - u0.sys;
      row.bytesMeasured += plan.bytes;
    }
    const raw0 = rows[0]!.mibPerSec[t]!;
    process.stdout.write(`  download ${t + 1}/${plan.trials}: ${rows.map((r) => `${r.name} ${r.mibPerSec[t]!.toFixed(0)} MiB/s${r === rows[0] ? '' : ` (${(r.mibPerSec[t]! / raw0).toFixed(3)}×)`}`).join(', ')}\n`);
  }
  say('downloads measured');
  for (let r = 0; r < 2; r++) {
    for (const [i, p] of paths.entries()) {
      rows[i]!.echoUs.push(...await settled(p, () => within(`${p.name} echoes`, 120_000, echoes(p.console, plan.echoes / 2))));
      say(`echoes of ${p.name}`);
    }
  }

  const rawRow = rows[0]!;
  const wsf = rows.find((r) => r.name === 'websockify')!;
  const ph = rows.find((r) => r.name === 'Porthole')!;
  const f = (v: number, d = 2) => v.toFixed(d);
  /** each trial's throughput over raw TCP's in the same round */
  const ratios = (r: Row) => r.mibPerSec.map((v, t) => v / rawRow.mibPerSec[t]!);
  const cpuPerGiB = (r: Row) => r.cpuSeconds / (r.bytesMeasured / GiB);
  const table = [
    `| path | first byte p50 | first byte p99 | MiB/s min / median / max of ${plan.trials} | × raw TCP per trial min / median / max | proxy CPU s/GiB | 1-byte echo p50 | 1-byte echo p99 |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${f(quantile(r.firstMs, 0.5))} ms | ${f(quantile(r.firstMs, 0.99))} ms | ${spread(r.mibPerSec, 0)} | ${r === rawRow ? '—' : spread(ratios(r), 3)} | ${r.bytesMeasured > 0 && r !== rawRow ? f(cpuPerGiB(r), 3) : '—'} | ${f(quantile(r.echoUs, 0.5), 0)} µs | ${f(quantile(r.echoUs, 0.99), 0)} µs |`),
  ];
  const phRatios = ratios(ph);
  const rawP99 = quantile(rawRow.echoUs, 0.99);
  const goals: Array<[string, string, boolean]> = [
    ['first byte p50 ≤ 0.5 ms', `${f(quantile(ph.firstMs, 0.5))} ms`, quantile(ph.firstMs, 0.5) <= 0.5],
    ['first byte p99 ≤ 1.5 ms', `${f(quantile(ph.firstMs, 0.99))} ms`, quantile(ph.firstMs, 0.99) <= 1.5],
    ['throughput ≥ 0.9 × raw TCP in every trial (min / median / max)', `${spread(phRatios, 3)} ×`, Math.min(...phRatios) >= 0.9],
    ['1-byte echo p99 ≤ websockify\'s', `${f(quantile(ph.echoUs, 0.99), 0)} µs vs ${f(quantile(wsf.echoUs, 0.99), 0)} µs`, quantile(ph.echoUs, 0.99) <= quantile(wsf.echoUs, 0.99)],
    ['1-byte echo p99 ≤ raw TCP\'s + 0.1 ms (issue 19)', `${f(quantile(ph.echoUs, 0.99), 0)} µs vs ${f(rawP99, 0)} + 100 µs`, quantile(ph.echoUs, 0.99) <= rawP99 + 100],
    ['proxy CPU per GiB ≤ 0.5 × websockify\'s (issue 19)', `${f(cpuPerGiB(ph), 3)} vs ${f(cpuPerGiB(wsf), 3)} s/GiB = ${f(cpuPerGiB(ph) / cpuPerGiB(wsf), 3)} ×`, cpuPerGiB(ph) <= 0.5 * cpuPerGiB(wsf)],
  ];
  const goalTable = ['| goal (issues 14, 19) | Porthole | met |', '|---|---:|---|', ...goals.map(([g, v, ok]) => `| ${g} | ${v} | ${ok ? 'yes' : '**no**'} |`)];
  const counts = `${plan.connections} sequential connections per path for first byte (nova-serialproxy: ${plan.novaConnections}, it forks and loads Nova per connection), ${plan.trials} downloads of ${plan.bytes / MiB} MiB (trial t of every path in round t; a ratio is over raw TCP's download of the same round; proxy CPU is the proxy process tree's user + sys over the measured downloads, per GiB), ${plan.echoes} 1-byte echoes on one console (in 2 rounds over the paths, each after 100 unmeasured), each path's per-connection processes gone before the next path runs`;
  const text = [
    '<!-- serial -->',
    '## Serial console relay (`npm run bench:serial`)',
    '',
    `Run ${new Date().toISOString().slice(0, 16)}Z on ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, load average ${loadAverage()} at the end; Node ${process.version}; nova-consoleproxy ${nova ?? '(not installed)'}${quick ? '; `--quick`' : ''}. Command: \`npm run bench:serial${quick ? ' -- --quick' : ''}\`. ${TCP_RELAY} is bench/tcp-relay.ts, a Node process that only pipes: the floor for a relay written in Node, a third process on the path on ${cpus().length} CPUs.`,
    `Backends in their own process: a console port that greets with one byte then echoes, and a source of ${plan.bytes / MiB} MiB (left open: the client closes); ${counts}. Every WebSocket path asks for the \`binary\` subprotocol and opens the URL its proxy hands out (\`ws://…/?token=\`).`,
    '',
    ...table,
    '',
    ...goalTable,
    '<!-- /serial -->',
  ].join('\n');
  process.stdout.write(`\n${table.join('\n')}\n\n${goalTable.join('\n')}\n`);
  if (!writeResults) return;
  writeSection('<!-- serial -->', '<!-- /serial -->', `${text}\n`);
  process.stdout.write(`\nwritten to bench/RESULTS.md (section <!-- serial -->)\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf('--backend');
  if (at >= 0) {
    await runBackend(Number(process.argv[at + 1]));
  } else {
    try {
      await main();
    } catch (err) {
      process.stderr.write(`bench/serial: ${(err as Error)?.stack ?? err}\n`);
      process.exitCode = 1;
    } finally {
      await stopAll();
    }
  }
}
