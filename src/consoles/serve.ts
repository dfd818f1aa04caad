/**
 * @module consoles/serve
 * Runs one console kind's listener: its upgrade handler (with the RFB security proxy when the kind
 * wants it), its pages, the listener with TLS detection. The gateway starts one per enabled kind
 * and hands each the parts it shares (stores, live sessions, the failed-lookup budget).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.ts';
import type { Config } from '../config/options.ts';
import type { Inventory } from '../inventory/types.ts';
import { clientHost } from '../proxy/client-address.ts';
import { createListener, listenFailure, type ListenerTls, type ListenOptionNames } from '../proxy/listener.ts';
import type { LookupBudget } from '../proxy/lookup-budget.ts';
import type { ConsoleSession } from '../proxy/relay.ts';
import type { KeptSerialConsoles } from '../proxy/serial-hub.ts';
import { createUpgradeHandler } from '../proxy/upgrade.ts';
import { createSharedControl } from '../proxy/shared-control.ts';
import type { SharedConsoles } from '../proxy/shared-types.ts';
import { fanOut, type ConsoleEvents } from '../proxy/events.ts';
import { LastRefusals } from '../proxy/last-refusal.ts';
import type { ConsoleLimits } from '../proxy/console-limits.ts';
import type { Recorders } from '../proxy/recorder.ts';
import { createPlaybackEndpoint, type PlaybackEndpoint } from '../proxy/playback.ts';
import type { RecordingStore } from '../store/recordings.ts';
import { playbackPage } from '../web/playback-page.ts';
import type { TokenExtrasStore } from '../store/token-extras.ts';
import type { ExtrasGate } from '../proxy/extras-gate.ts';
import type { RfbProxyOptions } from '../rfb/types.ts';
import type { TokenStore } from '../store/types.ts';
import { createPages } from '../web/pages.ts';
import { describeNoVncPages, noVncPageFiles } from '../web/novnc-app.ts';
import { GatewayError } from '../errors.ts';
import type { ConsoleKind } from './types.ts';

export interface ProxyInfo {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** Base of console URLs for this proxy. */
  readonly baseUrl: string;
}

/** Told of every session that starts and ends (the live-sessions tracker, a drain). */
export interface SessionObserver {
  started(session: ConsoleSession): void;
  ended(session: ConsoleSession): void;
}

export interface ConsoleProxyParts {
  readonly loaded: LoadedConfig;
  readonly rfb: RfbProxyOptions;
  readonly tokens: TokenStore;
  readonly inventory: Inventory;
  readonly log: Logger;
  readonly sessions: Set<ConsoleSession>;
  readonly releases: Set<Promise<unknown>>;
  readonly lookups: LookupBudget;
  /** Read at each session's start and end, so observers added after the start are told too. */
  readonly observers: readonly SessionObserver[];
  /** `[porthole] serial_keep_attached`, for the serial listener: viewers attach to the kept consoles. */
  readonly kept?: KeptSerialConsoles;
  /** Told of each step of every connection (metrics, the audit trail). */
  readonly events?: ConsoleEvents;
  /**
   * The operations endpoints (`/healthz`, `/readyz`, `/metrics`: `src/ops/`), asked first for
   * every plain HTTP request; false: not one of its paths, the pages answer.
   */
  readonly ops?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** The concurrent-console limits, one for every listener of the process; absent: none set. */
  readonly limits?: ConsoleLimits;
  /**
   * The shared consoles of this process (`proxy/shared-hub.ts`), for the noVNC listener: its
   * viewers attach to them, and their pages' control channel (`/porthole/shared`) runs on it.
   */
  readonly sharedConsoles?: SharedConsoles;
  /** Session recordings, for the kinds that run the RFB security proxy; absent: none. */
  readonly recorders?: Recorders;
  /** The tokens' extras (a token's `record` flag, its viewer). */
  readonly tokenExtras?: TokenExtrasStore | null;
  /** Whether a plain console's token extras are worth reading (`proxy/extras-gate.ts`). */
  readonly extrasGate?: ExtrasGate;
  /** The recordings' listing: the RFB kinds' listener serves their playback page and WebSocket. */
  readonly recordings?: { readonly store: RecordingStore; readonly hostname: string } | null;
}

export interface RunningConsoleProxy {
  readonly kind: ConsoleKind;
  readonly info: ProxyInfo;
  /** Its TLS side when `[DEFAULT] cert` exists, for the certificate reload. */
  readonly tls?: ListenerTls;
  /** Stops taking connections (a drain's first step); may be called again. */
  stopAccepting(): void;
  /** Whether the listener takes connections (readiness). */
  listening(): boolean;
  /** Stops taking connections, closes every connection with 1001, waits for the listener and the token releases. */
  close(code: number, reason: string): Promise<void>;
}

export async function startConsoleProxy(kind: ConsoleKind, parts: ConsoleProxyParts): Promise<RunningConsoleProxy> {
  const { config } = parts.loaded;
  const p = config.porthole;
  // why a valid token's last console failed before its 101, for the page to say at once (the browser never sees the status)
  const refusals = new LastRefusals();
  const events = fanOut(parts.events ? [parts.events, refusals] : [refusals], (err) => parts.log.error({ event: 'bug', err: (err as Error)?.message }, `console event watcher failed: ${(err as Error)?.stack ?? err}`));
  if (p.new_link_url !== null && !/^https?:$/.test(new URL(p.new_link_url).protocol)) throw new GatewayError('CONFIG_INVALID', `[porthole] new_link_url: expected an http or https URL, got ${p.new_link_url}`);
  const upgrades = createUpgradeHandler(
    {
      kind: kind.name,
      consoleTypes: kind.consoleTypes,
      paths: kind.paths,
      endpoint: kind.endpoint,
      allowedOrigins: config.console.allowed_origins,
      trustedProxies: p.trusted_proxies,
      maxMessageSize: p.max_message_size,
      connectTimeoutMs: p.backend_connect_timeout * 1000,
      handshakeTimeoutMs: p.handshake_timeout * 1000,
      setupTimeoutMs: setupTimeoutMs(config),
      rfb: kind.rfb ? parts.rfb : undefined,
      singleUse: p.single_use_tokens ? { graceSeconds: p.reconnect_grace_seconds } : undefined,
      enforceSessionTimeout: config.consoleauth.enforce_session_timeout,
      maxDurationMs: p.max_console_duration * 1000,
      idleTimeoutMs: p.console_idle_timeout * 1000,
      clipboard: p.clipboard,
      sharedConsoles: p.shared_consoles,
    },
    {
      tokens: parts.tokens,
      inventory: parts.inventory,
      log: parts.log,
      sessions: parts.sessions,
      releases: parts.releases,
      lookups: parts.lookups,
      kept: parts.kept,
      shared: kind.rfb ? parts.sharedConsoles : undefined,
      events,
      limits: parts.limits,
      ...(kind.rfb && parts.recorders ? { recorders: parts.recorders, tokenExtras: parts.tokenExtras, extrasGate: parts.extrasGate } : {}),
      observer: {
        started: (s) => parts.observers.forEach((o) => o.started(s)),
        ended: (s) => parts.observers.forEach((o) => o.ended(s)),
      },
    },
  );
  // a shared console's control channel (the page's Viewers panel), on the listener its viewers use
  const control = kind.rfb && parts.sharedConsoles
    ? createSharedControl({ consoleTypes: kind.consoleTypes, allowedOrigins: config.console.allowed_origins, trustedProxies: p.trusted_proxies, setupTimeoutMs: setupTimeoutMs(config) }, { tokens: parts.tokens, consoles: parts.sharedConsoles, log: parts.log, lookups: parts.lookups })
    : undefined;
  const trusted = new Set(p.trusted_proxies);
  const pages = createPages({ page: kind.page, tokens: parts.tokens, inventory: parts.inventory, webDir: config.DEFAULT.web, frameAncestors: p.frame_ancestors, budget: { lookups: parts.lookups, client: (req) => clientHost(req, trusted) }, limits: parts.limits && { check: parts.limits, client: (req) => clientHost(req, trusted) }, refusals: { memory: refusals, client: (req) => clientHost(req, trusted) }, newLinkUrl: p.new_link_url, sessionEnd: { withToken: config.consoleauth.enforce_session_timeout, maxDurationSeconds: p.max_console_duration }, consolePage: p.console_page, clipboard: p.clipboard, ...(kind.rfb ? { sharedConsoles: p.shared_consoles } : {}) });
  // recordings' playback, on the listener of the RFB kind (noVNC): its page and its WebSocket
  let playback: PlaybackEndpoint | undefined;
  let request = parts.ops ? opsFirst(parts.ops, pages) : pages;
  if (kind.rfb && parts.recordings) {
    playback = createPlaybackEndpoint({ allowedOrigins: config.console.allowed_origins, hostname: parts.recordings.hostname }, { tokens: parts.tokens, recordings: parts.recordings.store, log: parts.log });
    const page = playbackPage({ frameAncestors: p.frame_ancestors });
    const rest = request;
    request = (req, res) => void (page(req, res) || rest(req, res));
  }
  const { server, tls: listenerTls } = createListener(
    {
      sslOnly: config.DEFAULT.ssl_only,
      cert: config.DEFAULT.cert,
      key: config.DEFAULT.key,
      sslCiphers: config.console.ssl_ciphers,
      sslMinimumVersion: config.console.ssl_minimum_version,
      handshakeTimeoutMs: p.handshake_timeout * 1000,
      maxHeaderSize: p.max_header_size,
    },
    { request, upgrade: playbackFirst(playback, control ? (req, socket, head) => control.handle(req, socket, head) || upgrades.handle(req, socket, head) : upgrades.handle) },
  );
  const { host, options } = kind.listener(config);
  const port = await listen(server, host, kind.listener(config).port, options);
  const serverClosed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  const stopAccepting = () => {
    if (server.listening) server.close();
  };
  const tls = listenerTls !== undefined;
  const info: ProxyInfo = { host, port, tls, baseUrl: kind.baseUrl(parts.loaded, port) };
  const security = !tls ? 'HTTP, no TLS' : config.DEFAULT.ssl_only ? 'TLS only' : 'TLS and HTTP, told apart per connection';
  parts.log.info({ event: 'listening', proxy: kind.name, host, port, tls }, `${kind.title} listening on ${host}:${port} (${security})`);
  if (kind.page.webApp) parts.log.info({ event: 'config', proxy: kind.name }, describeNoVncPages(noVncPageFiles(kind.page.paths, config.DEFAULT.web, p.console_page), config.DEFAULT.web));
  return {
    kind,
    info,
    ...(listenerTls ? { tls: listenerTls } : {}),
    stopAccepting,
    listening: () => server.listening,
    async close(code, reason) {
      stopAccepting();
      upgrades.close(code, reason);
      await playback?.close();
      control?.close(code, reason);
      await serverClosed;
      await Promise.allSettled([...parts.releases]);
    },
  };
}

/** The playback WebSocket takes its path, `rest` every other upgrade. */
function playbackFirst(playback: PlaybackEndpoint | undefined, rest: (req: IncomingMessage, socket: Duplex, head: Buffer) => unknown): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  if (!playback) return (req, socket, head) => void rest(req, socket, head);
  return (req, socket, head) => void (playback.upgrade(req, socket, head) || rest(req, socket, head));
}

/** `ops` takes its paths, the pages every other request. */
function opsFirst(ops: NonNullable<ConsoleProxyParts['ops']>, pages: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (!ops(req, res)) pages(req, res);
  };
}

/**
 * The longest a console connection may take from its upgrade request to its relay: the sum of
 * the deadlines of its steps (the store's three queries, the dial and CONNECT, the three RFB
 * waits), so that it only ever cuts a step that has no deadline of its own.
 */
function setupTimeoutMs(config: Config): number {
  const p = config.porthole;
  return Math.ceil((3 * p.store_query_timeout + p.backend_connect_timeout + p.handshake_timeout + 3 * p.rfb_handshake_timeout) * 1000);
}

/** Listens; a port in use, a port not allowed or a host that is not this one fail naming `options`. */
export function listen(server: NetServer, host: string, port: number, options: ListenOptionNames): Promise<number> {
  return new Promise((resolve, reject) => {
    const failed = (err: Error) => reject(listenFailure(err, host, port, options));
    server.once('error', failed);
    server.listen({ host, port }, () => {
      server.off('error', failed);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
