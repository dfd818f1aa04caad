/**
 * @module demo/serial-console
 * The demo server's serial console: a TCP port on which a small shell answers (`serial-shell.ts`,
 * one per client), so that `npm start` shows a working serial console beside the VNC one without
 * a hypervisor. It plays a QEMU `-serial tcp:HOST:PORT,server=on` chardev from the proxy's side
 * (bytes both ways, no protocol), but takes several clients at once, each with its own shell, up
 * to `maxClients`; one more is told so and closed.
 *
 * This file is the listener: it accepts, counts and closes the clients; `close()` drops them all.
 */
import { once } from 'node:events';
import net from 'node:net';
import { DemoSerialShell, type DemoSerialShellHost } from './serial-shell.ts';
import { startOnPreferredPort } from './preferred-port.ts';

/** Every field is optional; the defaults are written once, in `startDemoSerialConsole`. */
export interface DemoSerialConsoleOptions {
  /** Interface to listen on. */
  host?: string;
  /** TCP port; 0 picks a free one (read it back from `DemoSerialConsole.port`). */
  port?: number;
  /** When `port` is taken, listen on a free one instead of failing (compare `DemoSerialConsole.port`). */
  anyPortIfTaken?: boolean;
  /** The machine's name in the banner. */
  name?: string;
  /** Characters a command line may hold; more ring the bell. */
  maxLineLength?: number;
  /** Clients at once; one more is told so and closed. */
  maxClients?: number;
  /** The clock of the banner and of `date` (tests pass a fixed one). */
  now?: () => Date;
}

interface ResolvedOptions {
  host: string; port: number; name: string; maxLineLength: number; maxClients: number; now: () => Date;
}

export async function startDemoSerialConsole(opts: DemoSerialConsoleOptions = {}): Promise<DemoSerialConsole> {
  return startOnPreferredPort(opts.port ?? 0, opts.anyPortIfTaken ?? false, async (port) => {
    const server = new DemoSerialConsole({
      host: opts.host ?? '127.0.0.1',
      port,
      name: opts.name ?? 'Porthole demo',
      maxLineLength: opts.maxLineLength ?? 256,
      maxClients: opts.maxClients ?? 32,
      now: opts.now ?? (() => new Date()),
    });
    await server.listen();
    return server;
  });
}

export class DemoSerialConsole implements DemoSerialShellHost {
  readonly host: string;
  readonly name: string;
  readonly maxLineLength: number;
  readonly now: () => Date;
  private readonly maxClients: number;
  private readonly shells = new Set<DemoSerialShell>();
  private readonly tcp: net.Server;
  private readonly requestedPort: number;
  private startedAt = 0;

  constructor(opts: ResolvedOptions) {
    this.host = opts.host;
    this.name = opts.name;
    this.maxLineLength = opts.maxLineLength;
    this.maxClients = opts.maxClients;
    this.now = opts.now;
    this.requestedPort = opts.port;
    this.tcp = net.createServer((socket) => this.onConnection(socket));
  }

  get port(): number {
    const addr = this.tcp.address();
    return addr && typeof addr === 'object' ? addr.port : this.requestedPort;
  }

  async listen(): Promise<void> {
    this.tcp.listen(this.requestedPort, this.host);
    await once(this.tcp, 'listening');
    this.startedAt = performance.now();
  }

  /** Stops listening and drops every client. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    for (const shell of this.shells) shell.destroy();
    await closed;
  }

  uptimeSeconds(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  clientCount(): number {
    return this.shells.size;
  }

  onShellClosed(shell: DemoSerialShell): void {
    this.shells.delete(shell);
  }

  private onConnection(socket: net.Socket): void {
    if (this.shells.size >= this.maxClients) {
      socket.on('error', () => socket.destroy());
      socket.end(`\r\n${this.name} serial console: ${this.maxClients} clients are connected already\r\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.shells.add(new DemoSerialShell(this, socket));
  }
}
