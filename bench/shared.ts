/**
 * @module bench/shared
 * `npm run bench:shared`: one shared console feeding 10 viewers against 10 separate consoles (the
 * byte-exact relay), on one TigerVNC Xvnc whose whole screen is repainted in a loop. The gateway
 * runs in a child process of its own (this script with `--gateway`), so its CPU and memory are
 * read from /proc apart from the viewers'. Each viewer asks for Raw and keeps one incremental
 * request outstanding (a new one on every message), counting the bytes it gets. Printed: proxy
 * CPU (user + sys, ms) over the run, its RSS at the end, the connections Xvnc sees, and the bytes
 * the viewers got. Not a test; figures go in the report, not in bench/RESULTS.md.
 *
 * Usage: npm run bench:shared [-- --seconds 10]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { createGateway } from '../src/gateway.ts';
import { loadConfig } from '../src/config/load.ts';
import { flags, tempDir } from '../test/support/gateway.ts';
import { connectionsTo } from '../test/support/leak-meter.ts';
import { paintRoot } from '../test/support/x11-paint.ts';
import { startXvnc } from '../test/support/xvnc.ts';
import { processUsage } from './procs.ts';

const VIEWERS = 10;
const SERVER = '3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b0a';

if (process.argv.includes('--gateway')) {
  // the child: a gateway on loopback with shared consoles as asked; says its port, then waits
  const shared = process.argv.includes('--shared');
  const dir = tempDir('porthole-bench-shared-');
  const xvncPort = Number(process.argv[process.argv.indexOf('--xvnc') + 1]);
  const loaded = loadConfig({ flags: flags({
    'vnc.novncproxy_host': '127.0.0.1', 'vnc.novncproxy_port': '0', 'porthole.api_enabled': 'false',
    'database.connection': `sqlite:///${dir}/p.db`, 'porthole.shared_consoles': String(shared), 'DEFAULT.debug': 'false',
  }) });
  const gw = await createGateway(loaded, { run: { proxies: ['novnc'], api: false }, log: pino({ level: 'warn' }, pino.destination(2)) });
  await gw.stores.inventory.put({ id: SERVER, name: 'bench', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvncPort } });
  const tokens: string[] = [];
  for (let i = 0; i < VIEWERS; i++) {
    const { token } = await gw.stores.tokens.create({ consoleType: 'novnc', host: '127.0.0.1', port: xvncPort, instanceUuid: SERVER, accessUrlBase: gw.novnc!.baseUrl, ttl: 600, internalAccessPath: null });
    tokens.push(token);
  }
  process.stdout.write('BENCH ' + JSON.stringify({ port: gw.novnc!.port, tokens }) + '\n');
  process.stdin.on('end', () => void gw.close().then(() => process.exit(0)));
  process.stdin.resume();
} else {
  const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 10;
  const xvnc = await startXvnc({ colour: '#000000', geometry: '1024x768' });
  try {
    for (const shared of process.argv.includes('--shared-only') ? [true] : [false, true]) console.log(JSON.stringify(await run(shared, xvnc.port, xvnc.display, seconds)));
  } finally {
    await xvnc.stop();
  }
}

async function run(shared: boolean, xvncPort: number, display: string, seconds: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--gateway', '--xvnc', String(xvncPort), ...(shared ? ['--shared'] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /^BENCH (.*)$/m.exec(buf);
      if (m) resolve(m[1]!);
    });
  });
  const { port, tokens } = JSON.parse(first) as { port: number; tokens: string[] };
  let bytes = 0;
  const sockets: WebSocket[] = [];
  await Promise.all(tokens.map((token) => new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/websockify?token=${token}`, ['binary']);
    sockets.push(ws);
    let step = 0;
    ws.on('error', reject);
    ws.on('message', (d: Buffer) => {
      bytes += d.length;
      // the handshake, one message each way (3.8, None), then Raw and update requests
      if (step === 0) ws.send(Buffer.from('RFB 003.008\n'));
      else if (step === 1) ws.send(Buffer.from([1]));
      else if (step === 2) ws.send(Buffer.from([1]));
      else if (step === 3) {
        ws.send(Buffer.from([2, 0, 0, 1, 0, 0, 0, 0]));
        ws.send(Buffer.from([3, 0, 0, 0, 0, 0, 4, 0, 3, 0]));
        resolve();
      } else ws.send(Buffer.from([3, 1, 0, 0, 0, 0, 4, 0, 3, 0]));
      step++;
    });
  })));
  bytes = 0;
  const before = processUsage(child.pid!);
  const started = Date.now();
  let frame = 0;
  while (Date.now() - started < seconds * 1000) {
    const f = frame++;
    await paintRoot(display, { x: 0, y: 0, width: 1024, height: 768 }, (x, y) => [(x + f * 8) & 255, (y + f * 4) & 255, (f * 16) & 255]);
  }
  const after = processUsage(child.pid!);
  const backendConnections = connectionsTo(xvncPort);
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]);
  for (const ws of sockets) ws.terminate();
  child.stdin!.end();
  await new Promise((r) => child.once('exit', r));
  return {
    mode: shared ? 'one shared console, 10 viewers' : '10 separate consoles (byte relay)',
    seconds, framesPainted: frame,
    proxyCpuMs: Math.round((after.user + after.sys - before.user - before.sys) * 1000),
    proxyRssMiB: Math.round(rssKiB / 1024),
    backendConnections,
    viewerMiB: Math.round(bytes / 1024 / 1024),
  };
}
