/**
 * @module database/redis/recordings
 * The list of console recordings (`store/recordings.ts`) in Redis, under `[porthole] redis_key_prefix`:
 *
 * - `recording:<id>`: a hash with the columns of `porthole_recordings`;
 * - `recordings`: a sorted set of every recording id, scored by its start (epoch ms);
 * - `recordings:server:<uuid>`: the same, for one server's recordings.
 *
 * A listing reads ids newest first page by page and their hashes in one pipeline per page; a
 * project filter is applied while reading, up to `MAX_SCANNED` ids per listing.
 */
import type { RecordingFilter, RecordingRecord, RecordingStore } from '../../store/recordings.ts';
import { defineScripts, type RedisConnection, type Scripts } from './connection.ts';

const MAX_SCANNED = 100_000;
const PAGE = 500;

// KEYS: recording; ARGV: ended_at, size_bytes. Only a recording that is there is finished
const FINISH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'ended_at', ARGV[1], 'size_bytes', ARGV[2])
return 1`;

export class RedisRecordings implements RecordingStore {
  private readonly scripts: Scripts<'portholeRecordingFinish'>;

  constructor(private readonly connection: RedisConnection) {
    this.scripts = defineScripts(connection.redis, { portholeRecordingFinish: [1, FINISH] });
  }

  private key(id: string): string {
    return `${this.connection.prefix}recording:${id}`;
  }

  private index(serverId?: string): string {
    return serverId === undefined ? `${this.connection.prefix}recordings` : `${this.connection.prefix}recordings:server:${serverId}`;
  }

  async add(r: RecordingRecord): Promise<void> {
    const fields: Array<[string, string | number | null]> = [
      ['id', r.id],
      ['session_id', r.sessionId],
      ['server_id', r.serverId],
      ['server_name', r.serverName],
      ['project_id', r.projectId],
      ['viewer', r.viewer],
      ['client', r.client],
      ['proxy_host', r.proxyHost],
      ['path', r.path],
      ['started_at', r.startedAt],
      ['ended_at', r.endedAt],
      ['size_bytes', r.sizeBytes],
    ];
    const args = fields.flatMap(([k, v]) => (v === null ? [] : [k, v]));
    const replies = (await this.connection.redis.multi().hset(this.key(r.id), ...args).zadd(this.index(), r.startedAt, r.id).zadd(this.index(r.serverId), r.startedAt, r.id).exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
  }

  async finish(id: string, endedAt: number, sizeBytes: number): Promise<void> {
    await this.scripts.portholeRecordingFinish(this.key(id), endedAt, sizeBytes);
  }

  async get(id: string): Promise<RecordingRecord | undefined> {
    const h = await this.connection.redis.hgetall(this.key(id));
    return h['id'] === undefined ? undefined : toRecording(h);
  }

  async list(filter: RecordingFilter = {}): Promise<RecordingRecord[]> {
    const redis = this.connection.redis;
    const key = this.index(filter.serverId);
    const min = filter.since === undefined ? '-inf' : String(filter.since);
    const limit = filter.limit ?? Infinity;
    const out: RecordingRecord[] = [];
    for (let offset = 0; offset < MAX_SCANNED && out.length < limit; offset += PAGE) {
      const ids = await redis.zrevrangebyscore(key, '+inf', min, 'LIMIT', offset, PAGE);
      if (ids.length === 0) break;
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.hgetall(this.key(id));
      const page: RecordingRecord[] = [];
      for (const [err, h] of (await pipeline.exec()) ?? []) {
        if (err) throw err;
        const hash = h as Record<string, string>;
        if (hash['id'] === undefined) continue;
        const r = toRecording(hash);
        if (filter.projectId !== undefined && r.projectId !== filter.projectId) continue;
        page.push(r);
      }
      // ids of the same millisecond come in reverse binary order, as the SQL store's `id DESC`
      out.push(...page);
      if (ids.length < PAGE) break;
    }
    return out.slice(0, limit);
  }

  async remove(id: string): Promise<boolean> {
    const redis = this.connection.redis;
    const serverId = await redis.hget(this.key(id), 'server_id');
    const m = redis.multi().del(this.key(id)).zrem(this.index(), id);
    if (serverId !== null) m.zrem(this.index(serverId), id);
    const replies = (await m.exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    return Number(replies[0]?.[1] ?? 0) > 0;
  }
}

function toRecording(h: Record<string, string>): RecordingRecord {
  return {
    id: h['id']!,
    sessionId: h['session_id'] ?? '',
    serverId: h['server_id'] ?? '',
    serverName: h['server_name'] ?? null,
    projectId: h['project_id'] ?? null,
    viewer: h['viewer'] ?? null,
    client: h['client'] ?? '',
    proxyHost: h['proxy_host'] ?? '',
    path: h['path'] ?? '',
    startedAt: Number(h['started_at'] ?? 0),
    endedAt: h['ended_at'] === undefined ? null : Number(h['ended_at']),
    sizeBytes: Number(h['size_bytes'] ?? 0),
  };
}
