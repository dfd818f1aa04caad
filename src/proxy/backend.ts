/**
 * @module proxy/backend
 * Opens the TCP connection to a console backend (the hypervisor's VNC, serial or SPICE port),
 * with a deadline, and performs Nova's `internal_access_path` handshake when the token has one
 * (`CONNECT <path> HTTP/1.1`, used by drivers that put a tunnel in front of the console; the
 * reply must be a 200 within the handshake deadline and at most 8 KiB of headers).
 *
 * Backend sockets read with `onread`, not into a fresh 64 KiB allocation per read as Node's
 * streams do: reads are up to 1 MiB, so a console that streams framebuffer updates costs a
 * sixteenth of the reads, frames and callbacks, and no heap memory churns per read. Most reads
 * land in one buffer shared by every socket, so an idle console holds no read buffer at all;
 * that buffer is overwritten by the next read on any socket, so its bytes are copied out before
 * the callback returns. A socket that has just read a large chunk (a framebuffer stream) reads its
 * next few reads into a buffer of its own, which the relay sends on without a copy and gives back once written;
 * there are at most 32 of those, so memory stays bounded however many consoles
 * stream at once (the others copy). Until the relay installs its sink (`setBackendSink`), each
 * read is copied into the stream as an ordinary `data` event, for the CONNECT and RFB handshakes.
 */
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { GatewayError } from '../errors.ts';
import { printable } from '../log/escape.ts';

/** The most one read takes from a backend socket. */
export const BACKEND_READ_SIZE = 1024 * 1024;
const landing = Buffer.allocUnsafeSlow(BACKEND_READ_SIZE);
/** A read at least this large makes the socket's next reads land in a buffer of its own. */
const STREAMING_READ = 256 * 1024;
/**
 * Reads after a large one that still land in a buffer of the socket's own, however small. A
 * stream that the browser's backpressure pauses reads 1 MiB, then the rest queued meanwhile (often
 * less than STREAMING_READ), then 1 MiB again: deciding on the last read alone put every other
 * large read into the shared buffer and copied it into a fresh 1 MiB allocation (4 x 256 MiB
 * downloads: 28 reads, 14 MiB copied; with the grace 12 reads, 6 MiB, mostly each download's
 * first large read). A console that stops streaming gives its buffer back after this many small reads.
 */
const STREAMING_GRACE = 4;
/** Buffers of BACKEND_READ_SIZE that streaming sockets may hold or have in flight at once. */
let maxOwnBuffers = 32;
let ownBuffers = 0;
const freeOwnBuffers: Buffer[] = [];

/**
 * Sets how many buffers of their own streaming sockets may have at once (32 by default). Tests
 * make it small, so that a buffer given back is the next one taken.
 */
export function setOwnBufferLimit(n: number): void {
  maxOwnBuffers = n;
  while (ownBuffers > n && freeOwnBuffers.pop()) ownBuffers--;
}

function takeOwnBuffer(): Buffer | undefined {
  const free = freeOwnBuffers.pop();
  if (free) return free;
  if (ownBuffers >= maxOwnBuffers) return undefined;
  ownBuffers++;
  return Buffer.allocUnsafeSlow(BACKEND_READ_SIZE);
}

/** Gives back a buffer a sink received with `owned`, once nothing refers to it any more. */
export function releaseBackendBuffer(buffer: Buffer): void {
  if (ownBuffers > maxOwnBuffers) ownBuffers--;
  else freeOwnBuffers.push(buffer);
}

/**
 * Takes `n` bytes from `buffer`; returns false to pause the socket, as `onread` callbacks do.
 * When `owned` is false the buffer is the shared one, valid only during the call: copy what you
 * keep. When it is true the buffer is the sink's until it calls `releaseBackendBuffer(buffer)`.
 */
export type BackendSink = (buffer: Buffer, n: number, owned: boolean) => boolean;

const kSink = Symbol('backendSink');
type BackendSocket = Socket & { [kSink]?: BackendSink };

/** Where the reads of a socket from `connectBackend` go from now on; false if it was not one (a TLS socket over it). */
export function setBackendSink(socket: Duplex, sink: BackendSink): boolean {
  if (!(kSink in socket)) return false;
  (socket as BackendSocket)[kSink] = sink;
  return true;
}

/** Until a sink is set: a copy goes into the stream as Node's own reads do (`data`, or the buffer while paused). */
function pushCopy(this: Socket, buffer: Buffer, n: number, owned: boolean): boolean {
  const more = this.push(Buffer.from(buffer.subarray(0, n)));
  if (owned) releaseBackendBuffer(buffer);
  return more;
}

function openSocket(host: string, port: number): Socket {
  let socket: BackendSocket;
  /** reads left that land in a buffer of the socket's own (STREAMING_GRACE after a large one) */
  let streaming = 0;
  /** the buffer the next read lands in, when it is one of the socket's own */
  let held: Buffer | undefined;
  const callback = (n: number, buffer: Buffer) => {
    if (n >= STREAMING_READ) streaming = STREAMING_GRACE;
    else if (streaming > 0) streaming--;
    held = undefined;
    return socket[kSink]!.call(socket, buffer, n, buffer !== landing);
  };
  // called once at the start and after every read, for the buffer of the next read
  const nextBuffer = () => (held = streaming > 0 ? takeOwnBuffer() : undefined) ?? landing;
  socket = connect({ host, port, noDelay: true, onread: { buffer: nextBuffer, callback } });
  socket[kSink] = pushCopy;
  // a socket that closes holding a buffer of its own for a read that never came gives it back
  socket.once('close', () => held && releaseBackendBuffer(held));
  return socket;
}

const MAX_CONNECT_REPLY = 8 * 1024;

export interface BackendTarget {
  readonly host: string;
  readonly port: number;
  readonly internalAccessPath: string | null;
}

export interface BackendOptions {
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
}

/**
 * Dials `target`. Until it resolves the socket is this function's: it destroys it on every
 * failure, on its deadlines and when `signal` aborts (the client went away); after, the caller's.
 */
export function connectBackend(target: BackendTarget, opts: BackendOptions, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const socket = openSocket(target.host, target.port);
    const onAbort = () => fail(signal!.reason as GatewayError);
    signal?.addEventListener('abort', onAbort, { once: true });
    const fail = (err: GatewayError) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    };
    const succeed = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // from now on a late error only destroys the socket, which its owner sees; this dial's
      // closures (and the signal) are not kept alive as long as the console
      socket.off('error', onError);
      socket.on('error', destroyOnError);
      resolve(socket);
    };
    let timer = setTimeout(
      () => fail(new GatewayError('BACKEND_TIMEOUT', `backend ${target.host}:${target.port} did not accept within ${opts.connectTimeoutMs} ms`, { status: 504, closeCode: 1011, clientMessage: 'The console did not answer' })),
      opts.connectTimeoutMs,
    );
    const onError = (err: NodeJS.ErrnoException) =>
      fail(new GatewayError('BACKEND_UNREACHABLE', `backend ${target.host}:${target.port}: ${err.code ?? err.message}`, { status: 502, closeCode: 1011, clientMessage: 'The console is not reachable', cause: err }));
    socket.on('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      if (!target.internalAccessPath) {
        succeed();
        return;
      }
      timer = setTimeout(
        () => fail(new GatewayError('BACKEND_TIMEOUT', `backend ${target.host}:${target.port} did not answer CONNECT within ${opts.handshakeTimeoutMs} ms`, { status: 504, closeCode: 1011, clientMessage: 'The console did not answer' })),
        opts.handshakeTimeoutMs,
      );
      let reply = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        reply = Buffer.concat([reply, chunk]);
        const end = reply.indexOf('\r\n\r\n');
        if (end < 0) {
          if (reply.length > MAX_CONNECT_REPLY) fail(protocolError(target, 'CONNECT reply headers too large'));
          return;
        }
        socket.off('data', onData);
        const statusLine = reply.subarray(0, reply.indexOf('\r\n')).toString('latin1');
        if (!/^HTTP\/1\.[01] 200\b/.test(statusLine)) {
          fail(protocolError(target, `CONNECT refused: ${printable(statusLine.slice(0, 100))}`));
          return;
        }
        // the relay resumes the socket once its own listeners are attached
        socket.pause();
        const rest = reply.subarray(end + 4);
        if (rest.length > 0) socket.unshift(rest);
        succeed();
      };
      socket.on('data', onData);
      socket.write(`CONNECT ${target.internalAccessPath} HTTP/1.1\r\n\r\n`);
    });
  });
}

function destroyOnError(this: Socket): void {
  this.destroy();
}

function protocolError(target: BackendTarget, detail: string): GatewayError {
  return new GatewayError('BACKEND_PROTOCOL', `backend ${target.host}:${target.port}: ${detail}`, { status: 502, closeCode: 1011, clientMessage: 'The console is not reachable' });
}
