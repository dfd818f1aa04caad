/**
 * @module log/record
 * One log record as every format sees it, made from the JSON line pino writes: the time, the
 * level by oslo.log's (Python logging's) name, the logger's dotted name, the message, the
 * structured fields (redacted), and an error's stack when there is one. The formats in this
 * folder turn a record into text, JSON, journal fields or a syslog datagram.
 */
import { redactText, redactValue } from './redact.ts';

export type LevelName = 'TRACE' | 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';

export interface LogRecord {
  /** Epoch milliseconds. */
  readonly time: number;
  readonly level: LevelName;
  /** The logger's dotted name: `porthole`, `porthole.api`, a child's `name` binding. */
  readonly name: string;
  readonly message: string;
  /** The structured fields in the order they were given, redacted, without name, time, level. */
  readonly fields: Readonly<Record<string, unknown>>;
  /** An error's short description (`err`'s message), when the record carries one. */
  readonly error?: string;
  /** The error's stack (from `err.stack` or a `stack` field), printed only at debug. */
  readonly stack?: string;
}

/** The root logger's name; a child bound with `{ name: 'porthole.proxy' }` logs as that. */
export const ROOT_LOGGER = 'porthole';

/** pino's numeric levels as oslo.log names them (pino's fatal is Python's CRITICAL). */
const LEVELS: Record<number, LevelName> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARNING', 50: 'ERROR', 60: 'CRITICAL' };

/** Python logging's numbers (oslo.log's TRACE is 5), for JSON's `levelno`. */
export const PYTHON_LEVELS: Record<LevelName, number> = { TRACE: 5, DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };

/** syslog(3) severities, as oslo.log's SYSLOG_MAP (TRACE as DEBUG). */
export const SYSLOG_SEVERITY: Record<LevelName, number> = { TRACE: 7, DEBUG: 7, INFO: 6, WARNING: 4, ERROR: 3, CRITICAL: 2 };

function levelName(level: unknown): LevelName {
  if (typeof level !== 'number') return 'INFO';
  return LEVELS[level] ?? (level < 20 ? 'TRACE' : level >= 60 ? 'CRITICAL' : LEVELS[Math.floor(level / 10) * 10] ?? 'INFO');
}

/**
 * The record of one line of pino's JSON. Bindings that only say where the line comes from are
 * dropped or become the logger name: `pid` (every format prints the process's own), `hostname`,
 * `component` (`api` makes `porthole.api`).
 */
export function recordOf(parsed: Record<string, unknown>): LogRecord {
  const { level, time, msg, name, component, pid, hostname: _h, err, stack, ...rest } = parsed;
  const fields: Record<string, unknown> = {};
  // a worker binds its pid (workers.ts); another process's pid would be a field worth keeping
  if (pid !== undefined && pid !== process.pid) fields.pid = pid;
  let error: string | undefined;
  let errStack: string | undefined;
  if (err !== undefined && err !== null) {
    if (typeof err === 'object') {
      const e = err as { message?: unknown; stack?: unknown; type?: unknown };
      error = redactText(String(e.message ?? e.type ?? 'error'));
      if (typeof e.stack === 'string') errStack = redactText(e.stack);
    } else {
      error = redactText(String(err));
    }
  }
  if (typeof stack === 'string') errStack = redactText(stack);
  Object.assign(fields, redactValue(rest) as Record<string, unknown>);
  return {
    time: typeof time === 'number' ? time : Date.now(),
    level: levelName(level),
    name: typeof name === 'string' && name ? name : typeof component === 'string' && component ? `${ROOT_LOGGER}.${component}` : ROOT_LOGGER,
    message: redactText(typeof msg === 'string' ? msg : msg === undefined ? '' : String(msg)),
    fields,
    ...(error !== undefined ? { error } : {}),
    ...(errStack !== undefined ? { stack: errStack } : {}),
  };
}
