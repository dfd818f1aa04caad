/**
 * @module database/redis/token-extras
 * What Porthole knows of a console token beyond its row (`store/token-extras.ts`) in Redis: one
 * hash per token, `<prefix>token-extras:<sha256>` (label, minted_by, control, record), that
 * expires with the token (EXPIREAT), so Redis itself is the sweep; and `token-extras:recorded`,
 * the hashes of tokens with the record flag scored by their expiry (`anyRecorded`: one ZCOUNT),
 * cut of its expired members at each put.
 */
import type { ConsoleTokenExtras, TokenExtrasStore } from '../../store/token-extras.ts';
import { nowSeconds } from '../../store/types.ts';
import type { RedisConnection } from './connection.ts';

export class RedisTokenExtras implements TokenExtrasStore {
  constructor(private readonly connection: RedisConnection) {}

  private key(tokenHash: string): string {
    return `${this.connection.prefix}token-extras:${tokenHash}`;
  }

  async put(tokenHash: string, extras: ConsoleTokenExtras, expires: number): Promise<void> {
    const key = this.key(tokenHash);
    if (expires <= nowSeconds()) {
      await this.connection.redis.del(key);
      return;
    }
    const fields: Array<string | number> = ['control', extras.control ? 1 : 0, 'record', extras.record ? 1 : 0];
    if (extras.label !== null) fields.push('label', extras.label);
    if (extras.mintedBy !== null) fields.push('minted_by', extras.mintedBy);
    const recorded = `${this.connection.prefix}token-extras:recorded`;
    const m = this.connection.redis.multi().del(key).hset(key, ...fields).expireat(key, expires);
    if (extras.record) m.zadd(recorded, expires, tokenHash);
    else m.zrem(recorded, tokenHash);
    m.zremrangebyscore(recorded, '-inf', nowSeconds());
    const replies = (await m.exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
  }

  async get(tokenHash: string): Promise<ConsoleTokenExtras | null> {
    const h = await this.connection.redis.hgetall(this.key(tokenHash));
    if (h['control'] === undefined) return null;
    return { label: h['label'] ?? null, mintedBy: h['minted_by'] ?? null, control: h['control'] === '1', record: h['record'] === '1' };
  }

  async anyRecorded(): Promise<boolean> {
    return (await this.connection.redis.zcount(`${this.connection.prefix}token-extras:recorded`, `(${nowSeconds()}`, '+inf')) > 0;
  }

  /** Nothing to do: each key expires with its token. */
  async sweepExpired(): Promise<number> {
    return 0;
  }
}
