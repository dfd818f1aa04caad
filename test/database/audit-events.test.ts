/**
 * The audit trail's store (`store/audit-events.ts`) on each storage kind, against the real
 * servers of this machine, each in a database (or Redis key prefix) of its own: SQLite in a
 * temporary file, PostgreSQL, MariaDB, Redis. The same contract on all four: a batch appended,
 * queries by server, time (since inclusive, until exclusive), event, token prefix and session,
 * newest or oldest first, bounded by the limit; the sweep deletes what is older than its cut and
 * nothing else; two proxies (two openings of the store) see each other's events.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStores, type OpenedStores } from '../../src/database/index.ts';
import { AUDIT_SCHEMA_VERSION, type AuditEventStore, type AuditLine } from '../../src/store/audit-events.ts';
import { tempDir } from '../support/gateway.ts';
import { freshMariadb, freshPostgres, freshRedis } from '../support/stores.ts';

const A = 'aaaaaaaa-1111-4111-8111-111111111111';
const B = 'bbbbbbbb-2222-4222-8222-222222222222';
const T0 = Date.parse('2026-01-01T00:00:00.000Z');

function line(i: number, fields: Partial<AuditLine>): AuditLine {
  return { time: new Date(T0 + i * 1000).toISOString(), event: 'token.used', v: AUDIT_SCHEMA_VERSION, proxy: 'p1:6080', ...fields };
}

/** 12 events: 0-5 of server A (token aaaa0001), 6-9 of B (token bbbb0002), 10-11 without a server. */
const LINES: AuditLine[] = [
  line(0, { event: 'token.minted', server: A, token: 'aaaa0001', actor: { user: 'alice', project: 'p1' } }),
  line(1, { event: 'token.used', server: A, token: 'aaaa0001', session: 's-1', client: '192.0.2.1:50000' }),
  line(2, { event: 'session.opened', server: A, token: 'aaaa0001', session: 's-1' }),
  line(3, { event: 'session.killed', server: A, token: 'aaaa0001', session: 's-1', actor: { cli: 'root' } }),
  line(4, { event: 'session.closed', server: A, token: 'aaaa0001', session: 's-1', reason: 'console session killed by an administrator', bytes_from_client: 10, bytes_from_backend: 20, duration_ms: 3000 }),
  line(5, { event: 'token.revoked', server: A, count: 2, actor: { user: 'admin', project: 'admin' } }),
  line(6, { event: 'token.minted', server: B, token: 'bbbb0002', actor: { system: 'demo' } }),
  line(7, { event: 'token.consumed', server: B, token: 'bbbb0002', reason: 'first use' }),
  line(8, { event: 'token.used', server: B, token: 'bbbb0002', session: 's-2' }),
  line(9, { event: 'token.refused', server: B, token: 'bbbb0002', code: 'TOKEN_CONSUMED' }),
  line(10, { event: 'token.refused', token: 'cccc0003', code: 'TOKEN_UNKNOWN', client: '198.51.100.7:1234' }),
  // the same line twice in the same millisecond is two events
  line(10, { event: 'token.refused', token: 'cccc0003', code: 'TOKEN_UNKNOWN', client: '198.51.100.7:1234' }),
];

const q = (more: object = {}) => ({ limit: 100, order: 'newest' as const, ...more });
const times = (lines: AuditLine[]) => lines.map((l) => (Date.parse(l.time) - T0) / 1000);

function contract(name: string, open: () => Promise<{ stores: OpenedStores; again: () => Promise<OpenedStores>; drop(): Promise<void> }>) {
  describe(`audit events on ${name}`, () => {
    let stores: OpenedStores;
    let events: AuditEventStore;
    let other: OpenedStores;
    let drop: () => Promise<void>;

    before(async () => {
      const o = await open();
      stores = o.stores;
      drop = o.drop;
      events = stores.auditEvents!;
      assert.ok(events, 'Porthole\'s own store has audit events');
      other = await o.again();
      await events.append(LINES.slice(0, 6));
      // another proxy's writes to the same store
      await other.auditEvents!.append(LINES.slice(6));
    });
    after(async () => {
      await other?.close();
      await stores?.close();
      await drop?.();
    });

    it('answers every event, newest first, the lines as written', async () => {
      const all = await events.query(q());
      assert.deepEqual(times(all), [10, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      assert.deepEqual(all.at(-1), LINES[0]);
      assert.deepEqual(all.find((l) => l.event === 'session.closed'), LINES[4]);
    });

    it('filters by server, oldest first, and bounds by the limit', async () => {
      assert.deepEqual(times(await events.query(q({ server: A, order: 'oldest' }))), [0, 1, 2, 3, 4, 5]);
      assert.deepEqual(times(await events.query(q({ server: B }))), [9, 8, 7, 6]);
      assert.deepEqual(times(await events.query(q({ server: A, limit: 2 }))), [5, 4]);
      assert.deepEqual(times(await events.query(q({ server: A, limit: 2, order: 'oldest' }))), [0, 1]);
    });

    it('filters by time: since inclusive, until exclusive', async () => {
      assert.deepEqual(times(await events.query(q({ since: T0 + 4000, until: T0 + 7000 }))), [6, 5, 4]);
      assert.deepEqual(times(await events.query(q({ server: A, since: T0 + 5000 }))), [5]);
      assert.deepEqual(await events.query(q({ since: T0 + 11_000 })), []);
    });

    it('filters by event, token and session', async () => {
      assert.deepEqual(times(await events.query(q({ events: ['token.minted', 'token.revoked'] }))), [6, 5, 0]);
      assert.deepEqual(times(await events.query(q({ token: 'bbbb0002' }))), [9, 8, 7, 6]);
      assert.deepEqual(times(await events.query(q({ session: 's-1', events: ['session.opened', 'session.closed'] }))), [4, 2]);
      assert.deepEqual(times(await events.query(q({ server: B, token: 'aaaa0001' }))), []);
      assert.deepEqual(times(await events.query(q({ token: 'cccc0003', limit: 1 }))), [10]);
    });

    it('sweeps what is older than the cut, and only that', async () => {
      await events.sweep(T0 + 3000);
      assert.deepEqual(times(await other.auditEvents!.query(q({ order: 'oldest' }))), [3, 4, 5, 6, 7, 8, 9, 10, 10]);
      assert.deepEqual(times(await events.query(q({ server: A, order: 'oldest' }))), [3, 4, 5]);
      await events.sweep(T0 + 60_000);
      assert.deepEqual(await events.query(q()), []);
      assert.deepEqual(await events.query(q({ server: B })), []);
    });
  });
}

contract('SQLite', async () => {
  const dir = tempDir('porthole-audit-db-');
  const url = `sqlite:///${join(dir, 'p.db')}`;
  return {
    stores: await openStores(url, { migrate: true }),
    again: () => openStores(url, { migrate: false }),
    async drop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

contract('PostgreSQL', async () => {
  const db = await freshPostgres();
  return { stores: await openStores(db.url, { migrate: true }), again: () => openStores(db.url, { migrate: false }), drop: () => db.drop() };
});

contract('MariaDB', async () => {
  const db = await freshMariadb();
  return { stores: await openStores(db.url, { migrate: true }), again: () => openStores(db.url, { migrate: false }), drop: () => db.drop() };
});

contract('Redis', async () => {
  const r = await freshRedis();
  return {
    stores: await openStores(r.url, { migrate: true, redisKeyPrefix: r.prefix }),
    again: () => openStores(r.url, { migrate: false, redisKeyPrefix: r.prefix }),
    async drop() {
      // the sweep leaves no key of a server behind
      const left = await r.redis.keys(`${r.prefix}events:server:*`);
      await r.drop();
      assert.deepEqual(left, []);
    },
  };
});
