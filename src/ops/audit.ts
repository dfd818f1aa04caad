/**
 * @module ops/audit
 * The audit trail: one JSON object per security event (`store/audit-events.ts` says what each
 * field means), written at once to the stream `[porthole] audit_log` names (`audit-output.ts`)
 * and, in batches, to Porthole's own store, where `GET /porthole/v1/events` and
 * `porthole events list` read it from any proxy.
 *
 * Recording never throws and never waits: a console's open or close must not depend on the
 * audit's store. Store writes are queued (at most `MAX_QUEUED` events; past it the oldest are
 * dropped and counted), sent every `FLUSH_MS` or once `BATCH` are waiting, one batch at a time;
 * a batch that fails goes back to the front of the queue and the next try waits longer (up to
 * `MAX_BACKOFF_MS`). Failures of the stream or the store are counted (`stats`) and logged at
 * most once per `WARN_EVERY_MS` each, with what was lost meanwhile.
 *
 * The retention (`[porthole] audit_retention_days`) is applied by `sweep`, which the gateway
 * runs on its own timer in the process that does the once-per-installation work.
 */
import { hostname, userInfo } from 'node:os';
import type { Config } from '../config/options.ts';
import { AUDIT_SCHEMA_VERSION, type AuditActor, type AuditEventStore, type AuditInput, type AuditLine, type AuditRecorder } from '../store/audit-events.ts';
import { openAuditOutput, type AuditOutput } from './audit-output.ts';

/** Events waiting for the store at most; past it the oldest are dropped (they are in the stream). */
export const MAX_QUEUED = 10_000;
/** Events per store write. */
const BATCH = 200;
const FLUSH_MS = 250;
const MAX_BACKOFF_MS = 30_000;
/** A failing output or store is logged at most this often. */
const WARN_EVERY_MS = 60_000;
/** How often the retention sweep runs. */
export const SWEEP_EVERY_MS = 10 * 60_000;

/** What the trail logs its own failures to: the process's pino logger, or the CLI's standard error. */
export interface AuditLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface AuditTrailOptions {
  /** `[porthole] audit_log`: a file path, `syslog`, `journal`; null: the store only. */
  readonly target: string | null;
  /** Porthole's own store's events; null: none (a Nova database alone): the stream only. */
  readonly store: AuditEventStore | null;
  readonly log: AuditLog;
  /** `[porthole] audit_retention_days`; 0: kept until deleted by hand. */
  readonly retentionDays: number;
  /** The recording process, written as every line's `proxy` (changeable: listeners start later). */
  readonly proxy?: string;
  /** Reopen the file on SIGHUP (a daemon; the CLI and tests say false). */
  readonly hangup?: boolean;
  readonly syslogSocket?: string;
  readonly journalSocket?: string;
}

export interface AuditStats {
  /** Events recorded. */
  recorded: number;
  /** Lines the stream (file, syslog, journal) did not take. */
  outputFailures: number;
  /** Store writes (batches) that failed; their events were queued again. */
  storeFailures: number;
  /** Events never written to the store (queue full, or the trail closed before the store came back). */
  storeDropped: number;
}

/** A warning logged at most once per period, with how many times it was held back. */
class RateLimitedWarning {
  private last = 0;
  private held = 0;
  constructor(private readonly log: AuditLog, private readonly event: string) {}

  warn(fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - this.last < WARN_EVERY_MS) {
      this.held++;
      return;
    }
    const held = this.held;
    this.last = now;
    this.held = 0;
    this.log.warn({ event: this.event, ...fields, ...(held ? { suppressed: held } : {}) }, held ? `${message} (${held} more such failure(s) since the last warning)` : message);
  }
}

export class AuditTrail implements AuditRecorder {
  /** The recording process, as every line names it. */
  proxy: string | undefined;
  readonly stats: AuditStats = { recorded: 0, outputFailures: 0, storeFailures: 0, storeDropped: 0 };
  readonly store: AuditEventStore | null;
  private output: AuditOutput | undefined;
  private readonly queue: AuditLine[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopSweep: (() => void) | undefined;
  private flushing: Promise<void> | undefined;
  private backoffMs = 0;
  private closed = false;
  private readonly outputWarning: RateLimitedWarning;
  private readonly storeWarning: RateLimitedWarning;
  private readonly onHangup = () => this.reopen();

  /** Opens the stream at once: an audit file that cannot be opened throws here, at start. */
  constructor(private readonly opts: AuditTrailOptions) {
    this.proxy = opts.proxy;
    this.store = opts.store;
    this.outputWarning = new RateLimitedWarning(opts.log, 'audit_output_failed');
    this.storeWarning = new RateLimitedWarning(opts.log, 'audit_store_failed');
    if (opts.target) this.output = openAuditOutput(opts.target, { syslogSocket: opts.syslogSocket, journalSocket: opts.journalSocket, onLost: (what, err) => this.outputFailed(what, err) });
    if (opts.hangup && this.output) process.on('SIGHUP', this.onHangup);
  }

  record(input: AuditInput): void {
    if (this.closed) return;
    try {
      const { event, ...rest } = input;
      // time, event and version first: what a person reads of a line
      const line: AuditLine = { time: new Date().toISOString(), event, v: AUDIT_SCHEMA_VERSION, ...rest, ...(this.proxy ? { proxy: this.proxy } : {}) };
      this.stats.recorded++;
      if (this.output) {
        try {
          this.output.write(line, JSON.stringify(line));
        } catch (err) {
          this.outputFailed(this.output.what, err as Error);
        }
      }
      if (!this.store) return;
      if (this.queue.length >= MAX_QUEUED) {
        this.queue.shift();
        this.stats.storeDropped++;
      }
      this.queue.push(line);
      this.schedule();
    } catch (err) {
      // nothing a recorder does may end a console or an API request
      this.opts.log.error({ event: 'bug', err: (err as Error)?.message }, `audit record failed: ${(err as Error)?.stack ?? err}`);
    }
  }

  /** SIGHUP: the audit file closed and opened again at its path. */
  reopen(): void {
    try {
      this.output?.reopen();
    } catch (err) {
      this.outputFailed(this.output!.what, err as Error);
    }
  }

  /** Deletes the store's events older than the retention; the number deleted (0 without a store or retention). */
  sweep(now = Date.now()): Promise<number> {
    return sweepAuditEvents(this.store, this.opts.retentionDays, now);
  }

  /** Runs `sweep` every `SWEEP_EVERY_MS` (and once soon after the start) until `close`. */
  startSweep(): void {
    if (this.stopSweep) return;
    this.stopSweep = startAuditSweep(this.store, this.opts.retentionDays, this.opts.log);
  }

  /** Writes what is queued (waiting at most `waitMs` for the store), then closes the stream. */
  async close(waitMs = 3000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    process.off('SIGHUP', this.onHangup);
    this.stopSweep?.();
    clearTimeout(this.timer);
    this.timer = undefined;
    const deadline = Date.now() + waitMs;
    while (this.queue.length > 0 && Date.now() < deadline) {
      // a store that does not answer holds the close no longer than the deadline
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), Math.max(0, deadline - Date.now()))));
      const outcome = await Promise.race([this.flushing ?? this.flush(), late]);
      clearTimeout(timer);
      if (outcome === 'late' || (this.queue.length > 0 && this.backoffMs > 0)) break;
    }
    if (this.queue.length > 0) {
      this.stats.storeDropped += this.queue.length;
      this.opts.log.warn({ event: 'audit_store_failed', dropped: this.queue.length }, `${this.queue.length} audit event(s) could not be written to ${this.store?.description ?? 'the store'} before closing${this.output ? ` (they are in ${this.output.what})` : ''}`);
      this.queue.length = 0;
    }
    this.output?.close();
    this.output = undefined;
  }

  /** Resolves when the events queued so far are written (or their write failed): for tests and the CLI. */
  async flushed(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.queue.length > 0) await this.flush();
  }

  private schedule(): void {
    if (this.flushing || this.timer) return;
    const delay = this.backoffMs || (this.queue.length >= BATCH ? 0 : FLUSH_MS);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
    // a pending write must not keep a finished process alive; close() writes what is left
    this.timer.unref();
  }

  private flush(): Promise<void> {
    if (this.flushing || !this.store || this.queue.length === 0) return this.flushing ?? Promise.resolve();
    const batch = this.queue.splice(0, BATCH);
    const store = this.store;
    this.flushing = store
      .append(batch)
      .then(
        () => {
          this.backoffMs = 0;
        },
        (err: Error) => {
          this.stats.storeFailures++;
          // back to the front, as far as there is room: the newest are kept when the queue overflows
          const room = MAX_QUEUED - this.queue.length;
          const kept = batch.slice(Math.max(0, batch.length - room));
          this.stats.storeDropped += batch.length - kept.length;
          this.queue.unshift(...kept);
          this.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(500, this.backoffMs * 2));
          this.storeWarning.warn({ store: store.description, err: err.message, queued: this.queue.length, dropped: this.stats.storeDropped }, `audit events not written to ${store.description}: ${err.message}; ${this.queue.length} queued, ${this.stats.storeDropped} dropped so far${this.output ? ` (every event is in ${this.output.what})` : ''}; consoles go on`);
        },
      )
      .finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0 && !this.closed) this.schedule();
      });
    return this.flushing;
  }

  private outputFailed(what: string, err: Error): void {
    this.stats.outputFailures++;
    this.outputWarning.warn({ output: what, err: err.message }, `cannot write the audit trail to ${what}: ${err.message}${this.store ? '; events still go to the store' : ''}`);
  }
}

/** Deletes `store`'s events older than `retentionDays` (0: none); how many. */
export async function sweepAuditEvents(store: AuditEventStore | null | undefined, retentionDays: number, now = Date.now()): Promise<number> {
  if (!store || retentionDays <= 0) return 0;
  return store.sweep(now - retentionDays * 86_400_000);
}

/**
 * Applies `[porthole] audit_retention_days` every `SWEEP_EVERY_MS` (the first a minute after
 * the start) in the process that does the once-per-installation work; returns what stops it.
 */
export function startAuditSweep(store: AuditEventStore | null | undefined, retentionDays: number, log: AuditLog): () => void {
  if (!store || retentionDays <= 0) return () => {};
  const run = () => {
    sweepAuditEvents(store, retentionDays).then(
      (n) => n > 0 && log.info({ event: 'audit_sweep', deleted: n }, `deleted ${n} audit event(s) older than ${retentionDays} day(s)`),
      (err: Error) => log.warn({ event: 'audit_sweep', err: err.message }, `sweep of old audit events failed: ${err.message}`),
    );
  };
  const first = setTimeout(run, 60_000);
  const timer = setInterval(run, SWEEP_EVERY_MS);
  first.unref();
  timer.unref();
  return () => {
    clearTimeout(first);
    clearInterval(timer);
  };
}

/** The trail `config` asks for. */
export function openAuditTrail(config: Config, deps: { readonly store: AuditEventStore | null | undefined; readonly log: AuditLog; readonly proxy?: string; readonly hangup?: boolean }): AuditTrail {
  return new AuditTrail({ target: config.porthole.audit_log, store: deps.store ?? null, log: deps.log, retentionDays: config.porthole.audit_retention_days, proxy: deps.proxy, hangup: deps.hangup });
}

/** The actor of a `porthole` command: the operating-system user who ran it. */
export function cliActor(): AuditActor {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = String(process.getuid?.() ?? 'unknown');
  }
  return { cli: user };
}

/** The `proxy` of a command's lines: `cli@<hostname>`. */
export function cliSource(): string {
  return `cli@${hostname()}`;
}
