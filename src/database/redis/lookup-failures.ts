/**
 * @module database/redis/lookup-failures
 * Failed console token lookups per client and window (`store/lookup-failures.ts`) in Redis:
 * `lookup-failures:<window start>:<client>` under `[porthole] redis_key_prefix`, INCR and an
 * EXPIREAT at the window's end, so Redis itself is the sweep.
 */
import type { LookupFailureCounter } from '../../store/lookup-failures.ts';
import type { RedisConnection } from './connection.ts';

export class RedisLookupFailures implements LookupFailureCounter {
  readonly description: string;

  constructor(private readonly connection: RedisConnection) {
    this.description = connection.description;
  }

  async add(client: string, windowStart: number, windowEnd: number): Promise<number> {
    const key = `${this.connection.prefix}lookup-failures:${windowStart}:${client}`;
    const replies = (await this.connection.redis.multi().incr(key).expireat(key, windowEnd).exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    return Number(replies[0]?.[1] ?? 1);
  }

  async sweep(): Promise<void> {
    // the keys expire by themselves at their window's end
  }
}
