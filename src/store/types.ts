/**
 * @module store/types
 * The `TokenStore` contract. A console token is Nova's `ConsoleAuthToken`: a random UUID4 string
 * handed to the user once, kept at rest only as the lowercase hex SHA-256 of its UTF-8 bytes
 * (Nova's `utils.get_sha256_str`), valid while `expires > now` (epoch seconds), and deleted for
 * good on revocation or by the sweep of expired rows. With `[porthole] single_use_tokens`, a token
 * is also *consumed* by its first session (`consume`), atomically across every process sharing
 * the store, and may reconnect from the same client for a grace period after that session ended.
 */
import { hash } from 'node:crypto';

/** A row of `console_auth_tokens`, as Nova defines it. */
export interface ConsoleToken {
  readonly id: number;
  readonly tokenHash: string;
  /** `novnc`, `spice-html5`, `serial`, ... (Nova's console types) */
  readonly consoleType: string;
  readonly host: string;
  readonly port: number;
  /** Added by Nova 2025.1; null in older schemas. */
  readonly tlsPort: number | null;
  readonly internalAccessPath: string | null;
  readonly instanceUuid: string;
  readonly accessUrlBase: string | null;
  /** Epoch seconds; the token is valid while `expires > now`. */
  readonly expires: number;
}

export interface NewConsoleToken {
  readonly consoleType: string;
  readonly host: string;
  readonly port: number;
  readonly tlsPort?: number | null;
  readonly internalAccessPath?: string | null;
  readonly instanceUuid: string;
  readonly accessUrlBase: string | null;
  /** Seconds from now (Nova's `[consoleauth] token_ttl`). */
  readonly ttl: number;
}

export type TokenLookup =
  | { readonly status: 'valid'; readonly token: ConsoleToken }
  | { readonly status: 'expired'; readonly token: ConsoleToken }
  | { readonly status: 'unknown' };

/**
 * What `consume` decided: `first` (the token was not used before: this session consumes it),
 * `reconnect` (used, its session has ended, the same client is back within the grace), or
 * `refused` (in use, by another client, or past the grace).
 */
export type ConsumeResult = 'first' | 'reconnect' | 'refused';

export interface TokenStore {
  /** Mints a token; the raw token is returned once and never stored. */
  create(spec: NewConsoleToken): Promise<{ token: string; record: ConsoleToken }>;
  /** Finds a token without changing it. Expired rows that the sweep has not deleted yet say so. */
  lookup(token: string): Promise<TokenLookup>;
  /** Deletes one token; true if it existed. */
  revoke(token: string): Promise<boolean>;
  /** Deletes every token of an instance (Nova's `clean_console_auths_for_instance`). */
  revokeByInstance(instanceUuid: string): Promise<number>;
  /** Deletes rows with `expires <= now`; returns how many (a store whose rows expire by themselves, Redis, has none left to count). */
  sweepExpired(): Promise<number>;
  /**
   * Single-use tokens: marks `token` used by `client` (an address, without port) and says whether
   * this session may go ahead. Of any number of racing callers, in any number of processes, at
   * most one gets `first`. Throws CONFIG_INVALID where Porthole has no store of its own.
   */
  consume(token: ConsoleToken, client: string, graceSeconds: number): Promise<ConsumeResult>;
  /** The session that consumed (or reconnected with) `token` has ended: the grace starts now. */
  release(token: ConsoleToken, client: string): Promise<void>;
  /**
   * The connection that got `first` for `token` failed before its session began (backend
   * unreachable, client gone): the token is unused again, as if that connection never was.
   */
  forget(token: ConsoleToken, client: string): Promise<void>;
}

/**
 * The token rows themselves, as a storage kind keeps them (`src/database/<kind>/tokens.ts`):
 * `TokenStore` less single use, which `single-use.ts` adds over `TokenUses`.
 */
export type TokenRecords = Pick<TokenStore, 'create' | 'lookup' | 'revoke' | 'revokeByInstance' | 'sweepExpired'>;

/**
 * Where single-use tokens record their use: Porthole's own store (`[porthole] connection`, else
 * beside the tokens), never Nova's table, whose schema has no room for it.
 */
export interface TokenUses {
  consume(token: ConsoleToken, client: string, graceSeconds: number): Promise<ConsumeResult>;
  release(token: ConsoleToken, client: string): Promise<void>;
  forget(token: ConsoleToken, client: string): Promise<void>;
  /** Forgets uses of tokens that have expired. */
  sweepExpired(): Promise<number>;
}

export function hashToken(token: string): string {
  // the one-shot hash: a quarter of createHash's time (every console open hashes its token)
  return hash('sha256', token, 'hex');
}

/** What may appear in a log line instead of a token: 8 hex digits of its hash. */
export function tokenLogId(tokenOrHash: string, isHash = false): string {
  return (isHash ? tokenOrHash : hashToken(tokenOrHash)).slice(0, 8);
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
