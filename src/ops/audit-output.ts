/**
 * @module ops/audit-output
 * Where `[porthole] audit_log` sends the audit trail's lines, through the main log's own writers
 * (`src/log/`), each as a stream of its own:
 *
 * - a file path: `LogFile` (O_APPEND, so every process of an installation may share the file; one
 *   write(2) per line), created 0600 (it names users, clients and servers), reopened on SIGHUP
 *   as the main log file is (logrotate's `create` then `postrotate kill -HUP`);
 * - `syslog`: one datagram per line on /dev/log ($PORTHOLE_SYSLOG_SOCKET), identifier
 *   `porthole-audit`, facility LOG_AUTHPRIV (security messages; Debian's rsyslog puts them in
 *   /var/log/auth.log), the JSON line as the message;
 * - `journal`: journald's native protocol ($PORTHOLE_JOURNAL_SOCKET), SYSLOG_IDENTIFIER
 *   porthole-audit, the JSON line as MESSAGE and each field as PORTHOLE_<NAME>
 *   (`journalctl SYSLOG_IDENTIFIER=porthole-audit PORTHOLE_EVENT=token.refused`).
 *
 * `write` throws when the line could not be handed over; the trail counts and reports it.
 */
import { LogFile } from '../log/log-file.ts';
import { JOURNAL_SOCKET, JournalOutput } from '../log/journal.ts';
import type { LogRecord } from '../log/record.ts';
import { FACILITIES, SYSLOG_SOCKET, SyslogOutput } from '../log/syslog.ts';
import type { AuditLine } from '../store/audit-events.ts';

/** The program name of the audit stream in syslog and the journal. */
export const AUDIT_IDENTIFIER = 'porthole-audit';
/** How the audit file is created: its owner only. */
export const AUDIT_FILE_MODE = 0o600;
const AUDIT_FACILITY = FACILITIES.LOG_AUTHPRIV!;

export interface AuditOutput {
  /** For messages: `the audit file /var/log/porthole/audit.log`. */
  readonly what: string;
  write(line: AuditLine, json: string): void;
  /** SIGHUP: a file is closed and opened again at its path; a socket needs nothing. */
  reopen(): void;
  close(): void;
}

export interface AuditOutputOptions {
  readonly syslogSocket?: string;
  readonly journalSocket?: string;
  /** A failure found after a line was handed over (a congested or vanished log daemon). */
  readonly onLost: (what: string, err: Error) => void;
}

/** The output `audit_log` names; a file that cannot be opened throws (at start, like the main log file). */
export function openAuditOutput(target: string, opts: AuditOutputOptions): AuditOutput {
  if (target === 'syslog') {
    const path = opts.syslogSocket ?? process.env.PORTHOLE_SYSLOG_SOCKET ?? SYSLOG_SOCKET;
    const what = `the audit stream to syslog (${path})`;
    const out = new SyslogOutput(path, AUDIT_IDENTIFIER, AUDIT_FACILITY, (err) => opts.onLost(what, err));
    return { what, write: (line, json) => out.emit(record(line, json), json), reopen() {}, close: () => out.close() };
  }
  if (target === 'journal') {
    const path = opts.journalSocket ?? process.env.PORTHOLE_JOURNAL_SOCKET ?? JOURNAL_SOCKET;
    const what = `the audit stream to the journal (${path})`;
    const out = new JournalOutput(path, { program: AUDIT_IDENTIFIER, facility: AUDIT_FACILITY, withStack: false }, (err) => opts.onLost(what, err));
    return { what, write: (line, json) => out.emit(record(line, json), json), reopen() {}, close: () => out.close() };
  }
  const file = new LogFile(target, false, AUDIT_FILE_MODE);
  return { what: `the audit file ${target}`, write: (_line, json) => file.write(`${json}\n`), reopen: () => file.reopen(), close: () => file.close() };
}

/** A line as the log writers' record: their fields become the journal's PORTHOLE_* fields. */
function record(line: AuditLine, json: string): LogRecord {
  const { time, ...fields } = line;
  return { time: Date.parse(time), level: 'INFO', name: 'porthole.audit', message: json, fields };
}
