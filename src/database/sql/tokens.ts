/**
 * @module database/sql/tokens
 * The token rows (`TokenRecords`) in Nova's `console_auth_tokens` table through Kysely, so
 * SQLite, PostgreSQL and MariaDB/MySQL share one implementation; and `TokenUses`, the uses of single-use tokens, in
 * Porthole's own `porthole_token_uses`. Reads name their columns: Nova's own (those of Nova 26,
 * Debian 12's) and `tls_port` only where the table has it (Nova 2025.1, Porthole's schema), looked
 * up once. The only statements on the token table are SELECT, INSERT and DELETE, as Nova's own,
 * so a Nova cell database is used as is.
 */
import { randomUUID } from 'node:crypto';
import { hashToken, nowSeconds, type ConsoleToken, type ConsumeResult, type NewConsoleToken, type TokenLookup, type TokenRecords, type TokenUses } from '../../store/types.ts';
import type { CompiledQuery } from 'kysely';
import { tableColumns } from './database.ts';
import type { Database } from './types.ts';

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
const USES = 'porthole_token_uses';
const NOVA_COLUMNS = ['id', 'token_hash', 'console_type', 'host', 'port', 'internal_access_path', 'instance_uuid', 'access_url_base', 'expires'] as const;

export class SqlTokenRecords implements TokenRecords {
  private columns: Promise<string[]> | undefined;
  /** The lookup's SQL, compiled once: building and compiling it anew was most of a lookup's CPU (every console open waits for one). */
  private lookupQuery: Promise<CompiledQuery<Row>> | undefined;

  constructor(private readonly database: Database) {}

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
    const insert = this.database.db.insertInto(TABLE).values(row);
    // PostgreSQL reports no insert id: ask for it (MySQL has no RETURNING, its insertId works)
    const id = this.database.dialect === 'postgres' ? (await insert.returning('id').executeTakeFirstOrThrow()).id : (await insert.executeTakeFirstOrThrow()).insertId;
    return { token, record: toToken({ ...row, id: id ?? 0, tls_port: spec.tlsPort ?? null }) };
  }

  async lookup(token: string): Promise<TokenLookup> {
    const query = await this.compiledLookup();
    // the same text with this token's hash as its one parameter
    const row = (await this.database.db.executeQuery<Row>({ ...query, parameters: [hashToken(token)] })).rows[0];
    if (!row) return { status: 'unknown' };
    const record = toToken(row);
    return record.expires > nowSeconds() ? { status: 'valid', token: record } : { status: 'expired', token: record };
  }

  async revoke(token: string): Promise<boolean> {
    const r = await this.database.db.deleteFrom(TABLE).where('token_hash', '=', hashToken(token)).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async revokeByInstance(instanceUuid: string): Promise<number> {
    const r = await this.database.db.deleteFrom(TABLE).where('instance_uuid', '=', instanceUuid).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async sweepExpired(): Promise<number> {
    const r = await this.database.db.deleteFrom(TABLE).where('expires', '<=', nowSeconds()).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  private compiledLookup(): Promise<CompiledQuery<Row>> {
    this.lookupQuery ??= this.selectColumns().then(
      (columns) => this.database.db.selectFrom(TABLE).select(columns).where('token_hash', '=', '').compile() as CompiledQuery<Row>,
      (err: unknown) => {
        this.lookupQuery = undefined;
        throw err;
      },
    );
    return this.lookupQuery;
  }

  /** Nova's columns, and `tls_port` where the table has it; looked up on first use (the database may be down at start). */
  private async selectColumns(): Promise<string[]> {
    this.columns ??= tableColumns(this.database, TABLE).then(
      (have) => [...NOVA_COLUMNS, ...(have.includes('tls_port') ? ['tls_port'] : [])],
      (err: unknown) => {
        this.columns = undefined;
        throw err;
      },
    );
    return this.columns;
  }
}

/**
 * Single-use tokens in `porthole_token_uses`. Consuming is one INSERT that does nothing when the
 * row exists (ON CONFLICT DO NOTHING, MySQL's INSERT IGNORE): the database's primary key decides
 * which of racing proxies wins. A reconnection is one conditional UPDATE, as atomic.
 */
export class SqlTokenUses implements TokenUses {
  constructor(private readonly database: Database) {}

  async consume(token: ConsoleToken, client: string, graceSeconds: number): Promise<ConsumeResult> {
    const { db, dialect } = this.database;
    const now = nowSeconds();
    const insert = db.insertInto(USES).values({ token_hash: token.tokenHash, client, live: 1, consumed_at: now, released_at: null, expires: token.expires });
    const inserted = await (dialect === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.column('token_hash').doNothing())).executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) return 'first';
    const r = await db
      .updateTable(USES)
      .set({ live: 1, released_at: null })
      .where('token_hash', '=', token.tokenHash)
      .where('client', '=', client)
      .where('live', '=', 0)
      .where('released_at', '>', now - graceSeconds)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1 ? 'reconnect' : 'refused';
  }

  async release(token: ConsoleToken, client: string): Promise<void> {
    await this.database.db
      .updateTable(USES)
      .set({ live: 0, released_at: nowSeconds() })
      .where('token_hash', '=', token.tokenHash)
      .where('client', '=', client)
      .where('live', '=', 1)
      .execute();
  }

  async forget(token: ConsoleToken, client: string): Promise<void> {
    await this.database.db.deleteFrom(USES).where('token_hash', '=', token.tokenHash).where('client', '=', client).where('live', '=', 1).execute();
  }

  async sweepExpired(): Promise<number> {
    const r = await this.database.db.deleteFrom(USES).where('expires', '<=', nowSeconds()).executeTakeFirst();
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

/**
 * SQLAlchemy's DateTime as Nova writes it: naive UTC, `YYYY-MM-DD HH:MM:SS.ffffff`. Sent as text,
 * so no driver shifts it by this machine's time zone; MariaDB's DATETIME keeps the seconds.
 */
export function sqlTimestamp(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '000');
}
