/**
 * @module log/json
 * `use_json`: one JSON object per line, with the keys of oslo.log's JSONFormatter that mean
 * something here (`message`, `asctime`, `name`, `levelname`, `levelno`, `created`, `msecs`,
 * `process`, `process_name`, `hostname`, `traceback`, `error_summary`, `extra`) and `isotime`,
 * the ISO-8601 local time with its offset that oslo.log computes for its text formats. The
 * structured fields (`event`, `code`, `tokenHash`, ...) are in `extra`, as oslo.log puts a
 * record's extra keys. The stack of an error is in `traceback` (a list of lines) at debug only.
 */
import { escapeUnsafe } from './escape.ts';
import { PYTHON_LEVELS, type LogRecord } from './record.ts';
import { strftime } from './strftime.ts';

export interface JsonOptions {
  readonly dateFormat: string;
  readonly withStack: boolean;
  /** The program name (`nova-novncproxy`, `porthole`), oslo.log's `process_name` slot. */
  readonly program: string;
  readonly hostname: string;
}

/** ISO-8601 local time with milliseconds and offset: `2024-05-01T14:00:00.123+02:00`. */
export function isoLocal(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const a = Math.abs(off);
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}${off < 0 ? '-' : '+'}${p(Math.floor(a / 60))}:${p(a % 60)}`;
}

/** The record as one JSON line ending in `\n`. */
export function formatJson(record: LogRecord, opts: JsonOptions, pid = process.pid): string {
  const d = new Date(record.time);
  const object = {
    message: record.message,
    asctime: strftime(opts.dateFormat, d),
    isotime: isoLocal(d),
    name: record.name,
    levelname: record.level,
    levelno: PYTHON_LEVELS[record.level],
    created: record.time / 1000,
    msecs: d.getMilliseconds(),
    process: pid,
    process_name: opts.program,
    hostname: opts.hostname,
    traceback: opts.withStack && record.stack ? record.stack.split('\n') : null,
    error_summary: record.error ?? '',
    extra: record.fields,
  };
  // JSON.stringify leaves U+2028/9 and the bidirectional controls raw; escaped they are still JSON
  return `${escapeUnsafe(JSON.stringify(object))}\n`;
}
