/**
 * @module proxy/shared-control
 * The control channel of a shared console: a JSON WebSocket on the noVNC listener at
 * `/porthole/shared?token=<t>&viewer=<key>`, beside the viewer's RFB WebSocket. The page makes
 * `key` (a random UUID) and puts it on both URLs; the engine (`shared-hub.ts`) knows the RFB
 * viewer by it, and this channel joins that viewer. What a channel may do is what its viewer may
 * do: the token is checked exactly as a console upgrade checks it (Origin, hash only, expiry, the
 * failed-lookup budget), and its hash must be the one the viewer's RFB connection came with, so
 * a key alone (read off a screen, guessed) grants nothing.
 *
 * Server to page: `{type:'viewers', you, viewers}`, `{type:'control-requested', by, timeoutMs}`,
 * `{type:'role', role}`, `{type:'denied', by}`. Page to server: `{type:'request-control'}`,
 * `{type:'give-control', to}`, `{type:'release-control'}`, `{type:'deny'}`. Every message is
 * bounded in size (`MAX_MESSAGE`) and rate (`RATE`); a message of another type, or not JSON, is
 * ignored (a newer page speaks to an older proxy). The channel is owned here: it closes with its
 * viewer (the RFB session's end), on a refusal, when the peer stops answering pings, and when the
 * listener closes; the viewer's console does not depend on it.
 *
 * Refusals come before the 101 as the console's do (`refusal.ts`: a status, no body), so a bad
 * token learns nothing more here than at the console WebSocket.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { asGatewayError, GatewayError } from '../errors.ts';
import { upgradeProblem } from '../http/request-checks.ts';
import { tokenFromRequest } from '../http/token-source.ts';
import { hashToken, tokenLogId, type TokenStore } from '../store/types.ts';
import { clientAddressOf, type ClientAddress } from './client-address.ts';
import { overBudget, type LookupBudget } from './lookup-budget.ts';
import { checkOriginHost, checkOriginScheme } from './origin.ts';
import { writeRefusal } from './refusal.ts';
import type { SharedConsoleControl, SharedConsoleEvent, SharedConsoles, ViewerRole } from './shared-types.ts';

/** The path of the control channel on the noVNC listener. */
export const SHARED_CONTROL_PATH = '/porthole/shared';

export interface SharedControlOptions {
  /** The noVNC listener's console types (`novnc`, `novnc-view-only`): a token of another kind is refused. */
  readonly consoleTypes: readonly string[];
  readonly allowedOrigins: readonly string[];
  readonly trustedProxies?: readonly string[];
  /** The longest from the upgrade request to the 101 (the token lookup and the wait for the viewer). */
  readonly setupTimeoutMs: number;
  /** How long a channel waits for its viewer's RFB connection to attach (the page opens both at once). */
  readonly viewerWaitMs?: number;
}

export interface SharedControlDeps {
  readonly tokens: TokenStore;
  /** The hub: finds the viewer of a page's key. */
  readonly consoles: Pick<SharedConsoles, 'viewerByKey'>;
  readonly log: Logger;
  readonly lookups?: LookupBudget;
}

export interface SharedControl {
  /** Takes the upgrade when it is for the control channel's path; false: not its path, the console's upgrade takes it. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Channels open and being set up now. */
  readonly open: number;
  /** Closes every channel (the listener closes). */
  close(code: number, reason: string): void;
}

/** Largest message either way: a page's messages are a few dozen bytes. */
export const MAX_MESSAGE = 1024;
/** Messages a page may send: a burst of `burst`, then `perSecond`; past it the channel closes. */
export const RATE = { burst: 20, perSecond: 5 } as const;
/** A viewers list past this many bytes unsent means a page that does not read: the channel closes. */
const MAX_BUFFERED = 256 * 1024;
const PING_EVERY_MS = 30_000;
const VIEWER_POLL_MS = 100;
const DEFAULT_VIEWER_WAIT_MS = 5000;
/** The page's keys are UUIDs (`viewers.js`): anything else is refused before a lookup. */
const VIEWER_KEY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const CLOSE_VIEWER_GONE = { code: 1000, reason: 'viewer left the console' } as const;
export const CLOSE_TOO_MANY = { code: 1008, reason: 'too many messages' } as const;

export function createSharedControl(opts: SharedControlOptions, deps: SharedControlDeps): SharedControl {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_MESSAGE, clientTracking: false });
  const trusted = new Set(opts.trustedProxies ?? []);
  const channels = new Set<ControlChannel>();
  let closing = false;
  return {
    handle(req, socket, head) {
      const raw = req.url ?? '/';
      if (raw.split('?', 1)[0] !== SHARED_CONTROL_PATH) return false;
      const channel = new ControlChannel(req, socket, clientAddressOf(req, trusted), opts, deps, () => channels.delete(channel));
      if (closing) {
        channel.refuse(new GatewayError('CLIENT_CLOSED', 'proxy shutting down', { status: 503 }));
        return true;
      }
      channels.add(channel);
      channel.establish(head, wss).catch((err: unknown) => channel.refuse(err));
      return true;
    },
    get open() {
      return channels.size;
    },
    close(code, reason) {
      closing = true;
      for (const c of [...channels]) c.close(code, reason);
      wss.close();
    },
  };
}

/** One page's control channel: its socket from the upgrade request on, its WebSocket, its watch on the viewer. */
class ControlChannel {
  private ws: WebSocket | null = null;
  private over = false;
  private readonly steps = new AbortController();
  private readonly deadline: NodeJS.Timeout;
  private unwatch: (() => void) | undefined;
  private ping: NodeJS.Timeout | undefined;
  private tokenLog: string | undefined;
  private viewerId: string | undefined;
  /** Messages left in the bucket, and when it was last filled. */
  private allowance: number = RATE.burst;
  private filledAt = Date.now();

  constructor(
    private readonly req: IncomingMessage,
    private readonly socket: Duplex,
    private readonly client: ClientAddress,
    private readonly opts: SharedControlOptions,
    private readonly deps: SharedControlDeps,
    private readonly ended: () => void,
  ) {
    socket.on('error', ignore);
    socket.on('close', () => this.finish());
    this.deadline = setTimeout(() => this.refuse(new GatewayError('CLIENT_TIMEOUT', `control channel not set up within ${opts.setupTimeoutMs} ms`, { status: 504 })), opts.setupTimeoutMs);
  }

  /** The checks of a console upgrade, the viewer found and matched, then the 101 and the watch. */
  async establish(head: Buffer, wss: WebSocketServer): Promise<void> {
    const req = this.req;
    const problem = upgradeProblem(req);
    if (problem) throw problem;
    const origin = checkOriginHost(req.headers, this.opts.allowedOrigins);
    const raw = req.url ?? '/';
    const query = new URLSearchParams(raw.includes('?') ? raw.slice(raw.indexOf('?') + 1) : '');
    // where a console WebSocket may carry it (query, noVNC path, cookie): the page sends it in the query
    const token = tokenFromRequest(raw, req.headers.cookie);
    if (token === undefined) throw new GatewayError('TOKEN_MISSING', 'no console token in the control channel request', { status: 400 });
    const hash = hashToken(token);
    this.tokenLog = tokenLogId(hash, true);
    const key = query.get('viewer') ?? '';
    if (!VIEWER_KEY.test(key)) throw new GatewayError('BAD_REQUEST', 'the control channel needs a viewer key (a UUID)', { status: 400 });
    const lookups = this.deps.lookups;
    const wait = lookups?.retryAfter(this.client.host) ?? 0;
    if (wait > 0) throw overBudget(this.client.host, wait);
    const found = await this.guard(this.deps.tokens.lookup(token));
    if (found.status !== 'valid') void lookups?.failed(this.client.host);
    if (found.status === 'unknown') throw new GatewayError('TOKEN_UNKNOWN', 'unknown or revoked console token', { status: 403 });
    if (found.status === 'expired') throw new GatewayError('TOKEN_EXPIRED', 'expired console token', { status: 403 });
    checkOriginScheme(origin, found.token.accessUrlBase);
    if (!this.opts.consoleTypes.includes(found.token.consoleType)) throw new GatewayError('TOKEN_WRONG_CONSOLE_TYPE', `token is for a ${found.token.consoleType} console, the control channel serves ${this.opts.consoleTypes.join(', ')}`, { status: 403 });
    const viewer = await this.guard(this.findViewer(key, hash));
    // the same refusal for a key nobody holds and a key held with another token: a key is no secret
    if (!viewer) throw new GatewayError('NOT_FOUND', 'no viewer of a shared console with this key and token', { status: 404 });
    if (this.over) return;
    const { console: shared, viewerId } = viewer;
    this.viewerId = viewerId;
    clearTimeout(this.deadline);
    wss.handleUpgrade(req, this.socket, head, (ws) => this.open(ws, shared, viewerId));
  }

  /** The viewer of `key` whose token is `hash`, waiting a little for its RFB connection to attach. */
  private async findViewer(key: string, hash: string): Promise<{ readonly console: SharedConsoleControl; readonly viewerId: string } | undefined> {
    const until = Date.now() + (this.opts.viewerWaitMs ?? DEFAULT_VIEWER_WAIT_MS);
    for (;;) {
      const v = this.deps.consoles.viewerByKey(key, hash);
      if (v || this.over || Date.now() >= until) return v;
      await new Promise((r) => setTimeout(r, VIEWER_POLL_MS));
    }
  }

  private open(ws: WebSocket, shared: SharedConsoleControl, me: string): void {
    this.ws = ws;
    ws.on('error', ignore);
    ws.on('close', () => this.finish());
    if (this.over) {
      ws.terminate();
      return;
    }
    let alive = true;
    ws.on('pong', () => (alive = true));
    this.ping = setInterval(() => {
      // a page whose network went away without a FIN: its viewer lists would pile up unsent
      if (!alive) {
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    }, PING_EVERY_MS);
    this.ping.unref();
    ws.on('message', (data, isBinary) => this.received(shared, me, data, isBinary));
    let role: ViewerRole | undefined;
    const told = (event: SharedConsoleEvent | null) => {
      const state = event?.state ?? shared.state();
      const mine = state.viewers.find((v) => v.id === me);
      if (!mine || event?.kind === 'closed') {
        // the viewer left (its RFB session ended) or the backend went: the channel goes with it
        this.close(CLOSE_VIEWER_GONE.code, CLOSE_VIEWER_GONE.reason);
        return;
      }
      this.send({ type: 'viewers', you: me, viewers: state.viewers.map(({ id, name, role: r, viewOnly, since }) => ({ id, name, role: r, viewOnly, since })) });
      if (mine.role !== role) {
        role = mine.role;
        if (event !== null) this.send({ type: 'role', role });
      }
      const request = state.request;
      // asked now, or pending when the channel opens: the controller's page prompts
      if (request && state.controller === me && (event === null || (event.kind === 'requested' && event.viewer === request.from))) {
        this.send({ type: 'control-requested', by: request.from, timeoutMs: Math.max(0, request.deadline - Date.now()) });
      }
      if (event?.kind === 'declined' && event.viewer === me) this.send({ type: 'denied', by: state.controller });
    };
    this.unwatch = shared.subscribe((event) => {
      try {
        told(event);
      } catch (err) {
        this.deps.log.error({ event: 'bug', err: (err as Error)?.message }, `shared console control channel failed: ${(err as Error)?.stack ?? err}`);
      }
    });
    told(null);
    if (this.over) return;
    this.deps.log.debug({ event: 'shared_control_open', viewer: me, client: this.client.display, tokenHash: this.tokenLog }, 'shared console control channel open');
  }

  private received(shared: SharedConsoleControl, me: string, data: RawData, isBinary: boolean): void {
    if (this.over) return;
    const now = Date.now();
    this.allowance = Math.min(RATE.burst, this.allowance + ((now - this.filledAt) / 1000) * RATE.perSecond);
    this.filledAt = now;
    if (this.allowance < 1) {
      this.deps.log.warn({ event: 'refused', code: 'CLIENT_PROTOCOL', client: this.client.display, tokenHash: this.tokenLog }, `shared console control channel closed: more than ${RATE.perSecond} messages a second`);
      this.close(CLOSE_TOO_MANY.code, CLOSE_TOO_MANY.reason);
      return;
    }
    this.allowance -= 1;
    if (isBinary) return;
    let m: unknown;
    try {
      m = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'));
    } catch {
      return;
    }
    if (m === null || typeof m !== 'object') return;
    const msg = m as { type?: unknown; to?: unknown };
    // the engine refuses what this viewer may not do (a view-only viewer asking, giving what it
    // does not hold): its answer is `refused` and the next viewers list mends the page
    try {
      switch (msg.type) {
        case 'request-control':
          shared.requestControl(me);
          return;
        case 'give-control': {
          if (typeof msg.to !== 'string' || msg.to.length > 64) return;
          const request = shared.state().request;
          // giving control to the viewer who asked is accepting its request
          if (request && request.from === msg.to) shared.answerRequest(me, msg.to, true);
          else shared.giveControl(me, msg.to);
          return;
        }
        case 'release-control':
          shared.releaseControl(me);
          return;
        case 'deny': {
          const request = shared.state().request;
          if (request) shared.answerRequest(me, request.from, false);
          return;
        }
      }
    } catch (err) {
      this.deps.log.error({ event: 'bug', err: (err as Error)?.message }, `shared console control failed: ${(err as Error)?.stack ?? err}`);
    }
  }

  private send(message: object): void {
    const ws = this.ws;
    if (this.over || !ws || ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > MAX_BUFFERED) {
      ws.terminate();
      return;
    }
    ws.send(JSON.stringify(message));
  }

  /** Settles as `p` does, or rejects once the channel is over. */
  private guard<T>(p: Promise<T>): Promise<T> {
    const signal = this.steps.signal;
    if (signal.aborted) {
      p.catch(ignore);
      return Promise.reject(new GatewayError('CLIENT_CLOSED', 'control channel over'));
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(new GatewayError('CLIENT_CLOSED', 'control channel over'));
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
        (err: unknown) => (signal.removeEventListener('abort', onAbort), reject(err)),
      );
    });
  }

  /** Refuses before the 101 (a status, no body), or closes after it. */
  refuse(err: unknown): void {
    if (this.over) return;
    const e = asGatewayError(err);
    if (this.ws) {
      this.close(e.closeCode, e.clientMessage.slice(0, 100));
      return;
    }
    if (e.code !== 'CLIENT_CLOSED' && e.code !== 'TOO_MANY_FAILED_LOOKUPS') {
      const level = e.code === 'INTERNAL' ? 'error' : 'warn';
      this.deps.log[level]({ event: 'refused', code: e.code, client: this.client.display, tokenHash: this.tokenLog, status: e.status }, `shared console control channel refused: ${e.message}`);
    }
    writeRefusal(this.socket, e.status, e.retryAfter === undefined ? {} : { 'Retry-After': e.retryAfter });
    // the refusal's writer ends the socket once written
    this.finish(false);
  }

  close(code: number, reason: string): void {
    if (this.over) return;
    const ws = this.ws;
    if (!ws) {
      this.refuse(new GatewayError('CLIENT_CLOSED', reason, { status: 503 }));
      return;
    }
    if (ws.readyState === ws.OPEN) ws.close(code, reason);
    // a page that never answers the close frame does not hold the socket
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.finish();
  }

  /** Lets go of everything, once. */
  private finish(destroy = true): void {
    if (this.over) return;
    this.over = true;
    clearTimeout(this.deadline);
    clearInterval(this.ping);
    this.steps.abort();
    this.unwatch?.();
    this.unwatch = undefined;
    if (!this.ws) {
      if (destroy) this.socket.destroy();
    } else if (this.ws.readyState !== this.ws.OPEN && this.ws.readyState !== this.ws.CLOSING) this.socket.destroy();
    if (this.viewerId) this.deps.log.debug({ event: 'shared_control_closed', viewer: this.viewerId, tokenHash: this.tokenLog }, 'shared console control channel closed');
    this.ended();
  }
}

function ignore(): void {}
