/**
 * @module proxy/token-use
 * Single-use console tokens (`[porthole] single_use_tokens`): a connection consumes its token
 * before the backend is dialled, so a used token costs no backend connection, and gives it back
 * if it fails before its session began; only a working session keeps it consumed. A reconnection
 * within `[porthole] reconnect_grace_seconds` from the same client address is the same use.
 */
import type { Logger } from 'pino';
import { GatewayError, isGatewayError } from '../errors.ts';
import { tokenLogId, type ConsoleToken, type TokenStore } from '../store/types.ts';

/** A connection's use of a single-use token: it `failed` before its session began, or its session `ended`. Each settles once. */
export interface TokenUse {
  /** The token's `first` use, or a `reconnect` of its client within the grace (the audit trail's token.consumed). */
  readonly use: 'first' | 'reconnect';
  failed(): void;
  ended(): void;
}

export interface TokenUseDeps {
  readonly tokens: TokenStore;
  readonly log: Logger;
  /** Releases in flight, for the gateway to await when it closes. */
  readonly releases?: Set<Promise<unknown>>;
}

/** Consumes `t` for `client` (its IP address, which stays the same across reconnections) or refuses with TOKEN_CONSUMED. */
export async function consumeToken(t: ConsoleToken, client: string, graceSeconds: number, deps: TokenUseDeps): Promise<TokenUse> {
  const result = await deps.tokens.consume(t, client, graceSeconds);
  if (result === 'refused') {
    throw new GatewayError('TOKEN_CONSUMED', 'single-use console token already used (by a live session, another client, or longer ago than the reconnect grace)', { status: 403 });
  }
  let done = false;
  const finish = (what: string, op: () => Promise<void>) => {
    if (done) return;
    done = true;
    const p = op().catch((err: unknown) => deps.log.warn({ event: 'token_use', code: isGatewayError(err) ? err.code : undefined, tokenHash: tokenLogId(t.tokenHash, true) }, `single-use token not ${what}: ${(err as Error)?.message ?? err}`));
    deps.releases?.add(p);
    void p.finally(() => deps.releases?.delete(p));
  };
  return {
    use: result,
    // a first use that failed leaves the token unused; a failed reconnection leaves it released
    failed: () => (result === 'first' ? finish('given back', () => deps.tokens.forget(t, client)) : finish('released', () => deps.tokens.release(t, client))),
    ended: () => finish('released', () => deps.tokens.release(t, client)),
  };
}
