/**
 * @module database/redis
 * The Redis storage kind: tokens, single-use records, the inventory, the live-sessions registry
 * (pub/sub), token presence and failed-lookup counts as keys under `[porthole] redis_key_prefix`.
 * Redis has no schema (keys are made as they are written), so there is nothing to migrate, and
 * Nova never keeps its tokens there.
 */
import type { StorageKind } from '../types.ts';
import { RedisAuditEvents } from './audit-events.ts';
import { openRedis } from './connection.ts';
import { RedisInventory } from './inventory.ts';
import { RedisLookupFailures } from './lookup-failures.ts';
import { RedisRecordings } from './recordings.ts';
import { RedisRegistry } from './registry.ts';
import { RedisTokenExtras } from './token-extras.ts';
import { RedisTokenPresence } from './token-presence.ts';
import { RedisTokenRecords, RedisTokenUses } from './tokens.ts';

export const redisStorage: StorageKind = {
  name: 'Redis',
  canBeNova: false,
  async open(url, o) {
    const redis = await openRedis(url, o);
    const parts = { tokens: new RedisTokenRecords(redis), uses: new RedisTokenUses(redis), inventory: new RedisInventory(redis), presence: new RedisTokenPresence(redis), lookupFailures: new RedisLookupFailures(redis), auditEvents: new RedisAuditEvents(redis), tokenExtras: new RedisTokenExtras(redis), recordings: new RedisRecordings(redis) };
    return {
      description: redis.description,
      handle: { kind: 'redis', redis },
      parts,
      isNovaDatabase: async () => false,
      // no schema: keys are made as they are written
      migrate: async () => [],
      registry: async () => new RedisRegistry(redis),
      close: () => redis.close(),
    };
  },
};
