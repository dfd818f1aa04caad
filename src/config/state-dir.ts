/**
 * @module config/state-dir
 * Where the embedded SQLite store lives when no `[database] connection` is given, so that the
 * daemons and every CLI command of one user find the same file wherever they are started (a
 * path relative to the current directory made `porthole token create` run elsewhere create an
 * empty database): systemd's `$STATE_DIRECTORY` when a unit sets `StateDirectory=`, else
 * `/var/lib/porthole` for root and for a user who can write it (the service's user), else the
 * user's XDG state directory (`$XDG_STATE_HOME/porthole`, by default `~/.local/state/porthole`).
 * Also: a relative `sqlite:///file.db` is read relative to the config file that names it.
 */
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export const SYSTEM_STATE_DIRECTORY = '/var/lib/porthole';

export interface StateContext {
  readonly env: NodeJS.ProcessEnv;
  /** The process's user id (0: root). */
  readonly uid: number;
  /** `/var/lib/porthole`, or another directory in tests. */
  readonly system?: string;
}

export function currentStateContext(env: NodeJS.ProcessEnv): StateContext {
  return { env, uid: process.getuid?.() ?? -1 };
}

/** The directory of the default SQLite file, by the rule above. */
export function stateDirectory(ctx: StateContext): string {
  const system = ctx.system ?? SYSTEM_STATE_DIRECTORY;
  // systemd: StateDirectory=porthole sets STATE_DIRECTORY=/var/lib/porthole (a list for several)
  const fromSystemd = ctx.env['STATE_DIRECTORY']?.split(':')[0];
  if (fromSystemd && isAbsolute(fromSystemd)) return fromSystemd;
  if (ctx.uid === 0 || writable(system)) return system;
  // the XDG base directory spec: a relative $XDG_STATE_HOME is invalid and ignored
  const xdg = ctx.env['XDG_STATE_HOME'];
  const base = xdg && isAbsolute(xdg) ? xdg : join(ctx.env['HOME'] || homedir(), '.local', 'state');
  return join(base, 'porthole');
}

/** `sqlite:////<state directory>/porthole.db`. */
export function defaultConnection(ctx: StateContext): string {
  return `sqlite:///${join(stateDirectory(ctx), 'porthole.db')}`;
}

/**
 * A `sqlite:///relative.db` URL made absolute against `base` (the directory of the config file
 * that names it, or the current directory for a flag or the environment); anything else as is.
 */
export function absoluteSqlite(connection: string, base: string): string {
  const m = /^sqlite:\/\/\/([^/?][^?]*)(\?.*)?$/i.exec(connection);
  if (!m || m[1] === ':memory:') return connection;
  return `sqlite:///${resolve(base, m[1]!)}${m[2] ?? ''}`;
}

/** The directory a config file's relative paths are relative to. */
export function configFileDirectory(file: string): string {
  return dirname(resolve(file));
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
