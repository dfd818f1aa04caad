/**
 * @module database/redis/token-presence
 * Which token hashes still have their key in Redis (`TokenPresence`, see `sessions/types.ts`):
 * one pipeline of EXISTS, read only.
 */
import type { TokenPresence } from '../../sessions/types.ts';
import type { RedisConnection } from './connection.ts';

export class RedisTokenPresence implements TokenPresence {
  constructor(private readonly connection: RedisConnection) {}

  async present(hashes: readonly string[]): Promise<Set<string>> {
    if (hashes.length === 0) return new Set();
    const p = this.connection.redis.pipeline();
    for (const h of hashes) p.exists(`${this.connection.prefix}token:${h}`);
    const replies = (await p.exec()) ?? [];
    const found = new Set<string>();
    replies.forEach(([err, n], i) => {
      if (err) throw err;
      if (Number(n) > 0) found.add(hashes[i]!);
    });
    return found;
  }
}
