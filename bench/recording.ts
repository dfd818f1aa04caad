/**
 * @module bench/recording
 * `npm run bench:recording`: what recording a console costs the proxy. One noVNC console (the
 * RFB security proxy, then the relay) downloads N bytes from a backend that writes as fast as the
 * socket takes (`sourceBackend`, after its RFB handshake), through a gateway with recording off
 * and one with `[DEFAULT] record` on (every session recorded to a file in a temporary directory),
 * trials interleaved on the same run. Each gateway runs in a child process of its own (this
 * script with `--gateway`), so its CPU (user + sys from /proc) is apart from the client's and the
 * backend's. Printed: MiB/s and proxy CPU seconds per GiB of each, and the ratio on/off (issue
 * 18's budget: at most 1.15). The recordings are deleted after each trial.
 *
 * Writing a file costs the kernel CPU of its own (page cache, the file system's blocks): on ext4
 * about as much per GiB as the whole relay. `--dir /dev/shm` puts the recordings on tmpfs, which
 * shows Porthole's own share (the tap, the copy into blocks, the writes) apart from the disk's.
 * The report line says how many recordings were cut because the disk did not keep up.
 *
 * With the default bound (16 MiB waiting), a download at full speed on a loaded machine outruns
 * the disk's thread and its recording is cut (as designed: the console never waits); `--whole`
 * raises the bound so that every byte is recorded, which is the cost to compare.
 *
 * `--rate N` paces the backend at N MiB/s, a console's pace rather than a download's.
 *
 * Usage: npm run bench:recording [-- --mib 256] [-- --trials 5] [-- --dir /dev/shm] [-- --whole] [-- --rate N]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { loadConfig } from '../src/config/load.ts';
import { createGateway } from '../src/gateway.ts';
import { RecordingReader, RecordType } from '../src/rfb/recording/format.ts';
import { createServer, type Socket } from 'node:net';
import { rfbNoneServer, sourceBackend } from '../test/support/backends.ts';
import { flags, tempDir } from '../test/support/gateway.ts';
import { processUsage } from './procs.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

if (process.argv.includes('--gateway')) {
  // the child: a gateway on loopback, recording every session or none; mints tokens on request
  const record = process.argv[process.argv.indexOf('--record') + 1]!;
  const dir = tempDir('porthole-bench-recording-');
  const loaded = loadConfig({ flags: flags({
    'vnc.novncproxy_host': '127.0.0.1', 'vnc.novncproxy_port': '0', 'porthole.api_enabled': 'false',
    'database.connection': `sqlite:///${dir}/p.db`, 'DEFAULT.debug': 'false',
    ...(record !== 'off' ? { 'DEFAULT.record': join(record, 'bench') } : {}),
  }) });
  const gw = await createGateway(loaded, { run: { proxies: ['novnc'], api: false }, log: pino({ level: 'warn' }, pino.destination(2)) });
  // --whole: no recording is cut (a bound past the download), to measure the whole cost of recording every byte
  if (process.argv.includes('--whole')) gw.recorders.queueBytes = 4 * 1024 * MiB;
  process.stdout.write('BENCH ' + JSON.stringify({ port: gw.novnc!.port }) + '\n');
  let buf = '';
  process.stdin.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i; (i = buf.indexOf('\n')) >= 0; ) {
      const backendPort = Number(buf.slice(0, i));
      buf = buf.slice(i + 1);
      void gw.stores.tokens.create({ consoleType: 'novnc', host: '127.0.0.1', port: backendPort, instanceUuid: '00000000-0000-4000-8000-0000000be0c0', accessUrlBase: gw.novnc!.baseUrl, ttl: 600, internalAccessPath: null })
        .then(({ token }) => process.stdout.write(`TOKEN ${token}\n`));
    }
  });
  process.stdin.on('end', () => void gw.close().then(() => (rmSync(dir, { recursive: true, force: true }), process.exit(0))));
} else {
  const mib = Number(process.argv[process.argv.indexOf('--mib') + 1]) || 256;
  const trials = Number(process.argv[process.argv.indexOf('--trials') + 1]) || 5;
  // --rate N: the backend sends N MiB/s (a console's pace rather than a download's); absent: as fast as the socket takes
  const rate = process.argv.includes('--rate') ? Number(process.argv[process.argv.indexOf('--rate') + 1]) : 0;
  const backend = rate > 0 ? await pacedBackend(rate) : await sourceBackend();
  // --dir: where the recordings go (a disk's file system, or tmpfs to see Porthole's own share apart from the file system's)
  const base = process.argv.includes('--dir') ? process.argv[process.argv.indexOf('--dir') + 1]! : undefined;
  const recordDir = base ? mkdtempSync(join(base, 'porthole-bench-recordings-')) : tempDir('porthole-bench-recordings-');
  const off = await startGateway('off');
  const on = await startGateway(recordDir);
  const results = { off: { cpu: 0, user: 0, seconds: 0, bytes: 0 }, on: { cpu: 0, user: 0, seconds: 0, bytes: 0 } };
  /** Bytes of the measured recordings' files, and how many were cut short (the disk did not keep up). */
  let recordedBytes = 0;
  let cut = 0;
  try {
    // a warm-up download each, not counted
    await download(off, backend.port, 16 * MiB);
    await download(on, backend.port, 16 * MiB);
    for (let t = 0; t < trials; t++) {
      for (const [name, gw] of [['off', off], ['on', on]] as const) {
        const r = await download(gw, backend.port, mib * MiB);
        results[name].cpu += r.cpu;
        results[name].user += r.user;
        results[name].seconds += r.seconds;
        results[name].bytes += r.bytes;
        // the files go, the directory stays (the recorders made it once); a recording ends just after its session
        await new Promise((r) => setTimeout(r, 500));
        for (const f of readdirSync(recordDir)) {
          const path = join(recordDir, f);
          if (name === 'on') {
            recordedBytes += statSync(path).size;
            if (wasCut(readFileSync(path))) cut++;
          }
          rmSync(path, { force: true });
        }
      }
    }
  } finally {
    for (const gw of [off, on]) {
      gw.child.stdin!.end();
      await new Promise((r) => gw.child.once('exit', r));
    }
    await backend.close();
    rmSync(recordDir, { recursive: true, force: true });
  }
  const row = (r: { cpu: number; user: number; seconds: number; bytes: number }) => ({ mibPerSec: +(r.bytes / MiB / r.seconds).toFixed(1), proxyCpuSecondsPerGiB: +(r.cpu / (r.bytes / GiB)).toFixed(3), userSecondsPerGiB: +(r.user / (r.bytes / GiB)).toFixed(3) });
  const a = row(results.off);
  const b = row(results.on);
  console.log(JSON.stringify({ mibPerDownload: mib, trials, backendMiBPerSecond: rate || 'as fast as it goes', recordingsIn: base ?? 'the temporary directory', recordingOff: a, recordingOn: b, cpuRatioOnOff: +(b.proxyCpuSecondsPerGiB / a.proxyCpuSecondsPerGiB).toFixed(3), recordedShareOfRelayed: +(recordedBytes / results.on.bytes).toFixed(3), recordingsCut: `${cut} of ${trials}`, throughputRatioOnOff: +(b.mibPerSec / a.mibPerSec).toFixed(3) }, null, 2));
}

/** After the RFB handshake, `mibPerSecond` in 64 KiB writes every 10 ms or so, for as long as the socket is open. */
async function pacedBackend(mibPerSecond: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
    rfbNoneServer(sock, (s) => {
      s.resume();
      const started = performance.now();
      let sent = 0;
      const tick = setInterval(() => {
        if (s.destroyed) return clearInterval(tick);
        const due = ((performance.now() - started) / 1000) * mibPerSecond * MiB;
        while (sent < due && s.writableLength < 4 * MiB) {
          s.write(chunk);
          sent += chunk.length;
        }
      }, 10);
      s.once('close', () => clearInterval(tick));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

/** Whether a recording holds a TRUNCATED record (its recorder fell behind the disk and stopped). */
function wasCut(file: Buffer): boolean {
  const reader = new RecordingReader();
  reader.push(file);
  for (let r; (r = reader.next()); ) if (r.type === RecordType.TRUNCATED) return true;
  return false;
}

interface BenchGateway {
  readonly child: ChildProcess;
  readonly port: number;
  nextToken(backendPort: number): Promise<string>;
}

async function startGateway(record: string): Promise<BenchGateway> {
  const prof = process.env['BENCH_CPU_PROF'] ? ['--cpu-prof', '--cpu-prof-dir', join(process.env['BENCH_CPU_PROF'], record === 'off' ? 'off' : 'on')] : [];
  const whole = process.argv.includes('--whole') ? ['--whole'] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', fileURLToPath(import.meta.url), '--gateway', '--record', record, ...whole], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting: Array<(line: string) => void> = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i; (i = buf.indexOf('\n')) >= 0; ) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiting.shift()?.(line);
    }
  });
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  const first = await next();
  const { port } = JSON.parse(first.replace(/^BENCH /, '')) as { port: number };
  return {
    child,
    port,
    async nextToken(backendPort) {
      const line = next();
      child.stdin!.write(`${backendPort}\n`);
      return (await line).replace(/^TOKEN /, '');
    },
  };
}

/** One console: the RFB handshake (3.8, None, shared), then `bytes` of the backend's stream; the gateway's CPU over it. */
async function download(gw: BenchGateway, backendPort: number, bytes: number): Promise<{ cpu: number; user: number; seconds: number; bytes: number }> {
  const token = await gw.nextToken(backendPort);
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/websockify?token=${token}`, ['binary'], { perMessageDeflate: false });
  let step = 0;
  let got = 0;
  let before = processUsage(gw.child.pid!);
  let started = 0;
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('message', (d: Buffer) => {
      if (step < 3) {
        // ProtocolVersion, security types, SecurityResult: one message each way, then ClientInit
        ws.send(step === 0 ? Buffer.from('RFB 003.008\n') : Buffer.from([1]));
        step++;
        return;
      }
      if (step === 3) {
        // ServerInit: the download starts
        step++;
        before = processUsage(gw.child.pid!);
        started = performance.now();
        return;
      }
      got += d.length;
      if (got >= bytes) {
        ws.removeAllListeners('message');
        resolve();
      }
    });
  });
  const seconds = (performance.now() - started) / 1000;
  const after = processUsage(gw.child.pid!);
  const closed = new Promise((r) => ws.once('close', r));
  ws.close();
  await closed;
  return { cpu: after.user + after.sys - before.user - before.sys, user: after.user - before.user, seconds, bytes: got };
}
