/**
 * @module sessions/service
 * The live-sessions registry as the rest of Porthole uses it: `openSessions(stores)` takes the
 * registry of Porthole's own store (`Stores.openRegistry`: SQL tables, Redis keys; in memory,
 * this process only, when there is no store of its own) and answers:
 *
 * - `tokens`: the token store, which now tells every proxy what it revokes, so that revoking a
 *   token (or all of a server's) closes the live sessions opened with it, wherever they are;
 * - `list()` and `kill(id)` for `porthole sessions list|kill` and the admin API: a listing asks
 *   every live proxy for its byte counts first (a `figures` event) and waits up to
 *   `FIGURES_WAIT_MS` for their answers; a proxy that has not answered by then is listed with
 *   the counts it wrote last (each session's `updatedAt` says when);
 * - `track(...)`: a proxy's tracker (`tracker.ts`).
 *
 * Every operation here is bounded by `[porthole] store_query_timeout` and fails as
 * STORE_UNAVAILABLE, as the token store does.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import { guard } from '../store/guard.ts';
import type { AuditBy } from '../store/audit-events.ts';
import type { Stores } from '../store/index.ts';
import { hashToken, type ConsoleToken, type ConsumeResult, type NewConsoleToken, type TokenLookup, type TokenStore } from '../store/types.ts';
import { LocalRegistry } from './local-registry.ts';
import { SessionTracker, type TrackerOptions } from './tracker.ts';
import type { ProxyRecord, RegistryListing, SessionEvent } from './types.ts';

/** How long a listing waits for the proxies' byte counts. */
export const FIGURES_WAIT_MS = 2000;
/** How often the proxies' answers are looked for meanwhile. */
const FIGURES_LOOK_MS = 25;

export interface SessionsOptions {
  /** `[porthole] session_heartbeat_interval`, ms. */
  readonly heartbeatMs: number;
  /** `[porthole] revocation_poll_interval`, ms. */
  readonly pollMs: number;
  readonly connectTimeoutMs: number;
  readonly queryTimeoutMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly log?: Logger;
}

export function sessionsOptions(config: Config, log?: Logger): SessionsOptions {
  const p = config.porthole;
  return {
    heartbeatMs: p.session_heartbeat_interval * 1000,
    pollMs: p.revocation_poll_interval * 1000,
    connectTimeoutMs: p.store_connect_timeout * 1000,
    queryTimeoutMs: p.store_query_timeout * 1000,
    reconnectMaxDelayMs: p.store_reconnect_max_delay * 1000,
    log,
  };
}

/** What `kill` achieved: the session is gone, the kill is asked for but not seen done yet, or no live session has that id. */
export type KillResult = 'closed' | 'requested' | 'unknown';

export interface Sessions {
  /** The registry is in a store that every proxy shares (false: this process's sessions only). */
  readonly shared: boolean;
  /** Where the registry is (no password). */
  readonly description: string;
  /** The token store, telling every proxy about each revocation. */
  readonly tokens: TokenStore;
  /** The live proxies and their sessions; `figures: false`: without asking for fresh byte counts. */
  list(opts?: { figures?: boolean }): Promise<RegistryListing>;
  /** The live proxies alone (P records: what the console limits read at each heartbeat). */
  proxies(): Promise<ProxyRecord[]>;
  /**
   * Kills a live session on whichever proxy holds it and waits up to `waitMs` to see it gone;
   * with `by`, the audit trail records `session.killed` and who killed it.
   */
  kill(id: string, waitMs?: number, by?: AuditBy): Promise<KillResult>;
  /** A console proxy's tracker; its `start()` registers the proxy. */
  track(address: string, log: Logger, load?: TrackerOptions['load']): SessionTracker;
  close(): Promise<void>;
}

export async function openSessions(stores: Stores, opts: SessionsOptions): Promise<Sessions> {
  const registry =
    (await stores.openRegistry?.({
      pollMs: opts.pollMs,
      // where the store wakes readers (PostgreSQL's LISTEN), the table is read when it says so; the poll is a safety net
      idlePollMs: opts.heartbeatMs,
      connectTimeoutMs: opts.connectTimeoutMs,
      reconnectMaxDelayMs: opts.reconnectMaxDelayMs,
    })) ?? new LocalRegistry();
  const presence = stores.presence ?? null;
  const run = <T>(what: string, op: () => Promise<T>) => guard(registry.description, what, opts.queryTimeoutMs, op);
  const tell = async (event: SessionEvent) => {
    try {
      await run('session event', () => registry.publish(event));
    } catch (err) {
      // the revocation itself is done: proxies find the deleted token at their next heartbeat
      opts.log?.warn({ event: 'sessions_registry', kind: event.kind, err: (err as Error).message }, `revocation done, but live sessions could not be told at once (${(err as Error).message}); proxies close them at their next heartbeat`);
    }
  };
  /** Asks every live proxy for its byte counts and waits for their answers, at most FIGURES_WAIT_MS. */
  const askFigures = async () => {
    const at = Date.now();
    try {
      await run('sessions figures', () => registry.publish({ kind: 'figures', target: String(at) }));
      const deadline = at + FIGURES_WAIT_MS;
      for (;;) {
        const waiting = (await run('sessions registry proxies', () => registry.proxies({ load: false }))).filter((p) => (p.figuresAt ?? 0) < at);
        if (waiting.length === 0 || Date.now() >= deadline) return;
        await new Promise((r) => setTimeout(r, FIGURES_LOOK_MS));
      }
    } catch (err) {
      // the listing still says what the store has, with each session's updatedAt
      opts.log?.warn({ event: 'sessions_registry', err: (err as Error).message }, `cannot ask the proxies for their byte counts (${(err as Error).message}): listing the counts they wrote last`);
    }
  };
  const sessions: Sessions = {
    shared: registry.shared,
    description: registry.description,
    tokens: new RevocationsTold(stores.tokens, tell),
    async list(o) {
      if (o?.figures !== false) await askFigures();
      return run('sessions list', () => registry.list());
    },
    proxies: () => run('sessions registry proxies', () => registry.proxies()),
    async kill(id, waitMs = 3000, by) {
      // the session's facts for the audit line, read before it is gone
      const before = by ? (await run('sessions list', () => registry.list())).sessions.find((s) => s.id === id) : undefined;
      const proxy = await run('session kill', () => registry.markKilled(id));
      if (proxy === undefined) return 'unknown';
      if (by) {
        const s = before;
        by.recorder.record({ event: 'session.killed', session: id, actor: by.actor, ...(s ? { token: s.tokenLogId, server: s.instanceUuid, console_type: s.consoleType, client: s.client } : {}) });
      }
      await run('session event', () => registry.publish({ kind: 'session', target: id }));
      const deadline = Date.now() + waitMs;
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        const now = await run('sessions list', () => registry.list());
        if (!now.sessions.some((s) => s.id === id)) return 'closed';
      }
      return 'requested';
    },
    track: (address, log, load) => new SessionTracker(registry, presence, { heartbeatMs: opts.heartbeatMs, address, log, ...(load ? { load } : {}) }),
    close: () => registry.close(),
  };
  return sessions;
}

/**
 * The token store, telling every proxy what it revoked: a revoked token's hash, or the server
 * whose tokens were all revoked. Told even when there was no row to delete (a token the sweep
 * already took may still have a live session, which the revocation is meant to close).
 */
class RevocationsTold implements TokenStore {
  constructor(
    private readonly inner: TokenStore,
    private readonly tell: (event: SessionEvent) => Promise<void>,
  ) {}

  async revoke(token: string): Promise<boolean> {
    const found = await this.inner.revoke(token);
    await this.tell({ kind: 'token', target: hashToken(token) });
    return found;
  }

  async revokeByInstance(instanceUuid: string): Promise<number> {
    const n = await this.inner.revokeByInstance(instanceUuid);
    await this.tell({ kind: 'instance', target: instanceUuid.toLowerCase() });
    return n;
  }

  create(spec: NewConsoleToken): Promise<{ token: string; record: ConsoleToken }> {
    return this.inner.create(spec);
  }
  lookup(token: string): Promise<TokenLookup> {
    return this.inner.lookup(token);
  }
  sweepExpired(): Promise<number> {
    return this.inner.sweepExpired();
  }
  consume(token: ConsoleToken, client: string, graceSeconds: number): Promise<ConsumeResult> {
    return this.inner.consume(token, client, graceSeconds);
  }
  release(token: ConsoleToken, client: string): Promise<void> {
    return this.inner.release(token, client);
  }
  forget(token: ConsoleToken, client: string): Promise<void> {
    return this.inner.forget(token, client);
  }
}
