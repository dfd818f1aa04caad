/**
 * @module database/sql/postgres
 * PostgreSQL (`postgresql://user:pw@host:5432/db`, also `postgres://` and SQLAlchemy's
 * `postgresql+psycopg2://`) through a `pg` pool. The pool is the reconnection: a connection the
 * server dropped is discarded and the next query opens a new one, so Porthole recovers by itself
 * when PostgreSQL comes back. `pg` is imported only when this store is chosen.
 */
import { Kysely, PostgresDialect } from 'kysely';
import { GatewayError } from '../../errors.ts';
import type { ConnectOptions } from '../connect-options.ts';
import { redactUrl } from '../url.ts';
import type { Database } from './types.ts';

export async function openPostgres(connection: string, o: ConnectOptions): Promise<Database> {
  const { default: pg } = await import('pg');
  let url: URL;
  try {
    // SQLAlchemy's `+driver` means nothing to libpq
    url = new URL(connection.replace(/^[^:]*:/, 'postgresql:'));
  } catch {
    throw new GatewayError('CONFIG_INVALID', `connection = ${redactUrl(connection)}: expected postgresql://user:password@host:port/database`);
  }
  const pool = new pg.Pool({
    connectionString: url.toString(),
    max: o.poolSize,
    connectionTimeoutMillis: o.connectTimeoutMs,
    idleTimeoutMillis: o.idleTimeoutMs,
    // client side: a query with no answer (a server gone without a FIN) fails instead of hanging
    query_timeout: o.queryTimeoutMs,
    // server side: the server gives up too, so a slow query does not hold a connection
    statement_timeout: o.queryTimeoutMs,
    keepAlive: true,
    application_name: url.searchParams.get('application_name') ?? 'porthole',
  });
  // an idle pooled connection that the server closes (restart, failover) emits here; without a
  // listener the process would die. The pool has already dropped it.
  pool.on('error', (err) => o.onError?.(err, 'postgresql'));
  // a connection that is checked out has no pool listener: the server going away between two
  // statements of one checkout ("Connection terminated unexpectedly", seen when the store-outage
  // test stops PostgreSQL) would end the process; the statement in flight fails on its own
  pool.on('connect', (client) => client.on('error', (err) => o.onError?.(err, 'postgresql')));
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: 'postgres', description: redactUrl(connection), close: () => db.destroy() };
}
