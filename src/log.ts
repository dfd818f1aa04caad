/**
 * @module log
 * The process logger. The code logs through pino's API (`log.info({ event, ... }, 'message')`,
 * child loggers); where and how the lines are written follows oslo.log's options in
 * `[DEFAULT]`, so a nova.conf that configures nova-novncproxy's log configures Porthole's:
 * oslo.log's text lines by default (log/oslo-text.ts), JSON with use_json (log/json.ts), the
 * file of log_file / log_dir reopened on SIGHUP and with watch_log_file (log/log-file.ts), the
 * systemd journal with use_journal (log/journal.ts), syslog with use_syslog (log/syslog.ts);
 * log/sink.ts chooses among them. `debug` (or `[porthole] log_level = debug`) turns on debug
 * lines and errors' stacks.
 *
 * A child bound with `{ name: 'porthole.proxy' }` logs as that logger (oslo.log's dotted
 * names); `{ component: 'api' }` as `porthole.api`; the root is `porthole`.
 *
 * Tokens never reach the log: callers log `tokenHash` (an 8-hex SHA-256 prefix) and never a
 * request URL, which carries the token; behind that, every format masks fields named like
 * secrets and tokens or passwords in URL form (log/redact.ts).
 */
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from './config/options.ts';
import { JOURNAL_SOCKET } from './log/journal.ts';
import { LogSink } from './log/sink.ts';
import { facilityCode, SYSLOG_SOCKET } from './log/syslog.ts';

export { printable } from './log/escape.ts';

/** The Nova daemons whose executables run Porthole's drop-ins. */
const NOVA_PROGRAMS = new Set(['nova-novncproxy', 'nova-serialproxy', 'nova-spicehtml5proxy']);

/**
 * The program's name in the log (syslog identifier, `<log_dir>/<program>.log`): the Nova daemon's
 * when started through an executable of that name (`nova-novncproxy`), else `porthole`.
 */
export function programName(script: string | undefined = process.argv[1], env: NodeJS.ProcessEnv = process.env): string {
  // the workers of [porthole] workers run bin/porthole.js: their primary names its program here
  const inherited = env[PROGRAM_ENV];
  if (inherited && NOVA_PROGRAMS.has(inherited)) return inherited;
  const base = basename(script ?? '').replace(/\.(?:[cm]?js|ts)$/, '');
  return NOVA_PROGRAMS.has(base) ? base : 'porthole';
}

/** The environment variable through which a primary tells its workers the program's name. */
export const PROGRAM_ENV = 'PORTHOLE_PROGRAM';

/**
 * The log file oslo.log would write (its `_get_log_file_path`): log_file alone; log_file under
 * log_dir when both are set (an absolute log_file stays as it is, as `os.path.join` does);
 * `<log_dir>/<program>.log` with log_dir alone; none without either.
 */
export function logFilePath(config: Config, program = programName()): string | undefined {
  const { log_file: file, log_dir: dir } = config.DEFAULT;
  if (file && !dir) return file;
  if (file && dir) return file.startsWith('/') ? file : join(dir, file);
  if (dir) return join(dir, `${program}.log`);
  return undefined;
}

/** What a caller (a test, mostly) may put in place of the process's own. */
export interface LogOptions {
  /** Instead of standard output. */
  readonly stdout?: NodeJS.WritableStream;
  /** Instead of standard error (use_stderr, warnings about the log, fallback). */
  readonly stderr?: NodeJS.WritableStream;
  /** The journal's socket (default /run/systemd/journal/socket, or $PORTHOLE_JOURNAL_SOCKET). */
  readonly journalSocket?: string;
  /** Syslog's socket (default /dev/log, or $PORTHOLE_SYSLOG_SOCKET). */
  readonly syslogSocket?: string;
  readonly program?: string;
}

/** Each config's sink: a daemon that makes several loggers opens its file and sockets once. */
const sinks = new WeakMap<Config, LogSink>();
const owners = new WeakMap<Logger, LogSink>();

/**
 * The logger `config` asks for. `options` given as a stream is standard output's replacement.
 * Throws only for a configuration error (an unknown syslog_log_facility); an output that cannot
 * be opened is reported on standard error and replaced by it.
 */
export function createLogger(config: Config, options?: NodeJS.WritableStream | LogOptions): Logger {
  const opts: LogOptions = options && 'write' in options ? { stdout: options as NodeJS.WritableStream } : ((options as LogOptions | undefined) ?? {});
  const level = config.DEFAULT.debug ? 'debug' : config.porthole.log_level;
  const own = options === undefined;
  let sink = own ? sinks.get(config) : undefined;
  if (!sink) {
    sink = openSink(config, opts, level === 'debug' || level === 'trace', own);
    if (own) sinks.set(config, sink);
  }
  const log = pino({ level, base: undefined }, sink);
  owners.set(log, sink);
  return log;
}

/** Closes the files and sockets of a logger made by createLogger (tests; a daemon just exits). */
export function closeLogger(log: Logger): void {
  owners.get(log)?.close();
}

function openSink(config: Config, opts: LogOptions, debug: boolean, daemon: boolean): LogSink {
  const d = config.DEFAULT;
  const program = opts.program ?? programName();
  const needsFacility = d.use_syslog || d.use_journal;
  // an unknown facility is a configuration error, as in oslo.log, even if only the journal uses it
  const facility = needsFacility ? facilityCode(d.syslog_log_facility) : 1;
  const path = logFilePath(config, program);
  const sink = new LogSink({
    program,
    hostname: hostname(),
    dateFormat: d.log_date_format,
    json: d.use_json,
    debug,
    ...(path ? { file: { path, watch: d.watch_log_file } } : {}),
    useStderr: d.use_stderr,
    ...(d.use_journal ? { journal: { path: opts.journalSocket ?? process.env.PORTHOLE_JOURNAL_SOCKET ?? JOURNAL_SOCKET, facility } } : {}),
    ...(d.use_syslog ? { syslog: { path: opts.syslogSocket ?? process.env.PORTHOLE_SYSLOG_SOCKET ?? SYSLOG_SOCKET, facility } } : {}),
    stdout: opts.stdout ?? process.stdout,
    stderr: opts.stderr ?? process.stderr,
    hangup: daemon,
  });
  // log_config_append's one warning is config/unhonoured.ts's, with the other options Porthole accepts but cannot honour
  return sink;
}
