/**
 * @module store/sql-tokens
 * `TokenStore` over Nova's `console_auth_tokens` table through Kysely, so every SQL dialect
 * shares one implementation. Reads select `*` so that a table with or without Nova 2025.1's
 * `tls_port` column works unchanged.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { hashToken, nowSeconds, type ConsoleToken, type NewConsoleToken, type TokenLookup, type TokenStore } from './types.ts';

interface Row {
  id: number | bigint;
  token_hash: string;
  console_type: string;
  host: string;
  port: number;
  tls_port?: number | null;
  internal_access_path: string | null;
  instance_uuid: string;
  access_url_base: string | null;
  expires: number | bigint;
}

const TABLE = 'console_auth_tokens';

export class SqlTokenStore implements TokenStore {
  constructor(private readonly db: Kysely<any>) {}

  async create(spec: NewConsoleToken): Promise<{ token: string; record: ConsoleToken }> {
    // Nova: token = str(uuid.uuid4()), 122 random bits
    const token = randomUUID();
    const tokenHash = hashToken(token);
    const now = new Date();
    const row = {
      created_at: sqlTimestamp(now),
      updated_at: null,
      token_hash: tokenHash,
      console_type: spec.consoleType,
      host: spec.host,
      port: spec.port,
      internal_access_path: spec.internalAccessPath ?? null,
      instance_uuid: spec.instanceUuid,
      expires: Math.floor(now.getTime() / 1000) + spec.ttl,
      access_url_base: spec.accessUrlBase,
      ...(spec.tlsPort != null ? { tls_port: spec.tlsPort } : {}),
    };
    const result = await this.db.insertInto(TABLE).values(row).executeTakeFirstOrThrow();
    const id = Number(result.insertId ?? 0);
    return { token, record: toToken({ ...row, id, tls_port: spec.tlsPort ?? null }) };
  }

  async lookup(token: string): Promise<TokenLookup> {
    const row = (await this.db.selectFrom(TABLE).selectAll().where('token_hash', '=', hashToken(token)).executeTakeFirst()) as Row | undefined;
    if (!row) return { status: 'unknown' };
    const record = toToken(row);
    return record.expires > nowSeconds() ? { status: 'valid', token: record } : { status: 'expired', token: record };
  }

  async revoke(token: string): Promise<boolean> {
    const r = await this.db.deleteFrom(TABLE).where('token_hash', '=', hashToken(token)).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async revokeByInstance(instanceUuid: string): Promise<number> {
    const r = await this.db.deleteFrom(TABLE).where('instance_uuid', '=', instanceUuid).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async sweepExpired(): Promise<number> {
    const r = await this.db.deleteFrom(TABLE).where('expires', '<=', nowSeconds()).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

function toToken(row: Row): ConsoleToken {
  return {
    id: Number(row.id),
    tokenHash: row.token_hash,
    consoleType: row.console_type,
    host: row.host,
    port: Number(row.port),
    tlsPort: row.tls_port == null ? null : Number(row.tls_port),
    internalAccessPath: row.internal_access_path,
    instanceUuid: row.instance_uuid,
    accessUrlBase: row.access_url_base,
    expires: Number(row.expires),
  };
}

/** SQLAlchemy's DateTime text form in SQLite: `YYYY-MM-DD HH:MM:SS.ffffff` (UTC, as Nova writes). */
export function sqlTimestamp(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '000');
}
