/**
 * @module proxy/lookup-budget
 * A budget of failed console token lookups per client address (`[porthole] failed_lookup_budget`
 * per `failed_lookup_window` seconds), so that guessing tokens costs a guesser its address: a
 * client that used up its budget is refused (HTTP 429) before any lookup, valid token or not,
 * until the window ends. The same budget covers every place that looks a token up for a client:
 * the WebSocket upgrade, the console page and `/porthole/token-state` (which would otherwise be a
 * free validity oracle).
 *
 * - `allows(client)` reads only this process's memory: no I/O on the path of every good console.
 * - `failed(client)` counts a lookup that found no valid token, here at once and, where Porthole
 *   has a store of its own, in that store (`store/lookup-failures.ts`), whose count every process
 *   and proxy shares: a process that learns the shared count is past the budget refuses the client
 *   too. So N processes let a guesser make at most budget + N failed lookups per window (plus the
 *   lookups it has in flight at that moment). With no store of its own (a Nova database), each
 *   process counts alone.
 * - Clients are keyed by address: IPv4, an IPv6 address by its /64 (one host gets a whole /64,
 *   so a new address there is no new budget), an IPv4-mapped IPv6 address as the IPv4 address.
 *   Loopback is not exempt.
 * - Memory is bounded: at most `maxClients` addresses are remembered (the longest untouched one
 *   is forgotten first); a forgotten guesser is found again by its next failure in the shared
 *   count.
 * - Windows are fixed periods of the clock (every process agrees where they start, without
 *   talking), so a guesser may get twice the budget across one boundary.
 * - The first time an address goes over budget in a window, one warning (`event: lookup_budget`)
 *   is logged: by the process whose failure made the shared count reach the budget, so one line
 *   per address and window for all processes together (per process when they count alone).
 *   Tokens are never seen here.
 */
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import { GatewayError } from '../errors.ts';
import { guard } from '../store/guard.ts';
import type { Stores } from '../store/index.ts';
import type { LookupFailureCounter } from '../store/lookup-failures.ts';

export interface LookupBudget {
  /** Synchronous, no I/O: false when `client` (an IP address) is over its budget now; the caller answers 429. */
  allows(client: string): boolean;
  /** Whole seconds until `client` is allowed again (0: it is now): a 429's `Retry-After`. */
  retryAfter(client: string): number;
  /** A token lookup by `client` found no valid token (unknown or expired). Never rejects: a store error is logged, the local count still applies. */
  failed(client: string): Promise<void>;
  /** Waits for the shared counts in flight; later failures are counted in this process only. */
  close(): Promise<void>;
}

export interface LookupBudgetOptions {
  /** Failed lookups a client may make per window; 0: no limit. */
  readonly budget: number;
  readonly windowSeconds: number;
  /** Most client addresses remembered by this process. */
  readonly maxClients?: number;
  /** Bound of each operation on the shared store (`[porthole] store_query_timeout`). */
  readonly queryTimeoutMs?: number;
  readonly log?: Logger;
  /** Milliseconds since the epoch; tests pass their own clock. */
  readonly now?: () => number;
}

export const DEFAULT_MAX_CLIENTS = 10_000;
/** Store trouble is logged at most this often: a guesser must not turn an outage into a flood of lines. */
const STORE_ERROR_LOG_INTERVAL_MS = 60_000;

/** The refusal of a client over its budget, for the upgrade handler (HTTP 429, empty body). */
export function overBudget(client: string, retryAfter?: number): GatewayError {
  return new GatewayError('TOO_MANY_FAILED_LOOKUPS', `client ${client} is over its budget of failed console token lookups`, { status: 429, retryAfter, clientMessage: 'too many failed attempts from your address; try again later' });
}

/** The budget options of a loaded config. */
export function lookupBudgetOptions(config: Config, log?: Logger): LookupBudgetOptions {
  const p = config.porthole;
  return { budget: p.failed_lookup_budget, windowSeconds: p.failed_lookup_window, queryTimeoutMs: p.store_query_timeout * 1000, log };
}

/** The budget, counting in Porthole's own store when there is one (`Stores.lookupFailures`), else in this process. */
export async function openLookupBudget(stores: Stores, opts: LookupBudgetOptions): Promise<LookupBudget> {
  const shared: LookupFailureCounter | null = opts.budget > 0 ? (stores.lookupFailures ?? null) : null;
  return new FailedLookupBudget(opts, shared);
}

interface Entry {
  /** Start of the window `failures` counts in, epoch seconds. */
  window: number;
  failures: number;
  /** Epoch ms until which the client is refused (0: not refused). */
  blockedUntil: number;
}

export class FailedLookupBudget implements LookupBudget {
  private readonly clients = new Map<string, Entry>();
  private readonly budget: number;
  private readonly windowSeconds: number;
  private readonly maxClients: number;
  private readonly queryTimeoutMs: number;
  private readonly log: Logger | undefined;
  private readonly now: () => number;
  private readonly pending = new Set<Promise<void>>();
  private shared: LookupFailureCounter | null;
  /** The last window whose predecessors this process deleted from the shared store. */
  private sweptWindow = 0;
  private storeErrorLoggedAt = -Infinity;

  constructor(opts: LookupBudgetOptions, shared: LookupFailureCounter | null = null) {
    this.budget = opts.budget;
    this.windowSeconds = opts.windowSeconds;
    this.maxClients = Math.max(1, opts.maxClients ?? DEFAULT_MAX_CLIENTS);
    this.queryTimeoutMs = opts.queryTimeoutMs ?? 5000;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.shared = opts.budget > 0 ? shared : null;
  }

  /** How many client addresses this process remembers now. */
  get size(): number {
    return this.clients.size;
  }

  /** Whether failures are counted in a store that other processes share. */
  get isShared(): boolean {
    return this.shared !== null;
  }

  allows(client: string): boolean {
    return this.retryAfter(client) === 0;
  }

  retryAfter(client: string): number {
    if (this.budget <= 0 || this.clients.size === 0) return 0;
    const key = clientKey(client);
    const entry = this.clients.get(key);
    if (entry === undefined) return 0;
    const left = entry.blockedUntil - this.now();
    if (left <= 0) return 0;
    // a client still knocking stays remembered, ahead of addresses that went quiet
    this.touch(key, entry);
    return Math.ceil(left / 1000);
  }

  failed(client: string): Promise<void> {
    if (this.budget <= 0) return Promise.resolve();
    const key = clientKey(client);
    const now = this.now();
    const window = this.windowStart(now);
    const entry = this.entry(key, window);
    entry.failures += 1;
    // counted here before any I/O, so the next request of this client already sees it
    const crossedHere = entry.failures === this.budget;
    if (entry.failures >= this.budget) this.block(entry, window);
    if (!this.shared) {
      if (crossedHere) this.warn(key, entry.failures);
      return Promise.resolve();
    }
    const p = this.countShared(this.shared, key, window, crossedHere);
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return p;
  }

  async close(): Promise<void> {
    this.shared = null;
    await Promise.allSettled([...this.pending]);
  }

  private async countShared(shared: LookupFailureCounter, key: string, window: number, crossedHere: boolean): Promise<void> {
    let count: number;
    try {
      count = await guard(shared.description, 'failed lookup count', this.queryTimeoutMs, () => shared.add(key, window, window + this.windowSeconds));
    } catch (err) {
      this.storeError(err);
      // the shared count is unknown: this process's own count is all there is to go by
      if (crossedHere) this.warn(key, this.budget);
      return;
    }
    this.sweep(shared, window);
    // a count from a window that has passed meanwhile says nothing about the new one
    if (this.windowStart(this.now()) !== window) return;
    const entry = this.entry(key, window);
    entry.failures = Math.max(entry.failures, count);
    if (count >= this.budget) this.block(entry, window);
    // exactly one failure, in one process, makes the shared count equal the budget
    if (count === this.budget) this.warn(key, count);
  }

  /** Once per window per process, the rows of past windows go (SQL; Redis keys expire). */
  private sweep(shared: LookupFailureCounter, window: number): void {
    if (this.sweptWindow >= window) return;
    this.sweptWindow = window;
    guard(shared.description, 'failed lookup sweep', this.queryTimeoutMs, () => shared.sweep(window)).catch((err: unknown) => this.storeError(err));
  }

  /** The client's entry for `window`, made or started again, and moved to the back of the eviction order. */
  private entry(key: string, window: number): Entry {
    let entry = this.clients.get(key);
    if (entry === undefined) {
      entry = { window, failures: 0, blockedUntil: 0 };
      if (this.clients.size >= this.maxClients) this.clients.delete(this.clients.keys().next().value!);
    } else if (entry.window !== window) {
      entry.window = window;
      entry.failures = 0;
    }
    this.touch(key, entry);
    return entry;
  }

  private touch(key: string, entry: Entry): void {
    // a Map iterates in insertion order: deleting and setting again makes this the newest
    this.clients.delete(key);
    this.clients.set(key, entry);
  }

  private block(entry: Entry, window: number): void {
    entry.blockedUntil = Math.max(entry.blockedUntil, (window + this.windowSeconds) * 1000);
  }

  private windowStart(nowMs: number): number {
    return Math.floor(nowMs / 1000 / this.windowSeconds) * this.windowSeconds;
  }

  private warn(client: string, failures: number): void {
    this.log?.warn(
      { event: 'lookup_budget', client, failures, windowSeconds: this.windowSeconds },
      `${client} made ${failures} failed console token lookups within ${this.windowSeconds} s: refused with 429 until the window ends`,
    );
  }

  private storeError(err: unknown): void {
    const now = this.now();
    if (now - this.storeErrorLoggedAt < STORE_ERROR_LOG_INTERVAL_MS) return;
    this.storeErrorLoggedAt = now;
    this.log?.warn({ event: 'lookup_budget', code: (err as GatewayError)?.code, err: (err as Error)?.message ?? String(err) }, `failed token lookups are counted in this process only for now: ${(err as Error)?.message ?? err}`);
  }
}

/**
 * The address a budget is kept for: IPv4 as is, an IPv4-mapped IPv6 address as its IPv4
 * address, any other IPv6 address as its /64 (`2001:db8:1:2::/64`); anything else (no address
 * known) as given, cut to 64 characters.
 */
export function clientKey(client: string): string {
  if (isIP(client) === 4) return client;
  let ip = client.startsWith('[') && client.endsWith(']') ? client.slice(1, -1) : client;
  const zone = ip.indexOf('%');
  if (zone !== -1) ip = ip.slice(0, zone);
  if (isIP(ip) !== 6) return client.slice(0, 64);
  const groups = ipv6Groups(ip);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted IPv4 tail as two groups). */
function ipv6Groups(ip: string): number[] {
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const gap = ip.indexOf('::');
  if (gap === -1) return parse(ip);
  const head = parse(ip.slice(0, gap));
  const tail = parse(ip.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}
