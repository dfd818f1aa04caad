/**
 * @module database
 * Opens what a connection URL names: the token store of `[database] connection` and Porthole's
 * own store (`[porthole] connection`, else the same database unless it is a Nova cell database;
 * see `store/index.ts`). The URL's scheme picks the storage kind (`sql/`, `redis/`), imported
 * only then; every part is made by the kind's `Storage`, and nothing outside this folder asks
 * which kind a store is. A store that cannot be reached at start is one line naming its option
 * (`connect-error.ts`); a SQLite file's missing directory is created, owner-only.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import { GatewayError } from '../errors.ts';
import { InventoryOff } from '../inventory/off.ts';
import { GuardedAuditEvents, GuardedInventory, GuardedRecordings, GuardedTokenExtras, GuardedTokenStore } from '../store/guard.ts';
import type { Stores } from '../store/index.ts';
import { TokenStoreWithUses } from '../store/single-use.ts';
import { connectFailure, type ConnectionOption } from './connect-error.ts';
import { DEFAULT_CONNECT_OPTIONS, type ConnectOptions } from './connect-options.ts';
import type { Database } from './sql/types.ts';
import type { Adoption, MigrationSet, Storage, StorageHandle, StorageKind } from './types.ts';
import { storeKind } from './url.ts';

export { redactUrl, storeKind } from './url.ts';
// for tests that probe a store's count of failed lookups directly
export { SqlLookupFailures } from './sql/lookup-failures.ts';
export { RedisLookupFailures } from './redis/lookup-failures.ts';

export interface StoreSettings extends Partial<ConnectOptions> {
  /** `[porthole] connection`: Porthole's own tables; unset: beside the tokens, unless those are Nova's. */
  readonly ownConnection?: string | null;
  /** `[porthole] nova_database`. */
  readonly nova?: 'auto' | 'true' | 'false';
  readonly log?: Logger;
}

export type StoreHandle = StorageHandle & { readonly url: string };

/** The stores as opened here: the contract, and the connections themselves for tests and tools. */
export interface OpenedStores extends Stores {
  /** The SQL database that holds the tokens (absent on Redis). */
  readonly database?: Database;
  /** The opened stores themselves: the tokens' and Porthole's own (null: none), with the URL each was opened from. */
  readonly handles: { readonly tokens: StoreHandle; readonly own: StoreHandle | null };
}

/** The store settings of a loaded config. */
export function storeSettings(config: Config, log?: Logger): StoreSettings {
  const p = config.porthole;
  return {
    ownConnection: p.connection,
    nova: p.nova_database,
    poolSize: p.store_pool_size,
    connectTimeoutMs: p.store_connect_timeout * 1000,
    queryTimeoutMs: p.store_query_timeout * 1000,
    idleTimeoutMs: p.store_idle_timeout * 1000,
    reconnectMaxDelayMs: p.store_reconnect_max_delay * 1000,
    redisKeyPrefix: p.redis_key_prefix,
    log,
  };
}

/** The storage kind a URL's scheme names. */
async function kindOf(connection: string): Promise<StorageKind> {
  return storeKind(connection) === 'redis' ? (await import('./redis/index.ts')).redisStorage : (await import('./sql/index.ts')).sqlStorage;
}

async function open(connection: string, o: ConnectOptions): Promise<Storage & { readonly kind: StorageKind }> {
  const kind = await kindOf(connection);
  if (storeKind(connection) === 'sqlite') makeDirectoryOf((await import('./sql/sqlite.ts')).sqlitePath(connection));
  return { ...(await kind.open(connection, o)), kind };
}

/**
 * Creates the directory of a SQLite file (0700: the file holds VNC passwords), as the default
 * `porthole.db` of the state directory needs on a first start; SQLite creates only the file.
 */
function makeDirectoryOf(path: string): void {
  if (path === ':memory:') return;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
}

export async function openStores(connection: string, opts: { migrate: boolean } & StoreSettings): Promise<OpenedStores> {
  const d = DEFAULT_CONNECT_OPTIONS;
  const o: ConnectOptions = {
    poolSize: opts.poolSize ?? d.poolSize,
    connectTimeoutMs: opts.connectTimeoutMs ?? d.connectTimeoutMs,
    queryTimeoutMs: opts.queryTimeoutMs ?? d.queryTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs ?? d.idleTimeoutMs,
    reconnectMaxDelayMs: opts.reconnectMaxDelayMs ?? d.reconnectMaxDelayMs,
    redisKeyPrefix: opts.redisKeyPrefix ?? d.redisKeyPrefix,
    onError: (err, store) => opts.log?.warn({ event: 'store_error', store, err: err.message }, `${store} store: ${err.message}`),
  };
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => {});
  };
  // which store a failure to connect is about: the tokens' until Porthole's own is being opened
  let current: { url: string; option: ConnectionOption } = { url: connection, option: '[database] connection' };
  try {
    const main = await open(connection, o);
    closers.push(() => main.close());
    const description = main.description;

    let nova = false;
    if (!main.kind.canBeNova) {
      if (opts.nova === 'true') throw new GatewayError('CONFIG_INVALID', `[porthole] nova_database = true, but [database] connection = ${description} is ${main.kind.name}, which Nova does not use`);
    } else if (opts.nova === 'true') nova = true;
    else if (opts.nova !== 'false') {
      try {
        nova = await main.isNovaDatabase();
      } catch (err) {
        // the first query: its failure is nearly always the database's being out of reach
        throw connectFailure(err, connection, '[database] connection', o.connectTimeoutMs);
      }
    }

    const ownUrl = opts.ownConnection || (nova ? null : connection);
    let own: Storage | null = null;
    if (ownUrl === connection) own = main;
    else if (ownUrl) {
      current = { url: ownUrl, option: '[porthole] connection' };
      const opened = await open(ownUrl, o);
      closers.push(() => opened.close());
      own = opened;
    }

    const migrateOne = (s: Storage, set: MigrationSet) =>
      s.migrate(set, (a: Adoption) =>
        opts.log?.info(
          { event: 'table_adopted', table: a.table, store: s.description, created: a.created },
          `adopted the existing ${a.table} table of ${s.description} (it has Nova's columns; ${a.created.length ? `created ${a.created.join(', ')}` : 'nothing to create'}); its migration is recorded as applied`,
        ),
      );
    const migrate = async (): Promise<string[]> => {
      const applied: string[] = [];
      if (own === main) applied.push(...(await migrateOne(main, 'all')));
      else {
        current = { url: connection, option: '[database] connection' };
        if (!nova) applied.push(...(await migrateOne(main, 'tokens')));
        if (own && ownUrl) {
          current = { url: ownUrl, option: '[porthole] connection' };
          applied.push(...(await migrateOne(own, 'own')));
        }
      }
      return applied;
    };
    if (opts.migrate) await migrate();

    const tokens = new TokenStoreWithUses(main.parts.tokens, own ? own.parts.uses : null, own ? own.parts.tokenExtras : null);
    const ownDescription = own ? own.description : null;
    return {
      tokens: new GuardedTokenStore(tokens, description, o.queryTimeoutMs),
      inventory: new GuardedInventory(own ? own.parts.inventory : new InventoryOff(), ownDescription ?? 'no store', o.queryTimeoutMs),
      ...(main.handle.kind === 'sql' ? { database: main.handle.database } : {}),
      description,
      nova,
      ownDescription,
      presence: main.parts.presence,
      lookupFailures: own ? own.parts.lookupFailures : null,
      auditEvents: own?.parts.auditEvents ? new GuardedAuditEvents(own.parts.auditEvents, own.description, o.queryTimeoutMs) : null,
      tokenExtras: own ? new GuardedTokenExtras(own.parts.tokenExtras, own.description, o.queryTimeoutMs) : null,
      recordings: own ? new GuardedRecordings(own.parts.recordings, own.description, o.queryTimeoutMs) : null,
      openRegistry: async (r) => (own ? own.registry(r) : null),
      handles: { tokens: { ...main.handle, url: connection }, own: own && ownUrl ? { ...own.handle, url: ownUrl } : null },
      migrate,
      close,
    };
  } catch (err) {
    await close();
    throw connectFailure(err, current.url, current.option, o.connectTimeoutMs);
  }
}
