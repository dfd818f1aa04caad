/**
 * @module log/datagram
 * A Unix datagram socket to a local log daemon (journald's native socket, syslog's /dev/log),
 * through the `unix-dgram` addon: Node has no AF_UNIX SOCK_DGRAM. Each datagram is sent to the
 * path (sendto), so a daemon restarted under us (a new socket at the same path) gets the next
 * line. A daemon that is slow (EAGAIN) gets a bounded queue, sent when the socket is writable
 * again. The socket is closed after a short idle time: the addon's handle holds the event loop,
 * and a daemon that has stopped must be able to exit.
 */
import { createRequire } from 'node:module';

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error & { code?: unknown }) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  on(event: 'writable', cb: () => void): void;
  close(): void;
}

interface UnixDgram {
  createSocket(type: 'unix_dgram'): DgramSocket;
}

/** Datagrams kept while the daemon is congested; beyond it new lines are dropped and counted. */
const MAX_QUEUED = 1024;
/** Idle time after which the socket is closed (and opened again on the next line). */
const IDLE_MS = 200;

let addon: UnixDgram | undefined;
function unixDgram(): UnixDgram {
  addon ??= createRequire(import.meta.url)('unix-dgram') as UnixDgram;
  return addon;
}

export class DatagramLink {
  private socket: DgramSocket | undefined;
  private readonly queue: Buffer[] = [];
  private dropped = 0;
  private idle: NodeJS.Timeout | undefined;
  private closed = false;

  /** `onLost` hears of a failure found after send() returned (while sending queued datagrams). */
  constructor(readonly path: string, private readonly onLost: (err: Error) => void) {}

  /** Sends one datagram; throws when the daemon cannot be reached (no socket, refused, too big). */
  send(datagram: Buffer): void {
    if (this.closed) return;
    if (this.queue.length > 0) {
      this.enqueue(datagram);
      return;
    }
    const err = this.sendNow(datagram);
    if (err === 'congested') this.enqueue(datagram);
    else if (err) throw err;
    this.armIdle();
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.shut();
  }

  private open(): DgramSocket {
    if (this.socket) return this.socket;
    const s = unixDgram().createSocket('unix_dgram');
    // every send reports through its callback; this only keeps a stray event from ending the process
    s.on('error', () => {});
    s.on('writable', () => this.flush());
    this.socket = s;
    return s;
  }

  private sendNow(datagram: Buffer): Error | 'congested' | undefined {
    let result: Error | 'congested' | undefined;
    // unix-dgram calls back before send() returns
    this.open().send(datagram, 0, datagram.length, this.path, (err) => {
      if (!err) return;
      result = err.code === 1 ? 'congested' : Object.assign(new Error(typeof err.code === 'number' ? errnoName(-err.code) : err.message), { code: err.code });
    });
    return result;
  }

  private enqueue(datagram: Buffer): void {
    if (this.queue.length < MAX_QUEUED) this.queue.push(datagram);
    else this.dropped++;
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.closed) {
      const err = this.sendNow(this.queue[0]!);
      if (err === 'congested') return;
      this.queue.shift();
      if (err) {
        this.queue.length = 0;
        this.onLost(err);
        return;
      }
    }
    if (this.dropped > 0) {
      const n = this.dropped;
      this.dropped = 0;
      this.onLost(new Error(`${this.path}: ${n} log line(s) dropped while the log daemon was congested`));
    }
    this.armIdle();
  }

  private armIdle(): void {
    if (this.idle) this.idle.refresh();
    else {
      this.idle = setTimeout(() => {
        this.idle = undefined;
        if (this.queue.length === 0) this.shut();
        else this.armIdle();
      }, IDLE_MS);
      // the socket holds the loop while it is open; the timer alone must not
      this.idle.unref();
    }
  }

  private shut(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    const s = this.socket;
    this.socket = undefined;
    try {
      s?.close();
    } catch {
      // already closed
    }
  }
}

/** The addon reports a failed send as `send -2`: the errno's name reads better. */
function errnoName(errno: number): string {
  const names: Record<number, string> = { 2: 'ENOENT (no such socket)', 13: 'EACCES (permission denied)', 90: 'EMSGSIZE (datagram too large)', 111: 'ECONNREFUSED (no daemon listening)', 88: 'ENOTSOCK (not a socket)', 91: 'EPROTOTYPE (not a datagram socket)' };
  return names[errno] ?? `errno ${errno}`;
}
