/**
 * The Redis store on the machine's Redis (127.0.0.1:6379), under a key prefix of its own made for
 * the run and deleted after: the store contract, and the key layout (a key per token hash that
 * expires with the token, an index set per instance, nothing outside the prefix).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStores, type OpenedStores as Stores } from '../../src/database/index.ts';
import { hashToken } from '../../src/store/types.ts';
import { freshRedis, type FreshRedis } from '../support/stores.ts';
import { INSTANCE_A, spec, storeContract } from './contract.ts';

storeContract('Redis', async () => {
  const r = await freshRedis();
  return {
    open: () => openStores(r.url, { migrate: true, redisKeyPrefix: r.prefix }),
    async setExpires(record, expires) {
      const key = `${r.prefix}token:${record.tokenHash}`;
      await r.redis.hset(key, 'expires', expires);
      await r.redis.expireat(key, expires);
    },
    async dump() {
      const keys = await r.redis.keys(`${r.prefix}*`);
      const out: unknown[] = [];
      for (const k of keys) {
        const type = await r.redis.type(k);
        out.push(k, type === 'hash' ? await r.redis.hgetall(k) : type === 'set' ? await r.redis.smembers(k) : await r.redis.get(k));
      }
      return JSON.stringify(out);
    },
    expiresByItself: true,
    cleanup: () => r.drop(),
  };
});

describe('Redis key layout', () => {
  let r: FreshRedis;
  let stores: Stores;
  before(async () => {
    r = await freshRedis();
    stores = await openStores(r.url, { migrate: true, redisKeyPrefix: r.prefix });
  });
  after(async () => {
    await stores?.close();
    await r?.drop();
  });

  it('keeps a token in one key named by its hash, expiring when the token does, indexed by instance', async () => {
    const { token, record } = await stores.tokens.create(spec({ ttl: 120 }));
    const key = `${r.prefix}token:${hashToken(token)}`;
    assert.equal(await r.redis.expiretime(key), record.expires);
    assert.deepEqual(await r.redis.smembers(`${r.prefix}instance:${INSTANCE_A}`), [record.tokenHash]);
    const indexTtl = await r.redis.ttl(`${r.prefix}instance:${INSTANCE_A}`);
    assert.ok(indexTtl > 100 && indexTtl <= 120, `index ttl ${indexTtl}`);
    // a longer-lived token of the same instance extends the index
    await stores.tokens.create(spec({ ttl: 600 }));
    assert.ok((await r.redis.ttl(`${r.prefix}instance:${INSTANCE_A}`)) > 500);
    await stores.tokens.create(spec({ ttl: 60 }));
    assert.ok((await r.redis.ttl(`${r.prefix}instance:${INSTANCE_A}`)) > 500, 'a shorter one does not shorten it');
    assert.equal(await stores.tokens.revoke(token), true);
    assert.equal(await r.redis.exists(key), 0);
    assert.ok(!(await r.redis.smembers(`${r.prefix}instance:${INSTANCE_A}`)).includes(record.tokenHash));
  });

  it('writes no key outside its prefix', async () => {
    const before = new Set(await r.redis.keys('*'));
    await stores.tokens.create(spec());
    await stores.inventory.put({ id: crypto.randomUUID(), name: 'k', projectId: null, status: 'ACTIVE', vnc: null });
    const added = (await r.redis.keys('*')).filter((k) => !before.has(k));
    assert.ok(added.length > 0);
    for (const k of added) assert.ok(k.startsWith(r.prefix), k);
  });
});
