/**
 * @module bench/client
 * The benchmarks' client: one console connection over raw TCP or a WebSocket, the client half of
 * the RFB 3.8 handshake, then counting bytes. A `Path` is one way to reach the backends: straight
 * (a port) or through a proxy (a WebSocket URL per backend).
 */
import { connect } from 'node:net';
import { LOOPBACK } from './procs.ts';
import { BenchWebSocket } from './ws-client.ts';

const BANNER_LENGTH = 12;

/** One way for the client to reach the backends: straight, or through a proxy. */
export interface Path {
  readonly name: string;
  /** the process tree whose CPU is the proxy's cost (none for raw TCP) */
  readonly pid: number | null;
  /** where a target is served by another process (websockify: one per target) */
  readonly pids?: Partial<Record<Target, number>>;
  /** per backend (bench/backend.ts): a port for raw TCP, a WebSocket URL for a proxy */
  readonly targets: Readonly<Record<Target, string | number>>;
}

// ---------------------------------------------------------------------------------------------
// the client: one console connection over raw TCP or a WebSocket, doing the client half of the
// RFB 3.8 handshake, then counting bytes

/**
 * The bytes a connection has received. During the handshake they queue for `read`; after
 * `count()` they are only counted, so the bulk phase costs the client one addition per chunk.
 */
export class Inbox {
  private chunks: Buffer[] = [];
  private queued = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private counting = false;
  counted = 0;
  onCount: ((counted: number) => void) | undefined;

  push(data: Buffer): void {
    if (this.counting) {
      this.counted += data.length;
      this.onCount?.(this.counted);
      return;
    }
    this.chunks.push(data);
    this.queued += data.length;
    this.wake();
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.wake();
    });
  }

  count(): void {
    this.counting = true;
    this.counted = this.queued;
    this.chunks = [];
    this.queued = 0;
  }

  end(err: Error): void {
    this.failure ??= err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.queued >= w.n) {
      this.waiter = undefined;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = all.length > w.n ? [all.subarray(w.n)] : [];
      this.queued -= w.n;
      w.resolve(all.subarray(0, w.n));
    } else if (this.failure) {
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }
}

export interface Connection {
  readonly inbox: Inbox;
  /** when the connection attempt started */
  readonly t0: bigint;
  /** settles when the connection is closed, with the WebSocket close code (0 for TCP) */
  readonly closed: Promise<number>;
  write(data: Buffer): void;
  /** a clean close: TCP FIN, or a WebSocket close frame with 1000 */
  close(): void;
  destroy(): void;
}

export type Target = 'source' | 'closing' | 'banner' | 'echo';

export function open(path: Path, target: Target): Connection {
  const where = path.targets[target];
  const inbox = new Inbox();
  const t0 = process.hrtime.bigint();
  if (typeof where === 'number') {
    const socket = connect({ host: LOOPBACK, port: where, noDelay: true });
    socket.on('data', (d: Buffer) => inbox.push(d));
    socket.on('error', (err) => inbox.end(err));
    const closed = new Promise<number>((resolve) => socket.on('close', () => {
      inbox.end(new Error(`${path.name}: connection closed`));
      resolve(0);
    }));
    return { inbox, t0, closed, write: (d) => socket.write(d), close: () => socket.end(), destroy: () => socket.destroy() };
  }
  let resolveClosed!: (code: number) => void;
  const closed = new Promise<number>((resolve) => (resolveClosed = resolve));
  const ws = new BenchWebSocket(where, 'binary', {
    open: () => {},
    data: (d) => inbox.push(d),
    error: (err) => inbox.end(new Error(`${path.name}: ${err.message}`)),
    close: (code, reason) => {
      inbox.end(new Error(`${path.name}: WebSocket closed (${code}${reason ? ` ${reason}` : ''})`));
      resolveClosed(code);
    },
  });
  return {
    inbox,
    t0,
    closed,
    // the handshake writes only after the server's first bytes, so the upgrade is done by then
    write: (d) => ws.send(d),
    // a peer that does not answer the close frame is cut off after 2 s
    close: () => ws.close(1000),
    destroy: () => ws.terminate(),
  };
}

export interface Handshake {
  /** nanoseconds from the connection attempt to the 12-byte ProtocolVersion */
  readonly banner: bigint;
  /** ... to the whole ServerInit: the console can draw */
  readonly ready: bigint;
}

/** The client half of RFB 3.8 (RFC 6143 §7.1–7.3), choosing None, asking for a shared session. */
export async function rfbHandshake(c: Connection): Promise<Handshake> {
  const version = await c.inbox.read(BANNER_LENGTH);
  const banner = process.hrtime.bigint() - c.t0;
  if (version.toString('latin1') !== 'RFB 003.008\n') throw new Error(`not an RFB 3.8 server: ${JSON.stringify(version.toString('latin1'))}`);
  c.write(Buffer.from('RFB 003.008\n', 'latin1'));
  const count = (await c.inbox.read(1))[0]!;
  if (count === 0) throw new Error('the server refused the connection');
  const types = await c.inbox.read(count);
  if (!types.includes(1)) throw new Error(`security type None not offered: ${[...types].join(', ')}`);
  c.write(Buffer.from([1]));
  const result = (await c.inbox.read(4)).readUInt32BE(0);
  if (result !== 0) throw new Error(`SecurityResult ${result}`);
  c.write(Buffer.from([1]));
  const head = await c.inbox.read(24);
  await c.inbox.read(head.readUInt32BE(20));
  return { banner, ready: process.hrtime.bigint() - c.t0 };
}

/** Runs `fn` on a fresh connection with a deadline; the connection is gone when it settles. */
export async function withConnection<T>(path: Path, target: Target, ms: number, fn: (c: Connection) => Promise<T>): Promise<T> {
  const c = open(path, target);
  const timer = setTimeout(() => {
    c.inbox.end(new Error(`${path.name}: no progress within ${ms} ms`));
    c.destroy();
  }, ms);
  try {
    return await fn(c);
  } catch (err) {
    c.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
    await c.closed;
  }
}

