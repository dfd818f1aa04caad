/**
 * @module store
 * Opens the token store and the inventory named by `[database] connection`.
 */
import { SqlInventory } from '../inventory/sql-inventory.ts';
import type { Inventory } from '../inventory/types.ts';
import { migrate, openDatabase, type Database } from './database.ts';
import { SqlTokenStore } from './sql-tokens.ts';
import type { TokenStore } from './types.ts';

export interface Stores {
  readonly tokens: TokenStore;
  readonly inventory: Inventory;
  readonly database: Database;
  close(): Promise<void>;
}

export async function openStores(connection: string, opts: { migrate: boolean }): Promise<Stores> {
  const database = await openDatabase(connection);
  try {
    if (opts.migrate) await migrate(database);
  } catch (err) {
    await database.close();
    throw err;
  }
  return {
    tokens: new SqlTokenStore(database.db),
    inventory: new SqlInventory(database.db),
    database,
    close: () => database.close(),
  };
}
