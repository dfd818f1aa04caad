/**
 * @module database/redis/registry
 * The live-sessions registry in Redis, under `[porthole] redis_key_prefix`:
 *
 * - `proxy:<id>`: a hash with the proxy's record (its console counts for the limits as JSON, the
 *   newest byte-count request it answered), expiring `STALE_HEARTBEATS` heartbeats after its
 *   last one; `proxy-beats`: a sorted set of proxy ids scored by when each goes stale;
 * - `session:<id>`: a hash with the session's record, byte counts as last asked (and `killed`),
 *   with no expiry of its own: it lives as long as its proxy; `proxy-sessions:<proxy id>`: the
 *   set of a proxy's sessions; `killed:<proxy id>`: those of them killed;
 * - channel `session-events`: revocations, kills and byte-count requests, as JSON (pub/sub).
 *
 * Steady state (issue 20): a heartbeat is one MULTI of five commands on the proxy's own keys
 * (EXISTS, HSET, PEXPIRE, ZADD, SMEMBERS of its killed set) and the sweep one ZRANGEBYSCORE,
 * whatever the number of consoles; a session costs a MULTI when it opens and one when it ends.
 * A proxy whose score has passed is swept by one script (`SWEEP`) that deletes its sessions
 * through its set; its id stays in `proxy-beats` for `TOMBSTONE_WINDOWS` windows more, so a
 * session written late is deleted too. A proxy that finds its hash gone (it was slow, not dead)
 * writes all its sessions again. Pub/sub delivers only to connected subscribers: a proxy whose
 * subscriber was down catches up at its next heartbeat (its killed set, and the tokens of its
 * sessions, `sessions/tracker.ts`).
 */
import type { Redis } from 'ioredis';
import { parseLoad, type Beat, type ProxyLoad, type ProxyRecord, type RegistryBackend, type RegistryListing, type SessionEvent, type SessionRecord, type SessionRole, type Subscription } from '../../sessions/types.ts';
import type { RedisConnection } from './connection.ts';

/** Stale windows a swept proxy's id stays in `proxy-beats` (its late session writes are deleted meanwhile). */
const TOMBSTONE_WINDOWS = 3;
const KINDS = new Set(['token', 'instance', 'session', 'figures']);

// KEYS: session; ARGV: prefix, session id. The session's proxy id when both are live, else nil.
const MARK_KILLED = `
local proxy = redis.call('HGET', KEYS[1], 'proxy_id')
if not proxy then return false end
if redis.call('EXISTS', ARGV[1] .. 'proxy:' .. proxy) == 0 then return false end
redis.call('HSET', KEYS[1], 'killed', '1')
redis.call('SADD', ARGV[1] .. 'killed:' .. proxy, ARGV[2])
return proxy`;

// KEYS: proxy-beats; ARGV: prefix, proxy id, now (or '' to remove it whatever its score), forget
// before. Deletes the proxy's sessions when it is stale (checked here, atomically with its
// heartbeat's ZADD); forgets its id once it has been stale long enough. Answers the sessions deleted.
const SWEEP = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' and score and tonumber(score) >= tonumber(ARGV[3]) then return 0 end
local set = ARGV[1] .. 'proxy-sessions:' .. ARGV[2]
local ids = redis.call('SMEMBERS', set)
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. 'session:' .. id) end
redis.call('DEL', set, ARGV[1] .. 'killed:' .. ARGV[2], ARGV[1] .. 'proxy:' .. ARGV[2])
if ARGV[3] == '' or not score or tonumber(score) < tonumber(ARGV[4]) then redis.call('ZREM', KEYS[1], ARGV[2]) end
return #ids`;

export class RedisRegistry implements RegistryBackend {
  readonly shared = true;
  readonly description: string;
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(connection: RedisConnection) {
    this.redis = connection.redis;
    this.prefix = connection.prefix;
    this.description = connection.description;
    this.redis.defineCommand('portholeSessionKill', { numberOfKeys: 1, lua: MARK_KILLED });
    this.redis.defineCommand('portholeProxySweep', { numberOfKeys: 1, lua: SWEEP });
  }

  private key(kind: 'proxy' | 'session' | 'proxy-sessions' | 'killed', id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  private get beats(): string {
    return `${this.prefix}proxy-beats`;
  }

  private get channel(): string {
    return `${this.prefix}session-events`;
  }

  async heartbeat(proxy: ProxyRecord, load?: ProxyLoad): Promise<Beat> {
    const key = this.key('proxy', proxy.id);
    const fields = load ? { ...proxyFields(proxy), load: JSON.stringify(load) } : proxyFields(proxy);
    const replies = await this.redis
      .multi()
      .exists(key)
      .hset(key, fields)
      .pexpire(key, proxy.staleAfterMs)
      .zadd(this.beats, proxy.heartbeatAt + proxy.staleAfterMs, proxy.id)
      .smembers(this.key('killed', proxy.id))
      .exec();
    for (const [err] of replies ?? []) if (err) throw err;
    return { killed: (replies?.[4]?.[1] as string[]) ?? [], rejoined: Number(replies?.[0]?.[1]) === 0 };
  }

  async addSessions(sessions: readonly SessionRecord[], proxy: ProxyRecord): Promise<void> {
    if (sessions.length === 0) return;
    const m = this.redis.multi();
    for (const s of sessions) m.hset(this.key('session', s.id), sessionFields(s)).sadd(this.key('proxy-sessions', proxy.id), s.id);
    const replies = await m.exec();
    for (const [err] of replies ?? []) if (err) throw err;
  }

  async removeSessions(ids: readonly string[], proxyId: string): Promise<void> {
    if (ids.length === 0) return;
    await this.redis.multi().del(...ids.map((id) => this.key('session', id))).srem(this.key('proxy-sessions', proxyId), ...ids).srem(this.key('killed', proxyId), ...ids).exec();
  }

  async setRole(id: string, role: SessionRole): Promise<void> {
    // only while its hash is there: HSET on a removed session would make a record with no id
    await this.redis.eval(`if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'role', ARGV[1]) end return 0`, 1, this.key('session', id), role);
  }

  async answered(proxyId: string, at: number): Promise<void> {
    // only while its record is there: HSET on an expired one would make a record with no id
    await this.redis.eval(`if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'figures_at', ARGV[1]) end return 0`, 1, this.key('proxy', proxyId), String(at));
  }

  async removeProxy(id: string): Promise<void> {
    await this.sweepOne(id, '', 0);
  }

  async sweep(orphanMs: number): Promise<void> {
    const now = Date.now();
    // none while every proxy beats: one command
    const stale = await this.redis.zrangebyscore(this.beats, '-inf', `(${now}`);
    for (const id of stale) await this.sweepOne(id, String(now), now - orphanMs * TOMBSTONE_WINDOWS);
  }

  private async sweepOne(id: string, now: string, forgetBefore: number): Promise<void> {
    const fn = (this.redis as unknown as Record<string, (...a: string[]) => Promise<number>>)['portholeProxySweep']!;
    await fn.call(this.redis, this.beats, this.prefix, id, now, String(forgetBefore));
  }

  async proxies(opts?: { load?: boolean }): Promise<ProxyRecord[]> {
    const ids = await this.redis.zrangebyscore(this.beats, String(Date.now()), '+inf');
    if (ids.length === 0) return [];
    // without the load (a few KB each) when only liveness and figures_at are wanted
    const fields = opts?.load === false ? PROXY_FIELDS : [...PROXY_FIELDS, 'load'];
    const p = this.redis.pipeline();
    for (const id of ids) p.hmget(this.key('proxy', id), ...fields);
    const found: ProxyRecord[] = [];
    for (const [err, values] of (await p.exec()) ?? []) {
      if (err) throw err;
      const hash = Object.fromEntries(fields.flatMap((f, i) => ((values as Array<string | null>)[i] != null ? [[f, (values as string[])[i]!]] : [])));
      if (hash['id'] !== undefined) found.push(toProxy(hash));
    }
    return found.sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : 1));
  }

  async list(): Promise<RegistryListing> {
    const proxies = await this.proxies({ load: false });
    if (proxies.length === 0) return { proxies, sessions: [] };
    const m = this.redis.pipeline();
    for (const p of proxies) m.smembers(this.key('proxy-sessions', p.id));
    const ids: string[] = [];
    for (const [err, members] of (await m.exec()) ?? []) {
      if (err) throw err;
      ids.push(...(members as string[]));
    }
    if (ids.length === 0) return { proxies, sessions: [] };
    const h = this.redis.pipeline();
    for (const id of ids) h.hgetall(this.key('session', id));
    const sessions: SessionRecord[] = [];
    for (const [err, hash] of (await h.exec()) ?? []) {
      if (err) throw err;
      if ((hash as Record<string, string>)['id'] !== undefined) sessions.push(toSession(hash as Record<string, string>));
    }
    return { proxies, sessions: sessions.sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : 1)) };
  }

  async markKilled(id: string): Promise<string | undefined> {
    const fn = (this.redis as unknown as Record<string, (...a: string[]) => Promise<string | null>>)['portholeSessionKill']!;
    const proxy = await fn.call(this.redis, this.key('session', id), this.prefix, id);
    return proxy ?? undefined;
  }

  async publish(event: SessionEvent): Promise<void> {
    await this.redis.publish(this.channel, JSON.stringify(event));
  }

  async subscribe(onEvent: (event: SessionEvent) => void, onTrouble: (err: Error) => void): Promise<Subscription> {
    // a connection in subscriber mode can do nothing else: one of its own; it queues its
    // SUBSCRIBE while reconnecting (the store's connection fails commands at once instead)
    const sub = this.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined, connectionName: 'porthole-sessions' });
    let failing = false;
    sub.on('error', (err: Error) => {
      if (!failing) onTrouble(err);
      failing = true;
    });
    sub.on('ready', () => {
      failing = false;
    });
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        const e = JSON.parse(message) as Partial<SessionEvent>;
        if (typeof e.kind === 'string' && KINDS.has(e.kind) && typeof e.target === 'string') onEvent({ kind: e.kind, target: e.target });
      } catch {
        // not ours: ignored
      }
    });
    try {
      await sub.connect();
      await sub.subscribe(this.channel);
    } catch (err) {
      sub.disconnect();
      throw err;
    }
    return {
      async close() {
        try {
          await sub.quit();
        } catch {
          sub.disconnect();
        }
      },
    };
  }

  async close(): Promise<void> {
    // the connection belongs to the stores, which close it
  }
}

const PROXY_FIELDS = ['id', 'address', 'hostname', 'pid', 'started_at', 'heartbeat_at', 'stale_after', 'draining', 'figures_at'];

function proxyFields(p: ProxyRecord): Record<string, string | number> {
  return { id: p.id, address: p.address, hostname: p.hostname, pid: p.pid, started_at: p.startedAt, heartbeat_at: p.heartbeatAt, stale_after: p.staleAfterMs, draining: p.draining ? 1 : 0 };
}

function sessionFields(s: SessionRecord): Record<string, string | number> {
  return {
    id: s.id,
    proxy_id: s.proxyId,
    console_type: s.consoleType,
    instance_uuid: s.instanceUuid,
    server_name: s.serverName ?? '',
    client: s.client,
    backend: s.backend,
    token_prefix: s.tokenLogId,
    started_at: s.startedAt,
    updated_at: s.updatedAt,
    bytes_from_client: s.bytesFromClient,
    bytes_from_backend: s.bytesFromBackend,
    ...(s.viewer ? { viewer: s.viewer } : {}),
    ...(s.sharedConsole ? { shared_console: s.sharedConsole } : {}),
    ...(s.role ? { role: s.role } : {}),
    ...(s.recording ? { recording: s.recording } : {}),
  };
}

function toProxy(h: Record<string, string>): ProxyRecord {
  const p: ProxyRecord = { id: h['id']!, address: h['address'] ?? '', hostname: h['hostname'] ?? '', pid: Number(h['pid']), startedAt: Number(h['started_at']), heartbeatAt: Number(h['heartbeat_at']), staleAfterMs: Number(h['stale_after']), draining: h['draining'] === '1' };
  const load = parseLoad(h['load']);
  return { ...p, ...(h['figures_at'] ? { figuresAt: Number(h['figures_at']) } : {}), ...(load ? { load } : {}) };
}

function toSession(h: Record<string, string>): SessionRecord {
  return {
    id: h['id']!,
    proxyId: h['proxy_id'] ?? '',
    consoleType: h['console_type'] ?? '',
    instanceUuid: h['instance_uuid'] ?? '',
    serverName: h['server_name'] ? h['server_name'] : null,
    client: h['client'] ?? '',
    backend: h['backend'] ?? '',
    tokenLogId: h['token_prefix'] ?? '',
    startedAt: Number(h['started_at']),
    updatedAt: Number(h['updated_at']),
    bytesFromClient: Number(h['bytes_from_client']),
    bytesFromBackend: Number(h['bytes_from_backend']),
    ...(h['viewer'] ? { viewer: h['viewer'] } : {}),
    ...(h['shared_console'] ? { sharedConsole: h['shared_console'] } : {}),
    ...(h['role'] === 'control' || h['role'] === 'view' ? { role: h['role'] } : {}),
    ...(h['recording'] ? { recording: h['recording'] } : {}),
  };
}
