/**
 * @module database/sql/token-presence
 * Which token hashes still have their row in the token store, asked by a proxy at each heartbeat
 * for the tokens of its live sessions: a token deleted before its expiry was revoked, whoever did
 * it, including Nova itself (`clean_console_auths_for_instance` when an instance is deleted or
 * moved), which tells nobody. One SELECT … IN per 500 hashes,
 * read only, so a Nova cell database is used as Nova uses it.
 */
import type { TokenPresence } from '../../sessions/types.ts';
import type { Database } from './types.ts';

const CHUNK = 500;

export class SqlTokenPresence implements TokenPresence {
  constructor(private readonly database: Database) {}

  async present(hashes: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < hashes.length; i += CHUNK) {
      const rows = await this.database.db.selectFrom('console_auth_tokens').select('token_hash').where('token_hash', 'in', hashes.slice(i, i + CHUNK)).execute();
      for (const r of rows) found.add(String(r.token_hash));
    }
    return found;
  }
}
