/**
 * @module database/redis/token-presence
 * Which token hashes still have their key in Redis (`TokenPresence`, see `sessions/types.ts`):
 * one script per 500 hashes that answers which keys exist, read only (one command where a
 * pipeline of EXISTS was one per token: `INFO commandstats` counts what the store does).
 */
import type { TokenPresence } from '../../sessions/types.ts';
import type { RedisConnection } from './connection.ts';

const CHUNK = 500;
const EXISTING = `local r = {} for i, k in ipairs(KEYS) do r[i] = redis.call('EXISTS', k) end return r`;

export class RedisTokenPresence implements TokenPresence {
  constructor(private readonly connection: RedisConnection) {}

  async present(hashes: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < hashes.length; i += CHUNK) {
      const chunk = hashes.slice(i, i + CHUNK);
      const replies = (await this.connection.redis.eval(EXISTING, chunk.length, ...chunk.map((h) => `${this.connection.prefix}token:${h}`))) as number[];
      replies.forEach((n, j) => {
        if (Number(n) > 0) found.add(chunk[j]!);
      });
    }
    return found;
  }
}
