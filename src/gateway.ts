/**
 * @module gateway
 * Builds the parts of one Porthole process from a loaded config and hands each what it needs:
 * the stores, a listener per enabled console kind (`src/consoles/`), the API, the demo server
 * (its VNC server and serial console), the sweep of expired tokens. No
 * globals: tests build the same gateway with their own config and logger. The worker processes
 * of `[porthole] workers` build it without the parts done once (`workers.ts`).
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { createApi } from './api/app.ts';
import { apiTlsSettings } from './api/tls.ts';
import { CONSOLE_KINDS } from './consoles/index.ts';
import { novnc } from './consoles/novnc.ts';
import { listen, startConsoleProxy, type ProxyInfo, type SessionObserver } from './consoles/serve.ts';
import type { LoadedConfig } from './config/load.ts';
import { unhonouredOptions } from './config/unhonoured.ts';
import { startupLines } from './config/startup.ts';
import type { Config } from './config/options.ts';
import { startDemoSerialConsole, type DemoSerialConsole } from './demo/serial-console.ts';
import { startDemoServer, type DemoServer } from './demo/server.ts';
import { GatewayError } from './errors.ts';
import { CertificateReloader, type ReloadableServer } from './http/cert-reload.ts';
import { pairName, secureOptions } from './http/tls.ts';
import { createLogger } from './log.ts';
import { lookupBudgetOptions, openLookupBudget } from './proxy/lookup-budget.ts';
import { ConsoleLimits, consoleLimitOptions } from './proxy/console-limits.ts';
import { keptLogFiles, SerialHub, serialHubOptions } from './proxy/serial-hub.ts';
import { SharedHub, sharedHubOptions, type SharedHubOptions } from './proxy/shared-hub.ts';
import { ScreenshotService, screenshotOptions } from './proxy/screenshots.ts';
import type { ConsoleSession } from './proxy/relay.ts';
import { Recorders, recordingPlaceOf } from './proxy/recorder.ts';
import { ExtrasGate } from './proxy/extras-gate.ts';
import { startRecordingSweep, unlistedRecordings } from './recordings/service.ts';
import { fanOut, type ConsoleEvents } from './proxy/events.ts';
import { openAuditTrail, type AuditTrail } from './ops/audit.ts';
import { auditWatcher } from './ops/audit-watcher.ts';
import { closeOpsServer } from './ops/health-endpoints.ts';
import { createOps } from './ops/health-ops.ts';
import { tokenLookupCheck } from './ops/health.ts';
import { rfbConfigWarnings, rfbProxyOptions } from './rfb/config.ts';
import { openSessions, sessionsOptions, type Sessions } from './sessions/service.ts';
import { CLOSE_SHUTDOWN, type SessionTracker } from './sessions/tracker.ts';
import { openStores, storeKind, storeSettings, type OpenedStores as Stores } from './database/index.ts';

/** The demo server's fixed inventory id, so restarts replace it instead of adding another. */
export const DEMO_SERVER_ID = '00000000-0000-4000-8000-000000000de0';

export interface GatewayParts {
  readonly log?: Logger;
  readonly stores?: Stores;
  /**
   * Which listeners to run: console kinds by name (`['novnc']` for `novncproxy`, `[]` for `api`)
   * and the API; not given, what `serve` runs (`serveRun`). A kind named here runs whatever its
   * `enabled` switch says: a drop-in daemon exists to serve its kind.
   */
  readonly run?: GatewayRun;
  /**
   * Whether this process also does what an installation does once per start: the migration
   * (`[porthole] auto_migrate`), the demo VNC server, the sweep of expired tokens. False in the
   * worker processes of `[porthole] workers`, whose primary does them (`workers.ts`).
   */
  readonly once?: boolean;
  /** The shared consoles' control and linger times (tests: short ones); absent: `shared-types.ts`'s constants. */
  readonly sharedConsoleTimes?: Pick<SharedHubOptions, 'answerMs' | 'idleMs' | 'lingerMs'>;
}

export type { ProxyInfo };

export interface GatewayRun {
  /** Names of the console kinds whose listeners run (`novnc`, `serial`), in any order. */
  readonly proxies: readonly string[];
  readonly api: boolean;
}

/** What `porthole serve` runs: every console kind whose listener is enabled, and the API if `[porthole] api_enabled`. */
export function serveRun(config: Config): GatewayRun {
  return { proxies: CONSOLE_KINDS.filter((k) => k.listener(config).enabled).map((k) => k.name), api: config.porthole.api_enabled };
}

export interface Gateway {
  readonly log: Logger;
  readonly stores: Stores;
  /** The noVNC listener (the first console kind): `proxies.get('novnc')`. */
  readonly novnc: ProxyInfo | undefined;
  /** The running console listeners by kind name. */
  readonly proxies: ReadonlyMap<string, ProxyInfo>;
  readonly demo: DemoServer | undefined;
  /** The demo server's serial console (its `serial` endpoint), with `demo`. */
  readonly demoSerial: DemoSerialConsole | undefined;
  readonly api: { readonly host: string; readonly port: number; readonly tls: boolean } | undefined;
  readonly sessions: ReadonlySet<ConsoleSession>;
  /** The live-sessions registry across proxies (list, kill) and this proxy's part in it. */
  readonly registry: Sessions;
  readonly tracker: SessionTracker | undefined;
  /** The kept serial consoles (`[porthole] serial_keep_attached` with the serial listener running). */
  readonly serialHub: SerialHub | undefined;
  /** The shared consoles of this process (with the noVNC listener running). */
  readonly sharedConsoles: SharedHub | undefined;
  /** The listener of `[porthole] metrics_listen` (`/metrics`, `/healthz`, `/readyz`), when set. */
  readonly metricsListener: { readonly host: string; readonly port: number } | undefined;
  /** The audit trail: `[porthole] audit_log` and Porthole's own store (`ops/audit.ts`). */
  readonly audit: AuditTrail;
  /** The concurrent-console limits of every listener of this process; absent: none set. */
  readonly limits?: ConsoleLimits;
  /** This process's session recordings (`proxy/recorder.ts`): which are under way. */
  readonly recorders: Recorders;
  /**
   * Stops accepting, closes live sessions with a reason (1001 "proxy shutting down"), closes the
   * stores it opened. With `drainMs`, live sessions may first run on for up to that long (SIGTERM:
   * `[porthole] drain_seconds`); another `close()` without it during the drain ends it at once.
   */
  close(opts?: { readonly drainMs?: number }): Promise<void>;
  /**
   * Reads every listener's certificate and key again now (SIGHUP; they are also polled every
   * few seconds): new handshakes get the new pair, live connections keep theirs. A pair that
   * does not load is logged and the one before stays.
   */
  reloadCertificates(): Promise<void>;
}

export async function createGateway(loaded: LoadedConfig, parts: GatewayParts = {}): Promise<Gateway> {
  const { config } = loaded;
  const run = parts.run ?? serveRun(config);
  const unknownKind = run.proxies.find((name) => !CONSOLE_KINDS.some((k) => k.name === name));
  if (unknownKind !== undefined) throw new GatewayError('CONFIG_INVALID', `no console kind named ${unknownKind} (kinds: ${CONSOLE_KINDS.map((k) => k.name).join(', ')})`);
  // VeNCrypt files and the password file are checked before anything is opened
  const rfb = rfbProxyOptions(config);
  const log = parts.log ?? createLogger(config);
  for (const warning of rfbConfigWarnings(rfb)) log.warn({ event: 'config' }, warning);
  // what is in use, typos, Nova options accepted but not done: once per daemon (a primary of
  // [porthole] workers says them)
  if (parts.once ?? true) logStartup(loaded, log);
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
  // concurrent consoles, counted across this process's listeners (and other proxies' once the tracker runs)
  const consoleLimits = new ConsoleLimits(consoleLimitOptions(config, log));
  const limits = consoleLimits.enabled ? consoleLimits : undefined;
  closers.unshift(() => lookups.close());
  if (stores.ownDescription === null) {
    if (config.porthole.single_use_tokens) {
      await Promise.all(closers.map((c) => c()));
      throw new GatewayError('CONFIG_INVALID', `[porthole] single_use_tokens needs a store of Porthole's own to record uses: ${stores.description} is a Nova database; set [porthole] connection`);
    }
    log.warn({ event: 'config', database: stores.description }, `${stores.description} is a Nova database and [porthole] connection is not set: the inventory is off, so the console-port check (CVE-2013-0335) is skipped`);
  }

  /** The watchers of every console connection's steps (metrics, the audit trail), told in this order. */
  const watchers: ConsoleEvents[] = [];
  const events = fanOut(watchers, (err) => log.error({ event: 'bug', err: (err as Error)?.message }, `console event watcher failed: ${(err as Error)?.stack ?? err}`));
  // metrics and readiness (src/ops/): the store check is the proxies' own first read, a token lookup
  const ops = createOps(config, { consoles: run.proxies, api: run.api, store: `${opened.nova ? 'nova-' : ''}${storeKind(opened.handles.tokens.url)}`, storeCheck: tokenLookupCheck(opened.tokens), log });
  if (ops.metrics) watchers.push(ops.metrics.events);
  closers.push(async () => ops.close());
  let metricsListener: { host: string; port: number } | undefined;
  // the audit stream is opened now: an audit file that cannot be opened stops the start, as the log file's does
  let audit: AuditTrail;
  try {
    audit = openAuditTrail(config, { store: stores.auditEvents, log, hangup: true });
  } catch (err) {
    for (const c of closers) await c().catch(() => {});
    throw new GatewayError('CONFIG_INVALID', `[porthole] audit_log = ${config.porthole.audit_log}: ${(err as Error).message}`);
  }
  // closed after the listeners (their sessions' session.closed are in it), before the stores
  closers.unshift(() => audit.close());
  watchers.push(auditWatcher(audit));
  // session recordings: [DEFAULT] record (every noVNC session), or servers and tokens asked to be
  const { place, recordAll } = recordingPlaceOf(config);
  if (recordAll) log.info({ event: 'config', prefix: place.prefix }, `[DEFAULT] record: every noVNC console session is recorded to ${place.prefix}.<session id>.rfbrec`);
  if (!stores.recordings) log.warn({ event: 'config' }, `${stores.description} is a Nova database and [porthole] connection is not set: recordings are written to files but not listed, so the recordings API and playback do not see them`);
  const recorders = new Recorders({ place, recordAll, store: stores.recordings ?? unlistedRecordings(), log, hostname: hostname(), audit });
  // after the listeners: their sessions' recordings end with them
  closers.unshift(() => recorders.close());
  // a plain console's token extras are read only where recording may apply to it
  const extrasGate = stores.tokenExtras ? new ExtrasGate(stores.tokenExtras, { recordAll }) : undefined;
  if (!stores.auditEvents) log.warn({ event: 'config' }, `${stores.description} is a Nova database and [porthole] connection is not set: audit events go ${config.porthole.audit_log ? `to [porthole] audit_log (${config.porthole.audit_log}) only` : 'nowhere but the main log: set [porthole] audit_log'}, and GET /porthole/v1/events has no history`);
  let demo: DemoServer | undefined;
  let demoSerial: DemoSerialConsole | undefined;
  /** The running console listeners by kind name. */
  const proxies = new Map<string, ProxyInfo>();
  /** Told of every session's start and end: the registry's tracker once there is one, a drain while it waits. */
  const observers: SessionObserver[] = [];
  let api: { host: string; port: number; tls: boolean } | undefined;
  // renewed certificates (certbot, cert-manager) reach the TLS listeners without a restart
  const certificates = new CertificateReloader(log);
  closers.unshift(async () => certificates.close());
  let tracker: SessionTracker | undefined;
  let serialHub: SerialHub | undefined;
  let sharedHub: SharedHub | undefined;
  try {
    if (config.porthole.demo && once) {
      const d = await startDemo(config, stores, log);
      demo = d.vnc;
      demoSerial = d.serial;
      closers.unshift(() => d.close());
    }

    if (config.porthole.serial_keep_attached && run.proxies.includes('serial')) {
      // a QEMU chardev takes one client: N workers each keeping it would fight over it
      if (!once) throw new GatewayError('CONFIG_INVALID', '[porthole] serial_keep_attached needs one process: set [porthole] workers = 1 where it is on');
      if (stores.ownDescription === null) log.warn({ event: 'config' }, '[porthole] serial_keep_attached: the inventory is off (a Nova database without [porthole] connection), so no serial console is kept');
      const hub = new SerialHub(serialHubOptions(config, stores.inventory, log));
      serialHub = hub;
      // after the listeners: their sessions end first, then the backend connections
      closers.unshift(() => hub.close());
      await hub.start();
    }

    // a worker of several would hold its own backend connection per server, and a page's control
    // channel could land in another worker than its console: shared consoles need one process
    if (run.proxies.includes('novnc') && !once && config.porthole.shared_consoles) throw new GatewayError('CONFIG_INVALID', '[porthole] shared_consoles needs one process: set [porthole] workers = 1 where it is on');
    if (run.proxies.includes('novnc') && once) {
      // shared consoles: one backend connection per shared server in this process, its viewers attach to it
      const hub = new SharedHub({
        ...sharedHubOptions(config, rfb, log),
        ...parts.sharedConsoleTimes,
        record: (server, serverInit, id) => (recorders.wants(server, null) ? recorders.start({ sessionId: id, serverId: server.id, serverName: server.name, projectId: server.projectId ?? null, viewer: null, client: 'shared console', serverInit }) : undefined),
        // a role change goes to the registry with the viewer's session (looked up: rare, and sessions are few per process)
        onRole: (sessionId, role) => {
          for (const s of sessions) if (s.info.id === sessionId) return tracker?.roleChanged(s, role);
        },
      });
      sharedHub = hub;
      // who could type on a shared console, and from when: the viewer's session, and how control came to it
      hub.subscribe((e) => {
        if (e.kind !== 'control') return;
        const to = e.viewer === null ? undefined : e.state.viewers.find((v) => v.id === e.viewer);
        audit.record({ event: 'control.changed', server: e.state.serverId, console_type: 'novnc', actor: { system: 'proxy' }, reason: to ? `${e.why}: ${to.name} has control` : `${e.why}: nobody has control`, ...(to?.sessionId ? { session: to.sessionId } : {}) });
      });
      // after the listeners: their sessions end first, then the backend connections
      closers.unshift(async () => hub.close());
    }

    for (const kind of CONSOLE_KINDS) {
      if (!run.proxies.includes(kind.name)) continue;
      // the proxies only read and consume tokens: the store itself, not the API's wrapper that tells revocations
      const kept = kind.name === 'serial' ? serialHub : undefined;
      const proxy = await startConsoleProxy(kind, { loaded, rfb, tokens: opened.tokens, inventory: stores.inventory, log, sessions, releases, lookups, observers, kept, sharedConsoles: kind.name === 'novnc' ? sharedHub : undefined, events, limits, ops: ops.consoleHandler, recorders, tokenExtras: stores.tokenExtras, extrasGate, recordings: stores.recordings ? { store: stores.recordings, hostname: hostname() } : null });
      proxies.set(kind.name, proxy.info);
      if (proxy.tls) certificates.watch(kind.title, proxy.tls.settings, proxy.tls.server, proxy.tls.served);
      stopAccepting.push(proxy.stopAccepting);
      ops.health.addListener(kind.name, proxy.listening);
      closers.unshift(() => proxy.close(CLOSE_SHUTDOWN.code, CLOSE_SHUTDOWN.reason));
      if (tracker) continue;
      // one place in the live-sessions registry per process, named by its first console listener
      // its console counts go with its heartbeat, where other proxies' limits read them
      const t = registry.track(proxyAddress(proxy.info.host, proxy.info.port), log, limits && registry.shared ? () => limits.load() : undefined);
      tracker = t;
      audit.proxy ??= proxyAddress(proxy.info.host, proxy.info.port);
      observers.push(t);
      closers.unshift(() => t.stop());
      await t.start();
      // other proxies' consoles count too where the registry is shared: their counts, read at the heartbeat's pace
      if (limits && registry.shared) {
        closers.unshift(() => limits.close());
        await limits.watch({ proxies: () => registry.proxies(), ownProxyId: t.proxy.id });
      }
    }

    if (run.api) {
      const apiTls = apiTlsSettings(config);
      const https = apiTls ? secureOptions(apiTls) : undefined;
      const security = apiTls ? `HTTPS only, ${pairName(apiTls.files)}` : proxiesTls(proxies) ? 'HTTP, no TLS ([DEFAULT] cert serves the console proxies only: [porthole] api_cert or api_use_console_cert gives the API HTTPS)' : 'HTTP, no TLS';
      log.info({ event: 'config', auth: config.api.auth_strategy, tls: apiTls !== null }, `compute API: ${security}; callers authenticate by [api] auth_strategy = ${config.api.auth_strategy}`);
      const hub = serialHub;
      const serialLog = hub ? (id: string) => hub.contents(id) : keptLogFiles(config);
      // screenshots: a live shared console's framebuffer, else a short connection of the service's own
      const live = sharedHub;
      const screenshots = new ScreenshotService({ ...screenshotOptions(config, rfb), log: log.child({ component: 'screenshots' }), ...(live ? { liveFramebuffer: (id: string) => live.liveFramebuffer(id) } : {}) });
      closers.unshift(async () => screenshots.close());
      const app = await createApi({ config, stores, registry, audit, ops: ops.api, serialLog, screenshot: screenshots.takeScreenshot, consoleBaseUrl: (kind) => proxies.get(kind.name)?.baseUrl ?? kind.baseUrl(loaded), ...(https ? { https } : {}) }, log);
      const host = config.DEFAULT.osapi_compute_listen;
      const port = await listen(app.server, host, config.DEFAULT.osapi_compute_listen_port, { host: '[DEFAULT] osapi_compute_listen', port: '[DEFAULT] osapi_compute_listen_port' });
      let appClosed: Promise<void> | undefined;
      const closeApp = () => (appClosed ??= app.close());
      stopAccepting.push(() => void closeApp());
      ops.health.addListener('api', () => app.server.listening);
      closers.unshift(closeApp);
      api = { host, port, tls: apiTls !== null };
      audit.proxy ??= proxyAddress(host, port);
      // Fastify built an https.Server from the `https` options: it takes a new secure context
      if (apiTls && https) certificates.watch('compute API', apiTls, app.server as unknown as ReloadableServer, https);
      log.info({ event: 'listening', part: 'api', host, port, tls: apiTls !== null, auth: config.api.auth_strategy }, `compute API listening on ${host}:${port}${apiTls ? ' (HTTPS)' : ''}`);
      if (config.api.auth_strategy === 'noauth2' && !isLoopback(host)) {
        log.warn({ event: 'config' }, `[api] auth_strategy = noauth2 on ${host}: anyone who reaches this port can mint console tokens as admin; use keystone, static or jwt`);
      }
    }

    const opsAt = ops.listenAddress();
    if (opsAt) {
      // [porthole] metrics_listen: open through a drain, so /readyz says 503 there until the close
      const server = ops.endpoints.createServer();
      const { host } = opsAt;
      const port = await listen(server, host, opsAt.port, { host: '[porthole] metrics_listen', port: '[porthole] metrics_listen' });
      closers.unshift(() => closeOpsServer(server));
      ops.health.addListener('metrics', () => server.listening);
      metricsListener = { host, port };
      log.info({ event: 'listening', part: 'metrics', host, port }, `metrics and health endpoints listening on ${host}:${port} (HTTP)`);
    }
  } catch (err) {
    for (const c of closers) await c().catch(() => {});
    throw err;
  }

  if (once) {
    const stopSweep = startSweep(config, stores, log);
    // [porthole] recording_retention_days and recording_max_total_size, with the token sweep's timer: this host's recordings only
    if (stores.recordings) {
      const stopRecordingSweep = startRecordingSweep(stores.recordings, hostname(), { retentionDays: config.porthole.recording_retention_days, maxTotalMiB: config.porthole.recording_max_total_size }, config.porthole.token_sweep_interval * 1000, log, { recorder: audit, actor: { system: 'sweep' } });
      closers.unshift(async () => stopRecordingSweep());
    }
    // [porthole] audit_retention_days, on a timer of its own (the events are not the tokens' table)
    audit.startSweep();
    closers.unshift(async () => stopSweep());
  }

  let closing: Promise<void> | undefined;
  let endDrain: (() => void) | undefined;
  let drainCut = false;
  return {
    log,
    stores,
    novnc: proxies.get(novnc.name),
    proxies,
    demo,
    demoSerial,
    api,
    sessions,
    registry,
    tracker,
    serialHub,
    sharedConsoles: sharedHub,
    metricsListener,
    audit,
    limits,
    recorders,
    close(opts = {}) {
      const drainMs = opts.drainMs ?? 0;
      if (closing) {
        if (drainMs === 0) {
          drainCut = true;
          endDrain?.();
        }
        return closing;
      }
      // not ready from the first moment of a drain or a close: balancers stop sending consoles here
      ops.health.stop();
      closing = (async () => {
        if (drainMs > 0 && sessions.size > 0) await drain(drainMs);
        for (const c of closers) await c();
      })();
      return closing;
    },
    reloadCertificates: () => certificates.reloadNow(),
  };

  /** Stops accepting and lets live sessions end by themselves, for up to `ms`. */
  async function drain(ms: number): Promise<void> {
    for (const stop of stopAccepting) stop();
    await tracker?.draining();
    log.info({ event: 'draining', sessions: sessions.size, seconds: ms / 1000 }, `no longer accepting connections; ${sessions.size} console session(s) may run for up to ${ms / 1000} s`);
    if (drainCut) return;
    const drained = untilNoSessions(sessions, observers, ms);
    endDrain = drained.cut;
    await drained.done;
    endDrain = undefined;
  }
}

/**
 * Resolves when `sessions` is empty (told by the sessions' end, not polled), after `ms`, or when
 * `cut` is called, whichever comes first.
 */
function untilNoSessions(sessions: ReadonlySet<ConsoleSession>, observers: SessionObserver[], ms: number): { done: Promise<void>; cut: () => void } {
  let cut = () => {};
  const done = new Promise<void>((resolve) => {
    const observer: SessionObserver = { started() {}, ended: () => sessions.size === 0 && finish() };
    const deadline = setTimeout(finish, ms);
    observers.push(observer);
    function finish() {
      clearTimeout(deadline);
      const i = observers.indexOf(observer);
      if (i >= 0) observers.splice(i, 1);
      resolve();
    }
    cut = finish;
    if (sessions.size === 0) finish();
  });
  return { done, cut };
}

/** The demo server's two consoles, as `startDemo` started and registered them. */
export interface DemoConsoles {
  readonly vnc: DemoServer;
  readonly serial: DemoSerialConsole;
  /** Stops both. */
  close(): Promise<void>;
}

/**
 * Starts the demo server's consoles on 127.0.0.1, its VNC server (`[porthole] demo_port`) and its
 * serial console, and registers them in the inventory under the demo's fixed id. With
 * `demo_port` 0 the VNC server listens where the inventory says it was before, when that port is
 * free, and the serial console always does: a console token names its backend's host:port
 * (Nova's `console_auth_tokens`, and the CVE-2013-0335 check compares it with the inventory), so
 * the demo URLs handed out before a restart keep working until they expire. When a port is
 * taken it picks another and says that those URLs stopped working.
 */
export async function startDemo(config: Config, stores: Stores, log: Logger): Promise<DemoConsoles> {
  const host = '127.0.0.1';
  const configured = config.porthole.demo_port;
  const before = await stores.inventory.get(DEMO_SERVER_ID);
  const previous = configured === 0 && before?.vnc?.host === host ? before.vnc.port : 0;
  const previousSerial = before?.serial?.host === host ? before.serial.port : 0;
  const vnc = await startDemoServer({ host, port: configured || previous, anyPortIfTaken: configured === 0 });
  vnc.on('client-error', (reason) => log.warn({ event: 'demo_client_error' }, `demo VNC server closed a client: ${reason}`));
  if (previous !== 0 && vnc.port !== previous) {
    log.warn({ event: 'demo_port_changed', previous, port: vnc.port }, `demo VNC server: port ${previous} of the previous start is taken, listening on ${vnc.port}; demo console URLs handed out before this start no longer work (set [porthole] demo_port to keep one port)`);
  }
  let serial: DemoSerialConsole;
  try {
    serial = await startDemoSerialConsole({ host, port: previousSerial, anyPortIfTaken: true, name: vnc.name });
  } catch (err) {
    await vnc.close();
    throw err;
  }
  if (previousSerial !== 0 && serial.port !== previousSerial) {
    log.warn({ event: 'demo_serial_port_changed', previous: previousSerial, port: serial.port }, `demo serial console: port ${previousSerial} of the previous start is taken, listening on ${serial.port}; demo serial console URLs handed out before this start no longer work`);
  }
  const close = async () => {
    await Promise.all([vnc.close(), serial.close()]);
  };
  try {
    await stores.inventory.put({ id: DEMO_SERVER_ID, name: vnc.name, projectId: null, status: 'ACTIVE', vnc: { host, port: vnc.port }, serial: { host, port: serial.port } });
  } catch (err) {
    await close();
    throw err;
  }
  return { vnc, serial, close };
}

/** The start-up lines (files, database) and the config's warnings, once per daemon. */
export function logStartup(loaded: LoadedConfig, log: Logger): void {
  for (const line of startupLines(loaded)) log.info({ event: 'config' }, line);
  for (const warning of loaded.warnings) log.warn({ event: 'config' }, warning);
  for (const warning of unhonouredOptions(loaded)) log.warn({ event: 'config' }, warning);
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

/** The console listener's address as other hosts know it: the machine's name for a wildcard bind. */
function proxyAddress(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '::' || host === '' ? hostname() : host;
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

/** Whether a console listener runs with TLS. */
function proxiesTls(proxies: ReadonlyMap<string, ProxyInfo>): boolean {
  return [...proxies.values()].some((p) => p.tls);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

