/**
 * @module bench/rfb-decoder
 * Decode speed of Porthole's RFB client core (`src/rfb/framebuffer/`), in MiB/s of RGBA output,
 * on whole-screen updates of a 1920x1080 TigerVNC Xvnc showing `test/fixtures/rfb/paint.py`'s
 * picture scaled up (a 960x540 gradient: photo-like; two flat colour blocks; the flat root), as
 * the server encodes them in Raw, ZRLE, Tight (lossless) and Tight with JPEG (quality 8). The
 * updates are recorded once through Porthole's own client, then decoded `--rounds` times each by
 * a fresh decoder (its construction not timed), fed in 64 KiB chunks as a socket delivers them.
 *
 * It also decides the zlib inflater of `zlib-stream.ts`: the same ZRLE and Tight streams decoded
 * with node:zlib (a native `inflateRawSync` per rectangle, primed with the stream's 32 KiB window)
 * and with pako's streaming `Inflate` (noVNC's choice), swapped in here.
 *
 * Usage: node --import tsx bench/rfb-decoder.ts [--rounds 20]
 */
import { spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import pako from 'pako';
import { openRfbClient } from '../src/rfb/client.ts';
import { RfbDecoder } from '../src/rfb/framebuffer/decoder.ts';
import { ZlibStream } from '../src/rfb/framebuffer/zlib-stream.ts';
import type { BackendAuthSettings } from '../src/rfb/types.ts';
import { startXvnc } from '../test/support/xvnc.ts';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1] || 20) || 20;
const NONE: BackendAuthSettings = { schemes: ['none'], password: null, username: null, tls: null, tlsServerName: null, allowInsecureTls: false };
const CHUNK = 64 * 1024;

interface Recorded {
  readonly serverInit: Buffer;
  readonly stream: Buffer;
}

/** One whole-screen update in `encodings`, as the server sent it after ServerInit. */
async function record(port: number, encodings: number[]): Promise<Recorded> {
  const chunks: Buffer[] = [];
  const tap = createServer((down: Socket) => {
    const up = connect(port, '127.0.0.1');
    down.on('data', (d: Buffer) => up.write(d));
    up.on('data', (d: Buffer) => {
      chunks.push(Buffer.from(d));
      down.write(d);
    });
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
    down.on('error', () => {});
    up.on('error', () => {});
  });
  await new Promise<void>((r) => tap.listen(0, '127.0.0.1', r));
  const socket = connect((tap.address() as { port: number }).port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const client = await openRfbClient(socket, NONE, { timeoutMs: 10_000, address: 'xvnc', shared: true, encodings });
  await client.frame(60_000);
  client.close();
  tap.close();
  const all = Buffer.concat(chunks);
  return { serverInit: client.serverInit, stream: all.subarray(all.indexOf(client.serverInit) + client.serverInit.length) };
}

/** Median seconds to decode `r` with a fresh decoder, fed in 64 KiB chunks. */
function time(r: Recorded): number {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const d = new RfbDecoder(r.serverInit);
    d.setPixelFormat(Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]));
    const start = process.hrtime.bigint();
    for (let at = 0; at < r.stream.length; at += CHUNK) d.push(r.stream.subarray(at, at + CHUNK));
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** pako's streaming inflater in place of node:zlib's, for the comparison. */
function usePako(): () => void {
  const original = ZlibStream.prototype.inflate;
  const inflaters = new WeakMap<ZlibStream, pako.Inflate>();
  ZlibStream.prototype.inflate = function (this: ZlibStream, data: Uint8Array): Buffer {
    let input = data;
    if (!this.started) {
      input = data.subarray(2);
      this.started = true;
      inflaters.delete(this);
    }
    let inflater = inflaters.get(this);
    if (!inflater) {
      inflater = new pako.Inflate({ raw: true, ...(this.window.length ? { dictionary: this.window } : {}) });
      inflaters.set(this, inflater);
    }
    const out: Uint8Array[] = [];
    inflater.onData = (c) => out.push(c as Uint8Array);
    inflater.push(input, pako.constants.Z_SYNC_FLUSH);
    const result = Buffer.concat(out);
    (this as unknown as { remember(b: Buffer): void }).remember(result);
    return result;
  };
  return () => {
    ZlibStream.prototype.inflate = original;
  };
}

const x = await startXvnc({ colour: '#3366cc', geometry: '1920x1080' });
const paint = spawn('python3', [join(import.meta.dirname, '..', 'test', 'fixtures', 'rfb', 'paint.py'), '1920', '1080'], { env: { ...process.env, DISPLAY: x.display }, stdio: ['pipe', 'pipe', 'inherit'] });
try {
  await new Promise((r) => paint.stdout!.once('data', r));
  await new Promise((r) => setTimeout(r, 1000));
  const cases: Array<[string, number[]]> = [['Raw', [0]], ['ZRLE', [16]], ['Tight', [7]], ['Tight+JPEG', [7, -24]]];
  const output = (1920 * 1080 * 4) / 1048576;
  const recorded = new Map<string, Recorded>();
  for (const [name, encodings] of cases) recorded.set(name, await record(x.port, encodings));
  console.log(`# 1920x1080 whole-screen update, median of ${rounds}, output ${output.toFixed(2)} MiB RGBA`);
  for (const [name] of cases) {
    const r = recorded.get(name)!;
    const s = time(r);
    console.log(`${name.padEnd(11)} node:zlib  ${(r.stream.length / 1024).toFixed(0).padStart(6)} KiB in  ${(s * 1000).toFixed(1).padStart(7)} ms  ${(output / s).toFixed(0).padStart(6)} MiB/s`);
  }
  const restore = usePako();
  for (const name of ['ZRLE', 'Tight', 'Tight+JPEG']) {
    const r = recorded.get(name)!;
    const s = time(r);
    console.log(`${name.padEnd(11)} pako       ${(r.stream.length / 1024).toFixed(0).padStart(6)} KiB in  ${(s * 1000).toFixed(1).padStart(7)} ms  ${(output / s).toFixed(0).padStart(6)} MiB/s`);
  }
  restore();
} finally {
  paint.kill();
  await x.stop();
}
