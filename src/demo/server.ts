/**
 * @module demo/server
 * A small built-in VNC server (RFB 3.8, RFC 6143) so that the first `npm start` shows a live
 * console without a hypervisor. Security type None only; Raw encoding only. The picture is built
 * so a person sees at once that the console works and that input reaches the server: a marker
 * block, colour bars, a title, a UTC clock ticking every second, the last key pressed and the
 * pointer. Each client is parsed and answered on its own; a client that breaks the protocol is
 * closed (reported as a `client-error` event) and nothing else is affected. Tests observe input
 * through the `key` and `pointer` events and `lastKeysym`.
 *
 * This file is the server itself: the listener, the clock, and the fan-out of input to the
 * desktop (`screen.ts`) and of the desktop's changes to every client (`connection.ts`).
 */
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { DemoConnection, type DemoConnectionHost } from './connection.ts';
import type { Rect } from './rect.ts';
import { DemoScreen } from './screen.ts';
import { startOnPreferredPort } from './preferred-port.ts';

export { DEMO_MARKER_RGB } from './screen.ts';

/** Every field is optional; the defaults are written once, in `startDemoServer`. */
export interface DemoServerOptions {
  /** Interface to listen on. */
  host?: string;
  /** TCP port; 0 picks a free one (read it back from `DemoServer.port`). */
  port?: number;
  /**
   * When `port` is taken, listen on a free one instead of failing (compare `DemoServer.port`):
   * for a port that is only preferred, such as the one an earlier start used.
   */
  anyPortIfTaken?: boolean;
  width?: number;
  height?: number;
  /** Desktop name sent in ServerInit. */
  name?: string;
  /** A client that has not sent ClientInit by then is dropped (RFC 6143 gives no limit). */
  handshakeTimeoutMs?: number;
}

export interface DemoServer {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  /** Keysym of the last key pressed (down) by any client, or undefined before the first one. */
  readonly lastKeysym: number | undefined;
  /** Every KeyEvent from any client. */
  on(event: 'key', listener: (keysym: number, down: boolean) => void): this;
  /** Every PointerEvent from any client; `buttons` is the RFB button mask. */
  on(event: 'pointer', listener: (x: number, y: number, buttons: number) => void): this;
  /** A client closed by the server for breaking the protocol or a limit; `reason` is for logs. */
  on(event: 'client-error', listener: (reason: string) => void): this;
  off(event: 'key', listener: (keysym: number, down: boolean) => void): this;
  off(event: 'pointer', listener: (x: number, y: number, buttons: number) => void): this;
  off(event: 'client-error', listener: (reason: string) => void): this;
  /** Stops listening, drops every client and stops the clock. */
  close(): Promise<void>;
}

export async function startDemoServer(opts: DemoServerOptions = {}): Promise<DemoServer> {
  return startOnPreferredPort(opts.port ?? 0, opts.anyPortIfTaken ?? false, async (port) => {
    const server = new DemoServerImpl({
      host: opts.host ?? '127.0.0.1',
      port,
      width: opts.width ?? 800,
      height: opts.height ?? 600,
      name: opts.name ?? 'Porthole demo',
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
    });
    await server.listen();
    return server;
  });
}

interface ResolvedOptions {
  host: string; port: number; width: number; height: number; name: string; handshakeTimeoutMs: number;
}

class DemoServerImpl extends EventEmitter implements DemoServer, DemoConnectionHost {
  readonly host: string;
  readonly name: string;
  readonly handshakeTimeoutMs: number;
  readonly screen: DemoScreen;
  readonly connections = new Set<DemoConnection>();
  lastKeysym: number | undefined;
  private readonly tcp: net.Server;
  private readonly requestedPort: number;
  private clock: NodeJS.Timeout | undefined;
  private flushQueued = false;

  constructor(opts: ResolvedOptions) {
    super();
    if (!(opts.width >= 1 && opts.width <= 0xffff && opts.height >= 1 && opts.height <= 0xffff)) {
      throw new RangeError(`demo screen size ${opts.width}x${opts.height} is not 1..65535`);
    }
    this.host = opts.host;
    this.name = opts.name;
    this.requestedPort = opts.port;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs;
    this.screen = new DemoScreen(opts.width, opts.height, (r) => this.onDirty(r));
    this.tcp = net.createServer((socket) => this.connections.add(new DemoConnection(this, socket)));
  }

  get port(): number {
    const addr = this.tcp.address();
    return addr && typeof addr === 'object' ? addr.port : this.requestedPort;
  }

  async listen(): Promise<void> {
    this.tcp.listen(this.requestedPort, this.host);
    await once(this.tcp, 'listening');
    // Tick on the second boundary so the clock reads like a real one.
    const tick = (): void => {
      this.screen.drawClock(new Date());
      this.clock = setTimeout(tick, 1000 - (Date.now() % 1000));
      this.clock.unref();
    };
    this.clock = setTimeout(tick, 1000 - (Date.now() % 1000));
    this.clock.unref();
  }

  async close(): Promise<void> {
    clearTimeout(this.clock);
    const closed = new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    for (const c of this.connections) c.destroy();
    await closed;
  }

  onKey(keysym: number, down: boolean): void {
    this.emit('key', keysym, down);
    if (!down) return;
    this.lastKeysym = keysym;
    this.screen.drawKey(keysym);
  }

  onPointer(x: number, y: number, buttons: number): void {
    this.emit('pointer', x, y, buttons);
    this.screen.drawPointer(x, y, buttons);
  }

  onClientError(reason: string): void {
    this.emit('client-error', reason);
  }

  onConnectionClosed(connection: DemoConnection): void {
    this.connections.delete(connection);
  }

  /** Coalesces the many small changes of one event-loop turn into one update per client. */
  private onDirty(r: Rect): void {
    for (const c of this.connections) c.markDirty(r);
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      for (const c of this.connections) c.flush();
    });
  }
}
