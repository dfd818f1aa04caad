/**
 * @module database/sql/token-extras
 * What Porthole knows of a console token beyond Nova's row (`store/token-extras.ts`) in
 * `porthole_token_extras` (migration 0010) of Porthole's own database, never in Nova's table:
 * one row per token hash, kept until the token's expiry and then swept with the token uses. A
 * `put` again for the same hash replaces the row (one upsert).
 */
import type { ConsoleTokenExtras, TokenExtrasStore } from '../../store/token-extras.ts';
import { nowSeconds } from '../../store/types.ts';
import type { Database } from './types.ts';

const TABLE = 'porthole_token_extras';

interface Row {
  label: string | null;
  minted_by: string | null;
  control: number | boolean;
  record: number | boolean;
}

export class SqlTokenExtras implements TokenExtrasStore {
  constructor(private readonly database: Database) {}

  async put(tokenHash: string, extras: ConsoleTokenExtras, expires: number): Promise<void> {
    const values = { label: extras.label, minted_by: extras.mintedBy, control: extras.control ? 1 : 0, record: extras.record ? 1 : 0, expires };
    const insert = this.database.db.insertInto(TABLE).values({ token_hash: tokenHash, ...values });
    await (this.database.dialect === 'mysql' ? insert.onDuplicateKeyUpdate(values) : insert.onConflict((oc) => oc.column('token_hash').doUpdateSet(values))).execute();
  }

  async get(tokenHash: string): Promise<ConsoleTokenExtras | null> {
    // an expired row not yet swept is gone already, as on Redis
    const row = (await this.database.db.selectFrom(TABLE).select(['label', 'minted_by', 'control', 'record']).where('token_hash', '=', tokenHash).where('expires', '>', nowSeconds()).executeTakeFirst()) as Row | undefined;
    if (!row) return null;
    return { label: row.label, mintedBy: row.minted_by, control: Number(row.control) === 1, record: Number(row.record) === 1 };
  }

  async anyRecorded(): Promise<boolean> {
    const row = await this.database.db.selectFrom(TABLE).select('token_hash').where('record', '=', 1).where('expires', '>', nowSeconds()).limit(1).executeTakeFirst();
    return row !== undefined;
  }

  async sweepExpired(): Promise<number> {
    const r = await this.database.db.deleteFrom(TABLE).where('expires', '<=', nowSeconds()).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
