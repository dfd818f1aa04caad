/**
 * @module gateway
 * Builds the parts of one Porthole process from a loaded config and hands each what it needs:
 * the stores, the noVNC console proxy, the demo VNC server, the sweep of expired tokens. No
 * globals: tests build the same gateway with their own config and logger. The worker processes
 * of `[porthole] workers` build it without the parts done once (`workers.ts`).
 */
import type { AddressInfo, Server as NetServer } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { createApi } from './api/app.ts';
import type { LoadedConfig } from './config/load.ts';
import type { Config } from './config/options.ts';
import { startDemoServer, type DemoServer } from './demo/server.ts';
import { GatewayError } from './errors.ts';
import { createLogger } from './log.ts';
import { novncBaseUrl } from './consoles/console-url.ts';
import { clientHost } from './proxy/client-address.ts';
import { createListener } from './proxy/listener.ts';
import { lookupBudgetOptions, openLookupBudget } from './proxy/lookup-budget.ts';
import type { ConsoleSession } from './proxy/relay.ts';
import { createUpgradeHandler } from './proxy/upgrade.ts';
import { rfbConfigWarnings, rfbProxyOptions } from './rfb/config.ts';
import { openSessions, sessionsOptions, type Sessions } from './sessions/service.ts';
import { CLOSE_SHUTDOWN, type SessionTracker } from './sessions/tracker.ts';
import { openStores, storeSettings, type OpenedStores as Stores } from './database/index.ts';
import { createPages } from './web/pages.ts';

/** The demo server's fixed inventory id, so restarts replace it instead of adding another. */
export const DEMO_SERVER_ID = '00000000-0000-4000-8000-000000000de0';

export interface GatewayParts {
  readonly log?: Logger;
  readonly stores?: Stores;
  /** Which listeners to run: the console proxies (`novncproxy`), the API (`api`), or both (`serve`). */
  readonly run?: { readonly proxies: boolean; readonly api: boolean };
  /**
   * Whether this process also does what an installation does once per start: the migration
   * (`[porthole] auto_migrate`), the demo VNC server, the sweep of expired tokens. False in the
   * worker processes of `[porthole] workers`, whose primary does them (`workers.ts`).
   */
  readonly once?: boolean;
}

export interface ProxyInfo {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** Base of console URLs for this proxy. */
  readonly baseUrl: string;
}

export interface Gateway {
  readonly log: Logger;
  readonly stores: Stores;
  readonly novnc: ProxyInfo | undefined;
  readonly demo: DemoServer | undefined;
  readonly api: { readonly host: string; readonly port: number } | undefined;
  readonly sessions: ReadonlySet<ConsoleSession>;
  /** The live-sessions registry across proxies (list, kill) and this proxy's part in it. */
  readonly registry: Sessions;
  readonly tracker: SessionTracker | undefined;
  /**
   * Stops accepting, closes live sessions with a reason (1001 "proxy shutting down"), closes the
   * stores it opened. With `drainMs`, live sessions may first run on for up to that long (SIGTERM:
   * `[porthole] drain_seconds`); another `close()` without it during the drain ends it at once.
   */
  close(opts?: { readonly drainMs?: number }): Promise<void>;
}

export async function createGateway(loaded: LoadedConfig, parts: GatewayParts = {}): Promise<Gateway> {
  const { config } = loaded;
  // VeNCrypt files and the password file are checked before anything is opened
  const rfb = rfbProxyOptions(config);
  const log = parts.log ?? createLogger(config);
  for (const warning of rfbConfigWarnings(rfb)) log.warn({ event: 'config' }, warning);
  const once = parts.once ?? true;
  const opened = parts.stores ?? (await openStores(config.database.connection, { migrate: config.porthole.auto_migrate && once, ...storeSettings(config, log) }));
  let registry: Sessions;
  try {
    registry = await openSessions(opened, sessionsOptions(config, log));
  } catch (err) {
    if (!parts.stores) await opened.close();
    throw err;
  }
  // every revocation made through this process (API) tells the proxies holding its sessions
  const stores: Stores = { ...opened, tokens: registry.tokens };
  const sessions = new Set<ConsoleSession>();
  // single-use tokens being released when their session ends: awaited at close, so a proxy that
  // stops lets its clients reconnect elsewhere within the grace
  const releases = new Set<Promise<unknown>>();
  const closers: Array<() => Promise<void>> = [];
  /** What stops new connections at once (a drain's first step); each may be called again. */
  const stopAccepting: Array<() => void> = [];
  if (!parts.stores) closers.push(() => stores.close());
  closers.unshift(() => registry.close());
  // failed token lookups per client address, counted in Porthole's own store where there is one
  const lookups = await openLookupBudget(stores, lookupBudgetOptions(config, log));
  closers.unshift(() => lookups.close());
  if (stores.own === null) {
    if (config.porthole.single_use_tokens) {
      await Promise.all(closers.map((c) => c()));
      throw new GatewayError('CONFIG_INVALID', `[porthole] single_use_tokens needs a store of Porthole's own to record uses: ${stores.description} is a Nova database; set [porthole] connection`);
    }
    log.warn({ event: 'config', database: stores.description }, `${stores.description} is a Nova database and [porthole] connection is not set: the inventory is off, so the console-port check (CVE-2013-0335) is skipped`);
  }
  if (config.DEFAULT.record) log.warn({ event: 'config' }, '[DEFAULT] record is set: Porthole does not record console sessions');

  const run = parts.run ?? { proxies: true, api: config.porthole.api_enabled };
  let demo: DemoServer | undefined;
  let novnc: ProxyInfo | undefined;
  let api: { host: string; port: number } | undefined;
  let tracker: SessionTracker | undefined;
  try {
    if (config.porthole.demo && once) {
      const d = await startDemo(config, stores, log);
      demo = d;
      closers.unshift(() => d.close());
    }

    if (run.proxies && config.vnc.enabled) {
      const p = config.porthole;
      const upgrades = createUpgradeHandler(
        {
          consoleTypes: ['novnc'],
          paths: ['/', '/websockify'],
          allowedOrigins: config.console.allowed_origins,
          trustedProxies: p.trusted_proxies,
          maxMessageSize: p.max_message_size,
          connectTimeoutMs: p.backend_connect_timeout * 1000,
          handshakeTimeoutMs: p.handshake_timeout * 1000,
          setupTimeoutMs: setupTimeoutMs(config),
          // always on for noVNC, as nova-novncproxy always runs its RFBSecurityProxy
          rfb,
          singleUse: p.single_use_tokens ? { graceSeconds: p.reconnect_grace_seconds } : undefined,
        },
        { tokens: stores.tokens, inventory: stores.inventory, log, sessions, releases, lookups, registry: { started: (s) => tracker?.started(s), ended: (s) => tracker?.ended(s) } },
      );
      const trusted = new Set(p.trusted_proxies);
      const { server, tls } = createListener(
        {
          sslOnly: config.DEFAULT.ssl_only,
          cert: config.DEFAULT.cert,
          key: config.DEFAULT.key,
          sslCiphers: config.console.ssl_ciphers,
          sslMinimumVersion: config.console.ssl_minimum_version,
          handshakeTimeoutMs: config.porthole.handshake_timeout * 1000,
          maxHeaderSize: config.porthole.max_header_size,
        },
        { request: createPages({ tokens: stores.tokens, inventory: stores.inventory, webDir: config.DEFAULT.web, frameAncestors: p.frame_ancestors, budget: { lookups, client: (req) => clientHost(req, trusted) } }), upgrade: upgrades.handle },
      );
      const port = await listen(server, config.vnc.novncproxy_host, config.vnc.novncproxy_port);
      const serverClosed = new Promise<void>((resolve) => server.once('close', () => resolve()));
      const stopListening = () => {
        if (server.listening) server.close();
      };
      stopAccepting.push(stopListening);
      const t = registry.track(proxyAddress(config.vnc.novncproxy_host, port), log);
      tracker = t;
      closers.unshift(() => t.stop());
      closers.unshift(async () => {
        stopListening();
        upgrades.close(CLOSE_SHUTDOWN.code, CLOSE_SHUTDOWN.reason);
        await serverClosed;
        await Promise.allSettled([...releases]);
      });
      await t.start();
      const info = { host: config.vnc.novncproxy_host, port, tls, baseUrl: novncBaseUrl(loaded, port) };
      novnc = info;
      log.info({ event: 'listening', proxy: 'novnc', host: info.host, port, tls }, `noVNC console proxy listening on ${info.host}:${port}`);
    }

    if (run.api) {
      const app = await createApi({ config, stores, sessions: registry, novncBaseUrl: () => novnc?.baseUrl ?? novncBaseUrl(loaded) }, log);
      const host = config.DEFAULT.osapi_compute_listen;
      const port = await listen(app.server, host, config.DEFAULT.osapi_compute_listen_port);
      let appClosed: Promise<void> | undefined;
      const closeApp = () => (appClosed ??= app.close());
      stopAccepting.push(() => void closeApp());
      closers.unshift(closeApp);
      api = { host, port };
      log.info({ event: 'listening', part: 'api', host, port, auth: config.api.auth_strategy }, `compute API listening on ${host}:${port}`);
      if (config.api.auth_strategy === 'noauth2' && !isLoopback(host)) {
        log.warn({ event: 'config' }, `[api] auth_strategy = noauth2 on ${host}: anyone who reaches this port can mint console tokens as admin; use static or jwt`);
      }
    }
  } catch (err) {
    for (const c of closers) await c().catch(() => {});
    throw err;
  }

  if (once) {
    const stopSweep = startSweep(config, stores, log);
    closers.unshift(async () => stopSweep());
  }

  let closing: Promise<void> | undefined;
  let endDrain: (() => void) | undefined;
  let drainCut = false;
  return {
    log,
    stores,
    novnc,
    demo,
    api,
    sessions,
    registry,
    tracker,
    close(opts = {}) {
      const drainMs = opts.drainMs ?? 0;
      if (closing) {
        if (drainMs === 0) {
          drainCut = true;
          endDrain?.();
        }
        return closing;
      }
      closing = (async () => {
        if (drainMs > 0 && sessions.size > 0) await drain(drainMs);
        for (const c of closers) await c();
      })();
      return closing;
    },
  };

  /** Stops accepting and lets live sessions end by themselves, for up to `ms`. */
  async function drain(ms: number): Promise<void> {
    for (const stop of stopAccepting) stop();
    await tracker?.draining();
    log.info({ event: 'draining', sessions: sessions.size, seconds: ms / 1000 }, `no longer accepting connections; ${sessions.size} console session(s) may run for up to ${ms / 1000} s`);
    if (drainCut) return;
    await new Promise<void>((resolve) => {
      const deadline = setTimeout(finish, ms);
      const poll = setInterval(() => sessions.size === 0 && finish(), 100);
      function finish() {
        clearTimeout(deadline);
        clearInterval(poll);
        endDrain = undefined;
        resolve();
      }
      endDrain = finish;
    });
  }
}

/** Starts the demo VNC server (127.0.0.1, `[porthole] demo_port`) and registers it in the inventory under its fixed id. */
export async function startDemo(config: Config, stores: Stores, log: Logger): Promise<DemoServer> {
  const demo = await startDemoServer({ host: '127.0.0.1', port: config.porthole.demo_port });
  demo.on('client-error', (reason) => log.warn({ event: 'demo_client_error' }, `demo VNC server closed a client: ${reason}`));
  try {
    await stores.inventory.put({ id: DEMO_SERVER_ID, name: demo.name, projectId: null, status: 'ACTIVE', vnc: { host: demo.host, port: demo.port } });
  } catch (err) {
    await demo.close();
    throw err;
  }
  return demo;
}

/** Deletes expired tokens every `[porthole] token_sweep_interval` (0: never); returns what stops it. */
export function startSweep(config: Config, stores: Pick<Stores, 'tokens'>, log: Logger): () => void {
  const seconds = config.porthole.token_sweep_interval;
  if (seconds <= 0) return () => {};
  const timer = setInterval(() => {
    stores.tokens.sweepExpired().then(
      (n) => n > 0 && log.info({ event: 'sweep', deleted: n }, `deleted ${n} expired console tokens`),
      (err: Error) => log.warn({ event: 'sweep', err: err.message }, 'sweep of expired tokens failed'),
    );
  }, seconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
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

/** The console listener's address as other hosts know it: the machine's name for a wildcard bind. */
function proxyAddress(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '::' || host === '' ? hostname() : host;
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function listen(server: NetServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
