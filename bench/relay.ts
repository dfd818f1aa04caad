/**
 * @module bench/relay
 * The relay benchmark: Porthole side by side with raw loopback TCP and Debian's websockify on
 * the same run, the same machine and the same backends. The backends are minimal RFB 3.8
 * servers (`bench/backend.ts`) and the client does the client half of the RFB handshake on every
 * path, because Porthole's security proxy speaks RFB to both sides before it relays. For each path:
 *
 * - download throughput: after ServerInit the backend writes N bytes as fast as it can; the
 *   client reads them (over a WebSocket for the proxies, `ws` without permessage-deflate) and
 *   hangs up — median of several trials, and the proxy process tree's CPU seconds per GiB
 *   relayed (utime+stime from /proc/<pid>/stat, children included: websockify forks one process
 *   per connection);
 * - open → first RFB byte (the 12-byte ProtocolVersion) and open → ServerInit (the console can
 *   draw), over many sequential connections, p50 and p99;
 * - completeness: once per proxy, how many of N bytes arrive when the backend closes right after
 *   writing them (websockify 0.10 can drop what it still queues for the client: a race).
 *
 * Every peer runs in its own process (backend, websockify, Porthole via its real CLI); only the
 * client lives here. Trials are interleaved path by path so drift on a shared machine hits all
 * paths alike. Prints a table and rewrites `bench/RESULTS.md`, keeping its History section.
 *
 * Usage: npm run bench [-- --quick]    (node --import tsx bench/relay.ts [--quick])
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rfbHandshake, withConnection, type Handshake, type Path } from './client.ts';
import { CLK_TCK, descendants, firstLine, freePort, loadAverage, LOOPBACK, ROOT, settle, sleep, startChild, stopAll, tempDirs, treeUsage, waitForPort, type Child } from './procs.ts';

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
}

const FULL: Plan = { quick: false, bytes: 256 * MiB, trials: 5, connections: 200, warmupConnections: 10 };
const QUICK: Plan = { quick: true, bytes: 64 * MiB, trials: 2, connections: 50, warmupConnections: 5 };

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

function handshakeTimes(path: Path): Promise<Handshake> {
  return withConnection(path, 'banner', 10_000, async (c) => {
    const times = await rfbHandshake(c);
    c.close();
    return times;
  });
}
// ---------------------------------------------------------------------------------------------
// starting the peers

async function startBackend(bytes: number): Promise<{ child: Child; sourcePort: number; closingPort: number; bannerPort: number }> {
  const child = startChild('backend', process.execPath, ['--import', 'tsx', join(HERE, 'backend.ts'), '--bytes', String(bytes)]);
  const ports = JSON.parse(await firstLine(child, 20_000)) as { sourcePort: number; closingPort: number; bannerPort: number };
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

function porthole(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(ROOT, 'bin/porthole.js'), ...args], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`porthole ${args.slice(0, 2).join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

async function startPorthole(sourcePort: number, closingPort: number, bannerPort: number): Promise<{ child: Child; port: number; sourceToken: string; closingToken: string; bannerToken: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-'));
  tempDirs.add(dir);
  const database = `sqlite:///${join(dir, 'porthole.db')}`;
  const mint = async (port: number) => {
    const out = await porthole(['token', 'create', '--instance-uuid', randomUUID(), '--host', LOOPBACK, '--port', String(port), '--ttl', '86400', '--json', '--database-connection', database]);
    return (JSON.parse(out) as { token: string }).token;
  };
  const sourceToken = await mint(sourcePort);
  const closingToken = await mint(closingPort);
  const bannerToken = await mint(bannerPort);
  const port = await freePort();
  const child = startChild('porthole novncproxy', process.execPath, [
    join(ROOT, 'bin/porthole.js'), 'novncproxy',
    '--vnc-novncproxy_host', LOOPBACK,
    '--vnc-novncproxy_port', String(port),
    '--database-connection', database,
    '--porthole-log_level', 'warn',
  ]);
  child.proc.stdout!.resume();
  await waitForPort(child, port, 30_000);
  return { child, port, sourceToken, closingToken, bannerToken };
}

// ---------------------------------------------------------------------------------------------
// the run

async function measure(paths: Path[], plan: Plan, backendPid: number): Promise<PathResult[]> {
  const results = paths.map((p): PathResult => ({ name: p.name, mibPerSec: [], proxyCpuSeconds: 0, clientCpuSeconds: 0, backendCpuSeconds: 0, bytesMeasured: 0, bannerMs: [], readyMs: [], delivered: 0, proxyUserSeconds: 0, proxySysSeconds: 0, proxyFaults: 0 }));

  // one warm-up download per path (JIT, socket buffers, page cache of the Python modules)
  for (const path of paths) await download(path, plan.bytes);

  for (const [i, path] of paths.entries()) {
    const r = results[i]!;
    const baseline = new Set(path.pid === null ? [] : descendants(path.pid));
    r.delivered = await readUntilClosed(path);
    await settle(path.pid, baseline);
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
      process.stdout.write(`  download ${trial}/${plan.trials} ${path.name.padEnd(11)} ${mibs.toFixed(1).padStart(8)} MiB/s\n`);
    }
  }

  for (let i = 0; i < plan.warmupConnections; i++) for (const path of paths) await handshakeTimes(path);
  for (let i = 0; i < plan.connections; i++) {
    for (const [j, path] of paths.entries()) {
      const t = await handshakeTimes(path);
      results[j]!.bannerMs.push(Number(t.banner) / 1e6);
      results[j]!.readyMs.push(Number(t.ready) / 1e6);
    }
  }
  for (const r of results) {
    process.stdout.write(`  handshake ${r.name.padEnd(11)} first byte p50 ${percentile(r.bannerMs, 0.5).toFixed(3)} ms p99 ${percentile(r.bannerMs, 0.99).toFixed(3)} ms; ServerInit p50 ${percentile(r.readyMs, 0.5).toFixed(3)} ms p99 ${percentile(r.readyMs, 0.99).toFixed(3)} ms\n`);
  }
  return results;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  for (const a of args) if (a !== '--quick') throw new Error(`unknown argument ${a} (usage: bench/relay.ts [--quick])`);
  const plan = args.includes('--quick') ? QUICK : FULL;
  if (!existsSync(WEBSOCKIFY)) throw new Error(`${WEBSOCKIFY} not found (Debian package websockify)`);
  const started = new Date();
  const loadBefore = loadAverage();
  process.stdout.write(`relay benchmark (${plan.quick ? 'quick' : 'full'}): ${plan.trials} × ${plan.bytes / MiB} MiB downloads, ${plan.connections} connections per path\n`);

  try {
    const backend = await startBackend(plan.bytes);
    const wsSource = await startWebsockify(backend.sourcePort, 'download');
    const wsClosing = await startWebsockify(backend.closingPort, 'closing');
    const wsBanner = await startWebsockify(backend.bannerPort, 'banner');
    const ph = await startPorthole(backend.sourcePort, backend.closingPort, backend.bannerPort);
    const phUrl = (token: string) => `ws://${LOOPBACK}:${ph.port}/?token=${token}`;
    const paths: Path[] = [
      { name: 'raw TCP', pid: null, targets: { source: backend.sourcePort, closing: backend.closingPort, banner: backend.bannerPort } },
      { name: 'websockify', pid: wsSource.child.pid, targets: { source: `ws://${LOOPBACK}:${wsSource.port}/`, closing: `ws://${LOOPBACK}:${wsClosing.port}/`, banner: `ws://${LOOPBACK}:${wsBanner.port}/` } },
      { name: 'Porthole', pid: ph.child.pid, targets: { source: phUrl(ph.sourceToken), closing: phUrl(ph.closingToken), banner: phUrl(ph.bannerToken) } },
    ];
    const results = await measure(paths, plan, backend.child.pid);
    const report = render(plan, started, results, loadBefore, loadAverage());
    process.stdout.write(`\n${report.table}\n`);
    writeResults(plan, started, results, report);
    process.stdout.write(`\nwrote ${RESULTS}\n`);
  } finally {
    await stopAll();
  }
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

function delivered(n: number, of: number): string {
  return n === of ? `all ${of / MiB} MiB` : `${(n / MiB).toFixed(2)} of ${of / MiB} MiB`;
}

function perGiB(seconds: number, bytes: number): number {
  return seconds / (bytes / GiB);
}

interface Report {
  readonly table: string;
  readonly ratioToRaw: number;
  readonly loadBefore: string;
  readonly loadAfter: string;
}

function render(plan: Plan, _started: Date, results: PathResult[], loadBefore: string, loadAfter: string): Report {
  const byName = (n: string) => results.find((r) => r.name === n)!;
  const raw = byName('raw TCP');
  const wsf = byName('websockify');
  const ph = byName('Porthole');
  const thr = (r: PathResult) => median(r.mibPerSec);
  const cpu = (r: PathResult) => perGiB(r.proxyCpuSeconds, r.bytesMeasured);
  const ms = (values: readonly number[], p: number) => percentile(values, p).toFixed(3);
  const lines = [
    `| path | download MiB/s (median of ${plan.trials}) | min – max | proxy CPU s/GiB | proxy page faults /MiB | client CPU s/GiB | backend CPU s/GiB | delivered when backend closes |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const isRaw = r === raw;
    const proxyCpu = isRaw ? '—' : `${cpu(r).toFixed(2)} (${perGiB(r.proxyUserSeconds, r.bytesMeasured).toFixed(2)} user + ${perGiB(r.proxySysSeconds, r.bytesMeasured).toFixed(2)} sys)`;
    const faults = isRaw ? '—' : (r.proxyFaults / (r.bytesMeasured / MiB)).toFixed(1);
    lines.push(`| ${r.name} | ${thr(r).toFixed(1)} | ${Math.min(...r.mibPerSec).toFixed(1)} – ${Math.max(...r.mibPerSec).toFixed(1)} | ${proxyCpu} | ${faults} | ${perGiB(r.clientCpuSeconds, r.bytesMeasured).toFixed(2)} | ${perGiB(r.backendCpuSeconds, r.bytesMeasured).toFixed(2)} | ${delivered(r.delivered, plan.bytes)} |`);
  }
  lines.push(
    '',
    `| path (${plan.connections} connections) | open → first RFB byte p50 ms | p99 ms | open → ServerInit p50 ms | p99 ms |`,
    '|---|---:|---:|---:|---:|',
  );
  for (const r of results) lines.push(`| ${r.name} | ${ms(r.bannerMs, 0.5)} | ${ms(r.bannerMs, 0.99)} | ${ms(r.readyMs, 0.5)} | ${ms(r.readyMs, 0.99)} |`);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const lat = (r: PathResult, which: 'bannerMs' | 'readyMs', p: number) => percentile(r[which], p);
  const latRatios = (a: PathResult, b: PathResult) =>
    `${ratio(lat(a, 'bannerMs', 0.5), lat(b, 'bannerMs', 0.5))} | ${ratio(lat(a, 'bannerMs', 0.99), lat(b, 'bannerMs', 0.99))} | ${ratio(lat(a, 'readyMs', 0.5), lat(b, 'readyMs', 0.5))} | ${ratio(lat(a, 'readyMs', 0.99), lat(b, 'readyMs', 0.99))}`;
  lines.push(
    '',
    '| ratio | throughput | proxy CPU per GiB | first byte p50 | first byte p99 | ServerInit p50 | ServerInit p99 |',
    '|---|---:|---:|---:|---:|---:|---:|',
    `| Porthole / raw TCP | ${ratio(thr(ph), thr(raw))} | — | ${latRatios(ph, raw)} |`,
    `| Porthole / websockify | ${ratio(thr(ph), thr(wsf))} | ${ratio(cpu(ph), cpu(wsf))} | ${latRatios(ph, wsf)} |`,
  );
  return { table: lines.join('\n'), ratioToRaw: thr(ph) / thr(raw), loadBefore, loadAfter };
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

function writeResults(plan: Plan, started: Date, results: PathResult[], report: Report): void {
  const m = machine();
  const command = `npm run bench${plan.quick ? ' -- --quick' : ''}   (node --import tsx bench/relay.ts${plan.quick ? ' --quick' : ''})`;
  const ph = results.find((r) => r.name === 'Porthole')!;
  const raw = results.find((r) => r.name === 'raw TCP')!;
  const history = [
    ...previousHistory(),
    `- ${started.toISOString()} ${plan.quick ? 'quick' : 'full'}: Porthole ${median(ph.mibPerSec).toFixed(1)} MiB/s = ${report.ratioToRaw.toFixed(3)} × raw TCP (${median(raw.mibPerSec).toFixed(1)} MiB/s), open → ServerInit p50 ${percentile(ph.readyMs, 0.5).toFixed(3)} ms`,
  ];
  const text = `# Relay benchmark

Latest run; overwritten by every \`npm run bench\` (the History section at the end keeps one line per run).

- date: ${started.toISOString()} (${plan.quick ? 'quick run' : 'full run'})
- machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}
- Node ${process.version}; websockify ${m.websockify} (Debian, \`${WEBSOCKIFY}\`)
- command: \`${command}\`
- load average (1, 5, 15 min) before the run: ${report.loadBefore}; after: ${report.loadAfter}
- downloads: ${plan.trials} measured trials of ${plan.bytes / MiB} MiB per path after one warm-up; handshake timing: ${plan.connections} sequential connections per path after ${plan.warmupConnections} warm-up ones

${report.table}

## How it was measured

- Four kinds of process: the backend (\`bench/backend.ts\`, Node: minimal RFB 3.8 servers offering security type None), websockify (\`websockify 127.0.0.1:P 127.0.0.1:BACKEND\`, plain target mode, its defaults), Porthole (\`node bin/porthole.js novncproxy\` with a SQLite token database, log level warn, default \`auth_schemes = none\`; tokens minted with \`porthole token create\`), and this script, which is the only client. Everything is on 127.0.0.1.
- **RFB on every path**: Porthole's security proxy does the RFB handshake with the backend (ProtocolVersion, Security, SecurityResult) before it accepts the WebSocket, then serves the client its own handshake and forwards ClientInit / ServerInit; it relays byte for byte only after that. So the client does the client half of RFB 3.8 (version, None, shared ClientInit, ServerInit) on all three paths, and the backend serves it on all three; websockify and raw TCP just carry those bytes.
- **Download**: after ServerInit the backend writes N bytes in 1 MiB writes as fast as its socket drains (standing in for framebuffer updates; no proxy parses them); the client reads them over a WebSocket (\`ws\`, permessage-deflate off, subprotocol \`binary\`) or, for raw TCP, a plain socket, and hangs up after the N-th byte. Time runs from the end of the client's handshake (ServerInit received) to the last of the N bytes: the relay alone; the handshake is timed in the second table. MiB/s is N / that time; the table shows the median and the spread of the measured trials. Trials rotate raw TCP → websockify → Porthole so that drift on a shared machine hits all three alike. The backend does not close first: websockify 0.10 then sometimes drops what it still queues for the client (its \`do_proxy\` raises on the target's EOF without flushing a partly sent queue; see the last column, which varies from run to run), and a truncated download would not be a throughput.
- **Delivered when backend closes**: one download per path from a backend that closes the moment its last byte is written, read until the proxy closes the connection; the column says whether all N bytes arrived.
- **CPU per GiB**: utime (user) and stime (sys), with cutime and cstime, of the proxy's process tree from \`/proc/<pid>/stat\`, before and after each trial, after waiting for websockify's per-connection child to exit and be reaped; summed over the measured trials and divided by the GiB relayed (the handshake's share is negligible). The tree includes any launcher: on Linux \`bin/porthole.js\` re-runs the daemon as its child (to set \`MALLOC_TOP_PAD_\`), and both count. Clock tick is 1/${CLK_TCK} s. Page faults are the tree's minor faults (minflt+cminflt) per MiB relayed: a relay whose read buffers land on freshly mapped memory pays up to 16 per 64 KiB read, and on a virtual machine each one is costly sys time. Client CPU is the bench process's \`process.cpuUsage()\`; backend CPU is the backend's process tree. The client and the backend work in all three columns, so they show how much of the machine the proxy leaves to them.
- **Open → first RFB byte / → ServerInit**: time from \`new WebSocket(url, 'binary')\` (raw TCP: \`connect()\`) to holding the 12-byte \`RFB 003.008\\n\`, and to holding the whole ServerInit after answering version, security type and ClientInit: the moment noVNC can start drawing. Each connection is closed and gone before the next starts. Through websockify the first byte is the backend's, sent on accept, after websockify's upgrade and its fork per connection. Through Porthole it is Porthole's own, sent only after the token lookup in SQLite, the backend connect and the backend's handshake up to SecurityResult; Porthole then takes one more client round trip per step and forwards ClientInit and ServerInit. p99 is nearest-rank (with ${plan.connections} samples: the ${Math.ceil(0.99 * plan.connections)}th smallest).
- Caveats: one machine with ${m.cores} cores runs backend, proxy and client at once, so a download through a proxy has three busy processes on ${m.cores} cores where raw TCP has two; a proxy that needs less CPU leaves more to the others. Numbers from a shared or virtual machine move by several percent between runs; compare ratios from the same run, not absolute numbers across runs. A load average well above 0 before the run means other work shared the CPUs while it ran.
${otherSections().map((sec) => `\n${sec}\n`).join('')}
## History

${history.join('\n')}
`;
  writeFileSync(RESULTS, text);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench: ${(err as Error)?.stack ?? err}\n`);
  await stopAll();
  process.exitCode = 1;
}
