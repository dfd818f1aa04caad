/**
 * @module database/sql
 * The SQL storage kind: SQLite, PostgreSQL and MariaDB/MySQL through Kysely (one opener per
 * dialect), Porthole's migrations, and every part kept in SQL tables: tokens in Nova's
 * `console_auth_tokens`, single-use records, the inventory, the live-sessions registry (woken by
 * PostgreSQL's LISTEN/NOTIFY where it can be), token presence, failed-lookup counts.
 */
import type { Storage, StorageKind } from '../types.ts';
import { SqlAuditEvents } from './audit-events.ts';
import { isNovaDatabase, migrate, openDatabase } from './database.ts';
import { SqlInventory } from './inventory.ts';
import { SqlLookupFailures } from './lookup-failures.ts';
import { SqlRecordings } from './recordings.ts';
import { SqlRegistry } from './registry.ts';
import { SqlTokenExtras } from './token-extras.ts';
import { SqlTokenPresence } from './token-presence.ts';
import { SqlTokenRecords, SqlTokenUses } from './tokens.ts';

export const sqlStorage: StorageKind = {
  name: 'SQL',
  canBeNova: true,
  async open(url, o): Promise<Storage> {
    const database = await openDatabase(url, o);
    return {
      description: database.description,
      handle: { kind: 'sql', database },
      parts: { tokens: new SqlTokenRecords(database), uses: new SqlTokenUses(database), inventory: new SqlInventory(database), presence: new SqlTokenPresence(database), lookupFailures: new SqlLookupFailures(database), auditEvents: new SqlAuditEvents(database), tokenExtras: new SqlTokenExtras(database), recordings: new SqlRecordings(database) },
      isNovaDatabase: () => isNovaDatabase(database),
      migrate: (set, onAdopted) => migrate(database, set, { onAdopted }),
      async registry(r) {
        // on PostgreSQL a LISTEN connection of its own, opened from the same URL, wakes the readers
        const listen = database.dialect === 'postgres' ? { url, connectTimeoutMs: r.connectTimeoutMs, reconnectMaxDelayMs: r.reconnectMaxDelayMs } : undefined;
        return new SqlRegistry(database, { pollMs: r.pollMs, idlePollMs: r.idlePollMs, listen });
      },
      close: () => database.close(),
    };
  },
};
