/**
 * @module ops/metrics
 * The Prometheus metrics of one Porthole process, in a `prom-client` Registry the gateway owns (no
 * default global registry): what the console listeners tell (`ConsoleEvents`: lookups, backends
 * connected, sessions started and ended, refusals), what the compute API tells (one call per
 * answered request), and Node's own process figures (prom-client's default metrics: CPU, memory,
 * event-loop delay, GC). Every name starts with `porthole_`, except Node's (`process_`, `nodejs_`).
 *
 * Labels are bounded sets and never name a token, a server or an address: the console kind, a
 * session's end mapped to one of `END_REASONS`, a refusal's `GatewayError` code and its HTTP
 * status or close code, the store's kind, the API's route pattern (never its URL).
 *
 * Nothing here is on the byte path: bytes are added when a session ends, and the live sessions'
 * bytes are read from their counters when a scrape asks (`collect`), so a scrape sees exact
 * totals while the relay does no more than it did.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GatewayError } from '../errors.ts';
import type { ConnectionFacts, ConsoleEvents, LookupResult } from '../proxy/events.ts';
import { CLOSE_EXPIRED, CLOSE_IDLE, CLOSE_MAX_DURATION, type ConsoleSession, type SessionEnd } from '../proxy/relay.ts';
import { CLOSE_KILLED, CLOSE_REVOKED, CLOSE_SHUTDOWN } from '../sessions/tracker.ts';

/** How a console session ended, as the `reason` label says it. */
export const END_REASONS = ['client', 'backend', 'error', 'revoked', 'killed', 'expired', 'idle', 'duration', 'shutdown', 'other'] as const;
export type EndReason = (typeof END_REASONS)[number];

/** What a process is, for `porthole_process_info`. */
export interface MetricsOptions {
  /** The console kinds whose listeners run here (`novnc`, `serial`, `spice`). */
  readonly consoles: readonly string[];
  /** Whether the compute API runs here. */
  readonly api: boolean;
  /**
   * The token store's kind (`sqlite`, `postgres`, `mysql`, `redis`; `nova-mysql` for a Nova cell
   * database): the `store` label of the lookups.
   */
  readonly store: string;
}

// buckets in seconds: a lookup is one indexed query (sub-millisecond on SQLite, a round trip
// elsewhere) up to store_query_timeout; a handshake adds a dial and the RFB exchange
const LOOKUP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const HANDSHAKE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const API_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class GatewayMetrics {
  readonly registry = new Registry();
  /** The console events' watcher: push it into the gateway's `watchers`. */
  readonly events: ConsoleEvents;
  private defaultsOn = false;
  /** The live sessions by kind, so a scrape adds their bytes so far. */
  private readonly live = new Map<ConsoleSession, string>();
  /** Bytes of ended sessions, by `kind` then direction. */
  private readonly endedBytes = new Map<string, { toBackend: number; toClient: number }>();
  private readonly liveSessions: Gauge<'kind'>;
  private readonly sessionsStarted: Counter<'kind'>;
  private readonly sessionsEnded: Counter<'kind' | 'reason'>;
  private readonly sessionSeconds: Histogram<'kind'>;
  private readonly refusals: Counter<'kind' | 'code' | 'status'>;
  private readonly lookups: Counter<'kind' | 'result' | 'store'>;
  private readonly lookupSeconds: Histogram<'store'>;
  private readonly handshake: Histogram<'kind' | 'step'>;
  private readonly apiRequests: Counter<'route' | 'method' | 'status'>;
  private readonly apiSeconds: Histogram<'route' | 'method'>;

  constructor(private readonly opts: MetricsOptions) {
    const registers = [this.registry];
    const info = new Gauge({ name: 'porthole_process_info', help: 'Always 1 per process (summed over workers: how many processes answer): its console listeners and whether it runs the compute API.', labelNames: ['consoles', 'api', 'store'], registers });
    info.set({ consoles: opts.consoles.join(',') || 'none', api: String(opts.api), store: opts.store }, 1);
    this.liveSessions = new Gauge({ name: 'porthole_console_sessions', help: 'Console sessions open now, by console kind.', labelNames: ['kind'], registers });
    this.sessionsStarted = new Counter({ name: 'porthole_console_sessions_started_total', help: 'Console sessions started (the relay began; for RFB after ServerInit reached the browser), by console kind.', labelNames: ['kind'], registers });
    this.sessionsEnded = new Counter({ name: 'porthole_console_sessions_ended_total', help: `Console sessions ended, by console kind and reason (${END_REASONS.join(', ')}).`, labelNames: ['kind', 'reason'], registers });
    this.sessionSeconds = new Histogram({ name: 'porthole_console_session_duration_seconds', help: 'How long ended console sessions lasted, by console kind.', labelNames: ['kind'], buckets: [1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600], registers });
    const self = this;
    new Counter({
      name: 'porthole_console_bytes_total',
      help: 'Bytes relayed by console sessions, ended and live (client_to_backend: from the browser to the VM), by console kind and direction.',
      labelNames: ['kind', 'direction'],
      registers,
      collect() {
        this.reset();
        for (const [kind, b] of self.bytesByKind()) {
          this.inc({ kind, direction: 'client_to_backend' }, b.toBackend);
          this.inc({ kind, direction: 'backend_to_client' }, b.toClient);
        }
      },
    });
    this.refusals = new Counter({ name: 'porthole_console_refusals_total', help: 'Console connections that ended before their session began, by console kind, GatewayError code and status: the HTTP status of a refusal before the WebSocket upgrade (400-599), or the WebSocket close code after it (1000-4999). CLIENT_CLOSED: the client went away first.', labelNames: ['kind', 'code', 'status'], registers });
    this.lookups = new Counter({ name: 'porthole_token_lookups_total', help: 'Console token lookups by console kind, result (valid, unknown, expired, error: the store did not answer) and store kind.', labelNames: ['kind', 'result', 'store'], registers });
    this.lookupSeconds = new Histogram({ name: 'porthole_token_lookup_seconds', help: 'Time of a console token lookup in the store, by store kind.', labelNames: ['store'], buckets: LOOKUP_BUCKETS, registers });
    this.handshake = new Histogram({ name: 'porthole_console_handshake_seconds', help: 'Time from the WebSocket upgrade request to a step: backend_connected (TCP, CONNECT and TLS up), session_started (the relay began; for RFB after ServerInit reached the browser), by console kind.', labelNames: ['kind', 'step'], buckets: HANDSHAKE_BUCKETS, registers });
    this.apiRequests = new Counter({ name: 'porthole_api_requests_total', help: 'Compute API requests answered, by route pattern (never the URL), method and HTTP status.', labelNames: ['route', 'method', 'status'], registers });
    this.apiSeconds = new Histogram({ name: 'porthole_api_request_duration_seconds', help: 'Compute API request durations, by route pattern and method.', labelNames: ['route', 'method'], buckets: API_BUCKETS, registers });
    for (const kind of opts.consoles) {
      // every kind's series exist from the start, so rates over them start at 0, not at the first event
      this.liveSessions.set({ kind }, 0);
      this.sessionsStarted.inc({ kind }, 0);
      this.endedBytes.set(kind, { toBackend: 0, toClient: 0 });
    }
    this.events = {
      lookup: (facts, result, ms) => this.lookup(facts, result, ms),
      backendConnected: (facts) => this.handshake.observe({ kind: facts.kind, step: 'backend_connected' }, facts.ms / 1000),
      sessionStarted: (facts, session) => this.started(facts, session),
      sessionEnded: (facts, session, end) => this.ended(facts, session, end),
      refused: (facts, error, afterUpgrade) => this.refused(facts, error, afterUpgrade),
    };
  }

  /** Told once per answered compute API request: its route pattern (`unmatched` when none), not its URL. */
  apiRequest(route: string, method: string, status: number, ms: number): void {
    this.apiRequests.inc({ route, method, status: String(status) });
    this.apiSeconds.observe({ route, method }, ms / 1000);
  }

  /** This process's metrics in Prometheus's text format. */
  text(): Promise<string> {
    this.startDefaults();
    return this.registry.metrics();
  }

  /** This process's metrics as prom-client's JSON, for a cluster primary to sum (`metrics-cluster.ts`). */
  json(): ReturnType<Registry['getMetricsAsJSON']> {
    this.startDefaults();
    return this.registry.getMetricsAsJSON();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Node's process metrics, from the first scrape on: prom-client starts process-wide observers
   * for them (a GC PerformanceObserver, an event-loop delay monitor sampling every 10 ms) that it
   * never stops, so a process that is never scraped (metrics off, most test gateways) pays
   * nothing, and one that is pays once. The first scrape's event-loop figures cover only the
   * time since it began; the next ones are whole.
   */
  private startDefaults(): void {
    if (this.defaultsOn) return;
    this.defaultsOn = true;
    collectDefaultMetrics({ register: this.registry });
  }

  private lookup(facts: ConnectionFacts, result: LookupResult, ms: number): void {
    const store = this.opts.store;
    this.lookups.inc({ kind: facts.kind, result, store });
    this.lookupSeconds.observe({ store }, ms / 1000);
  }

  private started(facts: ConnectionFacts, session: ConsoleSession): void {
    this.live.set(session, facts.kind);
    this.liveSessions.inc({ kind: facts.kind });
    this.sessionsStarted.inc({ kind: facts.kind });
    this.handshake.observe({ kind: facts.kind, step: 'session_started' }, facts.ms / 1000);
  }

  private ended(facts: ConnectionFacts, session: ConsoleSession, end: SessionEnd): void {
    const kind = facts.kind;
    if (this.live.delete(session)) this.liveSessions.dec({ kind });
    this.sessionsEnded.inc({ kind, reason: endReason(end.reason) });
    this.sessionSeconds.observe({ kind }, end.durationMs / 1000);
    const b = this.endedBytes.get(kind) ?? { toBackend: 0, toClient: 0 };
    b.toBackend += end.bytesFromClient;
    b.toClient += end.bytesFromBackend;
    this.endedBytes.set(kind, b);
  }

  private refused(facts: ConnectionFacts, error: GatewayError, afterUpgrade: boolean): void {
    const status = afterUpgrade ? error.closeCode : error.status;
    this.refusals.inc({ kind: facts.kind, code: boundedCode(error.code), status: String(status) });
  }

  /** Bytes of ended sessions plus the live ones' so far, by kind. */
  private bytesByKind(): Map<string, { toBackend: number; toClient: number }> {
    const totals = new Map<string, { toBackend: number; toClient: number }>();
    for (const [kind, b] of this.endedBytes) totals.set(kind, { ...b });
    for (const [session, kind] of this.live) {
      const t = totals.get(kind) ?? { toBackend: 0, toClient: 0 };
      t.toBackend += session.bytesFromClient;
      t.toClient += session.bytesFromBackend;
      totals.set(kind, t);
    }
    return totals;
  }
}

/**
 * A session's end reason (`SessionEnd.reason`: free words, some with detail such as an errno or
 * a close code) as one of `END_REASONS`. The proxy's own closes are matched by their exact words
 * and the limits' (`CLOSE_*`); anything else the proxy closed with is `other`.
 */
export function endReason(reason: string): EndReason {
  if (reason === CLOSE_REVOKED.reason) return 'revoked';
  if (reason === CLOSE_KILLED.reason) return 'killed';
  if (reason === CLOSE_EXPIRED.reason) return 'expired';
  if (reason === CLOSE_SHUTDOWN.reason) return 'shutdown';
  if (reason === CLOSE_IDLE.reason) return 'idle';
  if (reason === CLOSE_MAX_DURATION.reason) return 'duration';
  if (reason.startsWith('client closed')) return 'client';
  if (reason === 'backend closed') return 'backend';
  if (reason.startsWith('client error') || reason.startsWith('backend error')) return 'error';
  return 'other';
}

/** A GatewayError code as a label: the codes are a closed union, but a label is checked anyway. */
function boundedCode(code: string): string {
  return /^[A-Z][A-Z0-9_]{0,47}$/.test(code) ? code : 'OTHER';
}
