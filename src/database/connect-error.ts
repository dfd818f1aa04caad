/**
 * @module database/connect-error
 * A store that cannot be reached at start, told in one line that names the option to change,
 * the URL (password masked) and the cause in words: nothing listening, a host name that does
 * not resolve, no answer in time, a login refused, a database that does not exist. Drivers
 * report these in their own words and codes (Node's `ECONNREFUSED`, PostgreSQL's SQLSTATE,
 * MySQL's errno, ioredis's); another failure of the first contact is told in the same line with
 * the driver's words. Porthole's own refusals (a bad URL, a table that is not Nova's) pass as they are.
 */
import { GatewayError, isGatewayError } from '../errors.ts';
import { redactUrl } from './url.ts';

/** Where the URL came from: `[database] connection` or `[porthole] connection`. */
export type ConnectionOption = '[database] connection' | '[porthole] connection';

/** The cause in words if `err` (or an error it wraps) says the store could not be reached; else undefined. */
export function unreachableCause(err: unknown, connectTimeoutMs: number): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    // Porthole's wrappers repeat the driver's words in their own message: read the driver's error
    if (isGatewayError(e)) continue;
    const cause = causeOf(e as Error & { code?: string; errno?: number; address?: string; port?: number; hostname?: string }, connectTimeoutMs);
    if (cause) return cause;
  }
  return undefined;
}

function causeOf(e: Error & { code?: string; errno?: number; address?: string; port?: number; hostname?: string }, timeoutMs: number): string | undefined {
  const where = e.address ? `${e.address}${e.port ? `:${e.port}` : ''}` : undefined;
  switch (e.code) {
    case 'ECONNREFUSED':
      return `connection refused${where ? ` by ${where}` : ''} (is the database running, and on that port?)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host name ${e.hostname ?? ''} not found`.replace('  ', ' ');
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route to ${where ?? 'the host'}`;
    case 'ETIMEDOUT':
      return `no answer within ${timeoutMs / 1000} s ([porthole] store_connect_timeout)`;
    // PostgreSQL's SQLSTATEs: invalid_password, invalid_authorization_specification (no such role,
    // pg_hba.conf), invalid_catalog_name
    case '28P01':
    case '28000':
      return `login refused: ${e.message}`;
    case '3D000':
      return e.message;
    // MySQL / MariaDB
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR':
    case 'ER_DBACCESS_DENIED_ERROR':
      return `login refused: ${e.message}`;
    case 'ER_BAD_DB_ERROR':
      return e.message;
    // SQLite: a directory that cannot be created or written
    case 'SQLITE_CANTOPEN':
    case 'EACCES':
    case 'EPERM':
    case 'ENOENT':
    case 'ENOTDIR':
    case 'EROFS':
      return e.message;
  }
  // ioredis: a password refused, or a login to a Redis that has none
  if (/^(WRONGPASS|NOAUTH)\b/.test(e.message) || /without any password configured/.test(e.message)) return `login refused: ${e.message}`;
  // pg's and ioredis's own connect timeouts carry no code
  if (/timeout expired|timeout exceeded|connection timeout|connect ETIMEDOUT/i.test(e.message)) return `no answer within ${timeoutMs / 1000} s ([porthole] store_connect_timeout)`;
  // something else answers on that port (or a proxy in the path): it closed, or spoke another protocol
  if (e.code === 'ECONNRESET' || e.code === 'PROTOCOL_CONNECTION_LOST' || /Connection terminated unexpectedly|Unknown RESP type|Connection is closed/.test(e.message)) {
    return `the server closed the connection or does not speak this database's protocol (is that the database's port?): ${e.message}`;
  }
  return undefined;
}

/**
 * `err`, a failure of the first contact with a store, as the one start-up line; Porthole's own
 * refusals (CONFIG_INVALID: a bad URL, a table that is not Nova's) as they are.
 */
export function connectFailure(err: unknown, url: string, option: ConnectionOption, connectTimeoutMs: number): unknown {
  if (isGatewayError(err) && err.code !== 'STORE_UNAVAILABLE') return err;
  if (isGatewayError(err) && err.message.startsWith('cannot use the database ')) return err;
  const cause = unreachableCause(err, connectTimeoutMs) ?? innermost(err);
  const status = isGatewayError(err) ? err.status : 503;
  return new GatewayError('STORE_UNAVAILABLE', `cannot use the database ${redactUrl(url)} (${option}): ${cause}`, {
    status,
    clientMessage: 'console token store unavailable',
    cause: err,
  });
}

/** The words of the error that started it all: a driver's, under Porthole's wrappers. */
function innermost(err: unknown): string {
  let e = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause?: unknown }).cause;
  return e instanceof Error ? e.message || (e as { code?: string }).code || e.name : String(err);
}
