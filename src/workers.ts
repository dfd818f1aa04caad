/**
 * @module workers
 * `[porthole] workers = N`: the daemons (`serve`, `novncproxy`, `api`) on N processes of
 * `node:cluster`, for when one CPU core is the limit. The primary process supervises; each
 * worker runs the gateway (`createGateway`) with its listeners, which cluster shares: one port per
 * listener, whose connections the primary accepts and hands to the workers in turn (round robin,
 * `cluster.SCHED_RR`, Node's default on Linux, set here for every platform unless
 * NODE_CLUSTER_SCHED_POLICY says otherwise). Consoles last, so an even count per worker is what
 * spreads the load; the kernel's own spread among processes accepting on one socket
 * (`SCHED_NONE`) piles connections on a few of them. One console is served by one worker from
 * its upgrade to its close: a single console goes no faster than with one process.
 *
 * What runs where, and why:
 * - In every worker: the console proxy and the API listeners, the store connections, and the
 *   sessions registry's tracker. Each worker is a proxy of its own in the registry (a random id
 *   per run, its own pid, the same address) with its own subscription to revocations and kills
 *   (the SQL events table, PostgreSQL LISTEN/NOTIFY, Redis pub/sub), so a revocation or a kill
 *   closes a console in whichever worker holds it exactly as it does across hosts, and
 *   `porthole sessions list` shows every worker's sessions.
 * - Once, in the primary: the migration (N workers migrating at once would only queue on the same
 *   lock, or on SQLite on the same file); the demo server's VNC server and serial console, which
 *   play a VM: its tokens name their host:port, so they must outlive any worker that is replaced
 *   (a demo restarted on another free port would strand the URL already printed); the sweep of expired tokens (N sweeps would
 *   delete the same rows); the start-up summary, printed once every worker listens.
 * - The primary serves no request; it sums the workers' metrics for the worker a scrape reached
 *   (`ops/metrics-cluster.ts`). A worker that dies (a crash, the OOM killer) costs only its
 *   own consoles: the primary logs it and starts a replacement after a short wait (0.1 s,
 *   doubling up to 5 s); `restartLimit` deaths within a minute is a crash loop, which restarting
 *   cannot mend: the primary stops the other workers and exits 1 for the service manager to act
 *   on. A worker that dies before it listens at start stops the start (exit 1), as a single
 *   process whose start fails.
 *
 * Signals: SIGTERM and SIGINT to the primary go on to every worker, which drains or closes as a
 * single process does (`cli/daemons.ts`); the primary exits 0 once every worker has exited. Under
 * systemd and in a terminal the workers also get the signal themselves (the control group, the
 * process group): a second SIGTERM changes nothing, as for one process. A worker whose primary
 * dies exits at once: node:cluster does that when the worker's IPC channel closes.
 *
 * Workers are started as the primary was (`bin/porthole.js` with the same arguments and
 * environment), so they read the same configuration and each prepares its heap at start as a
 * daemon does (`bin/porthole.js`); a replacement reads the configuration files again.
 */
import { GatewayError } from './errors.ts';
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { LoadedConfig } from './config/load.ts';
import type { ProxyInfo } from './consoles/serve.ts';
import type { Config } from './config/options.ts';
import type { DemoSerialConsole } from './demo/serial-console.ts';
import type { DemoServer } from './demo/server.ts';
import { listeningStatus, serviceManager, type ServiceManager } from './cli/systemd.ts';
import { logStartup, startDemo, startSweep, type DemoConsoles } from './gateway.ts';
import { startAuditSweep } from './ops/audit.ts';
import { ClusterMetrics } from './ops/metrics-cluster.ts';
import { createLogger, programName, PROGRAM_ENV } from './log.ts';
import { rfbProxyOptions } from './rfb/config.ts';
import { openStores, storeSettings, type OpenedStores as Stores } from './database/index.ts';

/** The most workers, also for `workers = 0` on a machine with more CPUs. */
export const MAX_WORKERS = 64;
const BIN = fileURLToPath(new URL('../bin/porthole.js', import.meta.url));
const DEATH_WINDOW_MS = 60_000;
const FIRST_RESTART_DELAY_MS = 100;
const MAX_RESTART_DELAY_MS = 5000;

/** What a worker listens on, as it tells the primary once it does. */
export interface Listening {
  /** The console listeners by kind name (`novnc`), as the gateway's `proxies`. */
  readonly proxies: ReadonlyMap<string, ProxyInfo> | Readonly<Record<string, ProxyInfo>>;
  readonly api?: { readonly host: string; readonly port: number; readonly tls?: boolean };
}

/** What the primary has for the start-up summary. */
export interface Started extends Listening {
  readonly stores: Stores;
  readonly demo?: DemoServer;
  readonly demoSerial?: DemoSerialConsole;
}

interface ReadyMessage extends Listening {
  readonly porthole: 'ready';
}

/** How many processes `[porthole] workers` asks for (0: one per CPU); 1 is a single process, without cluster. */
export function workerCount(config: Config): number {
  const n = config.porthole.workers;
  return n === 0 ? Math.min(availableParallelism(), MAX_WORKERS) : n;
}

/** Deaths within a minute that make a crash loop: at least 5, twice the workers when that is more. */
export function restartLimit(count: number): number {
  return Math.max(5, 2 * count);
}

/** This process is a worker started by a primary. */
export function isWorker(): boolean {
  return cluster.isWorker;
}

/** A worker's logger: every line says which worker (cluster's id) and its pid. */
export function workerLogger(config: Config): Logger {
  return createLogger(config).child({ worker: cluster.worker?.id, pid: process.pid });
}

/**
 * Runs a worker's daemon and then leaves the primary, however the daemon ended (stopped, failed
 * to start): the IPC channel to the primary would keep the process alive, and disconnecting
 * this way keeps the exit status.
 */
export async function asWorker(daemon: () => Promise<number>): Promise<number> {
  try {
    return await daemon();
  } finally {
    cluster.worker?.disconnect();
  }
}

/** The console listeners of `listening`, by kind name, whether it came from a gateway or over IPC. */
export function proxyEntries(listening: Listening): Array<[string, ProxyInfo]> {
  const p = listening.proxies;
  return p instanceof Map ? [...p.entries()] : Object.entries(p);
}

/** Tells the primary that this worker listens. */
export function reportListening(listening: Listening): void {
  // a Map does not cross the IPC channel: the listeners go as a plain record
  const message: ReadyMessage = { porthole: 'ready', proxies: Object.fromEntries(proxyEntries(listening)), ...(listening.api ? { api: listening.api } : {}) };
  process.send?.(message);
}

export interface PrimaryOptions {
  readonly count: number;
  /** This daemon's command line after `porthole`, which every worker is started with. */
  readonly argv: readonly string[];
  /** Called once, when every worker of the start listens: prints the start-up summary. */
  readonly started: (s: Started) => Promise<void>;
}

/** Runs the primary: the parts done once, then the workers until a signal; the exit status. */
export async function runPrimary(loaded: LoadedConfig, opts: PrimaryOptions): Promise<number> {
  const { config } = loaded;
  const log = createLogger(config).child({ role: 'primary', pid: process.pid });
  logStartup(loaded, log);
  // a bad VeNCrypt or password file stops the start here, once, rather than in every worker
  rfbProxyOptions(config);
  // each worker would hold its own backend connection per server, and a page's control channel could reach another worker than its console
  if (config.porthole.shared_consoles) throw new GatewayError('CONFIG_INVALID', '[porthole] shared_consoles needs one process: set [porthole] workers = 1 where it is on');
  const stores = await openStores(config.database.connection, { migrate: config.porthole.auto_migrate, ...storeSettings(config, log) });
  let demo: DemoConsoles | undefined;
  try {
    if (config.porthole.demo) demo = await startDemo(config, stores, log);
  } catch (err) {
    await stores.close();
    throw err;
  }
  if ((await stores.inventory.list().catch(() => [])).some((s) => s.sharedConsoles === true)) {
    log.warn({ event: 'config', workers: opts.count }, 'shared consoles need one process: with [porthole] workers, servers added with --shared-consoles are relayed one connection per console, and view-only links to them are refused');
  }
  const stopSweep = startSweep(config, stores, log);
  const stopAuditSweep = startAuditSweep(stores.auditEvents, config.porthole.audit_retention_days, log);
  if (stores.ownDescription === null) {
    log.warn({ event: 'config', workers: opts.count }, `no store of Porthole's own ([porthole] connection): the sessions registry is per process, so each worker's admin API lists and kills its own sessions, and a revocation through one worker reaches the consoles of the others at their next heartbeat`);
  }
  // the primary is the unit's main process: it tells systemd, and its workers must not (they
  // are forked after this has taken NOTIFY_SOCKET out of the environment)
  const manager = serviceManager(log);
  try {
    return await supervise(log, opts, manager, (listening) => opts.started({ ...listening, stores, demo: demo?.vnc, demoSerial: demo?.serial }));
  } finally {
    stopSweep();
    stopAuditSweep();
    await demo?.close();
    await stores.close();
  }
}

function supervise(log: Logger, opts: PrimaryOptions, manager: ServiceManager, started: (l: Listening) => Promise<void>): Promise<number> {
  const { count } = opts;
  const limit = restartLimit(count);
  if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_RR;
  cluster.setupPrimary({ exec: BIN, args: [...opts.argv] });
  log.info({ event: 'workers', workers: count }, `starting ${count} worker processes`);

  return new Promise<number>((resolve) => {
    const running = new Set<Worker>();
    const listening = new Set<Worker>();
    // one scrape of any worker's /metrics answers the sum of those that listen (ops/metrics-cluster.ts)
    const metrics = new ClusterMetrics(() => listening);
    const restarts = new Set<NodeJS.Timeout>();
    const deaths: number[] = [];
    let startingUp = true;
    /** Set once stopping: the exit status. */
    let exitCode: number | undefined;

    const fork = () => {
      const w = cluster.fork({ [PROGRAM_ENV]: programName() });
      running.add(w);
      log.info({ event: 'worker_started', worker: w.id, workerPid: w.process.pid }, `started worker ${w.id} (pid ${w.process.pid})`);
      w.on('message', (m: unknown) => metrics.message(w, m) || workerOnMessage(w, m));
    };

    const workerOnMessage = (w: Worker, m: unknown) => {
      if ((m as ReadyMessage | null)?.porthole !== 'ready' || exitCode !== undefined) return;
      listening.add(w);
      if (!startingUp || listening.size < count) return;
      startingUp = false;
      log.info({ event: 'workers_listening', workers: count }, `all ${count} workers listen`);
      const { porthole: _, ...where } = m as ReadyMessage;
      started(where).then(() => {
        if (exitCode === undefined) manager.ready(listeningStatus(where, `${count} workers listening`));
      }, (err: Error) => {
        log.error({ event: 'workers', err: err.message }, `start-up failed: ${err.message}`);
        stop('SIGINT', 1);
      });
    };

    const clusterOnExit = (w: Worker, code: number | null, signal: string | null) => {
      running.delete(w);
      metrics.gone(w);
      const wasListening = listening.delete(w);
      const how = signal ? `signal ${signal}` : `code ${code}`;
      const fields = { worker: w.id, workerPid: w.process.pid, code, signal };
      if (exitCode !== undefined) {
        log.info({ event: 'worker_stopped', ...fields }, `worker ${w.id} (pid ${w.process.pid}) exited (${how})`);
        if (running.size === 0) finish();
        return;
      }
      if (startingUp && !wasListening) {
        // as a single process whose start fails: its error is on stderr
        log.error({ event: 'worker_exited', ...fields }, `worker ${w.id} (pid ${w.process.pid}) exited (${how}) before it listened; stopping`);
        stop('SIGINT', 1);
        return;
      }
      const now = Date.now();
      deaths.push(now);
      while (deaths[0]! < now - DEATH_WINDOW_MS) deaths.shift();
      if (deaths.length >= limit) {
        // restarting cannot mend a crash loop: close at once and let the service manager act
        log.fatal({ event: 'worker_exited', ...fields, deaths: deaths.length }, `worker ${w.id} (pid ${w.process.pid}) exited (${how}): ${deaths.length} workers died within a minute; giving up`);
        stop('SIGINT', 1);
        return;
      }
      const delay = Math.min(FIRST_RESTART_DELAY_MS * 2 ** (deaths.length - 1), MAX_RESTART_DELAY_MS);
      log.error({ event: 'worker_exited', ...fields, restartInMs: delay }, `worker ${w.id} (pid ${w.process.pid}) exited unexpectedly (${how}); starting another in ${delay} ms`);
      const timer = setTimeout(() => {
        restarts.delete(timer);
        if (exitCode === undefined) fork();
      }, delay);
      restarts.add(timer);
    };

    /** Passes `signal` on to every worker; the primary exits with `code` once they all have. */
    const stop = (signal: NodeJS.Signals, code: number) => {
      if (exitCode === undefined) manager.stopping(signal === 'SIGTERM' ? 'draining: SIGTERM passed on to the workers' : `stopping the workers (${signal})`);
      exitCode ??= code;
      for (const t of restarts) clearTimeout(t);
      restarts.clear();
      for (const w of running) w.process.kill(signal);
      if (running.size === 0) finish();
    };

    const onSignal = (signal: NodeJS.Signals) => {
      if (exitCode === undefined) log.info({ event: 'stopping', signal, workers: running.size }, `received ${signal}, passing it on to ${running.size} worker(s)`);
      stop(signal, 0);
    };
    const onTerm = () => onSignal('SIGTERM');
    const onInt = () => onSignal('SIGINT');

    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      manager.close();
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      process.off('SIGHUP', onHup);
      cluster.off('exit', clusterOnExit);
      resolve(exitCode ?? 0);
    };

    // SIGHUP reopens the log file (log.ts) and reads the TLS certificates again (gateway.ts), and
    // each worker has its own: logrotate and systemd's ExecReload signal the primary. Only to
    // listening workers: one still starting may have no handler yet (SIGHUP would end it) and
    // opens the files at their paths anyway
    const onHup = () => {
      for (const w of listening) w.process.kill('SIGHUP');
    };
    process.on('SIGHUP', onHup);

    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    cluster.on('exit', clusterOnExit);
    for (let i = 0; i < count; i++) fork();
  });
}
