/**
 * What Porthole keeps for issue 18 in its own store, on each storage kind against the real
 * servers of this machine, each in a database (or Redis key prefix) of its own: SQLite in a
 * temporary file, PostgreSQL, MariaDB, Redis. Token extras (`store/token-extras.ts`): kept by
 * token hash, replaced by a second put, gone at the token's expiry and swept with the tokens;
 * recordings (`store/recordings.ts`): added, finished, listed newest first with the API's filters,
 * removed; two proxies (two openings of the store) see each other's writes. With a Nova database
 * and no `[porthole] connection` there is neither.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { openStores, type OpenedStores } from '../../src/database/index.ts';
import type { RecordingRecord } from '../../src/store/recordings.ts';
import { parseTokenLabel, tokenExtrasUnavailable, type ConsoleTokenExtras } from '../../src/store/token-extras.ts';
import { hashToken, nowSeconds } from '../../src/store/types.ts';
import { tempDir } from '../support/gateway.ts';
import { freshMariadb, freshPostgres, freshRedis, openStoresAt } from '../support/stores.ts';

const A = 'aaaaaaaa-1111-4111-8111-111111111111';
const B = 'bbbbbbbb-2222-4222-8222-222222222222';
const T0 = Date.parse('2026-01-01T00:00:00.000Z');

function recording(i: number, over: Partial<RecordingRecord> = {}): RecordingRecord {
  return {
    id: `0000000${i}-aaaa-4aaa-8aaa-${String(i).padStart(12, '0')}`,
    sessionId: `s-${i}`,
    serverId: A,
    serverName: 'web-1',
    projectId: 'p1',
    viewer: 'alice',
    client: `192.0.2.${i}:5000${i}`,
    proxyHost: 'proxy-1',
    path: `/var/lib/porthole/recordings/r-${i}.rfbrec`,
    startedAt: T0 + i * 1000,
    endedAt: null,
    sizeBytes: 0,
    ...over,
  };
}

/** 0-2 of server A (project p1), 3-4 of B (project p2, no viewer, no name), 5 of A in p1 again. */
const RECORDINGS = [
  recording(0),
  recording(1, { viewer: 'bob' }),
  recording(2, { endedAt: T0 + 9000, sizeBytes: 123_456_789_012 }),
  recording(3, { serverId: B, serverName: null, projectId: 'p2', viewer: null, proxyHost: 'proxy-2' }),
  recording(4, { serverId: B, serverName: null, projectId: null, viewer: null }),
  recording(5),
];

interface Opened {
  stores: OpenedStores;
  again: () => Promise<OpenedStores>;
  /** Rows (or keys) of token extras left in the store. */
  extrasLeft(): Promise<number>;
  drop(): Promise<void>;
}

function contract(name: string, open: () => Promise<Opened>) {
  describe(`token extras and recordings on ${name}`, () => {
    let o: Opened;
    let stores: OpenedStores;
    let other: OpenedStores;

    before(async () => {
      o = await open();
      stores = o.stores;
      other = await o.again();
      assert.ok(stores.tokenExtras && stores.recordings, 'Porthole\'s own store has both');
    });
    after(async () => {
      await other?.close();
      await stores?.close();
      await o?.drop();
    });

    describe('token extras', () => {
      const extras: ConsoleTokenExtras = { label: 'Ops on call — ünïcödé', mintedBy: 'cli:root', control: true, record: false };

      it('answers whether any token not expired has the record flag (first: none at all)', async () => {
        assert.equal(await stores.tokenExtras!.anyRecorded(), false, 'an empty store');
        const h = hashToken(crypto.randomUUID());
        await stores.tokenExtras!.put(h, { ...extras, record: false }, nowSeconds() + 600);
        await stores.tokenExtras!.put(hashToken(crypto.randomUUID()), { ...extras, record: true }, nowSeconds() - 1);
        assert.equal(await other.tokenExtras!.anyRecorded(), false, 'not recorded, or expired');
        await other.tokenExtras!.put(h, { ...extras, record: true }, nowSeconds() + 600);
        assert.equal(await stores.tokenExtras!.anyRecorded(), true);
        await stores.tokenExtras!.put(h, { ...extras, record: false }, nowSeconds() + 600);
        assert.equal(await other.tokenExtras!.anyRecorded(), false, 'its flag taken back');
      });

      it('keeps the extras of a token by its hash, seen by another proxy; none for another hash', async () => {
        const h = hashToken(crypto.randomUUID());
        await stores.tokenExtras!.put(h, extras, nowSeconds() + 600);
        assert.deepEqual(await other.tokenExtras!.get(h), extras);
        assert.equal(await other.tokenExtras!.get(hashToken(crypto.randomUUID())), null);
      });

      it('keeps nulls and false as such, and a second put replaces the first', async () => {
        const h = hashToken(crypto.randomUUID());
        await stores.tokenExtras!.put(h, extras, nowSeconds() + 600);
        const plain: ConsoleTokenExtras = { label: null, mintedBy: null, control: false, record: true };
        await other.tokenExtras!.put(h, plain, nowSeconds() + 600);
        assert.deepEqual(await stores.tokenExtras!.get(h), plain);
      });

      it('forgets the extras at the token\'s expiry; the token sweep removes them', async () => {
        const soon = hashToken(crypto.randomUUID());
        const kept = hashToken(crypto.randomUUID());
        await stores.tokens.sweepExpired();
        const before = await o.extrasLeft();
        await stores.tokenExtras!.put(soon, extras, nowSeconds() + 2);
        await stores.tokenExtras!.put(kept, extras, nowSeconds() + 600);
        await stores.tokenExtras!.put(hashToken(crypto.randomUUID()), extras, nowSeconds() - 1);
        assert.deepEqual(await other.tokenExtras!.get(soon), extras);
        await sleep(3100);
        assert.equal(await other.tokenExtras!.get(soon), null, 'expired');
        await stores.tokens.sweepExpired();
        assert.equal(await o.extrasLeft(), before + 1, 'only the valid token\'s extras are left');
        assert.deepEqual(await stores.tokenExtras!.get(kept), extras);
      });
    });

    describe('recordings', () => {
      before(async () => {
        for (const r of RECORDINGS.slice(0, 3)) await stores.recordings!.add(r);
        for (const r of RECORDINGS.slice(3)) await other.recordings!.add(r);
      });

      it('finds a recording by id, as added, from another proxy', async () => {
        assert.deepEqual(await other.recordings!.get(RECORDINGS[2]!.id), RECORDINGS[2]);
        assert.deepEqual(await stores.recordings!.get(RECORDINGS[3]!.id), RECORDINGS[3]);
        assert.equal(await stores.recordings!.get('ffffffff-ffff-4fff-8fff-ffffffffffff'), undefined);
      });

      it('lists newest first, by server, project, start and limit', async () => {
        const ids = (rs: RecordingRecord[]) => rs.map((r) => Number(r.sessionId.slice(2)));
        assert.deepEqual(ids(await stores.recordings!.list()), [5, 4, 3, 2, 1, 0]);
        assert.deepEqual(await stores.recordings!.list(), [...RECORDINGS].reverse());
        assert.deepEqual(ids(await stores.recordings!.list({ serverId: A })), [5, 2, 1, 0]);
        assert.deepEqual(ids(await stores.recordings!.list({ serverId: B })), [4, 3]);
        assert.deepEqual(ids(await stores.recordings!.list({ projectId: 'p1' })), [5, 2, 1, 0]);
        assert.deepEqual(ids(await stores.recordings!.list({ projectId: 'p2' })), [3]);
        assert.deepEqual(ids(await stores.recordings!.list({ since: T0 + 2000 })), [5, 4, 3, 2]);
        assert.deepEqual(ids(await stores.recordings!.list({ serverId: A, since: T0 + 1000, limit: 2 })), [5, 2]);
        assert.deepEqual(ids(await stores.recordings!.list({ projectId: 'p1', limit: 1 })), [5]);
        assert.deepEqual(await stores.recordings!.list({ serverId: B, projectId: 'p1' }), []);
      });

      it('finishes a recording (end and size), and nothing for an unknown id', async () => {
        await other.recordings!.finish(RECORDINGS[0]!.id, T0 + 60_000, 5_000_000_000);
        assert.deepEqual(await stores.recordings!.get(RECORDINGS[0]!.id), { ...RECORDINGS[0], endedAt: T0 + 60_000, sizeBytes: 5_000_000_000 });
        await stores.recordings!.finish('ffffffff-ffff-4fff-8fff-ffffffffffff', T0, 1);
        assert.equal(await stores.recordings!.get('ffffffff-ffff-4fff-8fff-ffffffffffff'), undefined);
        assert.equal((await stores.recordings!.list()).length, 6);
      });

      it('removes a recording and says whether it was there', async () => {
        assert.equal(await other.recordings!.remove(RECORDINGS[3]!.id), true);
        assert.equal(await stores.recordings!.remove(RECORDINGS[3]!.id), false);
        assert.equal(await stores.recordings!.get(RECORDINGS[3]!.id), undefined);
        assert.deepEqual((await stores.recordings!.list({ serverId: B })).map((r) => r.id), [RECORDINGS[4]!.id]);
        assert.equal((await stores.recordings!.list()).length, 5);
      });
    });
  });
}

contract('SQLite', async () => {
  const dir = tempDir('porthole-extras-db-');
  const url = `sqlite:///${join(dir, 'p.db')}`;
  const stores = await openStores(url, { migrate: true });
  return {
    stores,
    again: () => openStores(url, { migrate: false }),
    extrasLeft: () => countRows(stores),
    async drop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

contract('PostgreSQL', async () => {
  const db = await freshPostgres();
  const stores = await openStores(db.url, { migrate: true });
  return { stores, again: () => openStores(db.url, { migrate: false }), extrasLeft: () => countRows(stores), drop: () => db.drop() };
});

contract('MariaDB', async () => {
  const db = await freshMariadb();
  const stores = await openStores(db.url, { migrate: true });
  return { stores, again: () => openStores(db.url, { migrate: false }), extrasLeft: () => countRows(stores), drop: () => db.drop() };
});

contract('Redis', async () => {
  const r = await freshRedis();
  return {
    stores: await openStores(r.url, { migrate: true, redisKeyPrefix: r.prefix }),
    again: () => openStores(r.url, { migrate: false, redisKeyPrefix: r.prefix }),
    // the tokens' hashes (not the set of recorded ones)
    extrasLeft: async () => (await r.redis.keys(`${r.prefix}token-extras:*`)).filter((k) => /:[0-9a-f]{64}$/.test(k)).length,
    drop: () => r.drop(),
  };
});

async function countRows(stores: OpenedStores): Promise<number> {
  const row = await stores.database!.db.selectFrom('porthole_token_extras').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

describe('token extras without a store of Porthole\'s own', () => {
  it('has no extras and no recordings store on a Nova database alone, and says why', async () => {
    const dir = tempDir('porthole-extras-nova-');
    try {
      const stores = await openStores(`sqlite:///${join(dir, 'nova.db')}`, { migrate: false, nova: 'true' });
      try {
        assert.equal(stores.tokenExtras, null);
        assert.equal(stores.recordings, null);
      } finally {
        await stores.close();
      }
      const err = tokenExtrasUnavailable();
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.match(err.message, /\[porthole\] connection is not set/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('token labels', () => {
  it('takes 1 to 64 printable characters, trimmed, and nothing else', () => {
    assert.equal(parseTokenLabel('  Ops on call  '), 'Ops on call');
    assert.equal(parseTokenLabel('é'.repeat(64)), 'é'.repeat(64));
    assert.equal(parseTokenLabel('x'.repeat(65)), undefined);
    assert.equal(parseTokenLabel('   '), undefined);
    assert.equal(parseTokenLabel('a\nb'), undefined);
    assert.equal(parseTokenLabel('a\u001b[31mb'), undefined);
    assert.equal(parseTokenLabel('a\u0085b'), undefined);
  });
});

describe('migration 0010 on a database of the previous version', () => {
  for (const [name, fresh] of [
    ['SQLite', async () => {
      const dir = tempDir('porthole-0010-');
      return { url: `sqlite:///${join(dir, 'p.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
    }],
    ['PostgreSQL', freshPostgres],
    ['MariaDB', freshMariadb],
  ] as const) {
    it(`adds its tables and columns to a ${name} database at 0009, keeping its rows (the flags of an existing server: the config's)`, async () => {
      const db = await fresh();
      try {
        const old = await openStoresAt(db.url, '0009_porthole_registry_scale');
        try {
          // a row as the previous version wrote it (its code knows no column of 0010)
          await old.database!.db.insertInto('porthole_servers').values({ id: A, name: 'before-0010', status: 'ACTIVE', vnc_host: '10.0.0.1', vnc_port: 5901 }).execute();
        } finally {
          await old.close();
        }
        const stores = await openStores(db.url, { migrate: false });
        try {
          assert.deepEqual(await stores.migrate(), ['0010_porthole_consoles_framebuffer', '0011_porthole_events_sqlite_indexes']);
          const kept = await stores.inventory.get(A);
          assert.equal(kept?.name, 'before-0010');
          assert.equal(kept?.sharedConsoles ?? null, null);
          await stores.inventory.put({ ...kept!, sharedConsoles: true, record: false });
          assert.deepEqual([(await stores.inventory.get(A))?.sharedConsoles, (await stores.inventory.get(A))?.record], [true, false]);
          await stores.recordings!.add(recording(7));
          assert.equal((await stores.recordings!.list()).length, 1);
          assert.deepEqual(await stores.migrate(), [], 'applied once');
        } finally {
          await stores.close();
        }
      } finally {
        await db.drop();
      }
    });
  }
});
