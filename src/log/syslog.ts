/**
 * @module log/syslog
 * `use_syslog`: each record also sent to the local syslog daemon as syslog(3) does, one
 * datagram on /dev/log: `<PRI>Mmm dd hh:mm:ss program[pid]: LEVEL porthole.proxy [-] message
 * key=value` (RFC 3164's shape; the JSON object instead of the text with use_json), PRI being
 * facility × 8 + severity. As in oslo.log it is an extra output beside the file, standard output
 * or the journal. Facilities by oslo.log's names (`LOG_LOCAL0`, also `local0`); another name is a
 * configuration error, as oslo.log's is.
 */
import { GatewayError } from '../errors.ts';
import { DatagramLink } from './datagram.ts';
import { cutBytes, MAX_MESSAGE } from './journal.ts';
import { SYSLOG_SEVERITY, type LogRecord } from './record.ts';
import { strftime } from './strftime.ts';

export const SYSLOG_SOCKET = '/dev/log';

/** syslog.h's facilities, the ones oslo.log's _find_facility accepts. */
export const FACILITIES: Readonly<Record<string, number>> = {
  LOG_KERN: 0, LOG_USER: 1, LOG_MAIL: 2, LOG_DAEMON: 3, LOG_AUTH: 4, LOG_SYSLOG: 5, LOG_LPR: 6, LOG_NEWS: 7,
  LOG_UUCP: 8, LOG_CRON: 9, LOG_AUTHPRIV: 10, LOG_FTP: 11,
  LOG_LOCAL0: 16, LOG_LOCAL1: 17, LOG_LOCAL2: 18, LOG_LOCAL3: 19, LOG_LOCAL4: 20, LOG_LOCAL5: 21, LOG_LOCAL6: 22, LOG_LOCAL7: 23,
};

/** `[DEFAULT] syslog_log_facility`'s number, as oslo.log reads it (any case, `LOG_` optional). */
export function facilityCode(name: string): number {
  let upper = name.trim().toUpperCase();
  if (!upper.startsWith('LOG_')) upper = `LOG_${upper}`;
  const code = FACILITIES[upper];
  if (code === undefined) {
    throw new GatewayError('CONFIG_INVALID', `[DEFAULT] syslog_log_facility = ${name}: syslog facility must be one of ${Object.keys(FACILITIES).join(', ')}`);
  }
  return code;
}

/** The datagram of one record: `body` is the record's text after the time and pid. */
export function syslogDatagram(record: LogRecord, body: string, program: string, facility: number, pid = process.pid): Buffer {
  const pri = facility * 8 + SYSLOG_SEVERITY[record.level];
  // glibc's syslog(3) header: `%h %e %T` in local time, then the identifier and pid
  const stamp = strftime('%b %e %H:%M:%S', new Date(record.time));
  return Buffer.from(`<${pri}>${stamp} ${program}[${pid}]: ${cutBytes(body, MAX_MESSAGE)}`, 'utf8');
}

/** Syslog as a log output. */
export class SyslogOutput {
  private readonly link: DatagramLink;

  constructor(readonly path: string, private readonly program: string, private readonly facility: number, onLost: (err: Error) => void) {
    this.link = new DatagramLink(path, onLost);
  }

  get what(): string {
    return `syslog (${this.path})`;
  }

  emit(record: LogRecord, body: string): void {
    this.link.send(syslogDatagram(record, body, this.program, this.facility));
  }

  close(): void {
    this.link.close();
  }
}
