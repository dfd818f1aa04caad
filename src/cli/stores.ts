/**
 * @module cli/stores
 * Opens what a short-lived command acts on: the stores of `[database] connection` (and
 * `[porthole] connection`), and for revocations and kills the live-sessions registry in them.
 * Each is closed when the command is done, whatever it returns or throws.
 */
import type { LoadedConfig } from '../config/load.ts';
import type { Sessions } from '../sessions/service.ts';
import { openStores, storeSettings, type OpenedStores as Stores } from '../database/index.ts';

export type { Stores };

export async function withStores(loaded: LoadedConfig, fn: (s: Stores, l: LoadedConfig) => Promise<number>, autoMigrate = loaded.config.porthole.auto_migrate): Promise<number> {
  // a typo in the config (unknown option or section): on stderr, so --json output stays clean
  for (const warning of loaded.warnings) process.stderr.write(`porthole: warning: ${warning}\n`);
  const stores = await openStores(loaded.config.database.connection, { migrate: autoMigrate, ...storeSettings(loaded.config) });
  try {
    return await fn(stores, loaded);
  } finally {
    await stores.close();
  }
}

/** The stores, and the sessions registry in them: revocations through it close live sessions on every proxy. */
export async function withSessions(loaded: LoadedConfig, fn: (s: Sessions, stores: Stores) => Promise<number>): Promise<number> {
  return withStores(loaded, async (stores) => {
    const { openSessions, sessionsOptions } = await import('../sessions/service.ts');
    const sessions = await openSessions(stores, sessionsOptions(loaded.config));
    try {
      return await fn(sessions, stores);
    } finally {
      await sessions.close();
    }
  });
}
