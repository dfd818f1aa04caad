/**
 * @module proxy/upgrade
 * Decides every console WebSocket upgrade, in Nova's order: path, token, Origin, console type,
 * console port still owned by the server (CVE-2013-0335), backend reachable; only then the 101
 * and the relay. A refusal is an HTTP status with an empty body and `Connection: close`, written
 * before any WebSocket byte: tempest's `test_novnc_bad_token` requires that a bad token gets the
 * connection closed without a single data byte, and the person at the console learns the reason
 * from the console page (token state), not from this socket. Every refusal and every session
 * gets one log line; tokens appear there only as 8 hex digits of their hash.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { GatewayError, isGatewayError } from '../errors.ts';
import type { Inventory } from '../inventory/types.ts';
import { tokenLogId, type TokenStore } from '../store/types.ts';
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
}

export interface UpgradeDeps {
  readonly tokens: TokenStore;
  readonly inventory: Inventory;
  readonly log: Logger;
  readonly sessions: Set<ConsoleSession>;
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
  const handle: UpgradeHandler = (req, socket, head) => {
    socket.on('error', ignore);
    decide(req, socket, opts, deps).then(
      (accepted) => {
        if (!accepted) return;
        if (socket.destroyed) {
          accepted.backend.destroy();
          logRefusal(deps.log, req, new GatewayError('BAD_REQUEST', 'client went away before the upgrade completed'), accepted.tokenLogId);
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => startSession(ws, socket, req, accepted, deps));
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
  readonly tokenLogId: string;
  readonly consoleType: string;
  readonly instanceUuid: string;
  readonly serverName: string | null;
  readonly backendAddress: string;
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
    const backend = await connectBackend({ host: t.host, port: t.port, internalAccessPath: t.internalAccessPath }, opts);
    return {
      backend,
      tokenLogId: logId,
      consoleType: t.consoleType,
      instanceUuid: t.instanceUuid,
      serverName: server?.name ?? null,
      backendAddress: `${t.host}:${t.port}`,
    };
  } catch (err) {
    if (err && typeof err === 'object') (err as { tokenLogId?: string }).tokenLogId = logId;
    throw err;
  }
}

/** The checks `ws` would make, done before the backend is dialled so a bad request costs nothing. */
function checkWebSocketRequest(req: IncomingMessage): void {
  const key = req.headers['sec-websocket-key'];
  const version = req.headers['sec-websocket-version'];
  if (req.method !== 'GET' || req.headers.upgrade?.toLowerCase() !== 'websocket' || !key || !/^[+/0-9A-Za-z]{22}==$/.test(key) || (version !== '13' && version !== '8')) {
    throw new GatewayError('BAD_REQUEST', 'not a valid WebSocket upgrade request', { status: 400 });
  }
}

function startSession(ws: WebSocket, socket: Duplex, req: IncomingMessage, a: Accepted, deps: UpgradeDeps): void {
  const info = {
    id: randomUUID(),
    consoleType: a.consoleType,
    instanceUuid: a.instanceUuid,
    serverName: a.serverName,
    client: clientAddress(req),
    backend: a.backendAddress,
    tokenLogId: a.tokenLogId,
  };
  const session = new ConsoleSession(info, ws, socket, a.backend, (s, end) => {
    deps.sessions.delete(s);
    deps.log.info({ event: 'session', session: info.id, server: info.serverName, instance: info.instanceUuid, client: info.client, backend: info.backend, token: info.tokenLogId, reason: end.reason, bytesFromClient: end.bytesFromClient, bytesFromBackend: end.bytesFromBackend, durationMs: end.durationMs }, 'console session ended');
  });
  deps.sessions.add(session);
  deps.log.debug({ event: 'session_start', session: info.id, instance: info.instanceUuid, client: info.client, token: info.tokenLogId }, 'console session started');
}

function logRefusal(log: Logger, req: IncomingMessage, err: GatewayError, logId: string | undefined): void {
  log.warn({ event: 'refused', code: err.code, client: clientAddress(req), token: logId, status: err.status }, err.message);
}

function refuse(socket: Duplex, status: number): void {
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }
  // a client that does not read must not keep the socket open
  setTimeout(() => socket.destroy(), 1000).unref();
}

export function clientAddress(req: IncomingMessage): string {
  // a TLS socket over the listener's replaying stream knows its peer only through that stream
  const s = req.socket as { remoteAddress?: string; remotePort?: number; _parent?: { remoteAddress?: string; remotePort?: number } };
  const peer = s.remoteAddress ? s : s._parent;
  return peer?.remoteAddress ? `${peer.remoteAddress}:${peer.remotePort}` : 'unknown';
}

function ignore(): void {}
