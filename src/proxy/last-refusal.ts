/**
 * @module proxy/last-refusal
 * Why the last console connection of a token from a client failed, for a short while: what the
 * console page asks `/porthole/token-state` after its WebSocket failed. A refusal before the 101
 * (the backend refused the dial: 502; a single-use token already used: 403; the store down: 503)
 * is an HTTP status that the browser's WebSocket API never shows, so without this the page could
 * only guess, and a machine that is off looked like a network blip for two minutes of retries.
 * A watcher of the listener's events (`events.ts`): a refusal whose reason the page can act on is
 * kept under the token's SHA-256 and the client's address (never the token itself), a session
 * that starts forgets it. Bounded: at most `maxEntries`, each for `ttlMs`; the oldest go first.
 * Per process: behind a balancer that sends the page's request to another proxy than its
 * WebSocket, the page finds nothing here and falls back to retrying.
 */
import type { GatewayError } from '../errors.ts';
import type { ConnectionFacts, ConsoleEvents } from './events.ts';

/** What the page says of a failed attempt: the backend did not take it, the token was used, the store was down. */
export type RefusalReason = 'unreachable' | 'used' | 'unavailable';

const REASONS: Readonly<Record<string, RefusalReason>> = {
  BACKEND_UNREACHABLE: 'unreachable',
  BACKEND_TIMEOUT: 'unreachable',
  BACKEND_PROTOCOL: 'unreachable',
  TOKEN_CONSUMED: 'used',
  STORE_UNAVAILABLE: 'unavailable',
};

export interface LastRefusalOptions {
  /** How long a refusal is told (the page asks within a second of its WebSocket failing). */
  readonly ttlMs?: number;
  readonly maxEntries?: number;
}

export class LastRefusals implements ConsoleEvents {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  /** `<token hash> <client>` → reason and when; a Map keeps insertion order, so the oldest is first. */
  private readonly entries = new Map<string, { readonly reason: RefusalReason; readonly at: number }>();

  constructor(opts: LastRefusalOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
  }

  /** Why the last attempt of the token hashed `tokenHash` from `client` failed, if it did lately. */
  reason(tokenHash: string, client: string): RefusalReason | null {
    const key = `${tokenHash} ${client}`;
    const e = this.entries.get(key);
    if (!e) return null;
    if (Date.now() - e.at > this.ttlMs) {
      this.entries.delete(key);
      return null;
    }
    return e.reason;
  }

  get size(): number {
    return this.entries.size;
  }

  refused(facts: ConnectionFacts, error: GatewayError): void {
    const reason = REASONS[error.code];
    if (reason === undefined || facts.tokenHash === undefined) return;
    const key = `${facts.tokenHash} ${facts.client.host}`;
    const now = Date.now();
    // re-inserted, so that it moves to the end of the order
    this.entries.delete(key);
    this.entries.set(key, { reason, at: now });
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.maxEntries && now - e.at <= this.ttlMs) break;
      this.entries.delete(k);
    }
  }

  sessionStarted(facts: ConnectionFacts): void {
    if (facts.tokenHash !== undefined && this.entries.size > 0) this.entries.delete(`${facts.tokenHash} ${facts.client.host}`);
  }

  lookup(): void {}
  backendConnected(): void {}
  sessionEnded(): void {}
}
