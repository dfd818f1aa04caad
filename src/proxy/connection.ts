/**
 * @module proxy/connection
 * The one owner of a console connection, from its upgrade request to its end. What the
 * connection opens is adopted here the moment it exists: the client's socket (and its WebSocket
 * once accepted), the backend socket from its dial on (the dial takes `signal`), the TLS socket
 * the security proxy may put over it, the token's use. One funnel ends it, whatever comes first:
 * the client going at any step (before the 101, during the RFB handshake, in the relay), an error,
 * the setup deadline, the proxy shutting down, the relay ending. It destroys every socket it owns,
 * gives back the token's use, and logs once, with the error's code.
 *
 * No error of a connection's life escapes it to the process: the steps run under `guard`, which
 * also stops them as soon as the connection is gone, and every socket it owns has an error
 * listener from the start (an unhandled `error` event or rejection would end every console of the
 * process, not just this one).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { asGatewayError, GatewayError } from '../errors.ts';
import type { ClientAddress } from './client-address.ts';
import { writeRefusal } from './refusal.ts';
import { ConsoleSession, type RelayFilters, type SessionEnd, type SessionInfo } from './relay.ts';
import type { TokenUse } from './token-use.ts';

export interface ConnectionHooks {
  readonly log: Logger;
  /** Called once when the connection is over (refused, failed, or its session ended). */
  closed(c: ConsoleConnection): void;
  /** The relay started: the session is live (sessions set, registry). */
  sessionStarted(s: ConsoleSession, c: ConsoleConnection): void;
  /** The relay ended, with its figures. */
  sessionEnded(s: ConsoleSession, end: SessionEnd, c: ConsoleConnection): void;
  /** The connection ended before its session began (refused, failed, the client went); `afterUpgrade`: the 101 was out. */
  refused(c: ConsoleConnection, e: GatewayError, afterUpgrade: boolean): void;
}

/** What the log says of a connection that never became a session: the backend and instance once known. */
export interface ConnectionContext {
  tokenLogId?: string;
  /** The token's SHA-256 (hex): the events' key for the token, never logged. */
  tokenHash?: string;
  backend?: string;
  instance?: string;
}

interface Setup {
  readonly req: IncomingMessage;
  /** Aborted when the connection ends during its setup. */
  readonly steps: AbortController;
  readonly deadline: NodeJS.Timeout;
  /** Removes the setup's listeners from the client's socket and WebSocket. */
  readonly listeners: Array<() => void>;
}

export class ConsoleConnection {
  readonly context: ConnectionContext = {};
  /** When the upgrade request arrived (`performance.now()`): what the steps' timings count from. */
  readonly openedAt = performance.now();
  private backends: readonly Duplex[] = [];
  private ws: WebSocket | null = null;
  private session: ConsoleSession | null = null;
  private use: TokenUse | undefined;
  /** Gives back the console's place under the concurrent-console limits (`console-limits.ts`). */
  private slot: (() => void) | undefined;
  private over = false;
  /**
   * What only the setup needs, let go of when the relay starts or the connection ends, so that
   * a live console holds no more than its relay (measured: 4 KiB less per idle console).
   */
  private setup: Setup | null;

  constructor(
    req: IncomingMessage,
    readonly socket: Duplex,
    readonly client: ClientAddress,
    setupTimeoutMs: number,
    private readonly hooks: ConnectionHooks,
  ) {
    const onClose = () => this.clientGone('the connection closed');
    // before the 101 a client that half-closes can never send its side of the WebSocket
    const onEnd = () => this.ws === null && this.clientGone('the client ended its side of the connection');
    socket.on('error', socketOnError);
    socket.on('close', onClose);
    socket.on('end', onEnd);
    this.setup = {
      req,
      steps: new AbortController(),
      deadline: setTimeout(
        () => this.fail(new GatewayError('CLIENT_TIMEOUT', `console connection not set up within ${setupTimeoutMs} ms`, { status: 504, closeCode: 1011, clientMessage: 'The console did not answer in time' })),
        setupTimeoutMs,
      ),
      listeners: [() => socket.off('close', onClose), () => socket.off('end', onEnd)],
    };
  }

  /** The upgrade request; only during the setup. */
  get req(): IncomingMessage {
    return this.during().req;
  }

  /** Aborted when the connection is over: steps in flight (a dial, a store query) stop and let go of what they hold. */
  get signal(): AbortSignal {
    return this.during().steps.signal;
  }

  get closed(): boolean {
    return this.over;
  }

  /** Settles as `p` does, or rejects as soon as the connection is over (a step never outlives its owner). */
  guard<T>(p: Promise<T>): Promise<T> {
    if (this.over || this.setup === null) {
      p.catch(ignore);
      return Promise.reject(new GatewayError('CLIENT_CLOSED', 'the console connection is over, or past its setup'));
    }
    const signal = this.setup.steps.signal;
    return new Promise<T>((resolve, reject) => {
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

  /**
   * Takes a backend socket (the TCP one, or TLS over it), or a viewer's stream on a kept serial
   * console (destroying it detaches the viewer); one that arrives after the end is destroyed at once.
   */
  adoptBackend(s: Duplex): void {
    s.on('error', ignore);
    if (this.over) {
      s.destroy();
      return;
    }
    // an array of its own size: a push (or a spread) leaves room for 16 more (measured: 120 B per live console)
    if (!this.backends.includes(s)) this.backends = this.backends.concat(s);
  }

  /** Takes the console's place under the limits: given back once when the connection ends, however it ends. */
  adoptSlot(release: () => void): void {
    if (this.over) release();
    else this.slot = release;
  }

  adoptTokenUse(use: TokenUse): void {
    if (this.over) use.failed();
    else this.use = use;
  }

  /** Takes the WebSocket `ws` made of this connection's socket. */
  adoptWebSocket(ws: WebSocket): void {
    ws.on('error', ignore);
    this.ws = ws;
    const onClose = () => this.clientGone('the WebSocket closed');
    ws.on('close', onClose);
    this.setup?.listeners.push(() => ws.off('close', onClose));
    if (this.over) closeWebSocket(ws, this.socket, 1001, 'console closed');
  }

  /**
   * Starts the relay between the WebSocket and `backend`; from now on the session decides when
   * the connection ends (it closes on either side's end, and on `close` from the proxy).
   */
  startRelay(info: Omit<SessionInfo, 'client'>, backend: Duplex, filters?: RelayFilters): ConsoleSession | undefined {
    const ws = this.ws;
    if (this.over || ws === null || ws.readyState !== ws.OPEN || backend.destroyed) {
      this.fail(new GatewayError('CLIENT_CLOSED', 'client went away before its session began'));
      return undefined;
    }
    this.letGoOfSetup();
    this.adoptBackend(backend);
    const use = this.use;
    const session = new ConsoleSession({ ...info, client: this.client.display }, ws, this.socket, backend, (s, end) => {
      this.finish();
      use?.ended();
      // runs in a socket's event handler: a throw here would reach the process
      this.contain(() => this.hooks.sessionEnded(s, end, this));
    }, filters);
    this.session = session;
    this.hooks.sessionStarted(session, this);
    return session;
  }

  /**
   * Ends a connection that is not (or no longer) a session because of `err`: before the 101 an
   * HTTP status with an empty body (tempest's `test_novnc_bad_token` wants no data byte), after
   * it a close frame with the client's words; the log has the detail.
   */
  fail(err: unknown, toClient?: { readonly code: number; readonly reason: string }): void {
    const e = asGatewayError(err);
    const code = toClient?.code ?? e.closeCode;
    const reason = toClient?.reason ?? e.clientMessage.slice(0, 100);
    if (this.session) {
      this.session.close(code, reason);
      return;
    }
    if (this.over) return;
    this.finish(e);
    this.use?.failed();
    this.log(e);
    this.contain(() => this.hooks.refused(this, e, this.ws !== null));
    if (this.ws) closeWebSocket(this.ws, this.socket, code, reason);
    else writeRefusal(this.socket, e.status, e.retryAfter === undefined ? {} : { 'Retry-After': e.retryAfter });
  }

  /** Closes the connection from the proxy's side: shutdown, revocation, kill. */
  close(code: number, reason: string): void {
    if (this.session) this.session.close(code, reason);
    else this.fail(new GatewayError('CLIENT_CLOSED', reason, { closeCode: code, status: 503, clientMessage: reason }));
  }

  private clientGone(detail: string): void {
    if (this.over || this.session) return;
    this.fail(new GatewayError('CLIENT_CLOSED', `client went away before its session began: ${detail}`));
  }

  /** Lets go of everything: the steps in flight stop, the backend sockets close. Once. */
  private finish(reason?: GatewayError): void {
    if (this.over) return;
    this.over = true;
    this.setup?.steps.abort(reason ?? new GatewayError('CLIENT_CLOSED', 'connection over'));
    this.letGoOfSetup();
    for (const s of this.backends) s.destroy();
    this.slot?.();
    this.slot = undefined;
    this.contain(() => this.hooks.closed(this));
  }

  private during(): Setup {
    if (this.setup === null) throw new Error('the console connection is past its setup');
    return this.setup;
  }

  /** The relay's own listeners take over (or nothing is left to listen for). */
  private letGoOfSetup(): void {
    const setup = this.setup;
    if (setup === null) return;
    this.setup = null;
    clearTimeout(setup.deadline);
    for (const off of setup.listeners) off();
  }

  private contain(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.hooks.log.error({ event: 'bug', err: (err as Error)?.message }, `console connection hook failed: ${(err as Error)?.stack ?? err}`);
    }
  }

  private log(e: GatewayError): void {
    // the budget logs a client over it once per window, the limits once a minute per key, not once per refused attempt
    if (e.code === 'TOO_MANY_FAILED_LOOKUPS' || e.code.startsWith('CONSOLE_LIMIT_')) return;
    try {
      const c = this.context;
      // after the 101 there is no HTTP status to report, nor to a client that went away
      const status = this.ws || e.code === 'CLIENT_CLOSED' ? undefined : e.status;
      if (e.code === 'INTERNAL') {
        const cause = e.cause as Error | undefined;
        this.hooks.log.error({ event: 'bug', code: e.code, client: this.client.display, tokenHash: c.tokenLogId, status, stack: cause?.stack }, e.message);
        return;
      }
      this.hooks.log.warn({ event: 'refused', code: e.code, client: this.client.display, tokenHash: c.tokenLogId, status, backend: c.backend, instance: c.instance }, e.message);
    } catch {
      // a logger that throws must not leave the connection half-closed
    }
  }
}

function closeWebSocket(ws: WebSocket, socket: Duplex, code: number, reason: string): void {
  if (ws.readyState === ws.OPEN) ws.close(code, reason);
  if (socket.destroyed) return;
  // a client that never answers the close frame must not hold the socket
  setTimeout(() => socket.destroy(), 2000).unref();
}

function socketOnError(): void {
  // the socket's 'close' follows and ends the connection
}

function ignore(): void {}
