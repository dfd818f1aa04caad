/**
 * @module store/single-use
 * The token store as the rest of Porthole sees it: a storage kind's token rows
 * (`TokenRecords`) and, for single-use tokens, the record of their uses (`TokenUses`) in
 * Porthole's own store, which may be another store than the tokens' (a Nova cell database holds
 * the tokens, `[porthole] connection` the uses) or none at all.
 */
import { GatewayError } from '../errors.ts';
import type { TokenExtrasStore } from './token-extras.ts';
import type { ConsoleToken, ConsumeResult, NewConsoleToken, TokenLookup, TokenRecords, TokenStore, TokenUses } from './types.ts';

export class TokenStoreWithUses implements TokenStore {
  constructor(
    private readonly records: TokenRecords,
    private readonly uses: TokenUses | null,
    /** Swept with the uses: the extras of expired tokens (`token-extras.ts`). */
    private readonly extras: TokenExtrasStore | null = null,
  ) {}

  create(spec: NewConsoleToken): Promise<{ token: string; record: ConsoleToken }> {
    return this.records.create(spec);
  }

  lookup(token: string): Promise<TokenLookup> {
    return this.records.lookup(token);
  }

  revoke(token: string): Promise<boolean> {
    return this.records.revoke(token);
  }

  revokeByInstance(instanceUuid: string): Promise<number> {
    return this.records.revokeByInstance(instanceUuid);
  }

  /** Expired rows, then the uses and the extras of expired tokens; answers how many token rows went. */
  async sweepExpired(): Promise<number> {
    const n = await this.records.sweepExpired();
    await this.uses?.sweepExpired();
    await this.extras?.sweepExpired();
    return n;
  }

  consume(token: ConsoleToken, client: string, graceSeconds: number): Promise<ConsumeResult> {
    return usesOf(this.uses).consume(token, client, graceSeconds);
  }

  release(token: ConsoleToken, client: string): Promise<void> {
    return usesOf(this.uses).release(token, client);
  }

  forget(token: ConsoleToken, client: string): Promise<void> {
    return usesOf(this.uses).forget(token, client);
  }
}

function usesOf(uses: TokenUses | null): TokenUses {
  if (!uses) {
    throw new GatewayError('CONFIG_INVALID', 'single-use tokens need a store of Porthole\'s own: [database] connection is a Nova database and [porthole] connection is not set', { status: 503, clientMessage: 'console token store unavailable' });
  }
  return uses;
}
