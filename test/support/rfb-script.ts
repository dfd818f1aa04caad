/**
 * @module test/support/rfb-script
 * Scripted VNC servers for byte-transcript tests of the security proxy: a loopback TCP server
 * whose one connection runs a script (write these bytes, expect exactly those, stall, hang up),
 * so each handshake step and each kind of hostile server is a few lines. Writes can go out one
 * byte at a time, so the proxy's reads must resume across chunks. A mock by design: the real
 * servers (Xvnc, QEMU) are in the integration tests; these make the misbehaviour no real server
 * shows on demand. Also the browser's side as the RFB code sees it (`FakeClient`).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { clientReader, type ClientSeam } from '../../src/rfb/security-proxy.ts';
import type { RfbReader } from '../../src/rfb/reader.ts';
import type { Transcript } from '../fixtures/rfb/transcript.ts';

export interface ScriptIo {
  readonly socket: Socket;
  /** Writes `bytes`; with `byteByByte`, one write per byte with a turn of the event loop between. */
  write(bytes: Buffer | number[] | string, opts?: { byteByByte?: boolean }): Promise<void>;
  /** Exactly `n` bytes from the proxy (rejects if it hangs up first). */
  read(n: number): Promise<Buffer>;
  /** Resolves when the proxy has closed the connection. */
  closed(): Promise<void>;
}

export interface ScriptedServer {
  readonly port: number;
  /** The script's outcome: resolves when it returned, rejects with its error. */
  readonly done: Promise<void>;
  /** A socket connected to it, as `connectBackend` would hand over. */
  connect(): Promise<Socket>;
  close(): Promise<void>;
}

export async function scriptedServer(script: (io: ScriptIo) => Promise<void>): Promise<ScriptedServer> {
  let settle!: { resolve: () => void; reject: (e: unknown) => void };
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => {});
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    script(scriptIo(socket)).then(settle.resolve, settle.reject);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    done,
    async connect() {
      const s = connect({ port, host: '127.0.0.1', noDelay: true });
      await new Promise<void>((resolve, reject) => {
        s.once('connect', resolve);
        s.once('error', reject);
      });
      // as connectBackend leaves it: not flowing until someone reads
      s.pause();
      return s;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function scriptIo(socket: Socket): ScriptIo {
  let buf = Buffer.alloc(0);
  let ended = false;
  let wake: (() => void) | null = null;
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  socket.on('close', () => {
    ended = true;
    wake?.();
  });
  return {
    socket,
    async write(bytes, opts = {}) {
      const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
      if (!opts.byteByByte) {
        socket.write(b);
        return;
      }
      for (const byte of b) {
        if (socket.destroyed) return;
        socket.write(Buffer.from([byte]));
        await new Promise((r) => setTimeout(r, 1));
      }
    },
    async read(n) {
      while (buf.length < n) {
        if (ended) throw new Error(`the proxy hung up; wanted ${n} bytes, have ${buf.length}: ${buf.toString('hex')}`);
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
      const out = buf.subarray(0, n);
      buf = buf.subarray(n);
      return out;
    },
    closed: () => closed,
  };
}

/** Replays a recorded handshake's server side, checking the proxy's side byte for byte. */
export function replay(t: Transcript, opts: { byteByByte: boolean }): (io: ScriptIo) => Promise<void> {
  return async (io) => {
    for (const step of t.steps) {
      if (step.from === 'server') {
        await io.write(Buffer.from(step.hex!, 'hex'), opts);
      } else if (step.tls) {
        // TLS record type 22 (handshake), version 3.x: a ClientHello
        const head = await io.read(2);
        if (head[0] !== 0x16 || head[1] !== 0x03) throw new Error(`expected a TLS ClientHello, got ${head.toString('hex')}`);
        io.socket.destroy();
        return;
      } else {
        const want = Buffer.from(step.hex!, 'hex');
        const got = await io.read(want.length);
        if (!got.equals(want)) throw new Error(`the proxy sent ${got.toString('hex')}, the recording has ${want.toString('hex')}`);
      }
    }
  };
}

/** The browser as the RFB code sees it: what it was sent (one entry per message) and what it says. */
export class FakeClient implements ClientSeam {
  readonly messages: Buffer[] = [];
  readonly reader: RfbReader;
  constructor(timeoutMs = 2000) {
    this.reader = clientReader(timeoutMs);
  }
  send(message: Buffer): void {
    this.messages.push(Buffer.from(message));
  }
  say(bytes: Buffer | number[] | string): void {
    this.reader.push(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes));
  }
}
