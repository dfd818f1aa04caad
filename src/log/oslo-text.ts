/**
 * @module log/oslo-text
 * oslo.log's text lines, the default everywhere (terminal, pipe, file):
 * `2024-05-01 12:00:00.123 4242 INFO porthole.proxy [-] [instance: <uuid>] message key=value ...`
 * is oslo.log's `logging_default_format_string`
 * (`%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [-] %(instance)s%(message)s`) with
 * Porthole's structured fields after the message, so `grep`, `awk` and tools written for Nova's
 * logs read them. Nothing a peer sent can start a line of its own: the message and the fields
 * have every control and invisible formatting character escaped (`\u000a`), and a field's value
 * is JSON-quoted unless it is a plain word. An error's stack follows on lines of its own only at
 * debug, each with oslo.log's `logging_exception_prefix` (`<time> <pid> ERROR <name> `), so every
 * line still starts as a log line does.
 */
import { escapeUnsafe, printable } from './escape.ts';
import type { LogRecord } from './record.ts';
import { strftime } from './strftime.ts';

export interface TextOptions {
  /** `[DEFAULT] log_date_format`. */
  readonly dateFormat: string;
  /** Whether the stack of an error follows its line (debug on). */
  readonly withStack: boolean;
}

const PLAIN = /^[A-Za-z0-9_.:/@+\-,[\]*]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A field's value is cut here: a log line stays a line, not a dump. */
const MAX_VALUE = 2000;

/** One field's value as it is printed after `key=`. */
export function fieldText(value: unknown): string {
  if (typeof value === 'string') return PLAIN.test(value) && value.length <= MAX_VALUE ? value : printable(value, MAX_VALUE);
  if (value === null || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  const json = JSON.stringify(value) ?? String(value);
  return escapeUnsafe(json.length > MAX_VALUE ? `${json.slice(0, MAX_VALUE)}…` : json);
}

/** `key=value` pairs after the message, each with a leading space; undefined fields are left out. */
export function fieldsText(record: LogRecord, skip?: string): string {
  let out = '';
  for (const [k, v] of Object.entries(record.fields)) {
    if (v === undefined || k === skip) continue;
    out += ` ${k.replace(/[^\w.-]/g, '_')}=${fieldText(v)}`;
  }
  if (record.error !== undefined) out += ` err=${fieldText(record.error)}`;
  return out;
}

/** `name [-] [instance: uuid] message fields`: what follows the level in every text format. */
export function textBody(record: LogRecord): string {
  const instance = record.fields.instance;
  const isUuid = typeof instance === 'string' && UUID.test(instance);
  // oslo.log's instance_uuid_format, where Nova's lines name the instance
  const prefix = isUuid ? `[instance: ${instance}] ` : '';
  return `${escapeUnsafe(record.name)} [-] ${prefix}${escapeUnsafe(record.message)}${fieldsText(record, isUuid ? 'instance' : undefined)}`;
}

/** `asctime.msecs pid`: the start of a line and of each of its stack lines. */
function stamp(record: LogRecord, opts: TextOptions, pid: number): string {
  const d = new Date(record.time);
  return `${strftime(opts.dateFormat, d)}.${String(d.getMilliseconds()).padStart(3, '0')} ${pid}`;
}

/** The record as oslo.log's text line(s), each ending in `\n`. */
export function formatText(record: LogRecord, opts: TextOptions, pid = process.pid): string {
  const head = stamp(record, opts, pid);
  let out = `${head} ${record.level} ${textBody(record)}\n`;
  if (opts.withStack && record.stack) {
    const prefix = `${head} ERROR ${escapeUnsafe(record.name)} `;
    for (const line of record.stack.split('\n')) out += `${prefix}${escapeUnsafe(line)}\n`;
  }
  return out;
}
