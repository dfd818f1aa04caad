/**
 * @module bench/backend
 * The console backends of the relay benchmark, run as their own process so that their work does
 * not share an event loop with the proxy or the client that is measured. Two loopback listeners:
 *
 * - `source`: on connect, writes `--bytes N` bytes as fast as the socket takes them (honouring
 *   `drain`), then waits for the peer to hang up: a download of a known size. It does not close
 *   first because websockify 0.10 drops the data it still holds for the client when its target
 *   closes (`do_proxy` raises on the target's EOF with its client queue unsent), which would
 *   measure a truncated download;
 * - `closing`: the same, but ends the connection as soon as the last byte is written, to check
 *   which proxy delivers every byte of a backend that closes (a VM that powers off mid-frame);
 * - `banner`: on connect, writes the 12-byte RFB 3.8 ProtocolVersion (RFC 6143 §7.1.1) at once
 *   and keeps the connection until the peer goes: the first byte a VNC client waits for.
 *
 * Prints `{"sourcePort","closingPort","bannerPort"}` as one JSON line on stdout once all three listen; stops on
 * SIGTERM, SIGINT, or when its parent closes stdin.
 *
 * Usage: node --import tsx bench/backend.ts --bytes 268435456
 */
import { createServer, type Server, type Socket } from 'node:net';

const CHUNK = 1024 * 1024;
const BANNER = Buffer.from('RFB 003.008\n', 'latin1');

const bytesArg = process.argv.indexOf('--bytes');
const total = bytesArg > 0 ? Number(process.argv[bytesArg + 1]) : 256 * CHUNK;
if (!Number.isSafeInteger(total) || total <= 0) {
  process.stderr.write(`bench/backend: --bytes ${process.argv[bytesArg + 1]}: expected a positive integer\n`);
  process.exit(2);
}

// One buffer written again and again: the backend should cost as little as it can, and a fixed
// non-zero pattern still lets a reader spot truncation or reordering if it wants to.
const chunk = Buffer.alloc(CHUNK);
for (let i = 0; i < CHUNK; i++) chunk[i] = i & 0xff;

const sockets = new Set<Socket>();

function track(socket: Socket): void {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
}

function sourceOnConnection(socket: Socket, closeWhenDone: boolean): void {
  track(socket);
  socket.resume();
  socket.on('end', () => socket.end());
  socket.setNoDelay(true);
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, CHUNK);
      left -= n;
      const ok = socket.write(n === CHUNK ? chunk : chunk.subarray(0, n));
      if (!ok) {
        socket.once('drain', pump);
        return;
      }
    }
    if (closeWhenDone) socket.end();
  };
  pump();
}

function bannerOnConnection(socket: Socket): void {
  track(socket);
  socket.setNoDelay(true);
  socket.write(BANNER);
  socket.resume();
  socket.on('end', () => socket.end());
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

const source = createServer((s) => sourceOnConnection(s, false));
const closing = createServer((s) => sourceOnConnection(s, true));
const banner = createServer(bannerOnConnection);
const [sourcePort, closingPort, bannerPort] = await Promise.all([listen(source), listen(closing), listen(banner)]);
process.stdout.write(`${JSON.stringify({ sourcePort, closingPort, bannerPort })}\n`);

function stop(): void {
  source.close();
  closing.close();
  banner.close();
  for (const s of sockets) s.destroy();
  process.exit(0);
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
// the bench keeps our stdin open: if it dies without killing us, stdin ends and we go too
process.stdin.on('end', stop);
process.stdin.resume();
