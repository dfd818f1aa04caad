/**
 * @module store
 * The contract of the opened stores, as the parts that use them see it (`src/database/` opens
 * them): the token store named by `[database] connection` and Porthole's own store (the
 * inventory, the uses of single-use tokens, the live-sessions registry, the failed-lookup
 * counts): `[porthole] connection` when set, else the same database, unless that is a Nova cell
 * database, where Porthole never creates or alters a table: then there is no store of
 * Porthole's own, the inventory is off and single-use tokens are unavailable. Every operation is
 * bounded in time and fails as STORE_UNAVAILABLE when the store is away (`guard.ts`).
 */
import type { Inventory } from '../inventory/types.ts';
import type { RegistryBackend, TokenPresence } from '../sessions/types.ts';
import type { AuditEventStore } from './audit-events.ts';
import type { LookupFailureCounter } from './lookup-failures.ts';
import type { RecordingStore } from './recordings.ts';
import type { TokenExtrasStore } from './token-extras.ts';
import type { TokenStore } from './types.ts';

/** How the live-sessions registry reads its events (`[porthole] revocation_poll_interval` ...), ms. */
export interface RegistryOptions {
  /** How often events are read without a wake-up. */
  readonly pollMs: number;
  /** Where the store wakes readers itself (PostgreSQL's NOTIFY): the safety-net poll. */
  readonly idlePollMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectMaxDelayMs: number;
}

export interface Stores {
  readonly tokens: TokenStore;
  readonly inventory: Inventory;
  /** `[database] connection`, for messages (no password). */
  readonly description: string;
  /** `[database] connection` is a Nova cell database: never migrated. */
  readonly nova: boolean;
  /** Where Porthole's own tables are (no password), or null: none (inventory off, no single-use tokens). */
  readonly ownDescription: string | null;
  /** Which token hashes still have their row in the tokens' store (absent: unknown here). */
  readonly presence?: TokenPresence;
  /** The shared count of failed lookups, in Porthole's own store; null: none (each process counts alone). */
  readonly lookupFailures?: LookupFailureCounter | null;
  /** The audit trail's events, in Porthole's own store; null or absent: none (a Nova database alone). */
  readonly auditEvents?: AuditEventStore | null;
  /**
   * What Porthole knows of a token beyond its row (label, minter, control, record), in Porthole's
   * own store; null or absent: none (a Nova database alone: `tokenExtrasUnavailable()` says so).
   */
  readonly tokenExtras?: TokenExtrasStore | null;
  /** The list of console recordings, in Porthole's own store; null or absent: none. */
  readonly recordings?: RecordingStore | null;
  /** The live-sessions registry in Porthole's own store; null: there is none (this process's sessions only). */
  openRegistry?(opts: RegistryOptions): Promise<RegistryBackend | null>;
  /** Creates or upgrades Porthole's tables (never in a Nova database); returns what it applied. */
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}
