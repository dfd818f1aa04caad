/**
 * @module log/sink
 * Where log lines go: the destination pino writes its JSON lines to. Each line becomes a record
 * (log/record.ts) that is formatted (oslo.log's text, or JSON with use_json) and written to the
 * outputs oslo.log's `_setup_logging_from_conf` would choose: the log file (log_file, log_dir),
 * standard error (use_stderr), the journal (use_journal), else standard output; and syslog
 * (use_syslog) in addition to those.
 *
 * A log call never throws and never ends the process. An output that fails (the journal's
 * socket missing, a file that cannot be opened or written, standard output closed) is dropped
 * with one warning on standard error, and its lines go to standard error from then on (syslog,
 * being an extra copy, is just dropped). SIGHUP reopens the log file.
 */
import { formatJson } from './json.ts';
import { JournalOutput } from './journal.ts';
import { LogFile } from './log-file.ts';
import { recordOf, type LogRecord } from './record.ts';
import { SyslogOutput } from './syslog.ts';
import { formatText, textBody } from './oslo-text.ts';

export interface SinkOptions {
  readonly program: string;
  readonly hostname: string;
  readonly dateFormat: string;
  readonly json: boolean;
  /** Debug lines are on: errors' stacks are printed. */
  readonly debug: boolean;
  readonly file?: { readonly path: string; readonly watch: boolean };
  readonly useStderr: boolean;
  readonly journal?: { readonly path: string; readonly facility: number };
  readonly syslog?: { readonly path: string; readonly facility: number };
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Reopen the log file on SIGHUP (a daemon's logger; not a test's). */
  readonly hangup: boolean;
}

/** One place lines go; `emit` throws when it cannot take them. */
interface Output {
  readonly what: string;
  /** An extra copy (syslog): when it fails, nothing replaces it. */
  readonly extra: boolean;
  emit(record: LogRecord): void;
  close(): void;
}

const SELF = 'porthole.log';

export class LogSink {
  private outputs: Output[] = [];
  private readonly file: LogFile | undefined;
  private readonly onHangup = () => this.reopen();
  private readonly failed = new Set<string>();

  constructor(private readonly opts: SinkOptions) {
    const pending: Array<[string, unknown]> = [];
    if (opts.file) {
      try {
        this.file = new LogFile(opts.file.path, opts.file.watch);
        const file = this.file;
        this.outputs.push({ what: file.what, extra: false, emit: (r) => file.write(this.line(r)), close: () => file.close() });
      } catch (err) {
        pending.push([`the log file ${opts.file.path}`, err]);
      }
    }
    if (opts.useStderr) this.outputs.push(this.stream(opts.stderr, 'standard error'));
    if (opts.journal) {
      const journal = new JournalOutput(opts.journal.path, { program: opts.program, facility: opts.journal.facility, withStack: opts.debug }, (err) => this.lost(journal.what, err));
      this.outputs.push({ what: journal.what, extra: false, emit: (r) => journal.emit(r, opts.json ? this.line(r).trimEnd() : textBody(r)), close: () => journal.close() });
    }
    if (!opts.file && !opts.useStderr && !opts.journal) this.outputs.push(this.stream(opts.stdout, 'standard output'));
    if (opts.syslog) {
      const { path, facility } = opts.syslog;
      const syslog = new SyslogOutput(path, opts.program, facility, (err) => this.lost(syslog.what, err));
      this.outputs.push({ what: syslog.what, extra: true, emit: (r) => syslog.emit(r, opts.json ? this.line(r).trimEnd() : `${r.level} ${textBody(r)}`), close: () => syslog.close() });
    }
    for (const [what, err] of pending) this.fail(what, err, undefined, false);
    if (opts.hangup && this.file) process.on('SIGHUP', this.onHangup);
  }

  /** pino's destination: one JSON line per call. */
  write(chunk: string): boolean {
    try {
      for (const text of chunk.split('\n')) if (text) this.dispatch(recordOf(parseLine(text)));
    } catch {
      // formatting failed: nothing a log call may throw
    }
    return true;
  }

  /** SIGHUP: the log file closed and opened again at its path. */
  reopen(): void {
    if (!this.file) return;
    try {
      this.file.reopen();
    } catch (err) {
      this.fail(this.file.what, err, undefined, false);
    }
  }

  close(): void {
    process.off('SIGHUP', this.onHangup);
    for (const o of this.outputs) o.close();
    this.outputs = [];
  }

  private dispatch(record: LogRecord): void {
    for (const o of [...this.outputs]) {
      try {
        o.emit(record);
      } catch (err) {
        this.fail(o.what, err, record, o.extra);
      }
    }
  }

  /** The record as a line of the chosen format. */
  private line(record: LogRecord): string {
    const o = this.opts;
    return o.json ? formatJson(record, { dateFormat: o.dateFormat, withStack: o.debug, program: o.program, hostname: o.hostname }) : formatText(record, { dateFormat: o.dateFormat, withStack: o.debug });
  }

  private stream(s: NodeJS.WritableStream, what: string): Output {
    const out: Output = { what, extra: false, emit: (r) => void s.write(this.line(r)), close: () => {} };
    // EPIPE and the like arrive as events: unheard, they would end the process
    s.on('error', (err: unknown) => this.lost(what, err));
    return out;
  }

  /** A failure found after the line was handed over (a closed pipe, a congested daemon's queue). */
  private lost(what: string, err: unknown): void {
    const o = this.outputs.find((x) => x.what === what);
    this.fail(what, err, undefined, o?.extra ?? false);
  }

  /**
   * Drops the output named `what`, says so once on standard error, and sends its lines (and
   * `record`, which it could not take) there, unless it was an extra copy.
   */
  private fail(what: string, err: unknown, record: LogRecord | undefined, extra: boolean): void {
    const gone = this.outputs.find((o) => o.what === what);
    this.outputs = this.outputs.filter((o) => o !== gone);
    try {
      gone?.close();
    } catch {
      // it failed already
    }
    if (this.failed.has(what)) return;
    this.failed.add(what);
    const reason = (err as Error)?.message ?? String(err);
    const toStderr = !extra && what !== 'standard error' && !this.outputs.some((o) => o.what === 'standard error');
    const then = extra ? 'the other log outputs go on' : toStderr ? 'logging to standard error instead' : 'the other log outputs go on';
    const warning = recordOf({ level: 40, time: Date.now(), msg: `cannot write the log to ${what}: ${reason}; ${then}`, name: SELF, event: 'log_output_failed' });
    try {
      this.opts.stderr.write(this.line(warning));
    } catch {
      // standard error is the last resort; there is nowhere else to say it
    }
    if (!toStderr) return;
    const stderr = this.stream(this.opts.stderr, 'standard error');
    this.outputs.unshift(stderr);
    if (record) {
      try {
        stderr.emit(record);
      } catch {
        // as above
      }
    }
  }
}

function parseLine(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object') return v as Record<string, unknown>;
  } catch {
    // not pino's JSON: logged as it is
  }
  return { level: 30, time: Date.now(), msg: text };
}
