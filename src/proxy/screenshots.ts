/**
 * @module proxy/screenshots
 * A picture of a server's VNC console as a PNG, for `GET /porthole/v1/servers/{id}/screenshot`
 * and `porthole server screenshot` (both call `takeScreenshot`).
 *
 * When a shared console of the server is live in this process, its framebuffer is the picture:
 * no second connection to the machine. Otherwise the service makes a short connection of its
 * own through the security proxy's backend half, so every backend auth a console can use works
 * (VNC password, VeNCrypt with the server's own settings over the config's): dial, RFB handshake
 * with ClientInit *shared* (a screenshot must never disconnect the person at the console, which
 * an exclusive ClientInit asks a VNC server to do), one full FramebufferUpdate, close.
 *
 * Every step has a deadline (the dial `backend_connect_timeout`, each handshake step
 * `rfb_handshake_timeout`) and the whole has one (`[porthole] screenshot_timeout`): a backend
 * that hangs mid-update costs its caller at most that long and leaves no socket behind. The
 * socket has one owner, `capture`, which destroys it on every path. One capture per server runs
 * at a time: callers who ask while one runs get its picture (each scaled to its own width), so a
 * dashboard that polls a hundred times does not open a hundred connections to one machine.
 *
 * Errors are `GatewayError`s whose client words say what failed without backend detail (no
 * host, port, certificate or password): the log line has the detail, never a password.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { GatewayError, isGatewayError } from '../errors.ts';
import { formatEndpoint, type Server } from '../inventory/types.ts';
import { openRfbClient, type RfbClient } from '../rfb/client.ts';
import type { Framebuffer } from '../rfb/framebuffer/types.ts';
import { encodeScreenshot } from '../rfb/screenshot.ts';
import type { RfbProxyOptions } from '../rfb/types.ts';
import type { AuditBy } from '../store/audit-events.ts';
import { connectBackend } from './backend.ts';
import { backendAuthSettings } from './upgrade.ts';

export type ScreenshotSource = 'live' | 'connection';

export interface Screenshot {
  readonly png: Buffer;
  readonly width: number;
  readonly height: number;
  /** `live`: a shared console's framebuffer in this process; `connection`: a connection of the service's own. */
  readonly source: ScreenshotSource;
}

export interface ScreenshotRequest {
  /** Scale down to this width (aspect ratio kept; at least 16; wider than the screen: the screen's own size). */
  readonly width?: number;
  /** Who asked, for the audit trail's `screenshot.taken`; absent: not recorded. */
  readonly by?: AuditBy;
}

export type TakeScreenshot = (server: Server, request: ScreenshotRequest) => Promise<Screenshot>;

export interface ScreenshotOptions {
  /** The security proxy's defaults; a server's own backend auth settings override them. */
  readonly rfb: RfbProxyOptions;
  /** `[porthole] backend_connect_timeout`, ms. */
  readonly connectTimeoutMs: number;
  /** `[porthole] screenshot_timeout`, ms: the whole capture, from the dial to the last pixel. */
  readonly timeoutMs: number;
  /** The framebuffer of a live shared console of this server in this process (`SharedConsoles.liveFramebuffer`). */
  readonly liveFramebuffer?: (serverId: string) => Framebuffer | undefined;
  /** Encodings asked of the server, in order of preference; absent: the RFB client's own list. Tests name one at a time. */
  readonly encodings?: readonly number[];
  readonly log?: Logger;
}

/** Options from the config; the live lookup and the logger are the gateway's to add. */
export function screenshotOptions(config: { porthole: { backend_connect_timeout: number; screenshot_timeout: number } }, rfb: RfbProxyOptions): ScreenshotOptions {
  return { rfb, connectTimeoutMs: config.porthole.backend_connect_timeout * 1000, timeoutMs: config.porthole.screenshot_timeout * 1000 };
}

export class ScreenshotService {
  /** The capture under way per server id; concurrent callers share it. */
  private readonly captures = new Map<string, Promise<Framebuffer>>();
  /** Every backend socket of a capture under way, for `close`. */
  private readonly sockets = new Set<Socket>();
  private closed = false;

  constructor(private readonly opts: ScreenshotOptions) {}

  /** The screenshot of `server`; rejects with a `GatewayError` (409 no VNC console, 502/504 backend). */
  readonly takeScreenshot: TakeScreenshot = async (server, request) => {
    const started = performance.now();
    const live = this.opts.liveFramebuffer?.(server.id);
    const source: ScreenshotSource = live ? 'live' : 'connection';
    let shot: Screenshot;
    try {
      // the live framebuffer is copied (and scaled) before the first await: the shared
      // console's next update cannot tear the picture
      const fb = live ?? (await this.capture(server));
      shot = { ...(await encodeScreenshot(fb, request.width)), source };
    } catch (err) {
      const e = screenshotError(server, err);
      this.opts.log?.[e.status >= 500 ? 'warn' : 'info']({ event: 'screenshot_failed', server: server.id, code: e.code, ms: Math.round(performance.now() - started) }, e.message);
      throw e;
    }
    this.opts.log?.info({ event: 'screenshot', server: server.id, source, width: shot.width, height: shot.height, bytes: shot.png.length, ms: Math.round(performance.now() - started) }, `screenshot of server ${server.id} (${source === 'live' ? 'live shared console' : 'own connection'})`);
    request.by?.recorder.record({ event: 'screenshot.taken', server: server.id, console_type: 'novnc', actor: request.by.actor, reason: source === 'live' ? 'from the live shared console' : 'by a connection of its own' });
    return shot;
  };

  /** Ends the captures under way (gateway shutdown): their callers get BACKEND_CLOSED. */
  close(): void {
    this.closed = true;
    for (const s of this.sockets) s.destroy();
  }

  /** The capture of `server` under way, or a new one. */
  private capture(server: Server): Promise<Framebuffer> {
    const running = this.captures.get(server.id);
    if (running) return running;
    const p = this.connectAndCapture(server).finally(() => this.captures.delete(server.id));
    this.captures.set(server.id, p);
    return p;
  }

  /** Dial, RFB handshake (ClientInit shared), one full update, close: the socket is this function's throughout. */
  private async connectAndCapture(server: Server): Promise<Framebuffer> {
    if (this.closed) throw new GatewayError('BACKEND_CLOSED', 'the screenshot service is closed (shutting down)', { status: 503, clientMessage: 'Porthole is shutting down' });
    const ep = server.vnc;
    if (!ep) throw new GatewayError('CONFLICT', `server ${server.id} has no VNC console endpoint`, { status: 409, clientMessage: `Server ${server.id} has no VNC console` });
    const address = formatEndpoint(ep);
    const { timeoutMs } = this.opts;
    const deadline = Date.now() + timeoutMs;
    // the steps' own deadlines run a second past the whole one, so that a capture cut by the
    // whole deadline says so (504, screenshot_timeout), whichever step it was in
    const left = () => Math.max(1, deadline - Date.now()) + 1000;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new GatewayError('BACKEND_TIMEOUT', `backend ${address} did not send a full screen within screenshot_timeout (${timeoutMs / 1000} s)`, { status: 504, clientMessage: `The console did not send its screen within ${timeoutMs / 1000} s` })), timeoutMs);
    let socket: Socket | undefined;
    let client: RfbClient | undefined;
    // the owner's one way out: whatever step is under way when the deadline passes, the socket goes
    const onAbort = () => socket?.destroy();
    abort.signal.addEventListener('abort', onAbort, { once: true });
    try {
      socket = await connectBackend({ host: ep.host, port: ep.port, internalAccessPath: null }, { connectTimeoutMs: Math.min(this.opts.connectTimeoutMs, left()), handshakeTimeoutMs: left() }, abort.signal);
      this.sockets.add(socket);
      if (this.closed) socket.destroy();
      const settings = backendAuthSettings(this.opts.rfb, server, ep.host);
      const opening = openRfbClient(socket, settings, { timeoutMs: Math.min(this.opts.rfb.timeoutMs, left()), address, shared: true, ...(this.opts.encodings ? { encodings: [...this.opts.encodings] } : {}) });
      // a client that opens after the deadline is closed at once
      opening.then((c) => (abort.signal.aborted ? c.close() : (client = c)), () => {});
      client = await untilAborted(opening, abort.signal);
      return await untilAborted(client.frame(left()), abort.signal);
    } finally {
      clearTimeout(timer);
      abort.signal.removeEventListener('abort', onAbort);
      client?.close();
      if (socket) {
        socket.destroy();
        this.sockets.delete(socket);
      }
    }
  }
}

/** `p`, or the signal's reason once it aborts (the step's own rejection is then handled and dropped). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e as Error)),
    );
  });
}

/** Words for a backend error that came without client words of its own. */
const BACKEND_WORDS: Partial<Record<string, string>> = {
  BACKEND_UNREACHABLE: 'the console is not reachable',
  BACKEND_TIMEOUT: 'the console did not answer in time',
  BACKEND_CLOSED: 'the console closed the connection',
  BACKEND_PROTOCOL: 'the console sent what is not RFB',
};

/**
 * The caller's words: what failed for this server, in the backend error's own client words
 * (which name no host, port or secret); the log message keeps the detail.
 */
function screenshotError(server: Server, err: unknown): GatewayError {
  if (!isGatewayError(err) || !(err.code.startsWith('BACKEND_') || err.status < 500)) {
    return new GatewayError('INTERNAL', `screenshot of server ${server.id} failed: ${(err as Error)?.stack ?? String(err)}`, { status: 500, clientMessage: 'Internal error', cause: err });
  }
  // ours (400 width, 409 no VNC console): already in the caller's words
  if (!err.code.startsWith('BACKEND_')) return err;
  // an error made without client words has its log message there, which names the backend
  const words = (err.clientMessage !== err.message ? err.clientMessage : (BACKEND_WORDS[err.code] ?? 'the console could not be read')).replace(/\.$/, '');
  const status = err.status === 503 || err.status === 504 || err.code === 'BACKEND_TIMEOUT' ? (err.status === 503 ? 503 : 504) : 502;
  return new GatewayError(err.code, `screenshot of server ${server.id}: ${err.message}`, { status, clientMessage: `No screenshot of server ${server.id}: ${words.charAt(0).toLowerCase()}${words.slice(1)}`, cause: err });
}
