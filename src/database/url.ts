/**
 * @module database/url
 * What a `[database] connection` URL (SQLAlchemy forms, as in nova.conf) names: its storage kind
 * and SQL dialect by scheme, and the URL as messages may show it (no password).
 */
import { GatewayError } from '../errors.ts';

export type Dialect = 'sqlite' | 'postgres' | 'mysql';
export type StoreKind = Dialect | 'redis';

/** `postgresql+psycopg2://…` → `postgres`, `mysql+pymysql://…` → `mysql`, `rediss://…` → `redis`. */
export function storeKind(connection: string): StoreKind {
  const scheme = connection.split(':', 1)[0]!.split('+', 1)[0]!.toLowerCase();
  if (scheme === 'sqlite') return 'sqlite';
  if (scheme === 'postgresql' || scheme === 'postgres') return 'postgres';
  if (scheme === 'mysql' || scheme === 'mariadb') return 'mysql';
  if (scheme === 'redis' || scheme === 'rediss') return 'redis';
  throw new GatewayError('CONFIG_INVALID', `connection = ${redactUrl(connection)}: unknown database scheme "${scheme}" (expected sqlite:///path.db, postgresql://, mysql+pymysql:// or redis://)`);
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
}
