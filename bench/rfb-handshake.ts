/**
 * @module bench/rfb-handshake
 * The RFB security proxy's cost at connection time: from opening the connection to holding the
 * server's ServerInit, over many sequential connections, p50 and p99, for security type None
 * and for VeNCrypt X509None, each beside a direct TCP connection to the same server.
 *
 * One real server for every path: TigerVNC Xvnc offering `-SecurityTypes X509None,None` with a
 * certificate from a throw-away CA (openssl). Porthole runs as its real CLI (`porthole
 * novncproxy`, SQLite, log level warn) with two inventory entries for that one endpoint, one
 * with `--auth-schemes none` and one with `--auth-schemes vencrypt`, so the server's own order
 * does not decide. The four paths:
 *
 * - direct TCP, None: `connect()`, ProtocolVersion, Security (None), SecurityResult, ClientInit,
 *   ServerInit, by a minimal RFB client in this script;
 * - Porthole, None: `new WebSocket(url, 'binary')` to the ServerInit message, the client doing
 *   the browser's side (3.8, None, ClientInit), one message per step as noVNC;
 * - direct TCP, VeNCrypt X509None: the same server, with the VeNCrypt client of Porthole's own
 *   `src/rfb/` run in this process (TLS 1.3 with the client certificate, chain verified);
 * - Porthole, VeNCrypt X509None: as Porthole, None, through the other inventory entry.
 *
 * Paths are interleaved connection by connection so drift on a shared machine hits all alike;
 * each connection is closed and gone before the next. Prints a table and writes it into
 * `bench/RESULTS.md` under its own heading, before the relay benchmark's History section,
 * replacing the section of an earlier run and leaving the rest of the file as it is.
 *
 * Usage: node --import tsx bench/rfb-handshake.ts [--quick]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { VencryptCredentials } from '../src/rfb/auth/vencrypt.ts';
import { negotiateBackend, serveClient } from '../src/rfb/security-proxy.ts';
import { RfbReader } from '../src/rfb/reader.ts';
import { GatewayError } from '../src/errors.ts';
import { makePki, type Pki } from '../test/support/pki.ts';
import { freePort, startXvnc, type Xvnc } from '../test/support/xvnc.ts';
import { noConsoleLimits } from './procs.ts';
import { writeSection } from './results-file.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const RESULTS = join(HERE, 'RESULTS.md');
const LOOPBACK = '127.0.0.1';
const BEGIN = '<!-- rfb-handshake: written by bench/rfb-handshake.ts -->';
const END = '<!-- /rfb-handshake -->';
const SERVER_NONE = '0b5e1c2d-0000-4000-8000-0000000000a1';
const SERVER_VENCRYPT = '0b5e1c2d-0000-4000-8000-0000000000a2';

interface Plan {
  readonly quick: boolean;
  readonly connections: number;
  readonly warmup: number;
}
const FULL: Plan = { quick: false, connections: 200, warmup: 10 };
const QUICK: Plan = { quick: true, connections: 50, warmup: 5 };

/** Milliseconds from opening the connection to the first byte (ProtocolVersion) and to ServerInit. */
interface Times {
  readonly first: number;
  readonly ready: number;
}

interface Path {
  readonly name: string;
  readonly security: string;
  /** One connection, open to ServerInit. */
  once(): Promise<Times>;
}

// ---------------------------------------------------------------------------------------------
// the four ways to ServerInit

const failures = { closed: (s: string, d: string) => new GatewayError('BACKEND_CLOSED', `${s}: ${d}`), timeout: (s: string) => new GatewayError('BACKEND_TIMEOUT', s), protocol: (s: string, d: string) => new GatewayError('BACKEND_PROTOCOL', `${s}: ${d}`) };

/** Direct TCP, security type None, by hand (RFC 6143 §7.1–7.3). */
async function directNone(port: number): Promise<Times> {
  const t0 = process.hrtime.bigint();
  const socket = connect({ host: LOOPBACK, port, noDelay: true });
  const r = new RfbReader({ timeoutMs: 5000, errors: failures });
  const detach = r.attach(socket);
  try {
    const version = await r.read(12, 'ProtocolVersion');
    const first = Number(process.hrtime.bigint() - t0) / 1e6;
    socket.write(version);
    const n = await r.u8('Security');
    const types = [...(await r.read(n, 'Security'))];
    if (!types.includes(1)) throw new Error(`the server offers no None: ${types}`);
    socket.write(Buffer.from([1]));
    if ((await r.u32('SecurityResult')) !== 0) throw new Error('SecurityResult failed');
    socket.write(Buffer.from([1]));
    const head = await r.read(24, 'ServerInit');
    await r.read(head.readUInt32BE(20), 'ServerInit name');
    return { first, ready: Number(process.hrtime.bigint() - t0) / 1e6 };
  } finally {
    r.finish();
    detach();
    await closeSocket(socket);
  }
}

/** Direct TCP, VeNCrypt X509None, by Porthole's own RFB client code in this process. */
async function directVencrypt(port: number, tls: VencryptCredentials): Promise<Times> {
  const t0 = process.hrtime.bigint();
  const socket = connect({ host: LOOPBACK, port, noDelay: true });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.pause();
  let first = 0;
  socket.once('data', () => (first = Number(process.hrtime.bigint() - t0) / 1e6));
  const backend = await negotiateBackend(socket, { schemes: ['vencrypt'], password: null, username: null, tls, tlsServerName: null, allowInsecureTls: false }, { timeoutMs: 5000, address: `${LOOPBACK}:${port}` });
  const messages: Buffer[] = [];
  const browser = new RfbReader({ timeoutMs: 5000, errors: failures });
  browser.push(Buffer.from('RFB 003.008\n'));
  browser.push(Buffer.from([1, 1]));
  await serveClient({ reader: browser, send: (m) => messages.push(m) }, Promise.resolve(backend), { timeoutMs: 5000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (messages.length !== 4) throw new Error('no ServerInit');
  backend.socket.destroy();
  await new Promise((r) => (socket.destroyed && backend.socket.destroyed ? setImmediate(r) : backend.socket.once('close', r)));
  return { first, ready: ms };
}

/** Through Porthole: the browser's side of the handshake over the WebSocket, one message per step. */
function viaPorthole(url: string): Promise<Times> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false });
    let step = 0;
    let ms = 0;
    let first = 0;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no ServerInit within 10 s (step ${step})`));
    }, 10_000);
    ws.on('message', (data: Buffer) => {
      step++;
      if (step === 1) {
        first = Number(process.hrtime.bigint() - t0) / 1e6;
        ws.send(data);
      }
      else if (step === 2) {
        if (data[0] !== 1 || data[1] !== 1) reject(new Error(`security types ${[...data]}`));
        ws.send(Buffer.from([1]));
      } else if (step === 3) {
        if (data.readUInt32BE(0) !== 0) reject(new Error('SecurityResult failed'));
        ws.send(Buffer.from([1]));
      } else if (step === 4) {
        ms = Number(process.hrtime.bigint() - t0) / 1e6;
        clearTimeout(timer);
        ws.close();
      }
    });
    ws.on('close', () => {
      clearTimeout(timer);
      if (step >= 4) resolve({ first, ready: ms });
      else reject(new Error(`closed at step ${step}`));
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function closeSocket(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve();
    s.once('close', () => resolve());
    s.destroy();
  });
}

// ---------------------------------------------------------------------------------------------
// Porthole as its real CLI

interface Porthole {
  readonly child: ChildProcess;
  readonly port: number;
  readonly tokens: { none: string; vencrypt: string };
}

async function startPorthole(root: string, dir: string, pki: Pki, vncPort: number): Promise<Porthole> {
  const cli = (args: string[]) => execFileSync(process.execPath, ['bin/porthole.js', ...args], { cwd: root, env: { ...process.env, NODE_OPTIONS: '' }, encoding: 'utf8' });
  const port = await freePort();
  const common = ['--database-connection', `sqlite:///${join(dir, 'porthole.db')}`, '--vnc-novncproxy_port', String(port)];
  for (const [id, schemes] of [[SERVER_NONE, 'none'], [SERVER_VENCRYPT, 'vencrypt']] as const) {
    cli(['server', 'add', '--id', id, '--name', `bench-${schemes}`, '--vnc', `${LOOPBACK}:${vncPort}`, '--auth-schemes', schemes, ...common]);
  }
  const token = (id: string) => (JSON.parse(cli(['token', 'create', '--instance-uuid', id, '--ttl', '3600', '--json', ...common])) as { token: string }).token;
  const tokens = { none: token(SERVER_NONE), vencrypt: token(SERVER_VENCRYPT) };
  const child = spawn(process.execPath, ['bin/porthole.js', 'novncproxy', ...common, '--vnc-novncproxy_host', LOOPBACK, '--vnc-auth_schemes', 'vencrypt,none', '--vnc-vencrypt_ca_certs', pki.caCert, '--vnc-vencrypt_client_cert', pki.clientCert, '--vnc-vencrypt_client_key', pki.clientKey, '--porthole-log_level', 'warn', ...noConsoleLimits(root), '--web', join(dir, 'no-web'), '--cert', join(dir, 'no-cert.pem')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.resume();
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`porthole exited: ${err}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, LOOPBACK);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error(`porthole did not listen: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, tokens };
}

// ---------------------------------------------------------------------------------------------
// report

function percentile(values: readonly number[], p: number): number {
  // nearest rank: with 200 samples p99 is the 198th smallest
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}

/** p50 and p99 of one path, milliseconds. */
export interface SecurityRow {
  readonly security: string;
  readonly path: string;
  readonly firstP50: number;
  readonly firstP99: number;
  readonly readyP50: number;
  readonly readyP99: number;
}

export const SECURITY_BEGIN = BEGIN;
export const SECURITY_END = END;

function render(plan: Plan, started: Date, rows: readonly SecurityRow[], load: { before: string; after: string }, standalone: boolean): string {
  const row = (r: SecurityRow) => `| ${r.security} | ${r.path} | ${r.firstP50.toFixed(3)} | ${r.firstP99.toFixed(3)} | ${r.readyP50.toFixed(3)} | ${r.readyP99.toFixed(3)} |`;
  const signed = (ms: number) => `${ms >= 0 ? '+' : '−'}${Math.abs(ms).toFixed(3)} ms`;
  const delta = (proxied: SecurityRow, direct: SecurityRow) => `| ${proxied.security} | ${signed(proxied.readyP50 - direct.readyP50)} | ${signed(proxied.readyP99 - direct.readyP99)} |`;
  const cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  let tiger = 'unknown';
  try {
    tiger = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'tigervnc-standalone-server']).toString().trim();
  } catch {
    // not Debian
  }
  const command = standalone ? `node --import tsx bench/rfb-handshake.ts${plan.quick ? ' --quick' : ''}` : `npm run bench${plan.quick ? ' -- --quick' : ''}`;
  return `${BEGIN}
## RFB security proxy: the handshake with VeNCrypt

Latest run of \`${command}\` (this section is also written by \`node --import tsx bench/rfb-handshake.ts\` alone).

- date: ${started.toISOString()} (${plan.quick ? 'quick run' : 'full run'})
- machine: ${cpu}, ${cpus().length} cores, Linux ${release()}; Node ${process.version}; TigerVNC ${tiger} (Debian)
- load average (1, 5, 15 min) before: ${load.before}; after: ${load.after}
- ${plan.connections} sequential connections per path after ${plan.warmup} warm-up ones, paths interleaved

| security | path | open → first byte p50 ms | p99 ms | open → ServerInit p50 ms | p99 ms |
|---|---|---:|---:|---:|---:|
${rows.map(row).join('\n')}

| what Porthole adds to open → ServerInit | p50 | p99 |
|---|---:|---:|
${delta(rows[1]!, rows[0]!)}
${delta(rows[3]!, rows[2]!)}

How it was measured: one TigerVNC Xvnc (\`-SecurityTypes X509None,None\`, an EC P-256 certificate from a test CA made with openssl) serves every path. Direct TCP: time from \`connect()\` to the server's ProtocolVersion and to the last byte of ServerInit, for None by a minimal RFB client in the script, for X509None by Porthole's own VeNCrypt client code (\`src/rfb/\`) run in the benchmark process (TLS 1.3, client certificate, chain verified). Through Porthole: \`node bin/porthole.js novncproxy\` (SQLite, log level warn) with two inventory entries for that one endpoint (\`--auth-schemes none\` and \`--auth-schemes vencrypt\`); time from \`new WebSocket(url, 'binary')\` (\`ws\`) to Porthole's ProtocolVersion message (the first byte: Porthole sends it after the token lookup, its TCP connect and its whole handshake with the server, TLS included, and the 101) and to the ServerInit message, the client answering each handshake message as noVNC does. p99 is nearest-rank. Everything runs on one machine on 127.0.0.1: compare rows of the same run, not numbers across runs.
${END}
`;
}

/**
 * Starts Xvnc and Porthole (from `root`), times the four paths and stops both; returns this
 * section of RESULTS.md and its rows (None direct, None Porthole, X509None direct, X509None Porthole).
 */
export async function measureRfbSecurity(quick: boolean, root: string, standalone = false): Promise<{ section: string; rows: SecurityRow[] }> {
  const plan = quick ? QUICK : FULL;
  const started = new Date();
  const loadBefore = loadavg().map((x) => x.toFixed(2)).join(' ');
  const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-rfb-'));
  const pki = makePki();
  let xvnc: Xvnc | undefined;
  let ph: Porthole | undefined;
  try {
    xvnc = await startXvnc({ colour: '#204060', securityTypes: 'X509None,None', x509: { cert: pki.serverCert, key: pki.serverKey } });
    ph = await startPorthole(root, dir, pki, xvnc.port);
    const tls = VencryptCredentials.load({ caCerts: pki.caCert, clientCert: pki.clientCert, clientKey: pki.clientKey });
    const url = (token: string) => `ws://${LOOPBACK}:${ph!.port}/websockify?token=${token}`;
    const port = xvnc.port;
    const paths: Path[] = [
      { security: 'None', name: 'direct TCP', once: () => directNone(port) },
      { security: 'None', name: 'Porthole', once: () => viaPorthole(url(ph!.tokens.none)) },
      { security: 'VeNCrypt X509None', name: 'direct TCP', once: () => directVencrypt(port, tls) },
      { security: 'VeNCrypt X509None', name: 'Porthole', once: () => viaPorthole(url(ph!.tokens.vencrypt)) },
    ];
    process.stdout.write(`  RFB security proxy: ${plan.connections} connections per path (Xvnc, None and VeNCrypt X509None)\n`);
    for (let i = 0; i < plan.warmup; i++) for (const p of paths) await p.once();
    const samples: Times[][] = paths.map(() => []);
    for (let i = 0; i < plan.connections; i++) {
      for (const [j, p] of paths.entries()) samples[j]!.push(await p.once());
    }
    const rows = paths.map((p, i): SecurityRow => {
      const first = samples[i]!.map((t) => t.first);
      const ready = samples[i]!.map((t) => t.ready);
      return { security: p.security, path: p.name, firstP50: percentile(first, 0.5), firstP99: percentile(first, 0.99), readyP50: percentile(ready, 0.5), readyP99: percentile(ready, 0.99) };
    });
    for (const r of rows) process.stdout.write(`  ${r.security.padEnd(18)} ${r.path.padEnd(10)} first byte p50 ${r.firstP50.toFixed(3)} ms, ServerInit p50 ${r.readyP50.toFixed(3)} ms\n`);
    const section = render(plan, started, rows, { before: loadBefore, after: loadavg().map((x) => x.toFixed(2)).join(' ') }, standalone);
    return { section, rows };
  } finally {
    ph?.child.kill('SIGTERM');
    await xvnc?.stop();
    pki.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  try {
    for (const a of args) if (a !== '--quick') throw new Error(`unknown argument ${a} (usage: bench/rfb-handshake.ts [--quick])`);
    const { section } = await measureRfbSecurity(args.includes('--quick'), ROOT, true);
    process.stdout.write(`\n${section}\n`);
    writeSection(BEGIN, END, section);
    process.stdout.write(`wrote ${RESULTS}\n`);
  } catch (err) {
    process.stderr.write(`bench/rfb-handshake: ${(err as Error)?.stack ?? err}\n`);
    process.exitCode = 1;
  }
}
