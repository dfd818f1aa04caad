/**
 * @module rfb/reader
 * Resumable reads for the RFB handshake (RFC 6143 §7.1–7.3) on either side of the security
 * proxy. Bytes are pushed in as they arrive, in chunks of any size; a read of N bytes resolves
 * once N are there (a short chunk is not an error: the read resumes with the next one). Every
 * length is bounded before anything is allocated for it, the bytes held unread are bounded, and
 * the whole handshake has one deadline: when it passes, the pending read (or the guarded step,
 * such as a TLS handshake) fails with the side's timeout error, and so does every later read.
 */
import { Readable } from 'node:stream';
import type { GatewayError } from '../errors.ts';

/** What a side's failures look like: the backend's are backend errors, the browser's client errors. */
export interface ReaderErrors {
  /** The peer closed (or its socket failed) before `step` could be read. */
  closed(step: string, detail: string): GatewayError;
  /** The deadline passed while waiting for `step`. */
  timeout(step: string): GatewayError;
  /** The peer sent something no RFB peer may send (an unbounded length, a flood of bytes). */
  protocol(step: string, detail: string): GatewayError;
}

export interface ReaderOptions {
  readonly timeoutMs: number;
  readonly errors: ReaderErrors;
  /** Most bytes held unread; a peer that sends more during the handshake is not speaking RFB. */
  readonly maxBuffered?: number;
  /** Called once when the deadline passes, e.g. to destroy the socket a TLS handshake is using. */
  readonly onTimeout?: () => void;
}

/** No single RFB handshake field comes near this; a larger read is a bug or an attack. */
export const MAX_READ = 64 * 1024;
const DEFAULT_MAX_BUFFERED = 1024 * 1024;

interface Waiter {
  readonly n: number;
  readonly step: string;
  resolve(b: Buffer): void;
  reject(e: GatewayError): void;
}

export class RfbReader {
  /** The RFC 6143 step being read, for error messages. */
  step = 'ProtocolVersion';
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: Waiter | null = null;
  private failure: GatewayError | null = null;
  /** Set when the failure is the peer leaving: bytes it sent before still count. */
  private closedDetail: string | null = null;
  private readonly failureWaiters: Array<(e: GatewayError) => void> = [];
  private timer: NodeJS.Timeout | null;
  private readonly maxBuffered: number;

  constructor(private readonly opts: ReaderOptions) {
    this.maxBuffered = opts.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    this.timer = null;
    this.resumeDeadline(opts.timeoutMs);
  }

  /** Stops the deadline while the other side of the proxy has the next move. */
  pauseDeadline(): void {
    this.stopTimer();
  }

  /** Starts a new deadline of `ms` from now. */
  resumeDeadline(ms: number): void {
    this.stopTimer();
    if (this.failure) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.fail(this.opts.errors.timeout(this.waiter?.step ?? this.step));
      this.opts.onTimeout?.();
    }, ms);
  }

  /** True once the reader failed (peer gone, deadline passed, protocol error). */
  get failed(): GatewayError | null {
    return this.failure;
  }

  /** Bytes received and not yet read. */
  get available(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (this.failure || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.satisfy();
    if (this.buffered > this.maxBuffered) {
      this.fail(this.opts.errors.protocol(this.step, `more than ${this.maxBuffered} bytes unread during the handshake`));
    }
  }

  /**
   * The peer has gone. Bytes it sent before still count (a server may send its last message
   * and close at once); a read they cannot satisfy fails, naming its step.
   */
  end(detail: string): void {
    if (this.failure) return;
    this.closedDetail = detail;
    this.fail(this.opts.errors.closed(this.waiter?.step ?? this.step, detail));
  }

  /** Fails the pending read and every later one with `err` (the first failure wins). */
  fail(err: GatewayError): void {
    if (this.failure) return;
    this.failure = err;
    this.stopTimer();
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w.reject(err);
    }
    for (const f of this.failureWaiters.splice(0)) f(err);
  }

  /** Exactly `n` bytes (`n` at most `MAX_READ`), once they have arrived. */
  read(n: number, step: string): Promise<Buffer> {
    this.step = step;
    if (this.waiter) return Promise.reject(new Error(`RfbReader: concurrent reads (${this.waiter.step}, ${step})`));
    if (!Number.isInteger(n) || n < 0 || n > MAX_READ) {
      const err = this.opts.errors.protocol(step, `length ${n} is out of bounds (at most ${MAX_READ})`);
      this.fail(err);
      return Promise.reject(err);
    }
    if (this.failure) {
      if (this.closedDetail === null) return Promise.reject(this.failure);
      if (this.buffered >= n) return Promise.resolve(this.take(n));
      return Promise.reject(this.opts.errors.closed(step, this.closedDetail));
    }
    if (this.buffered >= n) return Promise.resolve(this.take(n));
    return new Promise((resolve, reject) => {
      this.waiter = { n, step, resolve, reject };
    });
  }

  async u8(step: string): Promise<number> {
    return (await this.read(1, step)).readUInt8(0);
  }

  async u16(step: string): Promise<number> {
    return (await this.read(2, step)).readUInt16BE(0);
  }

  async u32(step: string): Promise<number> {
    return (await this.read(4, step)).readUInt32BE(0);
  }

  /** A U32 length and that many bytes (RFC 6143 reason strings, desktop names), at most `max`. */
  async lengthPrefixed(step: string, max: number): Promise<Buffer> {
    const n = await this.u32(`${step} length`);
    if (n > max) {
      const err = this.opts.errors.protocol(step, `length ${n} exceeds the bound of ${max} bytes`);
      this.fail(err);
      throw err;
    }
    return this.read(n, step);
  }

  /** Settles with `p`, or fails as soon as the reader fails (deadline, peer gone). */
  guard<T>(p: Promise<T>): Promise<T> {
    if (this.failure) {
      p.catch(() => {});
      return Promise.reject(this.failure);
    }
    return new Promise<T>((resolve, reject) => {
      const onFail = (e: GatewayError) => reject(e);
      this.failureWaiters.push(onFail);
      const done = () => {
        const i = this.failureWaiters.indexOf(onFail);
        if (i >= 0) this.failureWaiters.splice(i, 1);
      };
      p.then(
        (v) => {
          done();
          resolve(v);
        },
        (e: unknown) => {
          done();
          // a step that failed because the deadline destroyed its socket reports the deadline
          reject(this.failure ?? e);
        },
      );
    });
  }

  /** Ends the handshake: stops the deadline and hands back the bytes received but not read. */
  finish(): Buffer {
    this.stopTimer();
    const rest = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    return rest;
  }

  /**
   * Feeds the reader from a stream until the returned function is called; that call pauses the
   * stream, so bytes that arrive afterwards wait in it for the next reader (a TLS layer, the relay).
   * With `keepReading` only the stream's flow stops: a socket goes on reading into the stream's
   * buffer (up to its high-water mark, then it stops) instead of stopping its reads, for a reader
   * that takes over at once. A socket that reads with `onread` (the backend's, `proxy/backend.ts`)
   * stops at `pause()` and starts again at `resume()`, each an `epoll_ctl` (measured: two of the
   * syscalls of every console open, between ServerInit and the relay).
   */
  attach(stream: Readable, mapError?: (err: NodeJS.ErrnoException) => GatewayError): (keepReading?: boolean) => void {
    const onData = (chunk: Buffer) => this.push(chunk);
    const onEnd = () => this.end('the peer closed the connection');
    const onError = (err: NodeJS.ErrnoException) => (mapError ? this.fail(mapError(err)) : this.end(err.code ?? err.message));
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
    stream.resume();
    return (keepReading = false) => {
      if (keepReading) Readable.prototype.pause.call(stream);
      else stream.pause();
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
    };
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private satisfy(): void {
    const w = this.waiter;
    if (!w || this.buffered < w.n) return;
    this.waiter = null;
    w.resolve(this.take(w.n));
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.buffered -= n;
    return all.subarray(0, n);
  }
}
