/**
 * @module bench/screenshot
 * Screenshot latency (`GET /porthole/v1/servers/{id}/screenshot`), p50 and p99 over sequential
 * requests, against a real TigerVNC Xvnc at 1280x800 (root painted with a gradient, a square and a
 * solid background by `test/support/painted-screen.ts`), through a real gateway in this process
 * (SQLite, noauth2 admin):
 *
 * - idle server, by the service's own connection (dial, RFB handshake, ClientInit shared, one
 *   full update with Porthole's default encodings, close, PNG), at full size and at `?width=320`;
 * - the PNG step alone (`encodeScreenshot` of a 1280x800 framebuffer), to split the above;
 * - from a live shared console's framebuffer (a viewer held open over the noVNC listener on a
 *   server with shared consoles), when the gateway has shared consoles (`gateway.sharedConsoles`).
 *
 * The paths are interleaved request by request so drift on a shared machine hits all alike.
 * Prints a table and writes it into `bench/RESULTS.md` between its markers.
 *
 * Usage: node --import tsx bench/screenshot.ts [--quick]   (npm run bench:screenshot)
 */
import { request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { WebSocket } from 'ws';
import type { Framebuffer } from '../src/rfb/framebuffer/types.ts';
import { encodeScreenshot } from '../src/rfb/screenshot.ts';
import { startApi, type TestApi } from '../test/support/api.ts';
import { paintRoot } from '../test/support/x11-paint.ts';
import { paintedXvnc } from '../test/support/painted-screen.ts';
import { RfbClient } from '../test/support/rfb-client.ts';
import type { Xvnc } from '../test/support/xvnc.ts';
import { writeSection } from './results-file.ts';

const BEGIN = '<!-- screenshot: written by bench/screenshot.ts -->';
const END = '<!-- /screenshot -->';
const IDLE = '5c7e0000-0000-4000-8000-00000000a001';
const LIVE = '5c7e0000-0000-4000-8000-00000000a002';
const ADMIN = 'admin:admin';

const quick = process.argv.includes('--quick');
const N = quick ? 30 : 200;
const WARMUP = quick ? 3 : 10;

function get(port: number, path: string): Promise<{ status: number; bytes: number; source: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { 'X-Auth-Token': ADMIN }, timeout: 60_000 }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, source: String(res.headers['x-porthole-screenshot-source']) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Row {
  readonly name: string;
  readonly ms: number[];
  bytes: number;
}

async function main(): Promise<void> {
  let xvnc: Xvnc | undefined;
  let gw: TestApi | undefined;
  let viewer: WebSocket | undefined;
  try {
    xvnc = await paintedXvnc({ geometry: '1280x800' });
    // the painting covers 640x480; a second gradient fills more of the wider screen
    await paintRoot(xvnc.display, { x: 700, y: 100, width: 500, height: 600 }, (x, y) => [(x * 7) & 255, (y * 3) & 255, ((x + y) * 5) & 255]);
    gw = await startApi({ 'porthole.screenshot_timeout': '30' });
    const vnc = { host: '127.0.0.1', port: xvnc.port };
    await gw.addServer({ id: IDLE, name: 'idle', projectId: 'p', vnc });
    const hub = (gw.gateway as unknown as { sharedConsoles?: { liveFramebuffer(id: string): Framebuffer | undefined } }).sharedConsoles;
    if (hub) {
      await gw.addServer({ id: LIVE, name: 'live', projectId: 'p', vnc, sharedConsoles: true });
      const { token } = await gw.mint({ host: vnc.host, port: vnc.port, instanceUuid: LIVE });
      viewer = new WebSocket(`ws://127.0.0.1:${gw.port}/websockify?token=${encodeURIComponent(token)}`, 'binary', { headers: { Origin: gw.origin } });
      // the client listens before the upgrade completes: the server's ProtocolVersion may come with the 101
      const client = RfbClient.overWebSocket(viewer);
      await new Promise((resolve, reject) => {
        viewer!.once('open', resolve);
        viewer!.once('error', reject);
      });
      await client.handshake({ shared: true, timeoutMs: 20_000 });
      await client.requestFramebuffer(undefined, 20_000);
      const deadline = Date.now() + 20_000;
      while (!hub.liveFramebuffer(LIVE)) {
        if (Date.now() > deadline) throw new Error('the shared console has no live framebuffer after 20 s');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const fb = await frameOf(gw.apiPort);
    const rows: Row[] = [
      { name: 'idle server, own connection, full size (1280x800)', ms: [], bytes: 0 },
      { name: 'idle server, own connection, ?width=320', ms: [], bytes: 0 },
      { name: 'PNG step alone (1280x800 framebuffer → PNG)', ms: [], bytes: 0 },
      ...(hub ? [{ name: 'live shared console, full size', ms: [], bytes: 0 }, { name: 'live shared console, ?width=320', ms: [], bytes: 0 }] : []),
    ];
    const steps: Array<() => Promise<{ bytes: number; source?: string }>> = [
      () => get(gw!.apiPort, `/porthole/v1/servers/${IDLE}/screenshot`),
      () => get(gw!.apiPort, `/porthole/v1/servers/${IDLE}/screenshot?width=320`),
      async () => ({ bytes: (await encodeScreenshot(fb)).png.length }),
      ...(hub ? [() => get(gw!.apiPort, `/porthole/v1/servers/${LIVE}/screenshot`), () => get(gw!.apiPort, `/porthole/v1/servers/${LIVE}/screenshot?width=320`)] : []),
    ];
    for (let i = 0; i < WARMUP + N; i++) {
      for (let s = 0; s < steps.length; s++) {
        const t0 = performance.now();
        const r = await steps[s]!();
        const ms = performance.now() - t0;
        if ('status' in r && r.status !== 200) throw new Error(`${rows[s]!.name}: HTTP ${r.status}`);
        if (s >= 3 && r.source !== 'live') throw new Error(`${rows[s]!.name}: source ${r.source}, not live`);
        if (i >= WARMUP) {
          rows[s]!.ms.push(ms);
          rows[s]!.bytes = r.bytes;
        }
      }
    }
    const lines = rows.map((r) => {
      const sorted = [...r.ms].sort((a, b) => a - b);
      return `| ${r.name} | ${percentile(sorted, 50).toFixed(1)} | ${percentile(sorted, 99).toFixed(1)} | ${(r.bytes / 1024).toFixed(0)} |`;
    });
    const section = [
      BEGIN,
      '## Screenshots',
      '',
      `\`npm run bench:screenshot${quick ? ' -- --quick' : ''}\`: ${N} sequential requests per path after ${WARMUP} of warm-up, interleaved; TigerVNC Xvnc 1280x800 depth 24, painted; gateway in the benchmark's process (SQLite); ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(2)} at the end.${hub ? '' : ' No live shared-console figures: this gateway has no shared consoles.'}`,
      '',
      '| path | p50 ms | p99 ms | PNG KiB |',
      '|---|---:|---:|---:|',
      ...lines,
      '',
      END,
      '',
    ].join('\n');
    process.stdout.write(section);
    writeSection(BEGIN, END, section);
  } catch (err) {
    for (const l of gw?.logs ?? []) if (l.level >= 30 && !String(l.event).startsWith("api")) process.stderr.write(`${JSON.stringify(l)}\n`);
    throw err;
  } finally {
    viewer?.terminate();
    await gw?.close();
    await xvnc?.stop();
  }
}

/** One full-size screenshot's framebuffer, for the PNG step alone: the decoded PNG as RGBA. */
async function frameOf(apiPort: number): Promise<Framebuffer> {
  const { PNG } = await import('pngjs');
  const body = await new Promise<Buffer>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: apiPort, path: `/porthole/v1/servers/${IDLE}/screenshot`, headers: { 'X-Auth-Token': ADMIN } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    });
    req.on('error', reject);
    req.end();
  });
  const png = PNG.sync.read(body);
  return { width: png.width, height: png.height, pixels: new Uint8Array(png.data), name: 'bench' };
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/screenshot: ${(err as Error)?.stack ?? err}\n`);
  process.exitCode = 1;
});
