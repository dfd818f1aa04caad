/**
 * @module cli/systemd
 * systemd's service notification protocol (sd_notify(3)) for the daemons' main process, so a
 * `Type=notify` unit (deploy/systemd/) knows when Porthole serves and when it stops:
 * - `READY=1` (with `STATUS=` the listeners and `MAINPID=`) once every listener accepts;
 * - `STOPPING=1` when a drain or a stop begins;
 * - `WATCHDOG=1` every `$WATCHDOG_USEC / 2` from then on, when `$WATCHDOG_USEC` is set and
 *   `$WATCHDOG_PID`, if set, is this process (`WatchdogSec=` in the unit);
 * - nothing at all when `$NOTIFY_SOCKET` is not set (a terminal, the Debian init script, a
 *   container).
 * The variables are read once and removed from the environment, as sd_notify's
 * `unset_environment` does: the workers of `[porthole] workers` (started with this environment)
 * must not notify, since a unit's `NotifyAccess=main` refuses every other process's messages.
 *
 * `$NOTIFY_SOCKET` names a Unix datagram socket, which Node cannot speak: the `unix-dgram` addon
 * does. It copies the path into `sun_path` as a C string and always passes the whole
 * `sockaddr_un` length, so it cannot reach an abstract socket (`@name`: a leading NUL byte and a
 * length-exact address); such a socket gets one warning and no messages. systemd's own managers
 * use paths (`/run/systemd/notify`, `$XDG_RUNTIME_DIR/systemd/notify`).
 * Under systemd, a unit's `ExecReload=/bin/kill -HUP $MAINPID` (deploy/systemd/) must not end
 * the daemon: the logger reopens its log file on SIGHUP (log/sink.ts), but a daemon that logs
 * to the journal through stdout has none and would die of the signal's default action; from
 * READY=1 on, a SIGHUP nobody else handles is ignored. (Not earlier: the primary of
 * `[porthole] workers` passes SIGHUP on to its workers only when its own logger takes it.)
 * A message that cannot be sent never stops the daemon: the first failure is one warning, later
 * ones are not repeated.
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';

/** What the notifier needs of the daemon's logger. */
export interface WarningLog {
  warn(fields: object, message: string): void;
}

export interface ServiceManager {
  /** The main process serves: READY=1, then the watchdog's pings if the unit asks for them. */
  ready(status: string): void;
  /** A drain or a stop begins: STOPPING=1. */
  stopping(status: string): void;
  /** The process is about to exit: stops the watchdog's pings. */
  close(): void;
}

interface DatagramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, callback: (err?: Error) => void): void;
  close(): void;
}

interface UnixDgram {
  createSocket(type: 'unix_dgram'): DatagramSocket;
}

interface Address {
  readonly host: string;
  readonly port: number;
}

/** What a daemon listens on (a gateway, or what the workers told their primary). */
export interface Listeners {
  readonly proxies: ReadonlyMap<string, Address> | Readonly<Record<string, Address>>;
  readonly api?: Address;
}

/** The STATUS= line of READY=1: `listening: novnc 127.0.0.1:6080, compute API 127.0.0.1:8774`. */
export function listeningStatus(l: Listeners, prefix = 'listening'): string {
  const proxies = l.proxies instanceof Map ? [...l.proxies.entries()] : Object.entries(l.proxies);
  const parts = proxies.map(([kind, a]) => `${kind} ${a.host}:${a.port}`);
  if (l.api) parts.push(`compute API ${l.api.host}:${l.api.port}`);
  return `${prefix}: ${parts.join(', ') || 'nothing'}`;
}

const NOTHING: ServiceManager = { ready() {}, stopping() {}, close() {} };

/**
 * The service manager named by `env` (`process.env` by default), whose notification variables
 * are read and removed here: call it once per process, before any child is started.
 */
export function serviceManager(log: WarningLog, env: NodeJS.ProcessEnv = process.env): ServiceManager {
  const socketPath = env.NOTIFY_SOCKET;
  const watchdogUsec = env.WATCHDOG_USEC;
  const watchdogPid = env.WATCHDOG_PID;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (!socketPath) return NOTHING;
  if (socketPath.startsWith('@')) {
    log.warn({ event: 'sd_notify', socket: socketPath }, `NOTIFY_SOCKET ${socketPath} is an abstract socket, which Porthole cannot reach (the unix-dgram addon addresses socket files only): systemd is not told that Porthole is ready or stopping, and a Type=notify unit times out; use Type=simple (or exec) for this service manager`);
    return NOTHING;
  }
  let dgram: UnixDgram;
  try {
    dgram = createRequire(import.meta.url)('unix-dgram') as UnixDgram;
  } catch (err) {
    log.warn({ event: 'sd_notify', err: (err as Error).message }, `cannot load the unix-dgram addon (${(err as Error).message}): systemd is not told that Porthole is ready or stopping; run npm ci again to build it`);
    return NOTHING;
  }

  let warned = false;
  const notify = (fields: Readonly<Record<string, string | number>>) => {
    const text = Object.entries(fields).map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`).join('\n');
    const fail = (err: Error) => {
      if (warned) return;
      warned = true;
      const why = errnoName(err);
      log.warn({ event: 'sd_notify', socket: socketPath, err: why }, `cannot notify systemd through NOTIFY_SOCKET ${socketPath} (${why}); Porthole keeps serving, and further failures are not reported`);
    };
    // a socket per message: an open unix-dgram socket holds the event loop, so one kept open
    // would keep the process from exiting; the watchdog's rate makes the cost nothing
    let socket: DatagramSocket;
    try {
      socket = dgram.createSocket('unix_dgram');
    } catch (err) {
      fail(err as Error);
      return;
    }
    const buf = Buffer.from(text);
    try {
      socket.send(buf, 0, buf.length, socketPath, (err) => {
        if (err) fail(err);
      });
    } catch (err) {
      fail(err as Error);
    } finally {
      try {
        socket.close();
      } catch {
        // the descriptor is gone either way
      }
    }
  };

  const usec = Number(watchdogUsec);
  const watchdogOurs = Number.isInteger(usec) && usec > 0 && (watchdogPid === undefined || watchdogPid === String(process.pid));
  let watchdog: NodeJS.Timeout | undefined;
  const ignoreHangup = () => {};
  return {
    ready(status) {
      if (process.listenerCount('SIGHUP') === 0) process.on('SIGHUP', ignoreHangup);
      notify({ READY: 1, STATUS: status, MAINPID: process.pid });
      if (watchdogOurs && !watchdog) {
        // half the timeout, as sd_watchdog_enabled(3) advises; unref'd: it never keeps us alive
        watchdog = setInterval(() => notify({ WATCHDOG: 1 }), Math.max(1, Math.floor(usec / 2000)));
        watchdog.unref();
      }
    },
    stopping(status) {
      notify({ STOPPING: 1, STATUS: status });
    },
    close() {
      process.off('SIGHUP', ignoreHangup);
      if (watchdog) clearInterval(watchdog);
      watchdog = undefined;
    },
  };
}

/** unix-dgram's errors carry a negative errno (`send -2`): its name reads better (`ENOENT`). */
function errnoName(err: Error): string {
  const errno = (err as { errno?: unknown }).errno;
  if (typeof errno !== 'number') return err.message;
  const name = Object.entries(constants.errno).find(([, n]) => n === -errno)?.[0];
  return name ? `${err.message.split(' ')[0]}: ${name}` : err.message;
}
