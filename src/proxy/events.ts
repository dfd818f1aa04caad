/**
 * @module proxy/events
 * What a console listener tells the parts that watch it (metrics, the audit trail), at each step
 * of a connection's life: the token lookup, the backend connected, the session live, the session
 * over, or the connection refused. Calls are synchronous and made once per step, never per chunk:
 * nothing here is on the byte path. A watcher must not throw; the caller contains it anyway (a
 * throw is logged as a bug and the connection goes on), and must not keep the session objects
 * past `sessionEnded`.
 */
import type { GatewayError } from '../errors.ts';
import type { ClientAddress } from './client-address.ts';
import type { ConsoleSession, SessionEnd } from './relay.ts';

/** How a token lookup ended: the store's answer, or `error` (store unavailable, timeout). */
export type LookupResult = 'valid' | 'unknown' | 'expired' | 'error';

/** Facts of a connection that every event carries. */
export interface ConnectionFacts {
  /** The console kind of the listener (`novnc`, `serial`, `spice`). */
  readonly kind: string;
  readonly client: ClientAddress;
  /** Milliseconds since the upgrade request arrived. */
  readonly ms: number;
  /** The token's 8-hex log id, once the request named one. */
  readonly tokenLogId?: string;
  /** The token's SHA-256 (hex), once the request named one: what `last-refusal.ts` keys on, never logged. */
  readonly tokenHash?: string;
  /** The token's instance, once the lookup found it. */
  readonly instance?: string;
}

export interface ConsoleEvents {
  /** A token lookup ended; `ms` is the lookup's own time. */
  lookup(facts: ConnectionFacts, result: LookupResult, lookupMs: number): void;
  /** The backend's TCP connection (and CONNECT, TLS) is up. */
  backendConnected(facts: ConnectionFacts): void;
  /** The relay started: for RFB after the backend's ServerInit went to the browser. */
  sessionStarted(facts: ConnectionFacts, session: ConsoleSession): void;
  /** The session is over, with its figures. */
  sessionEnded(facts: ConnectionFacts, session: ConsoleSession, end: SessionEnd): void;
  /**
   * The connection ended before its session began: refused before the upgrade (`status`), or
   * after it (the error's close code), or the client went (`CLIENT_CLOSED`).
   */
  refused(facts: ConnectionFacts, error: GatewayError, afterUpgrade: boolean): void;
  /**
   * A single-use token (`[porthole] single_use_tokens`) was consumed by this connection, before
   * the backend is dialled: `first` use, or a `reconnect` of the same client within the grace.
   * Optional: a watcher that does not care leaves it out.
   */
  consumed?(facts: ConnectionFacts, use: 'first' | 'reconnect'): void;
}

/** Tells each of `watchers` in turn; one that throws does not keep the others from hearing. */
export function fanOut(watchers: readonly ConsoleEvents[], onError: (err: unknown) => void): ConsoleEvents {
  // `consumed` is optional: a watcher without it is skipped
  type Steps = Required<ConsoleEvents>;
  const each = <K extends keyof Steps>(name: K) =>
    ((...args: Parameters<Steps[K]>) => {
      for (const w of watchers) {
        try {
          (w[name] as ((...a: Parameters<Steps[K]>) => void) | undefined)?.(...args);
        } catch (err) {
          onError(err);
        }
      }
    }) as Steps[K];
  return { lookup: each('lookup'), backendConnected: each('backendConnected'), sessionStarted: each('sessionStarted'), sessionEnded: each('sessionEnded'), refused: each('refused'), consumed: each('consumed') };
}
