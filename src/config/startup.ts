/**
 * @module config/startup
 * What a daemon says once at start, before it listens, so that an operator sees which
 * configuration is in use: the config files read (or that there were none), the database of the
 * tokens and Porthole's own store, passwords masked; and the config's warnings (unknown names,
 * deprecated ones). The listeners say their address, TLS and the API's auth strategy as they
 * start listening (`consoles/serve.ts`, `gateway.ts`).
 */
import type { LoadedConfig } from './load.ts';

/** The start-up lines, in the order they are logged (at info). */
export function startupLines(loaded: Pick<LoadedConfig, 'config' | 'files' | 'provenance'>): string[] {
  const { config, files, provenance } = loaded;
  const lines = [files.length > 0 ? `config files: ${files.join(', ')}` : 'no config file; defaults, then the environment and flags'];
  const set = provenance.get('database.connection');
  lines.push(`database ([database] connection${set ? ` from ${set}` : ', default'}): ${describeConnection(config.database.connection)}`);
  if (config.porthole.connection && config.porthole.connection !== config.database.connection) {
    lines.push(`Porthole's own store ([porthole] connection): ${describeConnection(config.porthole.connection)}`);
  }
  return lines;
}

/** `sqlite:////var/lib/porthole/porthole.db` → `SQLite /var/lib/porthole/porthole.db`; others without their password. */
export function describeConnection(connection: string): string {
  const sqlite = /^sqlite:\/\/\/(\/[^?]*)/i.exec(connection);
  if (sqlite) return `SQLite ${sqlite[1]}`;
  // the same masking as the database's messages (database/url.ts), which config may not import
  return connection.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
}
