/**
 * @module database/sql/registry
 * The live-sessions registry in Porthole's own SQL database (SQLite, PostgreSQL, MariaDB/MySQL),
 * through Kysely: `porthole_proxies` (one row per proxy: its heartbeat, its console counts for the
 * limits, the newest byte-count request it answered), `porthole_sessions` (one row per live
 * session, written when it opens, its byte counts again when someone lists, a `killed` flag),
 * and `porthole_session_events` (revocations, kills and byte-count requests, numbered by an
 * autoincrementing id).
 *
 * Steady state (issue 20): a heartbeat is one UPDATE of the proxy's row, one index lookup for its
 * killed sessions and the sweep's three or four statements, which write no row while every proxy beats;
 * a session's row is not touched while it runs. Liveness is the proxy's: a session is listed
 * while its proxy is. A proxy whose heartbeat is older than its stale window is marked gone
 * (`stale_after` = 0) and its sessions are deleted through the `proxy_id` index; the marked row
 * stays `TOMBSTONE_WINDOWS` windows more, so a session write that was in flight is deleted too.
 * A proxy that finds its row gone or marked (it was slow, not dead) writes it and all its
 * sessions again.
 *
 * Events reach the other proxies through that table: each proxy reads the rows above the last id
 * it has handled, every `[porthole] revocation_poll_interval` (0.5 s) on SQLite and MariaDB; on
 * PostgreSQL a `LISTEN` connection is woken by the `NOTIFY` that follows every insert, so it
 * reads at once, and polls only as a safety net (and at the short interval while its LISTEN
 * connection is down). Ids are handed out before commit, so a reader can see id 8 before a
 * concurrent id 7 commits: an id missing below ones already seen is waited for (`GAP_WAIT_MS`)
 * rather than skipped. The table keeps `EVENT_KEEP_MS` of history, and always its newest row,
 * so that ids never restart lower.
 */
import { sql, type Kysely, type SqlBool } from 'kysely';
import { parseLoad, type Beat, type ProxyLoad, type ProxyRecord, type RegistryBackend, type RegistryListing, type SessionEvent, type SessionRecord, type SessionRole, type Subscription } from '../../sessions/types.ts';
import { listenPostgres, type PostgresListener } from './pg-listen.ts';
import type { Database } from './types.ts';

const PROXIES = 'porthole_proxies';
const SESSIONS = 'porthole_sessions';
const EVENTS = 'porthole_session_events';
/** PostgreSQL NOTIFY channel: "there are new rows in porthole_session_events". */
export const EVENTS_CHANNEL = 'porthole_session_events';
/** How long an id missing below ids already read is waited for (a transaction not yet committed). */
const GAP_WAIT_MS = 3000;
const EVENT_KEEP_MS = 10 * 60_000;
const BATCH = 200;
/** Stale windows a gone proxy's marked row is kept after it went stale (its late writes are deleted meanwhile). */
const TOMBSTONE_WINDOWS = 3;
const KINDS = new Set(['token', 'instance', 'session', 'figures']);

export interface SqlRegistryOptions {
  /** How often events are read without a wake-up (SQLite, MariaDB; PostgreSQL while LISTEN is down). */
  readonly pollMs: number;
  /** PostgreSQL: the safety-net poll while LISTEN works. */
  readonly idlePollMs: number;
  /** PostgreSQL: the connection URL for the LISTEN connection, and its timeouts. */
  readonly listen?: { readonly url: string; readonly connectTimeoutMs: number; readonly reconnectMaxDelayMs: number };
}

interface ProxyRow {
  id: string;
  address: string;
  hostname: string;
  pid: number | string;
  started_at: number | string;
  heartbeat_at: number | string;
  stale_after: number | string;
  draining: number | string | boolean;
  figures_at?: number | string | null;
  console_counts?: string | null;
}

interface SessionRow {
  id: string;
  proxy_id: string;
  console_type: string;
  instance_uuid: string;
  server_name: string | null;
  client: string;
  backend: string;
  token_prefix: string;
  started_at: number | string;
  updated_at: number | string;
  bytes_from_client: number | string;
  bytes_from_backend: number | string;
  viewer?: string | null;
  shared_console?: string | null;
  role?: string | null;
  recording?: string | null;
}

// a session's row written again (byte counts, a rejoin) takes its role too: the tracker writes the one it has now
const SESSION_UPDATE = ['proxy_id', 'updated_at', 'bytes_from_client', 'bytes_from_backend', 'role'] as const;
const PROXY_UPDATE = ['address', 'hostname', 'pid', 'started_at', 'heartbeat_at', 'stale_after', 'draining'] as const;

export class SqlRegistry implements RegistryBackend {
  readonly shared = true;
  readonly description: string;
  private readonly db: Kysely<any>;

  constructor(
    private readonly database: Database,
    private readonly opts: SqlRegistryOptions,
  ) {
    this.db = database.db;
    this.description = database.description;
  }

  async heartbeat(proxy: ProxyRecord, load?: ProxyLoad): Promise<Beat> {
    const row = proxyRow(proxy);
    const { id: _, started_at: __, ...fields } = row;
    const set = load ? { ...fields, console_counts: JSON.stringify(load) } : fields;
    // not a row marked gone by a sweep: that one is written anew, with its sessions
    const updated = await this.db.updateTable(PROXIES).set(set).where('id', '=', proxy.id).where('stale_after', '>', 0).executeTakeFirst();
    let rejoined = false;
    if (Number(updated.numUpdatedRows) === 0) {
      await this.upsert(PROXIES, [{ ...row, console_counts: load ? JSON.stringify(load) : null }], [...PROXY_UPDATE, 'console_counts']);
      rejoined = true;
    }
    const killed = await this.db.selectFrom(SESSIONS).select('id').where('proxy_id', '=', proxy.id).where('killed', '=', 1).execute();
    return { killed: killed.map((r) => String(r.id)), rejoined };
  }

  async addSessions(sessions: readonly SessionRecord[], _proxy: ProxyRecord): Promise<void> {
    for (let i = 0; i < sessions.length; i += BATCH) await this.upsert(SESSIONS, sessions.slice(i, i + BATCH).map(sessionRow), SESSION_UPDATE);
  }

  async removeSessions(ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += BATCH) await this.db.deleteFrom(SESSIONS).where('id', 'in', ids.slice(i, i + BATCH)).execute();
  }

  async setRole(id: string, role: SessionRole): Promise<void> {
    await this.db.updateTable(SESSIONS).set({ role }).where('id', '=', id).execute();
  }

  async answered(proxyId: string, at: number): Promise<void> {
    await this.db.updateTable(PROXIES).set({ figures_at: at }).where('id', '=', proxyId).execute();
  }

  async removeProxy(id: string): Promise<void> {
    await this.db.deleteFrom(SESSIONS).where('proxy_id', '=', id).execute();
    await this.db.deleteFrom(PROXIES).where('id', '=', id).execute();
  }

  async sweep(orphanMs: number): Promise<void> {
    const now = Date.now();
    // each proxy by its own window: marked gone in one statement, so a proxy beating meanwhile stays
    const stale = sql<SqlBool>`${sql.ref('heartbeat_at')} + ${sql.ref('stale_after')} < ${now}`;
    await this.db.updateTable(PROXIES).set({ stale_after: 0 }).where(stale).where('stale_after', '>', 0).execute();
    // the sessions of marked proxies, by their ids through the proxy_id index (never a join the
    // planner could turn into a scan of everyone's sessions): none, unless one just went or wrote late
    const gone = (await this.db.selectFrom(PROXIES).select('id').where('stale_after', '=', 0).execute()).map((r) => String(r.id));
    if (gone.length > 0) await this.db.deleteFrom(SESSIONS).where('proxy_id', 'in', gone).execute();
    await this.db.deleteFrom(PROXIES).where('stale_after', '=', 0).where('heartbeat_at', '<', now - orphanMs * (1 + TOMBSTONE_WINDOWS)).execute();
    const newest = await this.db.selectFrom(EVENTS).select((eb) => eb.fn.max('id').as('id')).executeTakeFirst();
    if (newest?.id != null) await this.db.deleteFrom(EVENTS).where('created_at', '<', now - EVENT_KEEP_MS).where('id', '<', Number(newest.id)).execute();
  }

  async proxies(opts?: { load?: boolean }): Promise<ProxyRecord[]> {
    const now = Date.now();
    const columns = ['id', 'address', 'hostname', 'pid', 'started_at', 'heartbeat_at', 'stale_after', 'draining', 'figures_at', ...(opts?.load === false ? [] : ['console_counts'])];
    const rows = (await this.db.selectFrom(PROXIES).select(columns).orderBy('started_at').orderBy('id').execute()) as ProxyRow[];
    return rows.filter((p) => isLive(p, now)).map(toProxy);
  }

  async list(): Promise<RegistryListing> {
    const proxies = await this.proxies({ load: false });
    if (proxies.length === 0) return { proxies, sessions: [] };
    const rows = (await this.db.selectFrom(SESSIONS).selectAll().where('proxy_id', 'in', proxies.map((p) => p.id)).orderBy('started_at').orderBy('id').execute()) as SessionRow[];
    return { proxies, sessions: rows.map(toSession) };
  }

  async markKilled(id: string): Promise<string | undefined> {
    const row = (await this.db.selectFrom(SESSIONS).select(['proxy_id']).where('id', '=', id).executeTakeFirst()) as { proxy_id: string } | undefined;
    if (!row) return undefined;
    const proxy = (await this.db.selectFrom(PROXIES).select(['id', 'heartbeat_at', 'stale_after']).where('id', '=', row.proxy_id).executeTakeFirst()) as Pick<ProxyRow, 'id' | 'heartbeat_at' | 'stale_after'> | undefined;
    if (!proxy || !isLive(proxy, Date.now())) return undefined;
    await this.db.updateTable(SESSIONS).set({ killed: 1 }).where('id', '=', id).execute();
    return row.proxy_id;
  }

  async publish(event: SessionEvent): Promise<void> {
    await this.db.insertInto(EVENTS).values({ kind: event.kind, target: event.target, created_at: Date.now() }).execute();
    // the listeners read the table when woken: the payload says nothing they need
    if (this.database.dialect === 'postgres') await sql`SELECT pg_notify(${EVENTS_CHANNEL}, '')`.execute(this.db);
  }

  async subscribe(onEvent: (event: SessionEvent) => void, onTrouble: (err: Error) => void): Promise<Subscription> {
    const newest = await this.db.selectFrom(EVENTS).select((eb) => eb.fn.max('id').as('id')).executeTakeFirst();
    const feed = new EventFeed(this.db, newest?.id == null ? 0 : Number(newest.id), onEvent, onTrouble);
    let listener: PostgresListener | undefined;
    let listening = false;
    let timer: NodeJS.Timeout | undefined;
    let closed = false;
    const schedule = () => {
      clearTimeout(timer);
      if (closed) return;
      timer = setTimeout(() => {
        void feed.poll().finally(schedule);
      }, this.opts.listen && listening ? this.opts.idlePollMs : this.opts.pollMs);
      timer.unref();
    };
    if (this.opts.listen) {
      listener = await listenPostgres(this.opts.listen, EVENTS_CHANNEL, {
        onNotify: () => void feed.poll(),
        onState: (up) => {
          listening = up;
          // back from a lost connection: what was notified meanwhile is in the table
          if (up) void feed.poll();
          else schedule();
        },
        onTrouble,
      });
    }
    schedule();
    return {
      async close() {
        closed = true;
        clearTimeout(timer);
        await listener?.close();
        await feed.idle();
      },
    };
  }

  async close(): Promise<void> {
    // the database belongs to the stores, which close it
  }

  private async upsert(table: string, rows: Record<string, unknown>[], update: readonly string[]): Promise<void> {
    const insert = this.db.insertInto(table).values(rows);
    if (this.database.dialect === 'mysql') {
      await insert.onDuplicateKeyUpdate(Object.fromEntries(update.map((c) => [c, sql`VALUES(${sql.ref(c)})`]))).execute();
    } else {
      await insert.onConflict((oc) => oc.column('id').doUpdateSet(Object.fromEntries(update.map((c) => [c, sql.ref(`excluded.${c}`)])))).execute();
    }
  }
}

/**
 * Reads new rows of the events table in id order and hands each to `onEvent` once. `floor` is the
 * id up to which every row has been handled (or given up on); ids seen above it wait in `seen`
 * until the ones below them arrive, or `GAP_WAIT_MS` passes.
 */
class EventFeed {
  private readonly seen = new Set<number>();
  private gapSince: number | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private failing = false;

  constructor(
    private readonly db: Kysely<any>,
    private floor: number,
    private readonly onEvent: (event: SessionEvent) => void,
    private readonly onTrouble: (err: Error) => void,
  ) {}

  poll(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.read();
          this.failing = false;
        } catch (err) {
          // said once per outage, not once per poll
          if (!this.failing) this.onTrouble(err as Error);
          this.failing = true;
        }
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async read(): Promise<void> {
    for (;;) {
      const rows = await this.db.selectFrom(EVENTS).select(['id', 'kind', 'target']).where('id', '>', this.floor).orderBy('id').limit(500).execute();
      for (const row of rows) {
        const id = Number(row.id);
        if (this.seen.has(id)) continue;
        this.seen.add(id);
        if (KINDS.has(row.kind)) this.onEvent({ kind: row.kind as SessionEvent['kind'], target: String(row.target) });
      }
      this.advance();
      if (rows.length < 500) return;
    }
  }

  private advance(): void {
    while (this.seen.delete(this.floor + 1)) this.floor++;
    if (this.seen.size === 0) {
      this.gapSince = undefined;
      return;
    }
    const now = Date.now();
    this.gapSince ??= now;
    if (now - this.gapSince < GAP_WAIT_MS) return;
    // an id that never came (a rolled-back insert, an autoincrement step): go past it
    this.floor = Math.min(...this.seen) - 1;
    this.gapSince = undefined;
    this.advance();
  }
}

/** Whether a proxy's last heartbeat is within its own stale window (written by its clock, read by ours). */
function isLive(p: { heartbeat_at: number | string; stale_after: number | string }, now: number): boolean {
  // stale_after 0: marked gone by a sweep
  return Number(p.stale_after) > 0 && Number(p.heartbeat_at) + Number(p.stale_after) >= now;
}

function proxyRow(p: ProxyRecord): Record<string, unknown> {
  return { id: p.id, address: p.address.slice(0, 255), hostname: p.hostname.slice(0, 255), pid: p.pid, started_at: p.startedAt, heartbeat_at: p.heartbeatAt, stale_after: p.staleAfterMs, draining: p.draining ? 1 : 0 };
}

function sessionRow(s: SessionRecord): Record<string, unknown> {
  return {
    id: s.id,
    proxy_id: s.proxyId,
    console_type: s.consoleType.slice(0, 255),
    instance_uuid: s.instanceUuid.slice(0, 36),
    server_name: s.serverName?.slice(0, 255) ?? null,
    client: s.client.slice(0, 255),
    backend: s.backend.slice(0, 255),
    token_prefix: s.tokenLogId.slice(0, 8),
    started_at: s.startedAt,
    updated_at: s.updatedAt,
    bytes_from_client: s.bytesFromClient,
    bytes_from_backend: s.bytesFromBackend,
    viewer: s.viewer?.slice(0, 255) ?? null,
    shared_console: s.sharedConsole?.slice(0, 64) ?? null,
    role: s.role ?? null,
    recording: s.recording?.slice(0, 36) ?? null,
  };
}

function toProxy(r: ProxyRow): ProxyRecord {
  const p: ProxyRecord = { id: r.id, address: r.address, hostname: r.hostname, pid: Number(r.pid), startedAt: Number(r.started_at), heartbeatAt: Number(r.heartbeat_at), staleAfterMs: Number(r.stale_after), draining: Number(r.draining) === 1 || r.draining === true };
  const load = parseLoad(r.console_counts);
  return { ...p, ...(r.figures_at != null ? { figuresAt: Number(r.figures_at) } : {}), ...(load ? { load } : {}) };
}

function toSession(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    proxyId: r.proxy_id,
    consoleType: r.console_type,
    instanceUuid: r.instance_uuid,
    serverName: r.server_name,
    client: r.client,
    backend: r.backend,
    tokenLogId: r.token_prefix,
    startedAt: Number(r.started_at),
    updatedAt: Number(r.updated_at),
    bytesFromClient: Number(r.bytes_from_client),
    bytesFromBackend: Number(r.bytes_from_backend),
    ...sharedFacts(r.viewer, r.shared_console, r.role, r.recording),
  };
}

/** A session's viewer, shared console, role and recording, those it has. */
export function sharedFacts(viewer: string | null | undefined, sharedConsole: string | null | undefined, role: string | null | undefined, recording: string | null | undefined): Pick<SessionRecord, 'viewer' | 'sharedConsole' | 'role' | 'recording'> {
  return {
    ...(viewer ? { viewer } : {}),
    ...(sharedConsole ? { sharedConsole } : {}),
    ...(role === 'control' || role === 'view' ? { role } : {}),
    ...(recording ? { recording } : {}),
  };
}
