/**
 * @module sessions/types
 * The live-sessions registry shared by every proxy of one installation: which proxies are up
 * (each registers itself and beats its heart), which console sessions each one holds (server,
 * client, since when, bytes each way as of the last time someone asked, the token's 8-hex-digit
 * log id only), and the events that make a proxy close a session it holds: a revoked token, the
 * revocation of all tokens of a server, a kill. A proxy that stops beating its heart is stale
 * after `STALE_HEARTBEATS` of its intervals and disappears from the registry with its sessions.
 *
 * What it costs the store (issue 20): a session is written when it opens and removed when it
 * ends, nothing while it runs; a heartbeat writes the proxy's own record (its liveness, which its
 * sessions inherit, and its console counts for the limits). Byte counts are asked of the proxies
 * when someone lists (a `figures` event: each proxy writes the counts that changed since it last
 * wrote them, then says so in its record), never written per session per heartbeat.
 *
 * `RegistryBackend` is what a store offers (`database/sql/registry.ts`, `database/redis/registry.ts`, and
 * `local-registry.ts` when Porthole has no store of its own); `tracker.ts` is a proxy's side of
 * it, `service.ts` what the CLI and the admin API use.
 */
/** Missed heartbeats after which a proxy and its sessions are gone from the registry. */
export const STALE_HEARTBEATS = 3;

/** A viewer's part in a shared console: in control, or watching. */
export type SessionRole = 'control' | 'view';

/** What the registry records of a live session and matches events against (the proxy's session info has these and more). */
export interface LiveSessionInfo {
  readonly id: string;
  readonly consoleType: string;
  readonly instanceUuid: string;
  readonly serverName: string | null;
  readonly client: string;
  readonly backend: string;
  readonly tokenLogId: string;
  /** The token's whole SHA-256 and its expiry (epoch seconds): what revocation matches. Never logged. */
  readonly tokenHash: string;
  readonly tokenExpires: number;
  /** Who this viewer is (the token's label, or the API user who minted it), when known. */
  readonly viewer?: string | null;
  /** On a shared console: the one backend connection's id, the same for all its viewers. */
  readonly sharedConsole?: string | null;
  /** On a shared console: whether this viewer has control or watches. */
  readonly role?: SessionRole | null;
  /** The id of the recording of this session, when it is recorded. */
  readonly recording?: string | null;
}

/**
 * A live console session as the tracker sees it: what it writes to the registry and how it
 * closes it. The proxy's `ConsoleSession` (`proxy/relay.ts`) is one.
 */
export interface LiveSession {
  readonly info: LiveSessionInfo;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  readonly bytesFromClient: number;
  readonly bytesFromBackend: number;
  /** Closes the session from the proxy's side (WebSocket close code and reason). */
  close(code: number, reason: string): void;
}

export interface ProxyRecord {
  /** Random per process run. */
  readonly id: string;
  /** Where its console listener is (`host:port`; the machine's name when it listens on every address). */
  readonly address: string;
  readonly hostname: string;
  readonly pid: number;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  readonly heartbeatAt: number;
  /**
   * How long after its last heartbeat the proxy counts as gone (`STALE_HEARTBEATS` of its own
   * interval): each proxy says it, so a CLI with another heartbeat setting judges it rightly.
   */
  readonly staleAfterMs: number;
  /** SIGTERM received: accepts no new connections, its sessions run out the drain. */
  readonly draining: boolean;
  /** The newest `figures` request (its time, as the lister wrote it) whose byte counts it has written. */
  readonly figuresAt?: number;
  /** Its consoles counted by the limits (`proxy/console-limits.ts`), as of its last heartbeat. */
  readonly load?: ProxyLoad;
}

/**
 * A proxy's consoles as the concurrent-console limits count them, written with its heartbeat so
 * that the other proxies read P records, not every session of the fleet. Each map holds at most
 * `LOAD_KEYS` keys, the busiest first: a key left out counts no more than the last one kept.
 */
export interface ProxyLoad {
  readonly total: number;
  readonly server: Readonly<Record<string, number>>;
  readonly project: Readonly<Record<string, number>>;
  readonly client: Readonly<Record<string, number>>;
}

/** Most keys of each of a `ProxyLoad`'s maps (bounds the record: about 20 KB at 3 × 200 keys). */
export const LOAD_KEYS = 200;

/** A proxy's console counts as the store holds them (JSON); anything else (none yet, another version's) is none. */
export function parseLoad(text: string | null | undefined): ProxyLoad | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as ProxyLoad;
    return typeof v?.total === 'number' && v.server && v.project && v.client ? v : undefined;
  } catch {
    return undefined;
  }
}

/** What a heartbeat answers: sessions killed meanwhile; whether the proxy's record was gone (swept, or new), so its sessions must be written again. */
export interface Beat {
  readonly killed: string[];
  readonly rejoined: boolean;
}

/**
 * A live session as the registry keeps it: its `LiveSessionInfo` fields, plus where and since
 * when, and its byte counts as last asked. Its viewer, shared console and recording are written
 * when it opens, and its role then and when it changes (`setRole`), never per heartbeat; each of
 * the four is absent when it has none.
 */
export interface SessionRecord extends Pick<LiveSessionInfo, 'id' | 'consoleType' | 'instanceUuid' | 'serverName' | 'client' | 'backend' | 'tokenLogId' | 'viewer' | 'sharedConsole' | 'role' | 'recording'> {
  readonly proxyId: string;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  /** When the byte counts were written (epoch milliseconds): when it opened, or the last `figures` request that found them changed. */
  readonly updatedAt: number;
  readonly bytesFromClient: number;
  readonly bytesFromBackend: number;
}

/**
 * What makes proxies close sessions. `token`: the SHA-256 of a revoked token (its whole hash: the
 * token is deleted, so its hash opens nothing any more); `instance`: every token of a server was
 * revoked; `session`: one session was killed; `figures`: someone lists the sessions, and each
 * proxy writes its byte counts that changed (target: the request's time, epoch ms, which the
 * proxy writes back as its `figuresAt` when done).
 */
export interface SessionEvent {
  readonly kind: 'token' | 'instance' | 'session' | 'figures';
  readonly target: string;
}

export interface RegistryListing {
  readonly proxies: ProxyRecord[];
  readonly sessions: SessionRecord[];
}

export interface Subscription {
  close(): Promise<void>;
}

export interface RegistryBackend {
  /** For messages: where the registry is (no password), or `this process` for the local one. */
  readonly description: string;
  /** True when other processes see it (a store); false: this process's sessions only. */
  readonly shared: boolean;
  /**
   * Writes the proxy's record (and its `load` when given: unchanged since the last one, it is
   * left out), nothing of its sessions; answers the ids of its sessions killed meanwhile and
   * whether its record was gone, in which case the proxy writes all its sessions again.
   */
  heartbeat(proxy: ProxyRecord, load?: ProxyLoad): Promise<Beat>;
  /** Writes sessions of `proxy` (new ones, or their byte counts again: the same row or key). */
  addSessions(sessions: readonly SessionRecord[], proxy: ProxyRecord): Promise<void>;
  /** Sessions of `proxy` that ended: one statement or round trip for all of them (consoles end in bursts). */
  removeSessions(ids: readonly string[], proxyId: string): Promise<void>;
  /** A shared console's control moved: the session's role now (one write; nothing when the session is not there). */
  setRole(id: string, role: SessionRole): Promise<void>;
  /** The proxy answered the `figures` request of time `at`: its counts that changed are written (`addSessions`). */
  answered(proxyId: string, at: number): Promise<void>;
  /** The proxy is gone (stopped): its record and its sessions go. */
  removeProxy(id: string): Promise<void>;
  /**
   * Removes stale proxies' sessions (found by proxy, never by scanning everyone's), again for
   * `orphanMs` after they went stale (a write in flight when they were removed).
   */
  sweep(orphanMs: number): Promise<void>;
  /** Live proxies, with their `figuresAt` and, unless `load` is false, their `load` (P records, no session). */
  proxies(opts?: { load?: boolean }): Promise<ProxyRecord[]>;
  /** Live proxies (their last heartbeat within their `staleAfterMs`) and their sessions. */
  list(): Promise<RegistryListing>;
  /** Marks a live session killed; its proxy id, or undefined when no live proxy holds it. */
  markKilled(id: string): Promise<string | undefined>;
  publish(event: SessionEvent): Promise<void>;
  /** Delivers every event published from now on, by any process, at least once. */
  subscribe(onEvent: (event: SessionEvent) => void, onTrouble: (err: Error) => void): Promise<Subscription>;
  close(): Promise<void>;
}

/**
 * Which token hashes still have their row. A proxy asks for the hashes of its live sessions, a
 * share of them at each heartbeat (`tracker.ts`): one that is gone before its expiry was deleted
 * by someone who did not tell (Nova's `clean_console_auths_for_instance`, a revocation whose
 * event was lost).
 */
export interface TokenPresence {
  present(hashes: readonly string[]): Promise<Set<string>>;
}
