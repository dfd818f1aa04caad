/**
 * @module cli/config-search
 * Which configuration a command reads when its command line names none. The Nova drop-ins look
 * where oslo.config looks for a Nova daemon (`find_config_files`/`find_config_dirs` with project
 * `nova` and the program's name): `nova.conf`, then `nova-novncproxy.conf`, each the first found
 * in `~/.nova/`, `~/`, `/etc/nova/`, `/etc/`; and the `*.conf` files of `nova.conf.d/` and
 * `nova-novncproxy.conf.d/` found the same way (oslo's snap directories are left out). Porthole's
 * own commands look in one place only, `/etc/porthole/porthole.conf` and
 * `/etc/porthole/porthole.conf.d/`, never in a home directory: so `porthole serve` run by its
 * service user and `porthole token create` run by an administrator find the same database.
 * As in oslo.config, `--config-file` replaces the default files and `--config-dir` the default
 * directories, each on its own.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface ConfigSearch {
  /** oslo.config's project: the first name looked for. */
  readonly project: string;
  /** oslo.config's prog: the second name looked for (the executable's name). */
  readonly prog: string;
  /** Look in the home directory as well as /etc (oslo's order), or only in /etc/<project>/. */
  readonly home: boolean;
}

export const PORTHOLE_CONFIG: ConfigSearch = { project: 'porthole', prog: 'porthole', home: false };

export function novaConfig(prog: string): ConfigSearch {
  return { project: 'nova', prog, home: true };
}

/** The directories searched, in order; the first holding a name wins for that name. */
export function searchDirs(search: ConfigSearch, home = homedir()): string[] {
  if (!search.home) return [join('/etc', search.project)];
  return [join(home, `.${search.project}`), home, join('/etc', search.project), '/etc'];
}

/** The default files and directories that exist, for a command line that gives neither. */
export function defaultConfig(search: ConfigSearch, home = homedir()): { files: string[]; dirs: string[] } {
  const dirs = searchDirs(search, home);
  const names = [...new Set([search.project, search.prog])];
  const first = (suffix: string, isDir: boolean) => names
    .map((n) => dirs.map((d) => join(d, `${n}${suffix}`)).find((p) => existsSync(p) && statSync(p).isDirectory() === isDir))
    .filter((p): p is string => p !== undefined);
  return { files: first('.conf', false), dirs: first('.conf.d', true) };
}

/** In words, for `--help`: where this command looks. */
export function describeSearch(search: ConfigSearch): string {
  const names = [...new Set([search.project, search.prog])];
  if (!search.home) return `${names.map((n) => `/etc/${search.project}/${n}.conf`).join(', ')} and ${names.map((n) => `/etc/${search.project}/${n}.conf.d/*.conf`).join(', ')}, when present`;
  return `${names.map((n) => `${n}.conf`).join(' and ')} (and ${names.map((n) => `${n}.conf.d/`).join(', ')}), each the first found in ~/.${search.project}/, ~/, /etc/${search.project}/, /etc/, as oslo.config does`;
}
