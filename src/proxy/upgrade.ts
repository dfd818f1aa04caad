/**
 * @module proxy/upgrade
 * Decides every console WebSocket upgrade, in Nova's order: path, token, Origin, console type,
 * console port still owned by the server (CVE-2013-0335), backend reachable; only then the 101,
 * and for noVNC the backend's RFB authentication (the security proxy, `src/rfb/`), which runs
 * while the browser answers Porthole's ProtocolVersion; then the relay.
 * A refusal is an HTTP status with an empty body and `Connection: close`, written before any
 * WebSocket byte: tempest's `test_novnc_bad_token` requires that a bad token gets the connection
 * closed without a single data byte, and the person at the console learns the reason from the
 * console page (token state), not from this socket. A backend that could not be authenticated
 * is the exception: the browser gets the 101 and an RFB failure whose reason says only that (the
 * RFB handshake is where noVNC shows a reason), and the log line says exactly what failed.
 * Every refusal and every session gets one log line; tokens appear there only as 8 hex digits of
 * their hash, passwords never.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { GatewayError, isGatewayError } from '../errors.ts';
import type { Inventory, Server } from '../inventory/types.ts';
import { BackendRefused, clientReader, negotiateBackend, serveClient, type BackendHandshake, type ClientSeam } from '../rfb/security-proxy.ts';
import { isAuthSchemeName, type BackendAuthSettings, type RfbProxyOptions } from '../rfb/types.ts';
import { tokenLogId, type ConsoleToken, type ConsumeResult, type TokenStore } from '../store/types.ts';
import { connectBackend, type BackendOptions } from './backend.ts';
import { checkOriginHost, checkOriginScheme } from './origin.ts';
import { ConsoleSession } from './relay.ts';
import { tokenFromRequest } from './token-source.ts';

export interface UpgradeOptions extends BackendOptions {
  /** Console types this listener serves (`novnc` for the noVNC proxy). */
  readonly consoleTypes: readonly string[];
  /** Paths that take a WebSocket upgrade. */
  readonly paths: readonly string[];
  readonly allowedOrigins: readonly string[];
  readonly maxMessageSize: number;
  /** The RFB security proxy's defaults; absent: a plain relay (consoles that are not RFB). */
  readonly rfb?: RfbProxyOptions;
  /** `[porthole] single_use_tokens`: the first successful connection consumes the token. */
  readonly singleUse?: { readonly graceSeconds: number };
  /** `[porthole] trusted_proxies`: balancers whose X-Forwarded-For names the real client. */
  readonly trustedProxies?: readonly string[];
}

export interface UpgradeDeps {
  readonly tokens: TokenStore;
  readonly inventory: Inventory;
  readonly log: Logger;
  readonly sessions: Set<ConsoleSession>;
  /** Aborted when the gateway shuts down: RFB handshakes in progress end at once. */
  readonly signal?: AbortSignal;
  /** Releases of single-use tokens in flight, for the gateway to await when it closes. */
  readonly releases?: Set<Promise<unknown>>;
  /** Told of every session that starts and ends: the live-sessions registry (`src/sessions/`). */
  readonly registry?: { started(session: ConsoleSession): void; ended(session: ConsoleSession): void };
}

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export function createUpgradeHandler(opts: UpgradeOptions, deps: UpgradeDeps): { handle: UpgradeHandler; wss: WebSocketServer } {
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    // RFB is binary; validating UTF-8 of binary frames is wasted work on the byte path
    skipUTF8Validation: true,
    maxPayload: opts.maxMessageSize,
    clientTracking: false,
    handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false),
  });
  const trusted = new Set(opts.trustedProxies ?? []);
  const handle: UpgradeHandler = (req, socket, head) => {
    socket.on('error', ignore);
    if (trusted.size > 0) rememberForwardedClient(req, trusted);
    decide(req, socket, opts, deps).then(
      (accepted) => {
        if (!accepted) return;
        if (socket.destroyed) {
          accepted.backend.destroy();
          accepted.negotiation?.catch(ignore);
          accepted.use?.failed();
          logRefusal(deps.log, req, new GatewayError('BAD_REQUEST', 'client went away before the upgrade completed'), accepted.tokenLogId);
          return;
        }
        // the 101 and Porthole's ProtocolVersion, written in the same turn, leave in one segment
        socket.cork();
        wss.handleUpgrade(req, socket, head, (ws) => {
          if (accepted.negotiation) handshakeThenSession(ws, socket, req, accepted, accepted.negotiation, opts.rfb!, deps);
          else startSession(ws, socket, req, accepted, accepted.backend, null, deps);
        });
        socket.uncork();
      },
      (err: unknown) => {
        const e = isGatewayError(err) ? err : new GatewayError('STORE_UNAVAILABLE', `upgrade failed: ${(err as Error)?.message ?? err}`, { status: 503, cause: err });
        logRefusal(deps.log, req, e, (err as { tokenLogId?: string })?.tokenLogId);
        refuse(socket, e.status);
      },
    );
  };
  return { handle, wss };
}

interface Accepted {
  readonly backend: Socket;
  /** The security proxy's half of the RFB handshake with the backend, under way. */
  readonly negotiation?: Promise<BackendHandshake>;
  readonly tokenLogId: string;
  readonly tokenHash: string;
  readonly tokenExpires: number;
  readonly consoleType: string;
  readonly instanceUuid: string;
  readonly serverName: string | null;
  readonly backendAddress: string;
  /** Single-use tokens: this connection's use of its token. */
  readonly use?: TokenUse;
}

async function decide(req: IncomingMessage, socket: Duplex, opts: UpgradeOptions, deps: UpgradeDeps): Promise<Accepted | undefined> {
  const rawUrl = req.url ?? '/';
  // CVE-2021-3654: a `//host` path could be turned into an open redirect
  if (rawUrl.startsWith('//')) throw new GatewayError('DOUBLE_SLASH_PATH', 'URI must not start with //', { status: 400 });
  const pathname = rawUrl.split('?', 1)[0]!;
  if (!opts.paths.includes(pathname)) throw new GatewayError('NOT_FOUND', `no console WebSocket at ${pathname.slice(0, 100)}`, { status: 404 });
  checkWebSocketRequest(req);

  const origin = checkOriginHost(req.headers, opts.allowedOrigins);
  const token = tokenFromRequest(rawUrl, req.headers.cookie);
  if (token === undefined) throw new GatewayError('TOKEN_MISSING', 'no console token in the request', { status: 400 });
  const logId = tokenLogId(token);
  try {
    const found = await deps.tokens.lookup(token);
    if (found.status === 'unknown') throw new GatewayError('TOKEN_UNKNOWN', 'unknown or revoked console token', { status: 403 });
    if (found.status === 'expired') throw new GatewayError('TOKEN_EXPIRED', 'expired console token', { status: 403 });
    const t = found.token;
    checkOriginScheme(origin, t.accessUrlBase);
    if (!opts.consoleTypes.includes(t.consoleType)) {
      throw new GatewayError('TOKEN_WRONG_CONSOLE_TYPE', `token is for a ${t.consoleType} console, this proxy serves ${opts.consoleTypes.join(', ')}`, { status: 403 });
    }
    const server = await deps.inventory.get(t.instanceUuid);
    if (server) {
      const ep = server.vnc;
      if (!ep || ep.host !== t.host || ep.port !== t.port) {
        throw new GatewayError('CONSOLE_PORT_MISMATCH', `token endpoint ${t.host}:${t.port} is not the current console of server ${server.id} (${ep ? `${ep.host}:${ep.port}` : 'none'})`, { status: 403 });
      }
    }
    if (socket.destroyed) return undefined;
    // consumed before the backend is dialled, so a used token costs no backend connection; a
    // connection that then fails gives it back (`failed`): only a working one consumes it
    const use = opts.singleUse ? await consumeToken(t, req, opts.singleUse.graceSeconds, deps) : undefined;
    let backend: Socket;
    try {
      backend = await connectBackend({ host: t.host, port: t.port, internalAccessPath: t.internalAccessPath }, opts);
    } catch (err) {
      use?.failed();
      throw err;
    }
    // the browser's version exchange overlaps this: it starts once the 101 is out
    const negotiation = opts.rfb ? negotiateBackend(backend, backendAuthSettings(opts.rfb, server, t.host), { timeoutMs: opts.rfb.timeoutMs, address: `${t.host}:${t.port}` }) : undefined;
    return {
      backend,
      negotiation,
      tokenLogId: logId,
      tokenHash: t.tokenHash,
      tokenExpires: t.expires,
      consoleType: t.consoleType,
      instanceUuid: t.instanceUuid,
      serverName: server?.name ?? null,
      backendAddress: `${t.host}:${t.port}`,
      use,
    };
  } catch (err) {
    if (err && typeof err === 'object') (err as { tokenLogId?: string }).tokenLogId = logId;
    throw err;
  }
}

/** A connection's use of a single-use token: it `failed` before its session began, or its session `ended`. */
interface TokenUse {
  failed(): void;
  ended(): void;
}

/**
 * Single-use tokens: consumes `t` for this client (its address without the port, which changes on
 * every reconnection) or refuses with TOKEN_CONSUMED.
 */
async function consumeToken(t: ConsoleToken, req: IncomingMessage, graceSeconds: number, deps: UpgradeDeps): Promise<TokenUse> {
  const client = clientHost(req);
  const result: ConsumeResult = await deps.tokens.consume(t, client, graceSeconds);
  if (result === 'refused') {
    throw new GatewayError('TOKEN_CONSUMED', 'single-use console token already used (by a live session, another client, or longer ago than the reconnect grace)', { status: 403 });
  }
  let done = false;
  const finish = (what: string, op: () => Promise<void>) => {
    if (done) return;
    done = true;
    const p = op().catch((err: unknown) => deps.log.warn({ event: 'token_use', code: isGatewayError(err) ? err.code : undefined, tokenHash: tokenLogId(t.tokenHash, true) }, `single-use token not ${what}: ${(err as Error)?.message ?? err}`));
    deps.releases?.add(p);
    void p.finally(() => deps.releases?.delete(p));
  };
  return {
    // a first use that failed leaves the token unused; a failed reconnection leaves it released
    failed: () => (result === 'first' ? finish('given back', () => deps.tokens.forget(t, client)) : finish('released', () => deps.tokens.release(t, client))),
    ended: () => finish('released', () => deps.tokens.release(t, client)),
  };
}

/** A server's own settings over the config's; the password is looked up here and goes nowhere else. */
export function backendAuthSettings(defaults: RfbProxyOptions, server: Server | undefined, host: string): BackendAuthSettings {
  const own = server?.backendAuth;
  return {
    schemes: own?.authSchemes ? own.authSchemes.filter(isAuthSchemeName) : defaults.authSchemes,
    password: own?.vncPassword ?? defaults.password,
    username: own?.vncUsername ?? defaults.username,
    tls: defaults.tls,
    tlsServerName: own?.tlsServerName ?? (defaults.verifyHostname ? host : null),
    allowInsecureTls: defaults.allowInsecureTls,
  };
}

/** The checks `ws` would make, done before the backend is dialled so a bad request costs nothing. */
function checkWebSocketRequest(req: IncomingMessage): void {
  const key = req.headers['sec-websocket-key'];
  const version = req.headers['sec-websocket-version'];
  if (req.method !== 'GET' || req.headers.upgrade?.toLowerCase() !== 'websocket' || !key || !/^[+/0-9A-Za-z]{22}==$/.test(key) || (version !== '13' && version !== '8')) {
    throw new GatewayError('BAD_REQUEST', 'not a valid WebSocket upgrade request', { status: 400 });
  }
}

/**
 * The browser's half of the RFB handshake (version, None, OK, ClientInit, ServerInit) while the
 * backend's runs, then the relay. A backend that could not be authenticated is not an HTTP
 * refusal: RFB is where noVNC shows a reason, so the browser gets an RFB failure saying only that
 * the console could not be authenticated; the detail (hosts, certificates, the server's words) is
 * information leakage and goes to the log.
 */
function handshakeThenSession(ws: WebSocket, socket: Duplex, req: IncomingMessage, a: Accepted, negotiation: Promise<BackendHandshake>, o: RfbProxyOptions, deps: UpgradeDeps): void {
  const { seam, release } = clientSeam(ws, o.timeoutMs, deps.signal);
  serveClient(seam, negotiation, { timeoutMs: o.timeoutMs }).then(
    (rfb) => {
      release();
      startSession(ws, socket, req, a, rfb.socket, rfb.auth, deps);
    },
    (err: unknown) => {
      release();
      a.backend.destroy();
      a.use?.failed();
      if (err instanceof BackendRefused) {
        logRefusal(deps.log, req, err.failure, a.tokenLogId, { backend: a.backendAddress, instance: a.instanceUuid });
        closeClient(ws, socket, 1000, 'console could not be authenticated');
        return;
      }
      // the browser went away or broke its side before the backend was through: it is gone either way
      negotiation.then((rfb) => rfb.socket.destroy(), ignore);
      const e = isGatewayError(err) ? err : new GatewayError('BACKEND_PROTOCOL', `RFB handshake failed: ${(err as Error)?.message ?? err}`, { closeCode: 1011 });
      logRefusal(deps.log, req, e, a.tokenLogId, { backend: a.backendAddress, instance: a.instanceUuid });
      // past SecurityResult OK, RFB has no way left to give a reason: the close frame has it
      closeClient(ws, socket, e.closeCode, e.code.startsWith('BACKEND') ? 'The console closed during the connection' : e.clientMessage.slice(0, 100));
    },
  );
}

/** The WebSocket as the RFB code sees it, until `release()`: messages in, one message per RFB message out. */
function clientSeam(ws: WebSocket, timeoutMs: number, signal: AbortSignal | undefined): { seam: ClientSeam; release: () => void } {
  const reader = clientReader(timeoutMs);
  const onMessage = (data: Buffer) => reader.push(data);
  const onClose = () => reader.end('the WebSocket closed');
  const onError = (err: Error) => reader.end(err.message);
  const onAbort = () => reader.fail(new GatewayError('CLIENT_CLOSED', 'proxy shutting down during the RFB handshake', { closeCode: 1001, clientMessage: 'proxy shutting down' }));
  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', onError);
  signal?.addEventListener('abort', onAbort);
  if (signal?.aborted) onAbort();
  return {
    seam: { reader, send: (message) => ws.send(message, BINARY) },
    release() {
      reader.finish();
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

function closeClient(ws: WebSocket, socket: Duplex, code: number, reason: string): void {
  ws.on('error', ignore);
  if (ws.readyState === ws.OPEN) ws.close(code, reason);
  // a client that never answers the close frame must not hold the socket
  setTimeout(() => socket.destroy(), 2000).unref();
}

function startSession(ws: WebSocket, socket: Duplex, req: IncomingMessage, a: Accepted, backend: Socket, backendAuth: string | null, deps: UpgradeDeps): void {
  const info = {
    id: randomUUID(),
    consoleType: a.consoleType,
    instanceUuid: a.instanceUuid,
    serverName: a.serverName,
    client: clientAddress(req),
    backend: a.backendAddress,
    tokenLogId: a.tokenLogId,
    tokenHash: a.tokenHash,
    tokenExpires: a.tokenExpires,
    backendAuth,
  };
  // the session's closure keeps the token's use, not the whole upgrade (the handshake's transport
  // and readers would stay alive as long as the console)
  const use = a.use;
  const session = new ConsoleSession(info, ws, socket, backend, (s, end) => {
    deps.sessions.delete(s);
    deps.registry?.ended(s);
    use?.ended();
    deps.log.info({ event: 'session', session: info.id, server: info.serverName, instance: info.instanceUuid, client: info.client, backend: info.backend, backendAuth: info.backendAuth ?? undefined, tokenHash: info.tokenLogId, reason: end.reason, bytesFromClient: end.bytesFromClient, bytesFromBackend: end.bytesFromBackend, durationMs: end.durationMs }, 'console session ended');
  });
  deps.sessions.add(session);
  deps.registry?.started(session);
  deps.log.debug({ event: 'session_start', session: info.id, instance: info.instanceUuid, client: info.client, tokenHash: info.tokenLogId }, 'console session started');
}

function logRefusal(log: Logger, req: IncomingMessage, err: GatewayError, logId: string | undefined, extra?: { backend: string; instance: string }): void {
  // after the 101 (RFB failures) there is no HTTP status to report
  log.warn({ event: 'refused', code: err.code, client: clientAddress(req), tokenHash: logId, status: extra ? undefined : err.status, ...extra }, err.message);
}

function refuse(socket: Duplex, status: number): void {
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }
  // a client that does not read must not keep the socket open
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** The client's address without its port. */
/** Client of a request that came through a `[porthole] trusted_proxies` balancer, from X-Forwarded-For. */
const forwardedClients = new WeakMap<IncomingMessage, string>();

/**
 * Behind a balancer every TCP peer is the balancer: when the peer is one of the trusted proxies,
 * the client is the right-most X-Forwarded-For address that is not a trusted proxy itself (the
 * left part of the header is whatever the client claimed, so it is never read).
 */
function rememberForwardedClient(req: IncomingMessage, trusted: ReadonlySet<string>): void {
  const peer = socketPeer(req).host;
  const header = req.headers['x-forwarded-for'];
  if (peer === undefined || !trusted.has(normalizeIp(peer)) || header === undefined) return;
  const hops = (Array.isArray(header) ? header.join(',') : header).split(',').map((h) => normalizeIp(h.trim())).filter((h) => h !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trusted.has(hops[i]!)) {
      if (isIP(hops[i]!)) forwardedClients.set(req, hops[i]!);
      return;
    }
  }
}

function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

function socketPeer(req: IncomingMessage): { host?: string; port?: number } {
  // a TLS socket over the listener's replaying stream knows its peer only through that stream
  const s = req.socket as { remoteAddress?: string; remotePort?: number; _parent?: { remoteAddress?: string; remotePort?: number } };
  const peer = s.remoteAddress ? s : s._parent;
  return { host: peer?.remoteAddress, port: peer?.remotePort };
}

/** The client's IP address (through a trusted balancer: the one it forwarded). */
export function clientHost(req: IncomingMessage): string {
  return forwardedClients.get(req) ?? socketPeer(req).host ?? 'unknown';
}

/** The client for logs: `ip:port`, or the forwarded IP alone (the balancer does not forward ports). */
export function clientAddress(req: IncomingMessage): string {
  const forwarded = forwardedClients.get(req);
  if (forwarded !== undefined) return forwarded;
  const peer = socketPeer(req);
  return peer.host ? `${peer.host}:${peer.port}` : 'unknown';
}

function ignore(): void {}

const BINARY = { binary: true } as const;
