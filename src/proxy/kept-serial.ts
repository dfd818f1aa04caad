/**
 * @module proxy/kept-serial
 * One kept serial console (`[porthole] serial_keep_attached`): the one connection Porthole holds
 * to a server's serial endpoint, whether or not anyone watches, and what it printed. It is the
 * one owner of that backend socket: it dials it, reads it into the ring (`serial-ring.ts`) and the
 * log file (`serial-log-file.ts`), hands each chunk to every attached viewer (`serial-viewer.ts`),
 * writes their input to it, and when the backend closes or cannot be reached dials again after a
 * backoff (doubling from `minDelayMs` to `maxDelayMs`). It logs once per change of state
 * (attached, lost or unreachable), not once per attempt.
 *
 * A viewer gets a copy of the ring (the scrollback) then every chunk as it comes, the same buffer
 * for every viewer. A viewer that arrives while the backend is down makes the console dial at
 * once instead of waiting for its backoff, and is refused with that dial's error, as a plain
 * relay refuses an unreachable backend. When the backend goes, its viewers' streams end (their
 * sessions end "backend closed", as with a plain relay); the console keeps dialling.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { asGatewayError, GatewayError } from '../errors.ts';
import { formatEndpoint, type ConsoleEndpoint } from '../inventory/types.ts';
import { connectBackend, releaseBackendBuffer, setBackendSink, type BackendOptions } from './backend.ts';
import { SerialLogFile } from './serial-log-file.ts';
import { SerialRing } from './serial-ring.ts';
import { SerialViewer, type ViewerPort } from './serial-viewer.ts';

export interface KeptSerialOptions extends BackendOptions {
  readonly log: Logger;
  /** `[porthole] serial_log_bytes`: the ring's size, and half the file's bound. */
  readonly logBytes: number;
  /** Where `<server id>.log` goes (`[porthole] serial_log_dir`); undefined: memory only. */
  readonly logPath?: string;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
}

export type KeptSerialState = 'starting' | 'connecting' | 'attached' | 'waiting' | 'closed';

export class KeptSerial implements ViewerPort {
  private readonly ring: SerialRing;
  private readonly viewers = new Set<SerialViewer>();
  private file: SerialLogFile | undefined;
  private backend: Socket | undefined;
  private dialing: Promise<void> | undefined;
  private dialAbort: AbortController | undefined;
  private retry: NodeJS.Timeout | undefined;
  private delayMs: number;
  private attachedAt = 0;
  /** The last state the log was told of, so that a retry loop says it once. */
  private reported: 'attached' | 'down' | undefined;
  private lastError: GatewayError | undefined;
  private started: Promise<void> | undefined;
  private over = false;
  /** Whether the file's reload found bytes (for the first log line). */
  private reloaded = 0;

  constructor(
    readonly serverId: string,
    readonly endpoint: ConsoleEndpoint,
    private readonly opts: KeptSerialOptions,
  ) {
    this.ring = new SerialRing(opts.logBytes);
    this.delayMs = opts.minDelayMs;
  }

  get state(): KeptSerialState {
    if (this.over) return 'closed';
    if (this.backend) return 'attached';
    if (this.dialing) return 'connecting';
    if (this.started === undefined) return 'starting';
    return 'waiting';
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  /** Reloads the log file into the ring (when there is one), then dials. */
  start(): Promise<void> {
    this.started ??= (async () => {
      if (this.opts.logPath !== undefined) {
        try {
          const { file, tail } = await SerialLogFile.open(this.opts.logPath, this.opts.logBytes, () => this.ring.contents(), this.opts.log);
          this.ring.append(tail);
          this.reloaded = tail.length;
          if (this.over) await file.close();
          else this.file = file;
        } catch (err) {
          const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
          this.opts.log.warn({ event: 'serial_log_file', server: this.serverId, path: this.opts.logPath, err: why }, `serial log file ${this.opts.logPath} could not be opened (${why}); server ${this.serverId}'s serial log is kept in memory only`);
        }
      }
      void this.dial();
    })();
    return this.started;
  }

  /** The kept output, oldest first (a copy). */
  contents(): Buffer {
    return this.ring.contents();
  }

  /**
   * Attaches a viewer: the scrollback is in its stream before it is returned, the live output
   * follows. Refused with the dial's error when the backend cannot be reached now.
   */
  async attach(opts: { readonly viewOnly: boolean }, signal?: AbortSignal): Promise<SerialViewer> {
    await this.start();
    if (!this.backend && !this.over) {
      // a viewer does not wait out the backoff: dial now
      clearTimeout(this.retry);
      this.retry = undefined;
      await abortable(this.dial(), signal);
    }
    if (this.over) throw new GatewayError('BACKEND_CLOSED', `serial console of server ${this.serverId} is no longer kept`, { status: 502, closeCode: 1011, clientMessage: 'The console is not reachable' });
    if (!this.backend) throw this.lastError ?? new GatewayError('BACKEND_UNREACHABLE', `backend ${formatEndpoint(this.endpoint)}: not attached`, { status: 502, closeCode: 1011, clientMessage: 'The console is not reachable' });
    signal?.throwIfAborted();
    // behind by more than a full scrollback and a half beyond it: too slow for live output
    const viewer = new SerialViewer(this, opts.viewOnly, 2 * this.opts.logBytes + 1024 * 1024);
    this.viewers.add(viewer);
    const scrollback = this.ring.contents();
    if (scrollback.length > 0) viewer.deliver(scrollback);
    return viewer;
  }

  input(chunk: Buffer, done: () => void): void {
    const backend = this.backend;
    // input while the console is down goes nowhere: its session ends with the backend anyway
    if (!backend || backend.write(chunk)) {
      done();
      return;
    }
    const settle = () => {
      backend.off('drain', settle);
      backend.off('close', settle);
      done();
    };
    backend.on('drain', settle);
    backend.on('close', settle);
  }

  detach(viewer: SerialViewer): void {
    this.viewers.delete(viewer);
  }

  /** Stops dialling, closes the backend socket and every viewer's stream, writes out the file. */
  async close(): Promise<void> {
    if (this.over) return;
    this.over = true;
    clearTimeout(this.retry);
    this.dialAbort?.abort(new GatewayError('CLIENT_CLOSED', 'kept serial console closed'));
    this.backend?.destroy();
    for (const v of [...this.viewers]) v.backendEnded();
    await this.started?.catch(() => {});
    await this.file?.close();
  }

  private dial(): Promise<void> {
    if (this.over || this.backend) return Promise.resolve();
    this.dialing ??= (async () => {
      const abort = new AbortController();
      this.dialAbort = abort;
      try {
        const socket = await connectBackend({ ...this.endpoint, internalAccessPath: null }, this.opts, abort.signal);
        if (this.over) socket.destroy();
        else this.adopt(socket);
      } catch (err) {
        if (!this.over) this.down(asGatewayError(err));
      } finally {
        this.dialAbort = undefined;
        this.dialing = undefined;
      }
    })();
    return this.dialing;
  }

  private adopt(socket: Socket): void {
    this.backend = socket;
    this.attachedAt = Date.now();
    this.lastError = undefined;
    socket.on('error', socketOnError);
    socket.once('close', () => this.lost(socket));
    if (setBackendSink(socket, (buffer, n, owned) => this.output(buffer, n, owned))) {
      for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) this.output(chunk, chunk.length, false);
    }
    socket.resume();
    if (this.reported !== 'attached') {
      this.reported = 'attached';
      const reloaded = this.reloaded > 0 ? `; ${this.reloaded} bytes of its log reloaded from ${this.opts.logPath}` : '';
      this.opts.log.info({ event: 'serial_kept', server: this.serverId, backend: formatEndpoint(this.endpoint) }, `serial console of server ${this.serverId} (${formatEndpoint(this.endpoint)}) attached: its output is kept${reloaded}`);
      this.reloaded = 0;
    }
  }

  /**
   * A backend read (`backend.ts`'s onread sink): copied into the ring, and for the viewers and
   * the file into one buffer of its own (the shared read buffer is overwritten by the next read
   * of any socket), only when there is a viewer or a file to hold it.
   */
  private output(buffer: Buffer, n: number, owned: boolean): boolean {
    const data = buffer.subarray(0, n);
    if (this.viewers.size === 0 && this.file === undefined) {
      this.ring.append(data);
    } else {
      const chunk = Buffer.from(data);
      this.ring.append(chunk);
      this.file?.append(chunk);
      for (const v of this.viewers) v.deliver(chunk);
    }
    if (owned) releaseBackendBuffer(buffer);
    return true;
  }

  private lost(socket: Socket): void {
    if (this.backend !== socket) return;
    this.backend = undefined;
    for (const v of [...this.viewers]) v.backendEnded();
    if (this.over) return;
    // a connection that stayed up a while starts the backoff again; one that the backend closes
    // at once keeps doubling it, so a flapping endpoint is not dialled in a tight loop
    if (Date.now() - this.attachedAt >= this.opts.maxDelayMs) this.delayMs = this.opts.minDelayMs;
    this.down(new GatewayError('BACKEND_CLOSED', `backend ${formatEndpoint(this.endpoint)} closed the serial console`, { status: 502, closeCode: 1011, clientMessage: 'The console is not reachable' }));
  }

  private down(err: GatewayError): void {
    this.lastError = err;
    if (this.reported !== 'down') {
      this.reported = 'down';
      this.opts.log.warn({ event: 'serial_kept_down', server: this.serverId, backend: formatEndpoint(this.endpoint), code: err.code }, `serial console of server ${this.serverId}: ${err.message}; dialling again every ${this.opts.minDelayMs / 1000}-${this.opts.maxDelayMs / 1000} s (said once until it is back)`);
    }
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.dial();
    }, this.delayMs);
    this.retry.unref();
    this.delayMs = Math.min(this.delayMs * 2, this.opts.maxDelayMs);
  }
}

/** Waits for `p`, or until `signal` aborts (the viewer went away: the dial goes on for the others). */
function abortable(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

function socketOnError(): void {
  // 'close' follows and the console dials again
}
