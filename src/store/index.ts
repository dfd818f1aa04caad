/**
 * @module store
 * Opens the token store named by `[database] connection` and Porthole's own store (the inventory,
 * the uses of single-use tokens): `[porthole] connection` when set, else the same database, unless
 * that is a Nova cell database, where Porthole never creates or alters a table: then there is no
 * store of Porthole's own, the inventory is off and single-use tokens are unavailable. Each store
 * is picked by its URL's scheme and its driver imported only then. Every operation is bounded in
 * time and fails as STORE_UNAVAILABLE when the store is away (`guard.ts`).
 */
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import { GatewayError } from '../errors.ts';
import { InventoryOff } from '../inventory/off.ts';
import type { Inventory } from '../inventory/types.ts';
import { DEFAULT_CONNECT_OPTIONS, isNovaDatabase, migrate as migrateDatabase, openDatabase, redactUrl, storeKind, type ConnectOptions, type Database } from './database.ts';
import { GuardedInventory, GuardedTokenStore, storeUnavailable } from './guard.ts';
import type { Adoption, MigrationSet } from './migrations.ts';
import type { RedisConnection } from './redis.ts';
import { SqlTokenStore, SqlTokenUses } from './sql-tokens.ts';
import type { TokenStore, TokenUses } from './types.ts';

export interface StoreSettings extends Partial<ConnectOptions> {
  /** `[porthole] connection`: Porthole's own tables; unset: beside the tokens, unless those are Nova's. */
  readonly ownConnection?: string | null;
  /** `[porthole] nova_database`. */
  readonly nova?: 'auto' | 'true' | 'false';
  readonly log?: Logger;
}

export interface Stores {
  readonly tokens: TokenStore;
  readonly inventory: Inventory;
  /** The SQL database that holds the tokens (absent on Redis). */
  readonly database?: Database;
  /** `[database] connection`, for messages (no password). */
  readonly description: string;
  /** `[database] connection` is a Nova cell database: never migrated. */
  readonly nova: boolean;
  /** Where Porthole's own tables are (no password), or null: none (inventory off, no single-use tokens). */
  readonly own: string | null;
  /**
   * The opened stores themselves, for parts that keep tables or channels of their own there (the
   * sessions registry, `src/sessions/`): the tokens' and Porthole's own (null: none), with the
   * URL each was opened from.
   */
  readonly handles?: { readonly tokens: StoreHandle; readonly own: StoreHandle | null };
  /** Creates or upgrades Porthole's tables (never in a Nova database); returns what it applied. */
  migrate(): Promise<string[]>;
  close(): Promise<void>;
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

/** One opened store: SQL or Redis. */
type Opened = { readonly kind: 'sql'; readonly database: Database } | { readonly kind: 'redis'; readonly redis: RedisConnection };
export type StoreHandle = Opened & { readonly url: string };

export async function openStores(connection: string, opts: { migrate: boolean } & StoreSettings): Promise<Stores> {
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
  try {
    const main = await open(connection, o);
    closers.push(() => closeOpened(main));
    const description = describe(main);

    let nova = false;
    if (main.kind === 'redis') {
      if (opts.nova === 'true') throw new GatewayError('CONFIG_INVALID', `[porthole] nova_database = true, but [database] connection = ${description} is Redis, which Nova does not use`);
    } else if (opts.nova === 'true') nova = true;
    else if (opts.nova !== 'false') {
      try {
        nova = await isNovaDatabase(main.database);
      } catch (err) {
        throw storeUnavailable(description, 'looking for Nova\'s tables (set [porthole] nova_database to skip it)', err);
      }
    }

    const ownUrl = opts.ownConnection || (nova ? null : connection);
    let own: Opened | null = null;
    if (ownUrl === connection) own = main;
    else if (ownUrl) {
      const opened = await open(ownUrl, o);
      closers.push(() => closeOpened(opened));
      own = opened;
    }

    const onAdopted = (where: string) => (a: Adoption) =>
      opts.log?.info(
        { event: 'table_adopted', table: a.table, store: where, created: a.created },
        `adopted the existing ${a.table} table of ${where} (it has Nova's columns; ${a.created.length ? `created ${a.created.join(', ')}` : 'nothing to create'}); its migration is recorded as applied`,
      );
    const migrate = async (): Promise<string[]> => {
      const applied: string[] = [];
      if (own === main) applied.push(...(await migrateOpened(main, 'all', onAdopted(description))));
      else {
        if (!nova) applied.push(...(await migrateOpened(main, 'tokens', onAdopted(description))));
        if (own) applied.push(...(await migrateOpened(own, 'own', onAdopted(describe(own)))));
      }
      return applied;
    };
    if (opts.migrate) await migrate();

    const uses: TokenUses | null = !own ? null : own.kind === 'sql' ? new SqlTokenUses(own.database) : new (await import('./redis.ts')).RedisTokenUses(own.redis);
    const tokens: TokenStore = main.kind === 'sql' ? new SqlTokenStore(main.database, uses) : new (await import('./redis.ts')).RedisTokenStore(main.redis, uses);
    const inventory: Inventory = !own
      ? new InventoryOff()
      : own.kind === 'sql'
        ? new (await import('../inventory/sql-inventory.ts')).SqlInventory(own.database)
        : new (await import('../inventory/redis-inventory.ts')).RedisInventory(own.redis);
    const ownDescription = own ? describe(own) : null;
    return {
      tokens: new GuardedTokenStore(tokens, description, o.queryTimeoutMs),
      inventory: new GuardedInventory(inventory, ownDescription ?? 'no store', o.queryTimeoutMs),
      ...(main.kind === 'sql' ? { database: main.database } : {}),
      description,
      nova,
      own: ownDescription,
      handles: { tokens: { ...main, url: connection }, own: own && ownUrl ? { ...own, url: ownUrl } : null },
      migrate,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

async function open(connection: string, o: ConnectOptions): Promise<Opened> {
  if (storeKind(connection) === 'redis') return { kind: 'redis', redis: await (await import('./redis.ts')).openRedis(connection, o) };
  return { kind: 'sql', database: await openDatabase(connection, o) };
}

function describe(s: Opened): string {
  return s.kind === 'sql' ? s.database.description : redactUrl(s.redis.description);
}

function closeOpened(s: Opened): Promise<void> {
  return s.kind === 'sql' ? s.database.close() : s.redis.close();
}

async function migrateOpened(s: Opened, set: MigrationSet, onAdopted: (a: Adoption) => void): Promise<string[]> {
  // Redis has no schema: keys are made as they are written
  return s.kind === 'sql' ? migrateDatabase(s.database, set, { onAdopted }) : [];
}
