/**
 * @module proxy/shared-hub
 * The shared consoles of this process (`[porthole] shared_consoles`, `server add
 * --shared-consoles`): server id to its one `SharedConsole` (`shared-console.ts`), made by the
 * first viewer's `attach` (which the upgrade path calls in place of a dial) and forgotten when it
 * closes (its last viewer gone past the linger, or its backend gone). The gateway owns the hub
 * and closes it, which closes every backend connection; nothing here is module state.
 *
 * A console is opened by its first viewer and waited for by the viewers that come while it
 * opens; one that cannot be opened refuses them all with the dial's (or the backend
 * authentication's) error, as a plain relay refuses an unreachable backend, and the next viewer
 * tries again. A viewer whose token names another endpoint than the console's (the server moved)
 * closes the old console first: its viewers' sessions end "backend closed".
 *
 * The hub is per process: with several proxies (or `[porthole] workers`) each keeps its own
 * console of a server, so a server's viewers share one backend connection per proxy process.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import type { ConsoleEndpoint, Server } from '../inventory/types.ts';
import type { ClipboardPolicy } from '../rfb/clipboard-policy.ts';
import type { Framebuffer } from '../rfb/framebuffer/types.ts';
import type { RfbProxyOptions } from '../rfb/types.ts';
import type { BackendOptions } from './backend.ts';
import type { SessionRecorder } from './recorder.ts';
import { SharedConsole } from './shared-console.ts';
import type { SharedAttachment, SharedAttachOptions, SharedConsoleControl, SharedConsoleEvent, SharedConsoles, ViewerRole } from './shared-types.ts';
import { backendAuthSettings } from './upgrade.ts';

export interface SharedHubOptions extends BackendOptions {
  readonly log: Logger;
  /** The RFB security proxy's defaults (a server's own settings override them). */
  readonly rfb: RfbProxyOptions;
  readonly clipboard?: ClipboardPolicy;
  /** How long a console stays after its last viewer left (ms). */
  readonly lingerMs?: number;
  /** How long a controller has to answer a request for control (ms). */
  readonly answerMs?: number;
  /** A controller idle this long loses control to whoever asks (ms). */
  readonly idleMs?: number;
  /** The recording of a server's shared console, when its recording applies (H3's `Recorders`). */
  readonly record?: (server: Server, serverInit: Buffer, consoleId: string) => SessionRecorder | undefined;
  /** A viewer's role changed: the sessions registry's `setRole`. */
  readonly onRole?: (sessionId: string, role: ViewerRole) => void;
}

export class SharedHub implements SharedConsoles {
  private readonly open = new Map<string, SharedConsole>();
  private readonly listeners = new Set<(e: SharedConsoleEvent) => void>();
  private over = false;

  constructor(private readonly opts: SharedHubOptions) {}

  async attach(server: Server, endpoint: ConsoleEndpoint, o: SharedAttachOptions, signal?: AbortSignal): Promise<SharedAttachment> {
    if (this.over) throw new Error('the shared consoles hub is closed');
    let c = this.open.get(server.id);
    if (c && (c.endpoint.host !== endpoint.host || c.endpoint.port !== endpoint.port)) {
      this.opts.log.info({ event: 'shared_console_moved', server: server.id, sharedConsole: c.id }, `shared console of server ${server.id}: its endpoint is now ${endpoint.host}:${endpoint.port}; the old one closes`);
      c.close();
      c = undefined;
    }
    if (!c) c = this.make(server, endpoint);
    const console = c;
    // the viewer may leave while the console opens: it stops waiting, the console opens for the others
    await abortable(console.start(), signal);
    signal?.throwIfAborted();
    return console.attach(o);
  }

  liveFramebuffer(serverId: string): Framebuffer | undefined {
    return this.open.get(serverId)?.framebuffer;
  }

  console(serverId: string): SharedConsoleControl | undefined {
    const c = this.open.get(serverId);
    return c && c.status === 'open' ? c : undefined;
  }

  consoles(): SharedConsoleControl[] {
    return [...this.open.values()].filter((c) => c.status === 'open');
  }

  /** The consoles by server id, whatever their state (tests, status). */
  get kept(): ReadonlyMap<string, SharedConsole> {
    return this.open;
  }

  viewerByKey(viewerKey: string, tokenHash?: string): { readonly console: SharedConsoleControl; readonly viewerId: string } | undefined {
    for (const c of this.open.values()) {
      const viewerId = c.viewerByKey(viewerKey, tokenHash);
      if (viewerId !== undefined) return { console: c, viewerId };
    }
    return undefined;
  }

  subscribe(listener: (event: SharedConsoleEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Closes every shared console (their backend connections; their viewers' sessions end). */
  close(): void {
    this.over = true;
    for (const c of [...this.open.values()]) c.close();
    this.open.clear();
    this.listeners.clear();
  }

  private make(server: Server, endpoint: ConsoleEndpoint): SharedConsole {
    const o = this.opts;
    const record = o.record;
    const c = new SharedConsole(server.id, endpoint, {
      log: o.log,
      connectTimeoutMs: o.connectTimeoutMs,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      auth: backendAuthSettings(o.rfb, server, endpoint.host),
      rfbTimeoutMs: o.rfb.timeoutMs,
      clipboard: o.clipboard,
      lingerMs: o.lingerMs,
      answerMs: o.answerMs,
      idleMs: o.idleMs,
      record: record && ((serverInit, id) => record(server, serverInit, id)),
      onRole: o.onRole,
    });
    c.subscribe((e) => {
      for (const l of [...this.listeners]) {
        try {
          l(e);
        } catch (err) {
          o.log.error({ event: 'bug', err: (err as Error)?.message }, `shared consoles listener failed: ${(err as Error)?.stack ?? err}`);
        }
      }
    });
    c.onClosed = () => {
      if (this.open.get(server.id) === c) this.open.delete(server.id);
    };
    this.open.set(server.id, c);
    return c;
  }
}

/** Whether `server`'s noVNC viewers share one backend connection: its own setting, else `[porthole] shared_consoles`. */
export function sharesConsoles(server: Server | undefined, configDefault: boolean): boolean {
  if (!server) return false;
  return server.sharedConsoles ?? configDefault;
}

/** The hub's options from the config (the backend deadlines; the RFB defaults come from the noVNC listener's). */
export function sharedHubOptions(config: Config, rfb: RfbProxyOptions, log: Logger): SharedHubOptions {
  const p = config.porthole;
  return {
    log,
    rfb,
    clipboard: p.clipboard as ClipboardPolicy | undefined,
    connectTimeoutMs: p.backend_connect_timeout * 1000,
    handshakeTimeoutMs: p.handshake_timeout * 1000,
  };
}

/** Waits for `p`, or until `signal` aborts. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
