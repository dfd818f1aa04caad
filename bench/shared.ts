/**
 * @module bench/shared
 * `npm run bench:shared`: one shared console feeding 10 viewers against 10 separate consoles (the
 * byte-exact relay, one backend connection each), on one TigerVNC Xvnc whose whole screen is
 * repainted at a fixed pace (`--fps`, 5 by default), both halves in one run. The gateway runs in a child process of its own
 * (this script with `--gateway`), so its CPU and memory are read from /proc apart from the
 * viewers'; Xvnc's CPU is read too (the backend's cost of encoding per connection). Each viewer
 * asks for one encoding, Raw or ZRLE (noVNC's choice from what the shared console offers), parses
 * the stream just enough to find the end of each FramebufferUpdate, and then asks for the next
 * (incremental), as noVNC does; both halves run with Raw viewers, then both with ZRLE viewers. Printed, and written into bench/RESULTS.md
 * between `<!-- shared -->` markers: proxy CPU (user + sys) over the run and per MiB delivered,
 * its RSS and PSS before the viewers and at the end, Xvnc's CPU, the connections Xvnc sees
 * (counted with the viewers connected), updates and bytes the viewers got.
 *
 * The viewers connect one after another, each handshake done before the next starts: TigerVNC
 * counts every connection from a host that has not yet authenticated as a black mark
 * (`UseBlacklist`, `BlacklistThreshold` 5: `Blacklist::isBlackmarked` marks at accept, a
 * successful authentication clears), so ten byte relays dialled at the same instant from
 * 127.0.0.1 get "Too many security failures" for the 6th to 10th. That is TigerVNC's policy toward
 * any client host (Porthole's own handshake with it is right: a direct client shows the same), not
 * a fault of the relay; a shared console dials once however many viewers arrive together.
 *
 * Usage: npm run bench:shared [-- --seconds 10] [--fps 5] [--no-write]; BENCH_CPU_PROF=<dir> profiles the gateway
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { createGateway } from '../src/gateway.ts';
import { loadConfig } from '../src/config/load.ts';
import { flags, tempDir } from '../test/support/gateway.ts';
import { connectionsTo } from '../test/support/leak-meter.ts';
import { paintRoot } from '../test/support/x11-paint.ts';
import { startXvnc } from '../test/support/xvnc.ts';
import { RfbDecoder } from '../src/rfb/framebuffer/decoder.ts';
import { descendants, processUsage, treePss } from './procs.ts';
import { writeSection } from './results-file.ts';

const VIEWERS = 10;
const RAW = 0;
const ZRLE = 16;
const WIDTH = 1024;
const HEIGHT = 768;
const SERVER = '3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b0a';
const BEGIN = '<!-- shared: written by bench/shared.ts -->';
const END = '<!-- /shared -->';

interface Result {
  mode: string;
  seconds: number;
  framesPainted: number;
  proxyCpuMs: number;
  xvncCpuMs: number;
  idleRssMiB: number;
  idlePssMiB: number;
  rssMiB: number;
  pssMiB: number;
  backendConnections: number;
  updatesPerViewer: number;
  framesSeen: number;
  viewerMiB: number;
}

/** Xvnc is this process's child (test/support/xvnc.ts spawns it): found by its display argument. */
function findXvnc(display: string): number | null {
  for (const pid of descendants(process.pid)) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
      if (argv[0]?.endsWith('Xvnc') && argv[1] === display) return pid;
    } catch {
      // gone
    }
  }
  return null;
}

function cpuMs(pid: number | null): number {
  if (pid === null) return NaN;
  const u = processUsage(pid);
  return (u.user + u.sys) * 1000;
}

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

const MiB = (kib: number | null) => Math.round((kib ?? NaN) / 1024);

/**
 * A viewer as small as the bench needs: the handshake (3.8, None, shared), SetEncodings [Raw] or
 * [ZRLE], then the server's messages framed (FramebufferUpdate with Raw rectangles or ZRLE ones,
 * whose data is a u32 length and that many zlib bytes, not inflated here; Bell, ServerCutText)
 * so that the next incremental request goes out when an update has ended, not per chunk.
 */
class Viewer {
  updates = 0;
  bytes = 0;
  private buf: Buffer = Buffer.alloc(0);
  private step = 0;
  private rectsLeft = -1;
  private rawLeft = 0;
  private readonly ready: Promise<void>;

  /** The one viewer that decodes what it gets (Porthole's RfbDecoder): which painted frames reached it, by the colour of pixel (0, 0). */
  private decoder: RfbDecoder | undefined;
  readonly framesSeen = new Set<number>();

  constructor(readonly ws: WebSocket, private readonly encoding: number, private readonly probe = false) {
    this.ready = new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('close', () => reject(new Error('closed during the handshake')));
      ws.on('message', (d: Buffer) => {
        this.bytes += d.length;
        if (this.step < 4) this.handshake(d, resolve, reject);
        else {
          this.decoder?.push(d);
          this.frame(d);
        }
      });
    });
  }

  opened(): Promise<void> {
    return this.ready;
  }

  private handshake(d: Buffer, resolve: () => void, reject: (e: Error) => void): void {
    // each handshake message is one WebSocket message (the security proxy and the shared server role both send so)
    if (this.step === 0) this.ws.send(Buffer.from('RFB 003.008\n'));
    else if (this.step === 1) {
      if (d[0] === 0) return reject(new Error(`refused: ${d.subarray(5).toString('latin1')}`));
      this.ws.send(Buffer.from([1]));
    } else if (this.step === 2) {
      if (d.readUInt32BE(0) !== 0) return reject(new Error(`security failed: ${d.subarray(8).toString('latin1')}`));
      this.ws.send(Buffer.from([1]));
    } else {
      if (this.probe) {
        this.decoder = new RfbDecoder(d, {
          update: () => {
            const p = this.decoder!.framebuffer.pixels;
            this.framesSeen.add(p[0]! | (p[1]! << 8) | (p[2]! << 16));
          },
        });
      }
      const m = Buffer.from([2, 0, 0, 1, 0, 0, 0, 0]);
      m.writeInt32BE(this.encoding, 4);
      this.ws.send(m);
      this.request(false);
      resolve();
    }
    this.step++;
  }

  private request(incremental: boolean): void {
    const m = Buffer.from([3, incremental ? 1 : 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    m.writeUInt16BE(WIDTH, 6);
    m.writeUInt16BE(HEIGHT, 8);
    this.ws.send(m);
  }

  private frame(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      if (this.rawLeft > 0) {
        const take = Math.min(this.rawLeft, this.buf.length);
        this.rawLeft -= take;
        this.buf = this.buf.subarray(take);
        if (this.rawLeft > 0) return;
        this.rectDone();
        continue;
      }
      if (this.rectsLeft > 0) {
        if (this.buf.length < 12) return;
        const w = this.buf.readUInt16BE(4);
        const h = this.buf.readUInt16BE(6);
        const enc = this.buf.readInt32BE(8);
        if (enc !== this.encoding) throw new Error(`encoding ${enc}: the bench asked for ${this.encoding} only`);
        if (enc === ZRLE) {
          if (this.buf.length < 16) return;
          this.rawLeft = this.buf.readUInt32BE(12);
          this.buf = this.buf.subarray(16);
        } else {
          this.buf = this.buf.subarray(12);
          this.rawLeft = w * h * 4;
        }
        if (this.rawLeft === 0) this.rectDone();
        continue;
      }
      if (this.buf.length === 0) return;
      const type = this.buf[0];
      if (type === 0) {
        if (this.buf.length < 4) return;
        this.rectsLeft = this.buf.readUInt16BE(2);
        this.buf = this.buf.subarray(4);
        if (this.rectsLeft === 0) this.updateDone();
      } else if (type === 2) this.buf = this.buf.subarray(1);
      else if (type === 3) {
        if (this.buf.length < 8) return;
        const len = this.buf.readUInt32BE(4);
        if (this.buf.length < 8 + len) return;
        this.buf = this.buf.subarray(8 + len);
      } else throw new Error(`server message ${type} not expected`);
    }
  }

  private rectDone(): void {
    if (--this.rectsLeft === 0) this.updateDone();
  }

  private updateDone(): void {
    this.rectsLeft = -1;
    this.updates++;
    this.request(true);
  }
}

async function run(shared: boolean, encoding: number, xvncPort: number, display: string, xvncPid: number | null, seconds: number, fps: number): Promise<Result> {
  // BENCH_CPU_PROF=<dir>: the gateway writes a V8 CPU profile there (where its CPU goes)
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', fileURLToPath(import.meta.url), '--gateway', '--xvnc', String(xvncPort), ...(shared ? ['--shared'] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  const viewers: Viewer[] = [];
  try {
    const first = await new Promise<string>((resolve, reject) => {
      let buf = '';
      child.once('exit', (code) => reject(new Error(`gateway exited (${code})`)));
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /^BENCH (.*)$/m.exec(buf);
        if (m) resolve(m[1]!);
      });
    });
    const { port, tokens } = JSON.parse(first) as { port: number; tokens: string[] };
    const idleRss = rssKiB(child.pid!);
    const idlePss = treePss(child.pid!);
    // one after another: see the module comment (TigerVNC's black marks for unauthenticated connections)
    for (const token of tokens) {
      const v = new Viewer(new WebSocket(`ws://127.0.0.1:${port}/websockify?token=${token}`, ['binary']), encoding, viewers.length === VIEWERS - 1);
      viewers.push(v);
      await v.opened();
    }
    const backendConnections = connectionsTo(xvncPort);
    await new Promise((r) => setTimeout(r, 500));
    for (const v of viewers) {
      v.bytes = 0;
      v.updates = 0;
      v.framesSeen.clear();
    }
    const before = cpuMs(child.pid!);
    const xvncBefore = cpuMs(xvncPid);
    const started = Date.now();
    let frame = 0;
    // paced, so that both halves get the same frames whatever the machine's load does to the painter
    while (Date.now() - started < seconds * 1000) {
      const f = frame++;
      await paintRoot(display, { x: 0, y: 0, width: WIDTH, height: HEIGHT }, (x, y) => [(x + f * 8) & 255, (y + f * 4) & 255, (f * 16) & 255]);
      const next = started + (frame * 1000) / fps;
      if (next > Date.now()) await new Promise((r) => setTimeout(r, next - Date.now()));
    }
    // let the last paint reach every viewer before reading the counters
    await new Promise((r) => setTimeout(r, 1000));
    const proxyCpuMs = cpuMs(child.pid!) - before;
    const xvncCpuMs = cpuMs(xvncPid) - xvncBefore;
    const rss = rssKiB(child.pid!);
    const pss = treePss(child.pid!);
    const bytes = viewers.reduce((n, v) => n + v.bytes, 0);
    const updates = viewers.reduce((n, v) => n + v.updates, 0);
    return {
      mode: `${shared ? `one shared console, ${VIEWERS} viewers` : `${VIEWERS} separate consoles (byte relay)`}, ${encoding === ZRLE ? 'ZRLE' : 'Raw'}`,
      seconds, framesPainted: frame,
      proxyCpuMs: Math.round(proxyCpuMs), xvncCpuMs: Math.round(xvncCpuMs),
      idleRssMiB: MiB(idleRss), idlePssMiB: MiB(idlePss), rssMiB: MiB(rss), pssMiB: MiB(pss),
      backendConnections,
      updatesPerViewer: Math.round(updates / VIEWERS),
      framesSeen: viewers.at(-1)!.framesSeen.size,
      viewerMiB: Math.round(bytes / 1024 / 1024),
    };
  } finally {
    for (const v of viewers) v.ws.terminate();
    await stop(child);
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.stdin!.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function render(results: readonly Result[], seconds: number, fps: number): string {
  const row = (name: string, f: (r: Result) => string | number) => `| ${name} | ${results.map((r) => f(r)).join(' | ')} |`;
  const perMiB = (r: Result) => (r.viewerMiB > 0 ? (r.proxyCpuMs / r.viewerMiB).toFixed(1) : '–');
  return [
    BEGIN,
    `## Shared console: one backend for ${VIEWERS} viewers vs ${VIEWERS} separate consoles`,
    '',
    `\`npm run bench:shared -- --seconds ${seconds}\`, run ${new Date().toISOString().slice(0, 16)}Z; Node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end (other helpers were running their tests on the same 2 CPUs: read the CPU figures as upper bounds, compare columns of one run, not runs). TigerVNC Xvnc ${WIDTH}x${HEIGHT} depth 24, its whole screen repainted with a moving gradient by a tiny X11 client, ${fps} times a second at most (${seconds} s per column); the gateway in a child process (SQLite, log level warn); ${VIEWERS} viewers in the benchmark's process, each asking for Raw (first two columns) or ZRLE (last two) and for the next incremental update when one has ended, connected one after another (TigerVNC black-marks a host's unauthenticated connections: see bench/shared.ts).`,
    '',
    `| | ${results.map((r) => r.mode).join(' | ')} |`,
    `|---|${results.map(() => '---:').join('|')}|`,
    row('backend connections (at Xvnc, viewers connected)', (r) => r.backendConnections),
    row('proxy CPU, user + sys (ms)', (r) => r.proxyCpuMs),
    row('proxy CPU per MiB delivered (ms)', perMiB),
    row('Xvnc CPU (ms)', (r) => r.xvncCpuMs),
    row('Xvnc CPU per frame painted (ms)', (r) => (r.xvncCpuMs / r.framesPainted).toFixed(1)),
    row('proxy RSS / PSS before the viewers (MiB)', (r) => `${r.idleRssMiB} / ${r.idlePssMiB}`),
    row('proxy RSS / PSS at the end (MiB)', (r) => `${r.rssMiB} / ${r.pssMiB}`),
    row('frames painted', (r) => r.framesPainted),
    row('updates per viewer', (r) => r.updatesPerViewer),
    row('painted frames seen by the last viewer (decoded)', (r) => r.framesSeen),
    row('MiB delivered to the viewers (all 10)', (r) => r.viewerMiB),
    '',
    'The shared console asks Xvnc for its own encodings (the RFB client core\'s list: Xvnc answers in Tight, lossless here), decodes them once into the hub\'s framebuffer and writes each viewer\'s update in the format and encoding that viewer asked for (ZRLE: a zlib stream per viewer); the byte relay copies what Xvnc encoded for each connection. A viewer of the shared console that asks while the hub is still behind gets the latest screen, not every frame in between: under load it receives fewer frames (the row of frames seen: the last viewer decodes its stream with Porthole\'s RfbDecoder and counts the distinct colours of pixel (0, 0), one per painted frame), the relay\'s viewers get every frame Xvnc encoded for them. With ZRLE viewers the shared console encodes each viewer\'s update itself: its tiles read from the screen on the event loop, then deflated on that viewer\'s own zlib stream (node:zlib, in libuv\'s thread pool, so the proxy\'s CPU can pass 100 % of a core), a whole gradient screen per viewer per update: its ZRLE viewers see few of the frames of a screen that changes all over this fast (a worst case: raw tiles, 3 bytes a pixel). The byte relay leaves that work to the VNC server, once per connection (Xvnc\'s CPU in the last column, which also slowed its painter). PSS is /proc/<pid>/smaps_rollup of the gateway\'s process (shared library pages counted proportionally); backend connections are the established TCP connections to Xvnc\'s port, counted with /proc/net/tcp.',
    END,
    '',
  ].join('\n');
}

// the entry point last: the class above is initialised before the top-level awaits use it
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
  const fps = Number(process.argv[process.argv.indexOf('--fps') + 1]) || 5;
  const xvnc = await startXvnc({ colour: '#000000', geometry: `${WIDTH}x${HEIGHT}` });
  try {
    const xvncPid = findXvnc(xvnc.display);
    const results: Result[] = [];
    for (const encoding of [RAW, ZRLE]) {
      for (const shared of [true, false]) {
        const r = await run(shared, encoding, xvnc.port, xvnc.display, xvncPid, seconds, fps);
        console.log(JSON.stringify(r));
        results.push(r);
      }
    }
    const section = render(results, seconds, fps);
    process.stdout.write(section);
    if (!process.argv.includes('--no-write')) writeSection(BEGIN, END, section);
  } finally {
    await xvnc.stop();
  }
}
