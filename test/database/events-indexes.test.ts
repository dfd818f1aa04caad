/**
 * Migration 0011 (issue 19): on SQLite the audit trail's token and session indexes are dropped
 * (their upkeep ran on the proxy's event loop: two random B-tree pages more per event), on
 * PostgreSQL and MariaDB they stay; on every kind a database at 0010 with events in it migrates,
 * keeps its events, and the events API's filters by token and by session still find them.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { openStores } from '../../src/database/index.ts';
import type { AuditLine } from '../../src/store/audit-events.ts';
import { tempDir } from '../support/gateway.ts';
import { freshMariadb, freshPostgres, openStoresAt } from '../support/stores.ts';

const SERVER = 'aaaaaaaa-1111-4111-8111-111111111111';
const DROPPED = ['porthole_events_session_idx', 'porthole_events_token_idx'];

function line(i: number): AuditLine {
  return { time: new Date(Date.parse('2026-01-01T00:00:00.000Z') + i * 1000).toISOString(), event: 'session.opened', v: 1, server: SERVER, token: `tok${String(i).padStart(5, '0')}`, session: `session-${i}` } as AuditLine;
}

describe('migration 0011: the audit trail indexes', () => {
  for (const [name, fresh, dropped] of [
    ['SQLite', async () => {
      const dir = tempDir('porthole-0011-');
      return { url: `sqlite:///${join(dir, 'p.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
    }, true],
    ['PostgreSQL', freshPostgres, false],
    ['MariaDB', freshMariadb, false],
  ] as const) {
    it(`${dropped ? 'drops' : 'keeps'} the token and session indexes on ${name}, and its events are still found by token and by session`, async () => {
      const db = await fresh();
      try {
        const old = await openStoresAt(db.url, '0010_porthole_consoles_framebuffer');
        try {
          assert.deepEqual(await indexes(old.database!), ['porthole_events_instance_time_idx', ...DROPPED, 'porthole_events_time_idx'].sort(), 'at 0010: all four');
          await old.auditEvents!.append(Array.from({ length: 50 }, (_, i) => line(i)));
        } finally {
          await old.close();
        }
        const stores = await openStores(db.url, { migrate: false });
        try {
          assert.deepEqual(await stores.migrate(), ['0011_porthole_events_sqlite_indexes']);
          const left = await indexes(stores.database!);
          assert.deepEqual(left, (dropped ? ['porthole_events_instance_time_idx', 'porthole_events_time_idx'] : ['porthole_events_instance_time_idx', ...DROPPED, 'porthole_events_time_idx']).sort());
          const byToken = await stores.auditEvents!.query({ token: 'tok00007', limit: 10, order: 'newest' });
          assert.deepEqual(byToken.map((l) => l.session), ['session-7']);
          const bySession = await stores.auditEvents!.query({ session: 'session-42', limit: 10, order: 'newest' });
          assert.deepEqual(bySession.map((l) => l.token), ['tok00042']);
          assert.equal((await stores.auditEvents!.query({ server: SERVER, limit: 100, order: 'newest' })).length, 50, 'every event kept');
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

/** The indexes of porthole_events by name, whatever the kind (primary keys left out). */
async function indexes(database: { readonly dialect: string; readonly db: import('kysely').Kysely<any> }): Promise<string[]> {
  const q =
    database.dialect === 'sqlite'
      ? sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'porthole_events' AND name NOT LIKE 'sqlite_%'`
      : database.dialect === 'postgres'
        ? sql<{ name: string }>`SELECT indexname AS name FROM pg_indexes WHERE tablename = 'porthole_events' AND indexname NOT LIKE '%_pkey'`
        : sql<{ name: string }>`SELECT DISTINCT index_name AS name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'porthole_events' AND index_name <> 'PRIMARY'`;
  return (await q.execute(database.db)).rows.map((r) => r.name).sort();
}
