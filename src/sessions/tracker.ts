/**
 * @module sessions/tracker
 * A proxy's side of the live-sessions registry. It writes each session into the registry when it
 * starts and removes it when it ends; every `[porthole] session_heartbeat_interval` it writes the
 * proxy's heartbeat and its sessions' byte counts, sweeps proxies that stopped beating, and closes
 * what it should:
 *
 * - on an event (revoked token, all tokens of a server revoked, session killed), at once: a
 *   revocation closes with 1008 "console access revoked", a kill with 1008 "console session
 *   killed by an administrator";
 * - at each heartbeat, as the backstop for events it missed (a Redis subscriber that was
 *   reconnecting, no shared store at all): sessions the registry says were killed, and sessions
 *   whose token is gone from the token store before its expiry (revoked by someone who told no
 *   one: Nova's `clean_console_auths_for_instance`).
 *
 * A token that merely *expires* closes nothing: Nova checks a token when a console connects,
 * never after, and so does Porthole. Registry writes are coalesced and done one at a time, so a
 * slow or absent store delays them without piling them up, and a session's removal can never be
 * overtaken by a heartbeat that writes it again.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { STALE_HEARTBEATS, type LiveSession, type ProxyRecord, type RegistryBackend, type SessionEvent, type SessionRecord, type Subscription, type TokenPresence } from './types.ts';

export const CLOSE_REVOKED = { code: 1008, reason: 'console access revoked' } as const;
export const CLOSE_KILLED = { code: 1008, reason: 'console session killed by an administrator' } as const;
export const CLOSE_SHUTDOWN = { code: 1001, reason: 'proxy shutting down' } as const;

/** A token this close to its expiry may be gone because it expired (Redis deletes it then): not a revocation. */
const EXPIRY_SLACK_SECONDS = 2;

export interface TrackerOptions {
  readonly heartbeatMs: number;
  /** The console listener's address (`host:port`). */
  readonly address: string;
  readonly log: Logger;
}

export class SessionTracker {
  readonly proxy: { id: string; address: string; hostname: string; pid: number; startedAt: number; staleAfterMs: number; draining: boolean };
  private readonly live = new Map<string, LiveSession>();
  private readonly toAdd = new Map<string, LiveSession>();
  private readonly toRemove = new Set<string>();
  private heartbeatDue = true;
  private working: Promise<void> | undefined;
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
    this.kick();
  }

  ended(session: LiveSession): void {
    const id = session.info.id;
    this.live.delete(id);
    // never written yet: nothing to remove either, unless a write is under way
    this.toAdd.delete(id);
    this.toRemove.add(id);
    this.kick();
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
        (e) => this.apply(e),
        (err) => this.trouble('events', `sessions registry events (${this.registry.description}): ${err.message}; kills and revocations are checked at each heartbeat meanwhile`),
      );
      this.fine('subscribe');
    } catch (err) {
      this.trouble('subscribe', `cannot listen for session events on ${this.registry.description}: ${(err as Error).message}; retrying at the next heartbeat`);
    }
  }

  private kick(): void {
    if (this.working || this.stopped) return;
    this.working = this.work().finally(() => {
      this.working = undefined;
    });
  }

  private async work(): Promise<void> {
    for (;;) {
      if (this.toRemove.size > 0) {
        const ids = [...this.toRemove];
        this.toRemove.clear();
        for (const id of ids) {
          try {
            await this.registry.removeSession(id);
          } catch (err) {
            // retried with the next heartbeat; if that never comes, it expires with the heartbeat
            this.toRemove.add(id);
            this.trouble('write', `sessions registry (${this.registry.description}): ${(err as Error).message}`);
            return;
          }
        }
      } else if (this.toAdd.size > 0) {
        const sessions = [...this.toAdd.values()];
        this.toAdd.clear();
        for (const s of sessions) {
          if (!this.live.has(s.info.id)) continue;
          try {
            await this.registry.addSession(this.record(s, Date.now()), { ...this.proxy, heartbeatAt: Date.now() });
          } catch (err) {
            // the next heartbeat writes every live session anyway
            this.trouble('write', `sessions registry (${this.registry.description}): ${(err as Error).message}`);
            return;
          }
        }
      } else if (this.heartbeatDue && !this.stopped) {
        this.heartbeatDue = false;
        await this.heartbeat();
      } else return;
    }
  }

  private async heartbeat(): Promise<void> {
    if (!this.subscription) await this.subscribe();
    const now = Date.now();
    const sessions = [...this.live.values()];
    try {
      const killed = await this.registry.heartbeat({ ...this.proxy, heartbeatAt: now } satisfies ProxyRecord, sessions.map((s) => this.record(s, now)));
      for (const id of killed) this.apply({ kind: 'session', target: id });
      await this.registry.sweep(this.proxy.staleAfterMs);
      this.fine('write');
      this.fine('events');
    } catch (err) {
      this.trouble('write', `sessions registry (${this.registry.description}): ${(err as Error).message}`);
    }
    if (!this.presence || sessions.length === 0) return;
    const horizon = Math.floor(now / 1000) + EXPIRY_SLACK_SECONDS;
    const checked = sessions.filter((s) => s.info.tokenExpires > horizon);
    if (checked.length === 0) return;
    try {
      const present = await this.presence.present([...new Set(checked.map((s) => s.info.tokenHash))]);
      const gone = new Set(checked.filter((s) => !present.has(s.info.tokenHash)).map((s) => s.info.tokenHash));
      for (const hash of gone) this.apply({ kind: 'token', target: hash });
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
