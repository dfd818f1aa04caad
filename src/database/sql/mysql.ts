/**
 * @module database/sql/mysql
 * MariaDB and MySQL (`mysql+pymysql://user:pw@host:3306/db`, the form nova.conf uses, also
 * `mysql://` and `mariadb://`) through a `mysql2` pool. The pool is the reconnection: a
 * connection the server dropped is discarded and the next query opens a new one. Of the URL's
 * query parameters, `unix_socket` is honoured; `charset` is not needed (Porthole always talks
 * utf8mb4) and the others of SQLAlchemy's drivers are ignored. `mysql2` is imported only when
 * this store is chosen.
 */
import { Kysely, MysqlDialect, type MysqlPool, type MysqlPoolConnection } from 'kysely';
import { GatewayError } from '../../errors.ts';
import type { ConnectOptions } from '../connect-options.ts';
import { redactUrl } from '../url.ts';
import type { Database } from './types.ts';

export async function openMysql(connection: string, o: ConnectOptions): Promise<Database> {
  const mysql = await import('mysql2');
  let url: URL;
  try {
    url = new URL(connection.replace(/^[^:]*:/, 'mysql:'));
  } catch {
    throw new GatewayError('CONFIG_INVALID', `connection = ${redactUrl(connection)}: expected mysql+pymysql://user:password@host:port/database`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database) throw new GatewayError('CONFIG_INVALID', `connection = ${redactUrl(connection)}: no database name (mysql+pymysql://user:password@host/DATABASE)`);
  const socketPath = url.searchParams.get('unix_socket') ?? undefined;
  const pool = mysql.createPool({
    host: url.hostname || 'localhost',
    port: url.port ? Number(url.port) : 3306,
    ...(socketPath ? { socketPath } : {}),
    user: decodeURIComponent(url.username) || undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    database,
    charset: 'utf8mb4',
    // DATETIME as the text Nova's SQLAlchemy writes, never shifted by this machine's zone
    dateStrings: true,
    timezone: 'Z',
    supportBigNumbers: true,
    connectionLimit: o.poolSize,
    maxIdle: o.poolSize,
    idleTimeout: o.idleTimeoutMs,
    connectTimeout: o.connectTimeoutMs,
    waitForConnections: true,
    queueLimit: 0,
    enableKeepAlive: true,
  });
  // connection-level errors of idle pooled connections (server restart): mysql2 drops them
  pool.on('connection', (c) => c.on('error', (err: Error) => o.onError?.(err, 'mysql')));
  const db = new Kysely<any>({ dialect: new MysqlDialect({ pool: withQueryTimeout(pool as unknown as RawPool, o.queryTimeoutMs) }) });
  return { db, dialect: 'mysql', description: redactUrl(connection), close: () => db.destroy() };
}

type QueryCallback = (error: unknown, result: unknown) => void;
interface RawConnection {
  query(options: { sql: string; timeout: number }, values: readonly unknown[], callback: QueryCallback): unknown;
  query(sql: string, values: readonly unknown[]): { stream(options?: unknown): unknown };
  release(): void;
}
interface RawPool {
  getConnection(callback: (error: unknown, connection: RawConnection) => void): void;
  end(callback: (error: unknown) => void): void;
}

/**
 * Kysely's MySQL driver sends plain `query(sql, values)`; this gives each query mysql2's own
 * timeout, so a server that stops answering fails the query (and drops its connection) instead
 * of holding a pooled connection for good.
 */
function withQueryTimeout(pool: RawPool, timeout: number): MysqlPool {
  const wrapped = new WeakMap<RawConnection, MysqlPoolConnection>();
  const wrap = (raw: RawConnection): MysqlPoolConnection => {
    let conn = wrapped.get(raw);
    if (!conn) {
      conn = {
        query: ((sql: string, values: readonly unknown[], callback?: QueryCallback) =>
          callback ? raw.query({ sql, timeout }, values, callback) : raw.query(sql, values)) as MysqlPoolConnection['query'],
        release: () => raw.release(),
      };
      wrapped.set(raw, conn);
    }
    return conn;
  };
  return {
    getConnection: (callback) => pool.getConnection((err, raw) => callback(err, err ? (undefined as never) : wrap(raw))),
    end: (callback) => pool.end(callback),
  };
}
