/**
 * @module database/redis/registry
 * The live-sessions registry in Redis, under `[porthole] redis_key_prefix`:
 *
 * - `proxy:<id>`: a hash with the proxy's record, expiring `STALE_HEARTBEATS` heartbeats after
 *   its last one, so a proxy that died is gone by itself; `proxies`: the set of their ids;
 * - `session:<id>`: a hash with the session's record and byte counts (and `killed`), expiring
 *   like its proxy's; `sessions`: the set of their ids;
 * - channel `session-events`: revocations and kills, published as JSON (Redis pub/sub).
 *
 * Index members whose key has expired are dropped when the registry is listed or swept. Pub/sub
 * delivers only to connected subscribers: a proxy whose subscriber connection was down when an
 * event went out catches up at its next heartbeat, which reads the `killed` flags of its sessions
 * and looks for tokens deleted before their expiry (`sessions/tracker.ts`).
 */
import type { Redis } from 'ioredis';
import type { ProxyRecord, RegistryBackend, RegistryListing, SessionEvent, SessionRecord, Subscription } from '../../sessions/types.ts';
import type { RedisConnection } from './connection.ts';

// KEYS: session; ARGV: prefix. The session's proxy id when both are live, else nil.
const MARK_KILLED = `
local proxy = redis.call('HGET', KEYS[1], 'proxy_id')
if not proxy then return false end
if redis.call('EXISTS', ARGV[1] .. 'proxy:' .. proxy) == 0 then return false end
redis.call('HSET', KEYS[1], 'killed', '1')
return proxy`;

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
  }

  private key(kind: 'proxy' | 'session', id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  private get channel(): string {
    return `${this.prefix}session-events`;
  }

  async heartbeat(proxy: ProxyRecord, sessions: readonly SessionRecord[]): Promise<string[]> {
    const staleMs = proxy.staleAfterMs;
    const p = this.redis.multi();
    p.hset(this.key('proxy', proxy.id), proxyFields(proxy)).pexpire(this.key('proxy', proxy.id), staleMs).sadd(`${this.prefix}proxies`, proxy.id);
    for (const s of sessions) {
      p.hset(this.key('session', s.id), sessionFields(s)).pexpire(this.key('session', s.id), staleMs).sadd(`${this.prefix}sessions`, s.id).hget(this.key('session', s.id), 'killed');
    }
    const replies = (await p.exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    return sessions.filter((_, i) => replies[3 + i * 4 + 3]?.[1] === '1').map((s) => s.id);
  }

  async addSession(session: SessionRecord, proxy: ProxyRecord): Promise<void> {
    const replies = await this.redis.multi().hset(this.key('session', session.id), sessionFields(session)).pexpire(this.key('session', session.id), proxy.staleAfterMs).sadd(`${this.prefix}sessions`, session.id).exec();
    for (const [err] of replies ?? []) if (err) throw err;
  }

  async removeSession(id: string): Promise<void> {
    await this.redis.multi().del(this.key('session', id)).srem(`${this.prefix}sessions`, id).exec();
  }

  async removeProxy(id: string): Promise<void> {
    const ids = await this.redis.smembers(`${this.prefix}sessions`);
    const owners = await this.fieldOf(ids.map((s) => this.key('session', s)), 'proxy_id');
    const mine = ids.filter((_, i) => owners[i] === id);
    const m = this.redis.multi().del(this.key('proxy', id)).srem(`${this.prefix}proxies`, id);
    for (const s of mine) m.del(this.key('session', s)).srem(`${this.prefix}sessions`, s);
    await m.exec();
  }

  async sweep(_orphanMs: number): Promise<void> {
    // the keys expire by themselves; the index sets lose their members here and in list()
    await this.read('proxies', 'proxy');
    await this.read('sessions', 'session');
  }

  async list(): Promise<RegistryListing> {
    const proxies = (await this.read('proxies', 'proxy')).map(toProxy).sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : 1));
    const live = new Set(proxies.map((p) => p.id));
    const sessions = (await this.read('sessions', 'session')).map(toSession).filter((s) => live.has(s.proxyId));
    return { proxies, sessions: sessions.sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : 1)) };
  }

  async markKilled(id: string): Promise<string | undefined> {
    const fn = (this.redis as unknown as Record<string, (...a: string[]) => Promise<string | null>>)['portholeSessionKill']!;
    const proxy = await fn.call(this.redis, this.key('session', id), this.prefix);
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
        if ((e.kind === 'token' || e.kind === 'instance' || e.kind === 'session') && typeof e.target === 'string') onEvent({ kind: e.kind, target: e.target });
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

  /** The hashes of an index set's live members; members whose key expired leave the set. */
  private async read(index: 'proxies' | 'sessions', kind: 'proxy' | 'session'): Promise<Record<string, string>[]> {
    const ids = await this.redis.smembers(`${this.prefix}${index}`);
    if (ids.length === 0) return [];
    const p = this.redis.pipeline();
    for (const id of ids) p.hgetall(this.key(kind, id));
    const replies = (await p.exec()) ?? [];
    const found: Record<string, string>[] = [];
    const gone: string[] = [];
    replies.forEach(([err, h], i) => {
      if (err) throw err;
      const hash = h as Record<string, string>;
      if (hash['id'] === undefined) gone.push(ids[i]!);
      else found.push(hash);
    });
    if (gone.length) await this.redis.srem(`${this.prefix}${index}`, ...gone);
    return found;
  }

  private async fieldOf(keys: string[], field: string): Promise<Array<string | null>> {
    if (keys.length === 0) return [];
    const p = this.redis.pipeline();
    for (const k of keys) p.hget(k, field);
    return ((await p.exec()) ?? []).map(([, v]) => (v as string | null) ?? null);
  }
}

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
  };
}

function toProxy(h: Record<string, string>): ProxyRecord {
  return { id: h['id']!, address: h['address'] ?? '', hostname: h['hostname'] ?? '', pid: Number(h['pid']), startedAt: Number(h['started_at']), heartbeatAt: Number(h['heartbeat_at']), staleAfterMs: Number(h['stale_after']), draining: h['draining'] === '1' };
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
  };
}
