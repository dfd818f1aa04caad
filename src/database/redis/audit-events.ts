/**
 * @module database/redis/audit-events
 * The audit trail's events (`store/audit-events.ts`) in Redis, under `[porthole] redis_key_prefix`:
 *
 * - `events`: a sorted set of every event, scored by its time (epoch ms);
 * - `events:server:<uuid>`: the same, for one server's events (the events API's usual question);
 * - `events:servers`: the set of servers that have such a key, for the sweep.
 *
 * A member is a random 8-hex nonce, `|`, and the line's JSON (two identical lines in the same
 * millisecond stay two events). Filters other than the server and the time are applied while
 * reading, page by page, up to `MAX_SCANNED` members per query. Each key is also cut to its
 * newest `MAX_EVENTS_PER_KEY` at every append, so a store whose sweep is off (retention 0) is
 * still bounded; the sweep removes events older than the retention.
 */
import { randomBytes } from 'node:crypto';
import type { AuditEventStore, AuditLine, AuditQuery } from '../../store/audit-events.ts';
import type { RedisConnection } from './connection.ts';

/** Newest events kept per key whatever the retention (about 0.5 KiB each). */
export const MAX_EVENTS_PER_KEY = 1_000_000;
/** Members read at most by one query whose filters Redis cannot apply itself. */
const MAX_SCANNED = 100_000;
const PAGE = 1000;

export class RedisAuditEvents implements AuditEventStore {
  readonly description: string;

  constructor(private readonly connection: RedisConnection) {
    this.description = connection.description;
  }

  private key(server?: string): string {
    return server === undefined ? `${this.connection.prefix}events` : `${this.connection.prefix}events:server:${server}`;
  }

  private get index(): string {
    return `${this.connection.prefix}events:servers`;
  }

  async append(lines: readonly AuditLine[]): Promise<void> {
    if (lines.length === 0) return;
    const m = this.connection.redis.multi();
    const touched = new Set<string>([this.key()]);
    for (const l of lines) {
      const member = `${randomBytes(4).toString('hex')}|${JSON.stringify(l)}`;
      const score = Date.parse(l.time);
      m.zadd(this.key(), score, member);
      if (l.server !== undefined) {
        m.zadd(this.key(l.server), score, member).sadd(this.index, l.server);
        touched.add(this.key(l.server));
      }
    }
    for (const k of touched) m.zremrangebyrank(k, 0, -(MAX_EVENTS_PER_KEY + 1));
    const replies = (await m.exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
  }

  async query(q: AuditQuery): Promise<AuditLine[]> {
    const redis = this.connection.redis;
    const key = this.key(q.server);
    const min = q.since === undefined ? '-inf' : String(q.since);
    const max = q.until === undefined ? '+inf' : `(${q.until}`;
    const events = q.events?.length ? new Set<string>(q.events) : undefined;
    const out: AuditLine[] = [];
    for (let offset = 0; offset < MAX_SCANNED && out.length < q.limit; offset += PAGE) {
      const page = q.order === 'oldest' ? await redis.zrangebyscore(key, min, max, 'LIMIT', offset, PAGE) : await redis.zrevrangebyscore(key, max, min, 'LIMIT', offset, PAGE);
      for (const member of page) {
        const line = JSON.parse(member.slice(member.indexOf('|') + 1)) as AuditLine;
        if (events && !events.has(line.event)) continue;
        if (q.token !== undefined && line.token !== q.token) continue;
        if (q.session !== undefined && line.session !== q.session) continue;
        out.push(line);
        if (out.length === q.limit) break;
      }
      if (page.length < PAGE) break;
    }
    return out;
  }

  async sweep(before: number): Promise<number> {
    const redis = this.connection.redis;
    const cut = `(${before}`;
    const total = Number(await redis.zremrangebyscore(this.key(), '-inf', cut));
    let cursor = '0';
    do {
      const [next, servers] = await redis.sscan(this.index, cursor, 'COUNT', 500);
      cursor = next;
      for (const server of servers) {
        const k = this.key(server);
        const replies = (await redis.multi().zremrangebyscore(k, '-inf', cut).zcard(k).exec()) ?? [];
        // a server's key with nothing left is gone (Redis deletes an empty set): forget it
        if (Number(replies[1]?.[1] ?? 0) === 0) await redis.srem(this.index, server);
      }
    } while (cursor !== '0');
    return total;
  }
}
