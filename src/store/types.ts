/**
 * @module store/types
 * The `TokenStore` contract. A console token is Nova's `ConsoleAuthToken`: a random UUID4 string
 * handed to the user once, kept at rest only as the lowercase hex SHA-256 of its UTF-8 bytes
 * (Nova's `utils.get_sha256_str`), valid while `expires > now` (epoch seconds), and deleted for
 * good on revocation or by the sweep of expired rows.
 */
import { createHash } from 'node:crypto';

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

export interface TokenStore {
  /** Mints a token; the raw token is returned once and never stored. */
  create(spec: NewConsoleToken): Promise<{ token: string; record: ConsoleToken }>;
  /** Finds a token without changing it. Expired rows that the sweep has not deleted yet say so. */
  lookup(token: string): Promise<TokenLookup>;
  /** Deletes one token; true if it existed. */
  revoke(token: string): Promise<boolean>;
  /** Deletes every token of an instance (Nova's `clean_console_auths_for_instance`). */
  revokeByInstance(instanceUuid: string): Promise<number>;
  /** Deletes rows with `expires <= now`; returns how many. */
  sweepExpired(): Promise<number>;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** What may appear in a log line instead of a token: 8 hex digits of its hash. */
export function tokenLogId(tokenOrHash: string, isHash = false): string {
  return (isHash ? tokenOrHash : hashToken(tokenOrHash)).slice(0, 8);
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
