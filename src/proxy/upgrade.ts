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
 * With `[porthole] serial_keep_attached` the serial listener attaches to the hub's kept console
 * (`serial-hub.ts`) where a plain relay dials: every check before it is the same.
 * Each upgrade request becomes a `ConsoleConnection` (`connection.ts`) before anything else: it
 * owns every socket of the connection from the dial on and ends them all, whichever step the
 * client leaves at; the steps here run under its guard and never see an orphaned socket.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { GatewayError, isGatewayError } from '../errors.ts';
import type { ConsoleEndpoint, Inventory, Server } from '../inventory/types.ts';
import { negotiateBackend, serveClient, type BackendHandshake } from '../rfb/security-proxy.ts';
import { isAuthSchemeName, type BackendAuthSettings, type RfbProxyOptions } from '../rfb/types.ts';
import { cutTextFilters, type ClipboardPolicy } from '../rfb/clipboard-policy.ts';
import { hashToken, tokenLogId, type ConsoleToken, type TokenStore } from '../store/types.ts';
import { connectBackend, type BackendOptions } from './backend.ts';
import type { KeptSerialConsoles } from './serial-hub.ts';
import { NOVNC_VIEW_ONLY, SERIAL_VIEW_ONLY } from './view-only.ts';
import type { SharedAttachment, SharedConsoles } from './shared-types.ts';
import { clientAddressOf } from './client-address.ts';
import { clientSeam } from './client-seam.ts';
import { overBudget, type LookupBudget } from './lookup-budget.ts';
import { ConsoleConnection, type ConnectionHooks } from './connection.ts';
import { upgradeProblem } from '../http/request-checks.ts';
import { checkOriginHost, checkOriginScheme } from './origin.ts';
import type { ConsoleSession, SessionInfo, StreamFilter } from './relay.ts';
import { tokenFromRequest } from '../http/token-source.ts';
import { consumeToken } from './token-use.ts';
import type { ConnectionFacts, ConsoleEvents, LookupResult } from './events.ts';
import type { ConsoleLimits } from './console-limits.ts';
import { anyMessageIsInput, rfbIsInput } from './idle.ts';
import { CLOSE_MAX_DURATION } from './relay.ts';
import { recorderTap, type Recorders, type SessionRecorder } from './recorder.ts';
import { recordedClientMessages } from '../rfb/recording/encodings.ts';
import type { ConsoleTokenExtras, TokenExtrasStore } from '../store/token-extras.ts';
import type { ExtrasGate } from './extras-gate.ts';

export interface UpgradeOptions extends BackendOptions {
  /** The console kind this listener serves (`novnc`, `serial`, `spice`): the events' `kind`. */
  readonly kind?: string;
  /** Console types this listener serves (`novnc` for the noVNC proxy). */
  readonly consoleTypes: readonly string[];
  /** The server's console endpoint of this listener's kind, which a token must name (CVE-2013-0335). */
  readonly endpoint: (server: Server) => ConsoleEndpoint | null;
  /** Paths that take a WebSocket upgrade; `any`: every path (websockify's rule). */
  readonly paths: readonly string[] | 'any';
  readonly allowedOrigins: readonly string[];
  readonly maxMessageSize: number;
  /**
   * The longest a connection may take from its upgrade request to its relay, whatever it waits
   * for: the backstop over the deadlines of each step (store, dial, RFB handshake).
   */
  readonly setupTimeoutMs: number;
  /** The RFB security proxy's defaults; absent: a plain relay (consoles that are not RFB). */
  readonly rfb?: RfbProxyOptions;
  /** `[porthole] single_use_tokens`: the first successful connection consumes the token. */
  readonly singleUse?: { readonly graceSeconds: number };
  /** `[porthole] trusted_proxies`: balancers whose X-Forwarded-For names the real client. */
  readonly trustedProxies?: readonly string[];
  /** `[consoleauth] enforce_session_timeout`: a session closes when its token expires (`CLOSE_EXPIRED`). */
  readonly enforceSessionTimeout?: boolean;
  /** `[porthole] max_console_duration`, ms: a session closes after that long (`CLOSE_MAX_DURATION`); absent or 0: never. */
  readonly maxDurationMs?: number;
  /** `[porthole] console_idle_timeout`, ms: a session closes after that long without input (`CLOSE_IDLE`); absent or 0: never. */
  readonly idleTimeoutMs?: number;
  /** `[porthole] clipboard`: which ways RFB cut text may go (`src/rfb/clipboard-policy.ts`); absent: both. */
  readonly clipboard?: ClipboardPolicy;
  /** `[porthole] shared_consoles`: a server of the inventory without its own setting shares its consoles. */
  readonly sharedConsoles?: boolean;
}

export interface UpgradeDeps {
  readonly tokens: TokenStore;
  readonly inventory: Inventory;
  readonly log: Logger;
  readonly sessions: Set<ConsoleSession>;
  /** Releases of single-use tokens in flight, for the gateway to await when it closes. */
  readonly releases?: Set<Promise<unknown>>;
  /** Failed token lookups per client address: over it, 429 before any lookup. */
  readonly lookups?: LookupBudget;
  /** Told of every session that starts and ends (the live-sessions tracker, a drain). */
  readonly observer?: { started(session: ConsoleSession): void; ended(session: ConsoleSession): void };
  /** `[porthole] serial_keep_attached` (serial listener only): attach to the kept console instead of dialling. */
  readonly kept?: KeptSerialConsoles;
  /** Shared consoles (noVNC listener): a shared server's viewers attach to its one backend connection instead of dialling. */
  readonly shared?: SharedConsoles;
  /** Told of each step of every connection (metrics, the audit trail). */
  readonly events?: ConsoleEvents;
  /** The concurrent-console limits (`console-limits.ts`); absent: none set. */
  readonly limits?: Pick<ConsoleLimits, 'admit'>;
  /** Session recordings (`recorder.ts`), on RFB listeners; absent: nothing is recorded. */
  readonly recorders?: Recorders;
  /** The tokens' extras (a token's `record` flag and viewer), read when `recorders` is given. */
  readonly tokenExtras?: TokenExtrasStore | null;
  /** Whether a plain console's token extras are worth reading (`extras-gate.ts`); absent: always, where there is a store. */
  readonly extrasGate?: Pick<ExtrasGate, 'wanted'>;
}

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface UpgradeListener {
  readonly handle: UpgradeHandler;
  /** Every connection from its upgrade request to its end, sessions included. */
  readonly connections: ReadonlySet<ConsoleConnection>;
  /** Stops accepting upgrades and closes every connection with `code` and `reason` (shutdown). */
  close(code: number, reason: string): void;
}

export function createUpgradeHandler(opts: UpgradeOptions, deps: UpgradeDeps): UpgradeListener {
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
  const kind = opts.kind ?? 'novnc';
  const connections = new Set<ConsoleConnection>();
  const hooks: ConnectionHooks = {
    log: deps.log,
    closed: (c) => connections.delete(c),
    sessionStarted(s, c) {
      deps.sessions.add(s);
      deps.observer?.started(s);
      deps.events?.sessionStarted(facts(c, kind), s);
      // the line's object only where the level is on (the default is info): every open passes here
      if (deps.log.isLevelEnabled?.('debug') === false) return;
      const i = s.info;
      deps.log.debug({ event: 'session_start', session: i.id, instance: i.instanceUuid, client: i.client, tokenHash: i.tokenLogId }, 'console session started');
    },
    sessionEnded(s, end, c) {
      deps.sessions.delete(s);
      deps.observer?.ended(s);
      deps.events?.sessionEnded(facts(c, kind), s, end);
      if (deps.log.isLevelEnabled?.('info') === false) return;
      const i = s.info;
      deps.log.info({ event: 'session', session: i.id, server: i.serverName, instance: i.instanceUuid, client: i.client, backend: i.backend, backendAuth: i.backendAuth ?? undefined, tokenHash: i.tokenLogId, reason: end.reason, bytesFromClient: end.bytesFromClient, bytesFromBackend: end.bytesFromBackend, durationMs: end.durationMs }, 'console session ended');
    },
    refused(c, e, afterUpgrade) {
      deps.events?.refused(facts(c, kind), e, afterUpgrade);
    },
  };
  let closing = false;
  const handle: UpgradeHandler = (req, socket, head) => {
    const conn = new ConsoleConnection(req, socket, clientAddressOf(req, trusted), opts.setupTimeoutMs, hooks);
    if (closing) {
      conn.close(1001, 'proxy shutting down');
      return;
    }
    connections.add(conn);
    establish(conn, head, wss, opts, deps).catch((err: unknown) => conn.fail(err));
  };
  return {
    handle,
    connections,
    close(code, reason) {
      closing = true;
      for (const c of [...connections]) c.close(code, reason);
      wss.close();
    },
  };
}

/** What the decision found: the token's session facts and the backend, dialled and owned by the connection. */
interface Accepted {
  /** The backend socket, or a viewer's stream on a kept serial console. */
  readonly backend: Duplex;
  /** The security proxy's half of the RFB handshake with the backend, under way. */
  readonly negotiation?: Promise<BackendHandshake>;
  readonly info: Omit<SessionInfo, 'client' | 'backendAuth'>;
  /** This session is recorded (`[DEFAULT] record`, the server's or the token's flag): what its listing says of it. */
  readonly recording?: { readonly projectId: string | null; readonly viewer: string | null };
}

/** Decision, dial, 101, RFB handshake, relay: each step under the connection's guard. */
async function establish(conn: ConsoleConnection, head: Buffer, wss: WebSocketServer, opts: UpgradeOptions, deps: UpgradeDeps): Promise<void> {
  const a = await decide(conn, opts, deps);
  if (conn.closed) return;
  const socket = conn.socket;
  const clipboard = opts.rfb && opts.clipboard && opts.clipboard !== 'both' ? opts.clipboard : undefined;
  let handshake: Promise<BackendHandshake | { socket: Duplex; auth: null }> | undefined;
  // a recording takes the browser's first messages too (its pixel format and encodings): held, then recorded and written
  const hold = clipboard !== undefined || (a.recording !== undefined && deps.recorders !== undefined);
  // the 101 and Porthole's ProtocolVersion, written in the same turn, leave in one segment
  socket.cork();
  // without verifyClient, ws calls back at once or refuses (destroying the socket) at once
  wss.handleUpgrade(conn.req, socket, head, (ws) => {
    conn.adoptWebSocket(ws);
    handshake = a.negotiation ? rfbHandshake(ws, a.negotiation, opts.rfb!, hold) : Promise.resolve({ socket: a.backend, auth: null });
  });
  socket.uncork();
  if (!handshake) throw new GatewayError('BAD_REQUEST', 'the WebSocket upgrade was refused', { status: 400 });
  const backend = await conn.guard(handshake);
  // the clipboard policy's framers, on RFB consoles whose policy is not `both` (the plain relay otherwise)
  const clipFilters = clipboard !== undefined && 'serverInit' in backend && backend.serverInit ? cutTextFilters(clipboard, backend.serverInit) : undefined;
  const recorder = a.recording && deps.recorders && 'serverInit' in backend && backend.serverInit ? startRecording(deps.recorders, a, conn, backend.serverInit) : undefined;
  // a recorded session asks only for encodings its playback decodes (`rfb/recording/encodings.ts`)
  const filters = recorder ? { ...clipFilters, toBackend: playableToBackend(clipFilters?.toBackend) } : clipFilters;
  if ('early' in backend && backend.early && backend.early.length > 0) {
    const early = filters ? filters.toBackend.filter(backend.early) : backend.early;
    if (early.length > 0) {
      recorder?.fromClient(early);
      backend.socket.write(early);
    }
  }
  const relayFilters = recorder ? { ...filters, tap: recorderTap(recorder) } : filters;
  const session = conn.startRelay({ ...a.info, backendAuth: backend.auth, ...(recorder ? { recording: recorder.id } : {}) }, backend.socket, relayFilters);
  // a session that never began has no end to close its recording
  if (!session) void recorder?.close();
  if (session && opts.enforceSessionTimeout) {
    const expiresMs = a.info.tokenExpires * 1000;
    if (deps.log.isLevelEnabled?.('debug') !== false) deps.log.debug({ event: 'session_timeout', session: a.info.id, tokenHash: a.info.tokenLogId, seconds: Math.max(0, Math.round((expiresMs - Date.now()) / 1000)) }, 'console session closes when its token expires');
    session.closeAt(expiresMs);
  }
  // the earlier of the two deadlines closes the session, with its own reason
  if (session && opts.maxDurationMs) session.closeAt(Date.now() + opts.maxDurationMs, CLOSE_MAX_DURATION);
  // RFB carries update requests nobody typed; a plain relay's every message is input
  if (session && opts.idleTimeoutMs) session.watchIdle(opts.idleTimeoutMs, opts.rfb ? rfbIsInput : anyMessageIsInput);
}

async function decide(conn: ConsoleConnection, opts: UpgradeOptions, deps: UpgradeDeps): Promise<Accepted> {
  const req = conn.req;
  const rawUrl = req.url ?? '/';
  // CVE-2021-3654: a `//host` path could be turned into an open redirect
  if (rawUrl.startsWith('//')) throw new GatewayError('DOUBLE_SLASH_PATH', 'URI must not start with //', { status: 400 });
  const pathname = rawUrl.split('?', 1)[0]!;
  // the path is not logged: a client may have put its token in it (`/websockify/<token>`)
  if (opts.paths !== 'any' && !opts.paths.includes(pathname)) throw new GatewayError('NOT_FOUND', `no console WebSocket at this path (${pathname.length} characters; console paths: ${opts.paths.join(' ')})`, { status: 404 });
  const problem = upgradeProblem(req);
  if (problem) throw problem;
  // websockify under every Nova console daemon (CompatibleWebSocket) picks `binary` or nothing,
  // and answers 400 to a client that offers subprotocols without `binary`: so does Porthole
  const offered = req.headers['sec-websocket-protocol'];
  if (offered !== undefined && !offered.split(',').some((p) => p.trim() === 'binary')) {
    throw new GatewayError('BAD_REQUEST', 'the client offers WebSocket subprotocols but not binary, the one a console proxy speaks', { status: 400 });
  }

  const origin = checkOriginHost(req.headers, opts.allowedOrigins);
  const token = tokenFromRequest(rawUrl, req.headers.cookie);
  if (token === undefined) throw new GatewayError('TOKEN_MISSING', 'no console token in the request', { status: 400 });
  conn.context.tokenHash = hashToken(token);
  conn.context.tokenLogId = tokenLogId(conn.context.tokenHash, true);
  // a bulk guesser is answered without a lookup once over its budget (the budget logs that once)
  const wait = deps.lookups?.retryAfter(conn.client.host) ?? 0;
  if (wait > 0) throw overBudget(conn.client.host, wait);
  const found = await lookup(conn, token, opts, deps);
  if (found.status !== 'valid') void deps.lookups?.failed(conn.client.host);
  if (found.status === 'unknown') throw new GatewayError('TOKEN_UNKNOWN', 'unknown or revoked console token', { status: 403 });
  if (found.status === 'expired') throw new GatewayError('TOKEN_EXPIRED', 'expired console token', { status: 403 });
  const t = found.token;
  checkOriginScheme(origin, t.accessUrlBase);
  if (!opts.consoleTypes.includes(t.consoleType)) {
    throw new GatewayError('TOKEN_WRONG_CONSOLE_TYPE', `token is for a ${t.consoleType} console, this proxy serves ${opts.consoleTypes.join(', ')}`, { status: 403 });
  }
  conn.context.instance = t.instanceUuid;
  const server = await conn.guard(deps.inventory.get(t.instanceUuid));
  if (server) {
    const ep = opts.endpoint(server);
    if (!ep || ep.host !== t.host || ep.port !== t.port) {
      throw new GatewayError('CONSOLE_PORT_MISMATCH', `token endpoint ${t.host}:${t.port} is not the current console of server ${server.id} (${ep ? `${ep.host}:${ep.port}` : 'none'})`, { status: 403 });
    }
  }
  // the concurrent-console limits, from memory; before the token's use and the dial, so a refused
  // console costs neither; the connection gives its place back however it ends
  if (deps.limits) conn.adoptSlot(deps.limits.admit({ instance: t.instanceUuid, project: server?.projectId ?? null, client: conn.client.host }));
  // consumed before the backend is dialled, so a used token costs no backend connection; the
  // connection gives it back if it fails before its session began
  if (opts.singleUse) {
    const use = await conn.guard(consumeToken(t, conn.client.host, opts.singleUse.graceSeconds, deps).then((u) => (conn.adoptTokenUse(u), u)));
    deps.events?.consumed?.(facts(conn, opts.kind ?? 'novnc'), use.use);
  }
  const address = `${t.host}:${t.port}`;
  conn.context.backend = address;
  // fail closed: a plain relay has no way to keep a viewer from typing
  if (t.consoleType === SERIAL_VIEW_ONLY && !(server && deps.kept)) {
    throw new GatewayError('TOKEN_WRONG_CONSOLE_TYPE', `a ${SERIAL_VIEW_ONLY} token needs [porthole] serial_keep_attached on this proxy and its server in the inventory`, { status: 403 });
  }
  // fail closed as serial-view-only does: only a shared console keeps a viewer from typing
  // a watcher joins only a console whose viewers all see who is there (the shadow API says the same)
  const shared = server !== undefined && deps.shared !== undefined && (server.sharedConsoles ?? opts.sharedConsoles ?? false);
  if (t.consoleType === NOVNC_VIEW_ONLY && !shared) {
    throw new GatewayError('TOKEN_WRONG_CONSOLE_TYPE', `a ${NOVNC_VIEW_ONLY} token needs shared consoles on this proxy for its server (in the inventory)`, { status: 403 });
  }
  if (shared && server && deps.shared) {
    return attachShared(conn, t, server, address, opts, deps, deps.shared);
  }
  if (server && deps.kept) {
    // the hub owns the one backend connection; the connection owns this viewer's attachment
    const viewer = await conn.guard(deps.kept.attach(server, { host: t.host, port: t.port }, { viewOnly: t.consoleType === SERIAL_VIEW_ONLY }, conn.signal).then((s) => (conn.adoptBackend(s), s)));
    deps.events?.backendConnected(facts(conn, opts.kind ?? 'novnc'));
    return { backend: viewer, info: sessionInfo(t, server, address) };
  }
  // the token's extras (its record flag, its viewer's name) are read while the backend is dialled,
  // and only where recording may apply (the gate): a console that needs none costs no read more
  const extrasStore = opts.rfb && deps.recorders && deps.tokenExtras && (!deps.extrasGate || (await conn.guard(deps.extrasGate.wanted(server)))) ? deps.tokenExtras : undefined;
  const extrasRead = extrasStore?.get(t.tokenHash).catch(() => null);
  const backend = await conn.guard(connectBackend({ host: t.host, port: t.port, internalAccessPath: t.internalAccessPath }, opts, conn.signal).then((s) => (conn.adoptBackend(s), s)));
  deps.events?.backendConnected(facts(conn, opts.kind ?? 'novnc'));
  let negotiation: Promise<BackendHandshake> | undefined;
  let recording: Accepted['recording'];
  const extras = extrasRead ? await conn.guard(extrasRead) : null;
  const viewer = extras?.label ?? extras?.mintedBy ?? null;
  if (opts.rfb && deps.recorders) recording = recordingOf(server, deps.recorders, extras);
  if (opts.rfb) {
    // the browser's version exchange overlaps this: it starts once the 101 is out
    negotiation = negotiateBackend(backend, backendAuthSettings(opts.rfb, server, t.host), { timeoutMs: opts.rfb.timeoutMs, address });
    // a TLS socket the negotiation puts over the backend is the connection's too; a failure is
    // handled where the handshake is awaited, or not at all if the client is gone by then
    negotiation.then((rfb) => conn.adoptBackend(rfb.socket), ignore);
  }
  return { backend, negotiation, info: { ...sessionInfo(t, server, address), ...(viewer !== null ? { viewer } : {}) }, recording };
}

/**
 * Whether this session is recorded, and its viewer: the token's extras are read only where
 * recordings are on; a store that fails to answer leaves the token's flag unset (the server's
 * and `[DEFAULT] record` still decide), never the console refused for it.
 */
function recordingOf(server: Server | undefined, recorders: Recorders, extras: ConsoleTokenExtras | null): Accepted['recording'] {
  if (!recorders.wants(server, extras?.record)) return undefined;
  return { projectId: server?.projectId ?? null, viewer: extras?.label ?? extras?.mintedBy ?? null };
}

/** The client's messages of a recorded session: through the clipboard policy's framer when there is one, then SetEncodings kept playable. */
function playableToBackend(inner: StreamFilter | undefined): StreamFilter {
  const playable = recordedClientMessages();
  return inner ? { filter: (chunk) => playable.filter(inner.filter(chunk)) } : playable;
}

function startRecording(recorders: Recorders, a: Accepted, conn: ConsoleConnection, serverInit: Buffer): SessionRecorder {
  const i = a.info;
  return recorders.start({
    sessionId: i.id,
    serverId: i.instanceUuid,
    serverName: i.serverName,
    projectId: a.recording!.projectId,
    viewer: a.recording!.viewer,
    client: conn.client.display,
    serverInit,
  });
}

/**
 * A viewer of a shared console (`shared-hub.ts`): the hub holds the one backend connection and
 * has authenticated it; this viewer's stream speaks the whole RFB server role to the browser, so
 * no per-connection security proxy runs. Its name and whether it takes control come from the
 * token's extras (a store that fails to answer: a nameless viewer that does not take control).
 */
async function attachShared(conn: ConsoleConnection, t: ConsoleToken, server: Server, address: string, opts: UpgradeOptions, deps: UpgradeDeps, shared: SharedConsoles): Promise<Accepted> {
  const extras = deps.tokenExtras ? await conn.guard(deps.tokenExtras.get(t.tokenHash).catch(() => null)) : null;
  const info = sessionInfo(t, server, address);
  const name = extras?.label ?? extras?.mintedBy ?? null;
  const viewOnly = t.consoleType === NOVNC_VIEW_ONLY;
  const attach = shared.attach(server, { host: t.host, port: t.port }, { viewOnly, control: !viewOnly && (extras?.control ?? false), name, viewerKey: viewerKeyOf(conn.req.url ?? '/'), sessionId: info.id, tokenHash: t.tokenHash }, conn.signal);
  const viewer: SharedAttachment = await conn.guard(attach.then((s) => (conn.adoptBackend(s), s)));
  deps.events?.backendConnected(facts(conn, opts.kind ?? 'novnc'));
  return { backend: viewer, info: { ...info, viewer: name, sharedConsole: viewer.consoleId, role: viewer.initialRole, recording: viewer.recording } };
}

/** The page's viewer key (`&viewer=<uuid>`, `viewers.js`): a bounded token of letters, digits and dashes, else none. */
function viewerKeyOf(rawUrl: string): string | null {
  const q = rawUrl.indexOf('?');
  if (q < 0) return null;
  const v = new URLSearchParams(rawUrl.slice(q + 1)).get('viewer');
  return v !== null && /^[A-Za-z0-9-]{1,64}$/.test(v) ? v : null;
}

/** The token lookup, timed and told to the events' watchers. */
async function lookup(conn: ConsoleConnection, token: string, opts: UpgradeOptions, deps: UpgradeDeps): ReturnType<TokenStore['lookup']> {
  const events = deps.events;
  if (!events) return conn.guard(deps.tokens.lookup(token));
  const started = performance.now();
  let result: LookupResult = 'error';
  try {
    const found = await conn.guard(deps.tokens.lookup(token));
    result = found.status;
    return found;
  } finally {
    // a client that went during the lookup is no lookup result of the store
    if (!conn.closed || result !== 'error') events.lookup(facts(conn, opts.kind ?? 'novnc'), result, performance.now() - started);
  }
}

/** What every event says of `conn`. */
function facts(conn: ConsoleConnection, kind: string): ConnectionFacts {
  return { kind, client: conn.client, ms: performance.now() - conn.openedAt, tokenLogId: conn.context.tokenLogId, tokenHash: conn.context.tokenHash, instance: conn.context.instance };
}

function sessionInfo(t: ConsoleToken, server: Server | undefined, address: string): Accepted['info'] {
  return {
    id: randomUUID(),
    consoleType: t.consoleType,
    instanceUuid: t.instanceUuid,
    serverName: server?.name ?? null,
    backend: address,
    tokenLogId: tokenLogId(t.tokenHash, true),
    tokenHash: t.tokenHash,
    tokenExpires: t.expires,
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

/**
 * The browser's half of the RFB handshake (version, None, OK, ClientInit, ServerInit) while the
 * backend's runs. A backend that could not be authenticated is not an HTTP refusal: RFB is where
 * noVNC shows a reason, so the browser gets an RFB failure saying only that the console could not
 * be authenticated; the detail (hosts, certificates, the server's words) is information leakage
 * and goes to the log. The failure's close code and words are the RFB code's to choose.
 */
async function rfbHandshake(ws: WebSocket, negotiation: Promise<BackendHandshake>, o: RfbProxyOptions, holdEarly: boolean): Promise<BackendHandshake> {
  const { seam, release } = clientSeam(ws, o.timeoutMs);
  try {
    return await serveClient(seam, negotiation, { timeoutMs: o.timeoutMs, holdEarly });
  } finally {
    release();
  }
}

function ignore(): void {}
