/**
 * @module log/journal
 * `use_journal`: records sent to systemd-journald with its native protocol (what
 * sd_journal_sendv() writes, systemd's "Native Journal Protocol"): one datagram per record on
 * /run/systemd/journal/socket, one `FIELD=value\n` per field, and for a value with a newline the
 * binary-safe form `FIELD\n<64-bit little-endian length><value>\n`. No C library is needed.
 *
 * Fields: MESSAGE (the text after the level: `porthole.proxy [-] message key=value`, or the JSON
 * object with use_json), PRIORITY (syslog severity), SYSLOG_IDENTIFIER (the program name),
 * SYSLOG_PID, SYSLOG_FACILITY, and oslo.log's LOGGER_NAME, LOGGER_LEVEL, EXCEPTION_INFO (at
 * debug); each structured field as PORTHOLE_<NAME> (`tokenHash` → PORTHOLE_TOKEN_HASH), so
 * `journalctl PORTHOLE_EVENT=refused` finds the refusals. A MESSAGE above 48 KiB (journald's LineMax) is cut:
 * journald takes bigger entries only through a memfd, which Node cannot pass.
 */
import { DatagramLink } from './datagram.ts';
import { SYSLOG_SEVERITY, type LogRecord } from './record.ts';

export const JOURNAL_SOCKET = '/run/systemd/journal/socket';
/** Bytes of MESSAGE kept: journald's own line limit (LineMax) by default. */
export const MAX_MESSAGE = 48 * 1024;
/** Field names are at most 64 characters (journald refuses longer ones). */
const MAX_NAME = 64;
const FIELD_PREFIX = 'PORTHOLE_';

/** A structured field's journal name: `[A-Z0-9_]`, not starting with `_`, prefixed. */
export function journalFieldName(key: string): string {
  const upper = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase().replace(/[^A-Z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  return `${FIELD_PREFIX}${upper || 'FIELD'}`.slice(0, MAX_NAME);
}

function valueText(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
}

/** The datagram of `fields` in the native protocol. */
export function journalDatagram(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    if (!value.includes('\n')) {
      parts.push(Buffer.from(`${name}=${value}\n`, 'utf8'));
      continue;
    }
    const v = Buffer.from(value, 'utf8');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(v.length));
    parts.push(Buffer.from(`${name}\n`, 'utf8'), length, v, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** Cuts `text` to at most `max` bytes of UTF-8 without splitting a character. */
export function cutBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let cut = Buffer.from(text, 'utf8').subarray(0, max).toString('utf8');
  // a character split at the cut decodes as U+FFFD: drop it
  if (cut.endsWith('\ufffd')) cut = cut.slice(0, -1);
  return `${cut}…`;
}

export interface JournalOptions {
  readonly program: string;
  readonly facility: number;
  readonly withStack: boolean;
}

/** The record's journal fields; `message` is its MESSAGE as the chosen format writes it. */
export function journalFields(record: LogRecord, message: string, opts: JournalOptions, pid = process.pid): Array<[string, string]> {
  const fields: Array<[string, string]> = [
    ['MESSAGE', cutBytes(message, MAX_MESSAGE)],
    ['PRIORITY', String(SYSLOG_SEVERITY[record.level])],
    ['SYSLOG_IDENTIFIER', opts.program],
    ['SYSLOG_PID', String(pid)],
    ['SYSLOG_FACILITY', String(opts.facility)],
    ['LOGGER_NAME', record.name],
    ['LOGGER_LEVEL', record.level],
  ];
  if (record.error !== undefined) fields.push([journalFieldName('err'), record.error]);
  if (opts.withStack && record.stack) fields.push(['EXCEPTION_INFO', cutBytes(record.stack, MAX_MESSAGE)]);
  const seen = new Set(fields.map(([n]) => n));
  for (const [k, v] of Object.entries(record.fields)) {
    if (v === undefined) continue;
    const name = journalFieldName(k);
    if (seen.has(name)) continue;
    seen.add(name);
    fields.push([name, cutBytes(valueText(v), 4096)]);
  }
  return fields;
}

/** The journal as a log output. */
export class JournalOutput {
  private readonly link: DatagramLink;

  constructor(readonly path: string, private readonly opts: JournalOptions, onLost: (err: Error) => void) {
    this.link = new DatagramLink(path, onLost);
  }

  get what(): string {
    return `the journal (${this.path})`;
  }

  emit(record: LogRecord, message: string): void {
    this.link.send(journalDatagram(journalFields(record, message, this.opts)));
  }

  close(): void {
    this.link.close();
  }
}
