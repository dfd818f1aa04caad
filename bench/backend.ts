/**
 * @module bench/backend
 * The console backends of the relay benchmark: minimal RFB 3.8 servers, run as their own process
 * so that their work does not share an event loop with the proxy or the client being measured.
 * Every connection gets the server half of the handshake (RFC 6143 §7.1–7.3: ProtocolVersion,
 * security types [None], SecurityResult OK, then ServerInit after the client's ClientInit), as
 * a VM's VNC server would; Porthole's security proxy needs it, and the raw TCP and websockify
 * clients go through the same steps so that every path does the same work. After ServerInit:
 *
 * - `source`: writes `--bytes N` bytes as fast as the socket takes them (honouring `drain`),
 *   standing in for framebuffer updates (no proxy parses them), then waits for the peer to hang
 *   up. It does not close first because websockify 0.10 can drop the data it still holds for the
 *   client when its target closes (`do_proxy` raises on the target's EOF with its client queue
 *   unsent), which would measure a truncated download;
 * - `closing`: the same, but ends the connection as soon as the last byte is written, to check
 *   which proxy delivers every byte of a backend that closes (a VM that powers off mid-frame);
 * - `banner`: sends nothing more and keeps the connection until the peer goes: for timing the
 *   handshake alone;
 * - `echo`: writes back every byte the client sends after its ClientInit, as soon as it arrives,
 *   and keeps the connection until the peer goes: for round trips and idle sessions held end to end.
 *
 * Prints `{"sourcePort","closingPort","bannerPort","echoPort"}` as one JSON line on stdout once
 * all four listen; stops on SIGTERM, SIGINT, or when its parent closes stdin.
 *
 * Usage: node --import tsx bench/backend.ts --bytes 268435456
 */
import { createServer, type Server, type Socket } from 'node:net';
import { stopWithParent } from './peer.ts';

const CHUNK = 1024 * 1024;
const VERSION = Buffer.from('RFB 003.008\n', 'latin1');
const SECURITY_NONE = 1;
const NAME = Buffer.from('porthole-bench', 'latin1');
/** §7.3.2: 1024×768, 32 bits per pixel, depth 24, little-endian true colour, then the name. */
const SERVER_INIT = Buffer.concat([
  Buffer.from([0x04, 0x00, 0x03, 0x00, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]),
  Buffer.from([0, 0, 0, NAME.length]),
  NAME,
]);

const bytesArg = process.argv.indexOf('--bytes');
const total = bytesArg > 0 ? Number(process.argv[bytesArg + 1]) : 256 * CHUNK;
if (!Number.isSafeInteger(total) || total <= 0) {
  process.stderr.write(`bench/backend: --bytes ${process.argv[bytesArg + 1]}: expected a positive integer\n`);
  process.exit(2);
}

// One buffer written again and again: the backend should cost as little as it can.
const chunk = Buffer.alloc(CHUNK);
for (let i = 0; i < CHUNK; i++) chunk[i] = i & 0xff;

type Mode = 'source' | 'closing' | 'banner' | 'echo';

const sockets = new Set<Socket>();

/**
 * The server half of the RFB 3.8 handshake, as a resumable state machine fed by `data` events:
 * each step waits until its bytes are there (a short read is not an error).
 */
function serve(socket: Socket, mode: Mode): void {
  sockets.add(socket);
  socket.setNoDelay(true);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
  let state: 'ProtocolVersion' | 'Security' | 'ClientInit' | 'Done' = 'ProtocolVersion';
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (data: Buffer) => {
    if (state === 'Done') {
      if (mode === 'echo') socket.write(data);
      return;
    }
    pending = pending.length === 0 ? data : Buffer.concat([pending, data]);
    for (;;) {
      if (state === 'ProtocolVersion') {
        if (pending.length < VERSION.length) return;
        if (!pending.subarray(0, VERSION.length).equals(VERSION)) {
          socket.destroy();
          return;
        }
        pending = pending.subarray(VERSION.length);
        socket.write(Buffer.from([1, SECURITY_NONE]));
        state = 'Security';
      } else if (state === 'Security') {
        if (pending.length < 1) return;
        if (pending[0] !== SECURITY_NONE) {
          socket.destroy();
          return;
        }
        pending = pending.subarray(1);
        socket.write(Buffer.from([0, 0, 0, 0]));
        state = 'ClientInit';
      } else if (state === 'ClientInit') {
        if (pending.length < 1) return;
        const rest = pending.subarray(1);
        pending = Buffer.alloc(0);
        state = 'Done';
        socket.write(SERVER_INIT);
        if (mode === 'echo') {
          if (rest.length > 0) socket.write(rest);
        } else if (mode !== 'banner') stream(socket, mode === 'closing');
        return;
      } else {
        return;
      }
    }
  });
  socket.on('end', () => socket.end());
  socket.write(VERSION);
}

function stream(socket: Socket, closeWhenDone: boolean): void {
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

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

const source = createServer((s) => serve(s, 'source'));
const closing = createServer((s) => serve(s, 'closing'));
const banner = createServer((s) => serve(s, 'banner'));
const echo = createServer((s) => serve(s, 'echo'));
const [sourcePort, closingPort, bannerPort, echoPort] = await Promise.all([listen(source), listen(closing), listen(banner), listen(echo)]);
process.stdout.write(`${JSON.stringify({ sourcePort, closingPort, bannerPort, echoPort })}\n`);

function stop(): void {
  source.close();
  closing.close();
  banner.close();
  echo.close();
  for (const s of sockets) s.destroy();
  process.exit(0);
}
stopWithParent(stop);
