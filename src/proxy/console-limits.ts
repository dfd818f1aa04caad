/**
 * @module proxy/console-limits
 * The concurrent-console limits (`[porthole] max_consoles`, `max_consoles_per_server`,
 * `max_consoles_per_client`, `max_consoles_per_project`): whether a new console may open, asked
 * once per upgrade after its token, Origin and console-port checks and before its backend is
 * dialled, answered from memory (no store query on any upgrade's path).
 *
 * What is counted:
 * - this process's own consoles, from their admission to their end, setup included: a console
 *   takes its slot when admitted and the connection gives it back once, however it ends
 *   (`ConsoleConnection`'s end funnel: refused later, client gone, backend down, session over);
 * - where the live-sessions registry is shared (Porthole's own store: PostgreSQL, MariaDB/MySQL,
 *   Redis, or SQLite for the processes of one host), the other proxies' consoles, from the counts
 *   each proxy writes into its own registry record at its heartbeat (`load()`: total, per server,
 *   per project, per client key, each map its `LOAD_KEYS` busiest keys), read every `refreshMs`
 *   (the heartbeat interval) as one record per proxy, never the fleet's sessions. Those counts
 *   are as of the other proxy's last heartbeat and this one's last read (up to two intervals
 *   old): N proxies admitting at once may go past a limit by what they admit meanwhile, and a
 *   key beyond another proxy's busiest `LOAD_KEYS` counts none of its consoles there.
 * Without a shared registry (a Nova database and no `[porthole] connection`) each process counts
 * alone.
 *
 * Clients are keyed as the failed-lookup budget keys them (`clientKey`: an IPv6 address by its
 * /64); a project is the inventory server's `projectId` (a server unknown to the inventory, or
 * without a project, counts towards no project limit). Every connection is one console: a SPICE
 * console is one WebSocket per SPICE channel, so it counts once per channel it opens.
 *
 * A refusal is an HTTP status before the upgrade with an empty body: 503 for the total (the
 * service is full), 429 for the others, with `Retry-After` the refresh interval (when the counts
 * are read again). One warning per limit and key per minute, not per refused attempt.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import { GatewayError, type GatewayErrorCode } from '../errors.ts';
import { LOAD_KEYS, type ProxyLoad, type ProxyRecord } from '../sessions/types.ts';
import { clientKey } from './lookup-budget.ts';

/** Which limit refused a console. */
export type ConsoleLimitName = 'total' | 'server' | 'project' | 'client';

export interface ConsoleLimitSettings {
  /** 0: no limit, for each. */
  readonly total: number;
  readonly perServer: number;
  readonly perProject: number;
  readonly perClient: number;
}

export interface ConsoleLimitOptions extends ConsoleLimitSettings {
  /** How often other proxies' sessions are read from the registry; also a refusal's `Retry-After`. */
  readonly refreshMs: number;
  readonly log?: Logger;
  /** Milliseconds since the epoch; tests pass their own clock. */
  readonly now?: () => number;
}

/** What a new console is, for the limits. */
export interface ConsoleFacts {
  readonly instance: string;
  /** The inventory server's project; null: unknown, not counted. */
  readonly project: string | null;
  /** The client's IP address (`ClientAddress.host`). */
  readonly client: string;
}

/** Where other proxies' counts are read: the registry's live proxies and this proxy's id among them. */
export interface OtherProxies {
  proxies(): Promise<ProxyRecord[]>;
  readonly ownProxyId: string;
}

/** Which limit refused, and when to ask again. */
export interface LimitRefusal {
  readonly limit: ConsoleLimitName;
  readonly retryAfter: number;
}

export function consoleLimitOptions(config: Config, log?: Logger): ConsoleLimitOptions {
  const p = config.porthole;
  return {
    total: p.max_consoles,
    perServer: p.max_consoles_per_server,
    perProject: p.max_consoles_per_project,
    perClient: p.max_consoles_per_client,
    refreshMs: p.session_heartbeat_interval * 1000,
    log,
  };
}

const CODES: Record<ConsoleLimitName, GatewayErrorCode> = {
  total: 'CONSOLE_LIMIT_TOTAL',
  server: 'CONSOLE_LIMIT_SERVER',
  project: 'CONSOLE_LIMIT_PROJECT',
  client: 'CONSOLE_LIMIT_CLIENT',
};

/** The words a client may see (the body is empty: these reach the log and the events' watchers). */
const CLIENT_WORDS: Record<ConsoleLimitName, string> = {
  total: 'the console service is full',
  server: 'too many consoles are open on this server',
  project: 'too many consoles are open in this project',
  client: 'too many consoles are open from your address',
};

/** Refusals are logged once per limit and key per this long. */
const WARN_INTERVAL_MS = 60_000;
/** Most (limit, key) pairs remembered for that; the oldest is forgotten first. */
const MAX_WARNED = 1000;

/** Counts by key, the entries at zero removed (memory follows the live consoles). */
class Tally {
  readonly counts = new Map<string, number>();
  add(key: string, n: number): void {
    const v = (this.counts.get(key) ?? 0) + n;
    if (v <= 0) this.counts.delete(key);
    else this.counts.set(key, v);
  }
  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}

interface Others {
  total: number;
  server: Tally;
  project: Tally;
  client: Tally;
}

export class ConsoleLimits {
  private readonly settings: ConsoleLimitSettings;
  private readonly refreshMs: number;
  private readonly log: Logger | undefined;
  private readonly now: () => number;
  private total = 0;
  private readonly server = new Tally();
  private readonly project = new Tally();
  private readonly client = new Tally();
  private others: Others = emptyOthers();
  private readonly warned = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private source: OtherProxies | undefined;
  private troubleLogged = false;

  constructor(opts: ConsoleLimitOptions) {
    this.settings = { total: opts.total, perServer: opts.perServer, perProject: opts.perProject, perClient: opts.perClient };
    this.refreshMs = opts.refreshMs;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
  }

  /** Whether any limit is set; none: the upgrade handler is given no limits at all. */
  get enabled(): boolean {
    const s = this.settings;
    return s.total > 0 || s.perServer > 0 || s.perProject > 0 || s.perClient > 0;
  }

  /** This process's consoles counted now (admitted and not yet ended). */
  get local(): number {
    return this.total;
  }

  /** Other proxies' sessions as of the last read of the registry. */
  get remote(): number {
    return this.others.total;
  }

  /**
   * Admits a console or refuses it: the release to call once when it ends (idempotent), or the
   * refusal as a GatewayError (429/503, empty body, Retry-After).
   */
  admit(facts: ConsoleFacts): () => void {
    const keys = this.keys(facts);
    const refusal = this.check(keys);
    if (refusal) {
      this.warn(refusal.limit, keys, facts);
      throw limitError(refusal, keys[refusal.limit] ?? '');
    }
    this.count(keys, 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.count(keys, -1);
    };
  }

  /** The limit a new console like `facts` would be refused by now, or null (the token-state page's question). */
  refusal(facts: ConsoleFacts): LimitRefusal | null {
    return this.check(this.keys(facts));
  }

  /** This process's consoles as the other proxies count them (its registry record, written at its heartbeat). */
  load(): ProxyLoad {
    return { total: this.total, server: busiest(this.server), project: busiest(this.project), client: busiest(this.client) };
  }

  /** Reads other proxies' counts from `source` now and every `refreshMs` until `close`. */
  async watch(source: OtherProxies): Promise<void> {
    this.source = source;
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.source = undefined;
    await this.refreshing;
  }

  /** Reads the registry once (never two reads at a time); a failure keeps the last counts. */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    const source = this.source;
    if (!source) return Promise.resolve();
    this.refreshing = this.read(source).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async read(source: OtherProxies): Promise<void> {
    try {
      const others = emptyOthers();
      for (const p of await source.proxies()) {
        if (p.id === source.ownProxyId || !p.load) continue;
        others.total += p.load.total;
        for (const [k, n] of Object.entries(p.load.server)) others.server.add(k, n);
        for (const [k, n] of Object.entries(p.load.project)) others.project.add(k, n);
        for (const [k, n] of Object.entries(p.load.client)) others.client.add(k, n);
      }
      this.others = others;
      if (this.troubleLogged) {
        this.troubleLogged = false;
        this.log?.info({ event: 'console_limits' }, 'console limits count the other proxies\' consoles again');
      }
    } catch (err) {
      if (this.troubleLogged) return;
      this.troubleLogged = true;
      this.log?.warn({ event: 'console_limits', err: (err as Error)?.message }, `console limits: cannot read the other proxies' console counts (${(err as Error)?.message}); counting with their last known counts`);
    }
  }

  private keys(facts: ConsoleFacts): Partial<Record<ConsoleLimitName, string>> & { total: '' } {
    const s = this.settings;
    return {
      total: '',
      server: s.perServer > 0 ? facts.instance.toLowerCase() : undefined,
      project: s.perProject > 0 && facts.project ? facts.project : undefined,
      client: s.perClient > 0 ? clientKey(facts.client) : undefined,
    };
  }

  private check(keys: ReturnType<ConsoleLimits['keys']>): LimitRefusal | null {
    const s = this.settings;
    const o = this.others;
    const retryAfter = Math.max(1, Math.ceil(this.refreshMs / 1000));
    if (s.total > 0 && this.total + o.total >= s.total) return { limit: 'total', retryAfter };
    if (keys.server !== undefined && this.server.get(keys.server) + o.server.get(keys.server) >= s.perServer) return { limit: 'server', retryAfter };
    if (keys.project !== undefined && this.project.get(keys.project) + o.project.get(keys.project) >= s.perProject) return { limit: 'project', retryAfter };
    if (keys.client !== undefined && this.client.get(keys.client) + o.client.get(keys.client) >= s.perClient) return { limit: 'client', retryAfter };
    return null;
  }

  private count(keys: ReturnType<ConsoleLimits['keys']>, n: 1 | -1): void {
    this.total += n;
    if (keys.server !== undefined) this.server.add(keys.server, n);
    if (keys.project !== undefined) this.project.add(keys.project, n);
    if (keys.client !== undefined) this.client.add(keys.client, n);
  }

  private warn(limit: ConsoleLimitName, keys: ReturnType<ConsoleLimits['keys']>, facts: ConsoleFacts): void {
    const key = `${limit}:${keys[limit] ?? ''}`;
    const now = this.now();
    const last = this.warned.get(key);
    if (last !== undefined && now - last < WARN_INTERVAL_MS) return;
    this.warned.delete(key);
    if (this.warned.size >= MAX_WARNED) this.warned.delete(this.warned.keys().next().value!);
    this.warned.set(key, now);
    const max = { total: this.settings.total, server: this.settings.perServer, project: this.settings.perProject, client: this.settings.perClient }[limit];
    const option = limit === 'total' ? 'max_consoles' : `max_consoles_per_${limit}`;
    const what = limit === 'total' ? 'in total' : limit === 'server' ? `on server ${facts.instance}` : limit === 'project' ? `in project ${facts.project}` : `from client ${keys.client}`;
    this.log?.warn(
      { event: 'console_limit', limit, max, instance: facts.instance, project: facts.project ?? undefined, client: limit === 'client' ? keys.client : undefined },
      `${max} consoles are open ${what} ([porthole] ${option}): new consoles are refused with HTTP ${limit === 'total' ? 503 : 429} (logged once a minute)`,
    );
  }
}

/** A tally's `LOAD_KEYS` busiest keys: what another proxy can miss is bounded by the last one kept. */
function busiest(t: Tally): Record<string, number> {
  const entries = [...t.counts];
  if (entries.length > LOAD_KEYS) entries.sort((a, b) => b[1] - a[1]).length = LOAD_KEYS;
  return Object.fromEntries(entries);
}

function emptyOthers(): Others {
  return { total: 0, server: new Tally(), project: new Tally(), client: new Tally() };
}

/** The refusal of a console by `limit`: before the upgrade, an empty body and Retry-After. */
export function limitError(refusal: LimitRefusal, key: string): GatewayError {
  const status = refusal.limit === 'total' ? 503 : 429;
  const where = key === '' ? '' : ` (${key})`;
  return new GatewayError(CODES[refusal.limit], `console refused: ${CLIENT_WORDS[refusal.limit]}${where}`, { status, retryAfter: refusal.retryAfter, clientMessage: CLIENT_WORDS[refusal.limit] });
}
