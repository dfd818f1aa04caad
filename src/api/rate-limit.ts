/**
 * @module api/rate-limit
 * `[porthole] api_console_requests_per_minute`: the remote-console requests one project may make
 * per minute (`POST /servers/{id}/remote-consoles` and the legacy `os-getVNCConsole`,
 * `os-getSPICEConsole`, `os-getRDPConsole`, `os-getSerialConsole` actions, which share the
 * `/servers/{id}/action` route), counted once the caller is authenticated, before the body is
 * read. Past it: HTTP 429 with `Retry-After` (seconds to the end of the minute) and Nova's fault
 * body, `{"overLimit": {"code": 429, "message": "This request was rate-limited.", "retryAfter":
 * "N"}}` (Nova's wsgi.Fault adds `retryAfter` to a 413 or 429 that carries Retry-After; its words
 * are those of Nova's old rate-limiting middleware).
 *
 * - Windows are the minutes of the clock (every process agrees without talking), so a project
 *   may get up to twice the rate across one minute's end.
 * - Where Porthole has a store of its own, the count is the shared windowed counter of failed
 *   token lookups (`store/lookup-failures.ts`) under its own key namespace (`api:<project>`), so
 *   every API process on that store counts together: PostgreSQL, MariaDB/MySQL and Redis across
 *   hosts, a SQLite file across the processes of its host. With a Nova database alone, each
 *   process counts in memory. A store that fails is logged (at most once a minute) and the
 *   process's own count applies meanwhile.
 * - Memory is bounded: at most `maxProjects` projects remembered per process (the longest
 *   untouched forgotten first); a project over the rate is answered from memory until the
 *   minute ends, without a store round trip.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import { GatewayError } from '../errors.ts';
import { guard } from '../store/guard.ts';
import type { LookupFailureCounter } from '../store/lookup-failures.ts';
import { COMPUTE_PREFIXES } from './context.ts';

export interface ConsoleRequestLimitOptions {
  /** Requests per project per minute; 0: no limit. */
  readonly perMinute: number;
  /** The shared counter; null: this process counts alone. */
  readonly shared: LookupFailureCounter | null;
  readonly queryTimeoutMs?: number;
  readonly maxProjects?: number;
  readonly log?: Logger;
  /** Milliseconds since the epoch; tests pass their own clock. */
  readonly now?: () => number;
}

const WINDOW_SECONDS = 60;
const DEFAULT_MAX_PROJECTS = 10_000;
const STORE_ERROR_LOG_INTERVAL_MS = 60_000;
/** The shared counter's key column holds 64 characters. */
const MAX_KEY = 64;
/** Nova's RateLimitingMiddleware's words. */
const MESSAGE = 'This request was rate-limited.';

/** The routes whose requests are counted, as Fastify names them. */
const COUNTED_ROUTES = new Set(COMPUTE_PREFIXES.flatMap((p) => [`${p}/servers/:server_id/remote-consoles`, `${p}/servers/:server_id/action`]));

interface Entry {
  /** Start of the minute `count` counts in, epoch seconds. */
  window: number;
  count: number;
  warned: boolean;
}

export class ConsoleRequestLimit {
  private readonly projects = new Map<string, Entry>();
  private readonly perMinute: number;
  private readonly shared: LookupFailureCounter | null;
  private readonly queryTimeoutMs: number;
  private readonly maxProjects: number;
  private readonly log: Logger | undefined;
  private readonly now: () => number;
  private storeErrorLoggedAt = -Infinity;

  constructor(opts: ConsoleRequestLimitOptions) {
    this.perMinute = opts.perMinute;
    this.shared = opts.perMinute > 0 ? opts.shared : null;
    this.queryTimeoutMs = opts.queryTimeoutMs ?? 5000;
    this.maxProjects = Math.max(1, opts.maxProjects ?? DEFAULT_MAX_PROJECTS);
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
  }

  /** Whether requests are counted across processes. */
  get isShared(): boolean {
    return this.shared !== null;
  }

  /** How many projects this process remembers now. */
  get size(): number {
    return this.projects.size;
  }

  /** Counts one remote-console request of `project`; throws the 429 when it is past the rate. */
  async count(project: string): Promise<void> {
    if (this.perMinute <= 0) return;
    const now = this.now();
    const window = Math.floor(now / 1000 / WINDOW_SECONDS) * WINDOW_SECONDS;
    const end = window + WINDOW_SECONDS;
    const entry = this.entry(project, window);
    // over already: answered from memory, no store round trip, not counted further
    if (entry.count >= this.perMinute) throw this.refusal(project, end, now);
    entry.count += 1;
    if (this.shared) {
      const shared = this.shared;
      try {
        // the window's end names it in the store: the failed-lookup budget's sweep deletes rows
        // whose window started before its own window, which must never take a minute still running
        const n = await guard(shared.description, 'console request count', this.queryTimeoutMs, () => shared.add(keyOf(project), end, end));
        if (entry.window === window) entry.count = Math.max(entry.count, n);
      } catch (err) {
        this.storeError(err);
      }
    }
    if (entry.count > this.perMinute) throw this.refusal(project, end, this.now());
  }

  private refusal(project: string, end: number, now: number): GatewayError {
    const entry = this.projects.get(project);
    if (entry && !entry.warned) {
      entry.warned = true;
      this.log?.warn({ event: 'api_rate_limit', project, perMinute: this.perMinute }, `project ${project} made more than ${this.perMinute} remote-console requests this minute ([porthole] api_console_requests_per_minute): refused with 429 until the minute ends`);
    }
    const retryAfter = Math.max(1, Math.ceil((end * 1000 - now) / 1000));
    return new GatewayError('API_RATE_LIMITED', `project ${project} is over ${this.perMinute} remote-console requests per minute`, { status: 429, retryAfter, clientMessage: MESSAGE });
  }

  private entry(project: string, window: number): Entry {
    let entry = this.projects.get(project);
    if (entry === undefined) {
      entry = { window, count: 0, warned: false };
      if (this.projects.size >= this.maxProjects) this.projects.delete(this.projects.keys().next().value!);
    } else {
      this.projects.delete(project);
      if (entry.window !== window) entry = { window, count: 0, warned: false };
    }
    // a Map iterates in insertion order: setting again makes this the newest
    this.projects.set(project, entry);
    return entry;
  }

  private storeError(err: unknown): void {
    const now = this.now();
    if (now - this.storeErrorLoggedAt < STORE_ERROR_LOG_INTERVAL_MS) return;
    this.storeErrorLoggedAt = now;
    this.log?.warn({ event: 'api_rate_limit', err: (err as Error)?.message ?? String(err) }, `remote-console requests are counted in this process only for now: ${(err as Error)?.message ?? err}`);
  }
}

/** The store key of a project: `api:` and the project id, or its SHA-256 where that is too long for the key column. */
function keyOf(project: string): string {
  const key = `api:${project}`;
  return key.length <= MAX_KEY ? key : `api:#${createHash('sha256').update(project).digest('hex').slice(0, MAX_KEY - 5)}`;
}

export function consoleRequestLimitOptions(config: Config, shared: LookupFailureCounter | null, log?: Logger): ConsoleRequestLimitOptions {
  const p = config.porthole;
  return { perMinute: p.api_console_requests_per_minute, shared, queryTimeoutMs: p.store_query_timeout * 1000, log };
}

/**
 * Counts every remote-console request once its caller is known: call after the hook that
 * authenticates (hooks run in the order they are added), so an unauthenticated request is
 * refused for that and counts for no project.
 */
export function registerConsoleRequestLimit(app: FastifyInstance, limit: ConsoleRequestLimit): void {
  app.addHook('onRequest', async (req: FastifyRequest) => {
    if (req.method !== 'POST' || !COUNTED_ROUTES.has(req.routeOptions.url ?? '')) return;
    await limit.count(req.caller.project);
  });
}
