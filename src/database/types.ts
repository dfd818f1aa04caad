/**
 * @module database/types
 * What a storage kind (`sql/`, `redis/`) offers: `StorageKind.open(url)` gives one `Storage`,
 * which makes every part Porthole keeps there (tokens and their single-use records, the
 * inventory, the live-sessions registry, token presence, failed-lookup counts), migrates itself
 * and closes. `database/index.ts` picks the kind by the URL's scheme; nothing else asks which
 * kind a store is. A new storage kind is one folder that exports a `StorageKind`.
 */
import type { Inventory } from '../inventory/types.ts';
import type { RegistryBackend, TokenPresence } from '../sessions/types.ts';
import type { RegistryOptions } from '../store/index.ts';
import type { AuditEventStore } from '../store/audit-events.ts';
import type { LookupFailureCounter } from '../store/lookup-failures.ts';
import type { RecordingStore } from '../store/recordings.ts';
import type { TokenExtrasStore } from '../store/token-extras.ts';
import type { TokenRecords, TokenUses } from '../store/types.ts';
import type { ConnectOptions } from './connect-options.ts';
import type { Database } from './sql/types.ts';
import type { RedisConnection } from './redis/connection.ts';

/**
 * Porthole's migrations come in two sets, so that each can live in its own database: `tokens`
 * (the token table, in `[database] connection`) and `own` (Porthole's own tables, in
 * `[porthole] connection` when set); `all` is both, in one database.
 */
export type MigrationSet = 'tokens' | 'own' | 'all';

/** A table that a migration found already there and took as its own, with the indexes it added. */
export interface Adoption {
  readonly table: string;
  readonly created: readonly string[];
}

/** The opened connection itself, for tests and tools that reach into a store. */
export type StorageHandle = { readonly kind: 'sql'; readonly database: Database } | { readonly kind: 'redis'; readonly redis: RedisConnection };

/** What a storage kind keeps, each part made when the store is opened. */
export interface StorageParts {
  readonly tokens: TokenRecords;
  readonly uses: TokenUses;
  readonly inventory: Inventory;
  readonly presence: TokenPresence;
  readonly lookupFailures: LookupFailureCounter;
  /** The audit trail's events (`GET /porthole/v1/events`). */
  readonly auditEvents?: AuditEventStore;
  /** What Porthole knows of a token beyond its row (label, minter, control, record). */
  readonly tokenExtras: TokenExtrasStore;
  /** The list of console recordings. */
  readonly recordings: RecordingStore;
}

export interface Storage {
  /** For messages: where it is, without a password. */
  readonly description: string;
  readonly handle: StorageHandle;
  readonly parts: StorageParts;
  /** Whether this is a Nova cell database (`[porthole] nova_database = auto`). */
  isNovaDatabase(): Promise<boolean>;
  /** Creates or upgrades the tables of `set` (nothing where a store has no schema); returns the migrations applied. */
  migrate(set: MigrationSet, onAdopted: (adoption: Adoption) => void): Promise<string[]>;
  /** The live-sessions registry (it may open connections of its own). */
  registry(opts: RegistryOptions): Promise<RegistryBackend>;
  close(): Promise<void>;
}

export interface StorageKind {
  /** For messages: `SQL`, `Redis`. */
  readonly name: string;
  /** False where a Nova cell database cannot be (Nova keeps its tokens in SQL only). */
  readonly canBeNova: boolean;
  open(connection: string, o: ConnectOptions): Promise<Storage>;
}
