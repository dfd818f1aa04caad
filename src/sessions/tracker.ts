/**
 * @module sessions/tracker
 * A proxy's side of the live-sessions registry. It writes each session into the registry when it
 * starts and removes it when it ends, and nothing of it while it runs; every `[porthole]
 * session_heartbeat_interval` it writes the proxy's own record (its liveness, which its sessions
 * inherit, and its console counts for the limits when they changed), sweeps proxies that stopped
 * beating, and closes what it should. Byte counts are written when someone lists (a `figures`
 * event), those that changed since the last time only, in batches.
 *
 * - on an event (revoked token, all tokens of a server revoked, session killed), at once: a
 *   revocation closes with 1008 "console access revoked", a kill with 1008 "console session
 *   killed by an administrator";
 * - at each heartbeat, as the backstop for events it missed (a Redis subscriber that was
 *   reconnecting, no shared store at all): sessions the registry says were killed, and sessions
 *   whose token is gone from the token store before its expiry (revoked by someone who told no
 *   one: Nova's `clean_console_auths_for_instance`). Tokens are checked a share at a time: at
 *   least `PRESENCE_MIN` per heartbeat, and enough that each is checked once per
 *   `PRESENCE_ROUND_MS` (a proxy with up to 100 consoles checks them all at every heartbeat; one
 *   with 5 000 at the 5 s default, 417 a heartbeat), so the cost is spread and the staleness bounded.
 *
 * Sessions that start and end are written `WRITE_DELAY_MS` later, all of that time's in one write: the
 * registry is behind by that much (a listing asks for `figures` first, which writes them at once), a
 * console's open never waits for a registry write nor shares its turn of the event loop with one, and
 * a console that ends within that time is never written at all. On SQLite each write is a commit of
 * its own (measured: 124 µs and 20 syscalls for a session's insert and delete one by one, 15 µs a
 * row ten at a time); on the other stores a round trip.
 *
 * A token that merely *expires* closes nothing: Nova checks a token when a console connects,
 * never after, and so does Porthole. Registry writes are coalesced and done one at a time, so a
 * slow or absent store delays them without piling them up, and a session's removal can never be
 * overtaken by a heartbeat that writes it again.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { STALE_HEARTBEATS, type LiveSession, type ProxyLoad, type ProxyRecord, type RegistryBackend, type SessionEvent, type SessionRecord, type SessionRole, type Subscription, type TokenPresence } from './types.ts';

export const CLOSE_REVOKED = { code: 1008, reason: 'console access revoked' } as const;
export const CLOSE_KILLED = { code: 1008, reason: 'console session killed by an administrator' } as const;
export const CLOSE_SHUTDOWN = { code: 1001, reason: 'proxy shutting down' } as const;

/** A token this close to its expiry may be gone because it expired (Redis deletes it then): not a revocation. */
const EXPIRY_SLACK_SECONDS = 2;
/** Token hashes checked at least at each heartbeat. */
export const PRESENCE_MIN = 100;
/** Every live session's token is checked at least once in this long (plus a heartbeat). */
export const PRESENCE_ROUND_MS = 60_000;
/** Sessions written (`addSessions`) or removed (`removeSessions`) per call. */
const WRITE_BATCH = 500;
/** How long after a session starts or ends the registry hears of it (with every other one of that time). */
export const WRITE_DELAY_MS = 100;

export interface TrackerOptions {
  readonly heartbeatMs: number;
  /** The console listener's address (`host:port`). */
  readonly address: string;
  readonly log: Logger;
  /** This proxy's console counts for the limits, written with the heartbeat (none: no limits to share). */
  readonly load?: () => ProxyLoad;
}

export class SessionTracker {
  readonly proxy: { id: string; address: string; hostname: string; pid: number; startedAt: number; staleAfterMs: number; draining: boolean };
  private readonly live = new Map<string, LiveSession>();
  private readonly toAdd = new Map<string, LiveSession>();
  private readonly toRemove = new Set<string>();
  /** Shared consoles' roles as they are now, where they changed since the session opened (its info has the first). */
  private readonly roles = new Map<string, SessionRole>();
  /** Roles changed and not written yet (coalesced: the newest per session). */
  private readonly toRole = new Map<string, SessionRole>();
  /** Byte counts as last written, by session: only those that changed are written again. */
  private readonly written = new Map<string, readonly [number, number]>();
  /** The newest `figures` request not answered yet (its time), or 0. */
  private figuresWanted = 0;
  /** The load as last written (JSON), so an unchanged one is not written again. */
  private loadWritten: string | undefined;
  /** Where the token check goes on at the next heartbeat (an index into the live tokens). */
  private presenceCursor = 0;
  private heartbeatDue = true;
  private working: Promise<void> | undefined;
  /** The delayed write of sessions that started or ended (`WRITE_DELAY_MS`), while one is due. */
  private delayed: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private subscription: Subscription | undefined;
  private stopped = false;
  private readonly troubles = new Set<string>();

  constructor(
    private readonly registry: RegistryBackend,
    private readonly presence: TokenPresence | null,
    private readonly opts: TrackerOptions,
  ) {
    const host = hostname();
    this.proxy = { id: randomUUID(), address: opts.address, hostname: host, pid: process.pid, startedAt: Date.now(), staleAfterMs: opts.heartbeatMs * STALE_HEARTBEATS, draining: false };
  }

  /** Registers the proxy, listens for events, and beats the heart from now on. */
  async start(): Promise<void> {
    await this.subscribe();
    this.kick();
    await this.working;
    this.timer = setInterval(() => {
      this.heartbeatDue = true;
      this.kick();
    }, this.opts.heartbeatMs);
    this.timer.unref();
  }

  started(session: LiveSession): void {
    this.live.set(session.info.id, session);
    this.toAdd.set(session.info.id, session);
    this.kickLater();
  }

  /**
   * A shared console's control moved: the session's role is written once (not per heartbeat),
   * and kept for its later writes (a rejoin writes the role it has now).
   */
  roleChanged(session: LiveSession, role: SessionRole): void {
    const id = session.info.id;
    if (!this.live.has(id) || (this.roles.get(id) ?? session.info.role) === role) return;
    this.roles.set(id, role);
    // not written yet: its first write takes the role
    if (!this.toAdd.has(id)) this.toRole.set(id, role);
    this.kickLater();
  }

  ended(session: LiveSession): void {
    const id = session.info.id;
    this.live.delete(id);
    this.written.delete(id);
    this.roles.delete(id);
    this.toRole.delete(id);
    // never handed to a write: nothing to remove (one under way took it from toAdd, and is removed after it)
    if (this.toAdd.delete(id)) return;
    this.toRemove.add(id);
    this.kickLater();
  }

  /** SIGTERM: the registry shows this proxy as draining. */
  draining(): Promise<void> {
    this.proxy.draining = true;
    this.heartbeatDue = true;
    this.kick();
    return this.working ?? Promise.resolve();
  }

  /** Closes the sessions an event is about; how many. */
  apply(event: SessionEvent): number {
    const target = event.kind === 'instance' ? event.target.toLowerCase() : event.target;
    let closed = 0;
    for (const s of this.live.values()) {
      const hit = event.kind === 'token' ? s.info.tokenHash === target : event.kind === 'instance' ? s.info.instanceUuid.toLowerCase() === target : s.info.id === target;
      if (!hit) continue;
      const how = event.kind === 'session' ? CLOSE_KILLED : CLOSE_REVOKED;
      s.close(how.code, how.reason);
      closed++;
    }
    if (closed > 0) {
      const what = event.kind === 'session' ? 'killed' : event.kind === 'token' ? 'token revoked' : 'all tokens of the server revoked';
      this.opts.log.info({ event: 'sessions_closed', cause: event.kind, ...(event.kind === 'instance' ? { instance: target } : event.kind === 'session' ? { session: target } : { tokenHash: target.slice(0, 8) }), sessions: closed }, `closed ${closed} console session(s): ${what}`);
    }
    return closed;
  }

  /** Stops beating, writes what is pending, and removes the proxy and its sessions from the registry. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.delayed);
    this.delayed = undefined;
    await this.subscription?.close().catch(() => {});
    this.subscription = undefined;
    await this.working;
    try {
      await this.registry.removeProxy(this.proxy.id);
    } catch (err) {
      this.opts.log.warn({ event: 'sessions_registry', err: (err as Error).message }, `could not remove this proxy from the sessions registry (${this.registry.description}); it expires by itself`);
    }
  }

  private async subscribe(): Promise<void> {
    try {
      this.subscription = await this.registry.subscribe(
        (e) => (e.kind === 'figures' ? this.figures(e.target) : this.apply(e)),
        (err) => this.trouble('events', `sessions registry events (${this.registry.description}): ${err.message}; kills and revocations are checked at each heartbeat meanwhile`),
      );
      this.fine('subscribe');
    } catch (err) {
      this.trouble('subscribe', `cannot listen for session events on ${this.registry.description}: ${(err as Error).message}; retrying at the next heartbeat`);
    }
  }

  /** Someone lists the sessions: write the byte counts that changed, then say so. */
  private figures(target: string): void {
    const at = Number(target);
    if (!Number.isFinite(at) || at <= this.figuresWanted) return;
    this.figuresWanted = at;
    this.kick();
  }

  /** Writes what is pending in `WRITE_DELAY_MS` (sooner if something else kicks meanwhile). */
  private kickLater(): void {
    if (this.delayed || this.working || this.stopped) return;
    this.delayed = setTimeout(() => {
      this.delayed = undefined;
      this.kick();
    }, WRITE_DELAY_MS);
  }

  private kick(): void {
    if (this.working || this.stopped) return;
    clearTimeout(this.delayed);
    this.delayed = undefined;
    // after this turn of the event loop, never in it: the write is off the path of whatever kicked
    this.working = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.work())
      .finally(() => {
        this.working = undefined;
      });
  }

  private async work(): Promise<void> {
    for (;;) {
      if (this.toRemove.size > 0) {
        // all that ended meanwhile in one write: consoles end in bursts (a closed loop of clients, a drain)
        const ids = [...this.toRemove];
        this.toRemove.clear();
        for (let i = 0; i < ids.length; i += WRITE_BATCH) {
          try {
            await this.registry.removeSessions(ids.slice(i, i + WRITE_BATCH), this.proxy.id);
          } catch (err) {
            // retried with the next heartbeat; if that never comes, they go with this proxy
            for (const id of ids.slice(i)) this.toRemove.add(id);
            this.trouble('write', `sessions registry (${this.registry.description}): ${(err as Error).message}`);
            return;
          }
        }
      } else if (this.toAdd.size > 0) {
        const sessions = [...this.toAdd.values()].filter((s) => this.live.has(s.info.id));
        this.toAdd.clear();
        try {
          await this.write(sessions);
        } catch (err) {
          // written again at the next heartbeat
          for (const s of sessions) if (this.live.has(s.info.id)) this.toAdd.set(s.info.id, s);
          this.trouble('write', `sessions registry (${this.registry.description}): ${(err as Error).message}`);
          return;
        }
      } else if (this.toRole.size > 0) {
        const roles = [...this.toRole];
        this.toRole.clear();
        for (const [i, [id, role]] of roles.entries()) {
          if (!this.live.has(id)) continue;
          try {
            await this.registry.setRole(id, role);
          } catch (err) {
            // retried with the next heartbeat, unless a newer change came meanwhile
            for (const [rid, r] of roles.slice(i)) if (this.live.has(rid) && !this.toRole.has(rid)) this.toRole.set(rid, r);
            this.trouble('write', `sessions registry (${this.registry.description}): ${(err as Error).message}`);
            return;
          }
        }
      } else if (this.figuresWanted > 0 && !this.stopped) {
        const at = this.figuresWanted;
        this.figuresWanted = 0;
        const changed = [...this.live.values()].filter((s) => {
          const w = this.written.get(s.info.id);
          return !w || w[0] !== s.bytesFromClient || w[1] !== s.bytesFromBackend;
        });
        try {
          await this.write(changed);
          await this.registry.answered(this.proxy.id, at);
        } catch (err) {
          this.trouble('write', `sessions registry (${this.registry.description}): ${(err as Error).message}`);
          return;
        }
      } else if (this.heartbeatDue && !this.stopped) {
        this.heartbeatDue = false;
        await this.heartbeat();
      } else return;
    }
  }

  /** Writes sessions (their records with today's byte counts), in batches, and remembers the counts written. */
  private async write(sessions: readonly LiveSession[]): Promise<void> {
    const now = Date.now();
    for (let i = 0; i < sessions.length; i += WRITE_BATCH) {
      const batch = sessions.slice(i, i + WRITE_BATCH);
      const records = batch.map((s) => this.record(s, now));
      await this.registry.addSessions(records, { ...this.proxy, heartbeatAt: now });
      for (const r of records) if (this.live.has(r.id)) this.written.set(r.id, [r.bytesFromClient, r.bytesFromBackend]);
    }
  }

  private async heartbeat(): Promise<void> {
    if (!this.subscription) await this.subscribe();
    const now = Date.now();
    const sessions = [...this.live.values()];
    try {
      const load = this.opts.load?.();
      const json = load ? JSON.stringify(load) : undefined;
      const beat = await this.registry.heartbeat({ ...this.proxy, heartbeatAt: now } satisfies ProxyRecord, json !== undefined && json !== this.loadWritten ? load : undefined);
      if (beat.rejoined) {
        // swept while it was slow, or new: its sessions are written again, and its load
        for (const s of sessions) this.toAdd.set(s.info.id, s);
        this.loadWritten = undefined;
        if (load) await this.registry.heartbeat({ ...this.proxy, heartbeatAt: now }, load);
      }
      if (json !== undefined) this.loadWritten = json;
      for (const id of beat.killed) this.apply({ kind: 'session', target: id });
      await this.registry.sweep(this.proxy.staleAfterMs);
      this.fine('write');
      this.fine('events');
    } catch (err) {
      this.loadWritten = undefined;
      this.trouble('write', `sessions registry (${this.registry.description}): ${(err as Error).message}`);
    }
    if (!this.presence || sessions.length === 0) return;
    const horizon = Math.floor(now / 1000) + EXPIRY_SLACK_SECONDS;
    const hashes = [...new Set(sessions.filter((s) => s.info.tokenExpires > horizon).map((s) => s.info.tokenHash))];
    if (hashes.length === 0) return;
    // a share of them, going round: each is checked at least once per PRESENCE_ROUND_MS
    const share = Math.min(hashes.length, Math.max(PRESENCE_MIN, Math.ceil((hashes.length * this.opts.heartbeatMs) / PRESENCE_ROUND_MS)));
    const from = this.presenceCursor % hashes.length;
    const checked = hashes.slice(from, from + share).concat(hashes.slice(0, Math.max(0, from + share - hashes.length)));
    this.presenceCursor = from + share;
    try {
      const present = await this.presence.present(checked);
      for (const hash of checked) if (!present.has(hash)) this.apply({ kind: 'token', target: hash });
      this.fine('tokens');
    } catch (err) {
      this.trouble('tokens', `cannot check the tokens of live sessions: ${(err as Error).message}`);
    }
  }

  private record(s: LiveSession, now: number): SessionRecord {
    const i = s.info;
    return {
      id: i.id,
      proxyId: this.proxy.id,
      consoleType: i.consoleType,
      instanceUuid: i.instanceUuid,
      serverName: i.serverName,
      client: i.client,
      backend: i.backend,
      tokenLogId: i.tokenLogId,
      startedAt: s.startedAt,
      updatedAt: now,
      bytesFromClient: s.bytesFromClient,
      bytesFromBackend: s.bytesFromBackend,
      ...(i.viewer ? { viewer: i.viewer } : {}),
      ...(i.sharedConsole ? { sharedConsole: i.sharedConsole } : {}),
      ...((this.roles.get(i.id) ?? i.role) ? { role: this.roles.get(i.id) ?? i.role! } : {}),
      ...(i.recording ? { recording: i.recording } : {}),
    };
  }

  /** Logged once when it starts going wrong, and once when it is fine again. */
  private trouble(kind: string, message: string): void {
    if (this.troubles.has(kind)) return;
    this.troubles.add(kind);
    this.opts.log.warn({ event: 'sessions_registry', kind }, message);
  }

  private fine(kind: string): void {
    if (this.troubles.delete(kind)) this.opts.log.info({ event: 'sessions_registry', kind }, `sessions registry (${this.registry.description}) works again`);
  }
}
