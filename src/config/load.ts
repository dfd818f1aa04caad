/**
 * @module config/load
 * Builds the one typed `Config` from, in rising precedence: the defaults of `options.ts`, INI
 * files (`--config-file`, repeatable, then the `*.conf` files of each `--config-dir` in name
 * order, as oslo.config does), `PORTHOLE_<SECTION>_<OPTION>` environment variables (`[DEFAULT]`
 * options as `PORTHOLE_<OPTION>`), and command-line flags in Nova's form (`--vnc-novncproxy_port
 * 6080`, `--ssl_only`, `--vnc-noenabled`). A bad value stops the start with where it came from,
 * the section, the option and what was expected.
 *
 * A name that is neither Porthole's nor Nova's in a section Porthole reads, or a section unknown
 * to both (`known-names.ts`), is returned as a warning naming the closest known name, for the
 * caller to show (a daemon logs it, a short command prints it on stderr); `[porthole]
 * strict_config` makes them one fatal error, and an unknown `[porthole]` option is fatal always.
 * Nova's deprecated names of Porthole's options are read as those options, as Nova reads them.
 * With no `[database] connection` the store is the state directory's `porthole.db`
 * (`state-dir.ts`); a relative `sqlite:///` path is relative to the config file naming it.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError } from '../errors.ts';
import { parseIni, IniSyntaxError } from './ini.ts';
import { isPortholeSection, novaAlias, unknownOption, unknownSection } from './known-names.ts';
import { absoluteSqlite, configFileDirectory, currentStateContext, defaultConnection, type StateContext } from './state-dir.ts';
import { OPTIONS, optionSpec, sections, optionNames, type Config, type OptionSpec, type SectionName } from './options.ts';

export interface RawSetting {
  readonly section: string;
  readonly name: string;
  readonly raw: string;
  /** e.g. `/etc/nova/nova.conf:12`, `flag --vnc-novncproxy_port`, `environment PORTHOLE_...` */
  readonly source: string;
  /** The config file it was read from: its relative paths are relative to that file's directory. */
  readonly file?: string;
}

export interface LoadedConfig {
  readonly config: Config;
  /** Where each explicitly set option came from, keyed `section.name`; defaults are absent. */
  readonly provenance: ReadonlyMap<string, string>;
  readonly files: readonly string[];
  /**
   * One line each (`<file>:<line>: [vnc] novncproxy_prot is not an option of [vnc]; did you mean
   * novncproxy_port?`): unknown names, deprecated ones. Not printed here: the daemons log them,
   * the short commands write them to stderr.
   */
  readonly warnings: readonly string[];
}

export interface ConfigInput {
  files?: readonly string[];
  dirs?: readonly string[];
  flags?: readonly RawSetting[];
  env?: NodeJS.ProcessEnv;
  /** Who runs, for the default database's directory; tests give their own. */
  state?: StateContext;
  /** What relative `sqlite:///` paths of flags and the environment are relative to (process.cwd()). */
  cwd?: string;
}

/** Options whose relative `sqlite:///` paths are made absolute at load. */
const CONNECTIONS = new Set(['database.connection', 'porthole.connection']);

export function loadConfig(input: ConfigInput = {}): LoadedConfig {
  const settings: RawSetting[] = [];
  const warnings: string[] = [];
  const files = [...(input.files ?? [])];
  for (const dir of input.dirs ?? []) files.push(...confFilesIn(dir));
  for (const file of files) settings.push(...readConfigFile(file, warnings));
  settings.push(...readEnvironment(input.env ?? {}, warnings));
  settings.push(...(input.flags ?? []));

  const values: Record<string, Record<string, unknown>> = {};
  for (const section of sections()) {
    values[section] = {};
    for (const name of optionNames(section)) {
      const spec = optionSpec(section, name)!;
      values[section][name] = spec.default;
    }
  }
  const provenance = new Map<string, string>();
  /** Options set through a deprecated name only, which their current name may still replace. */
  const viaAlias = new Set<string>();
  const deprecations: string[] = [];
  for (const setting of settings) {
    let s = setting;
    let spec = optionSpec(s.section, s.name);
    const alias = spec ? undefined : novaAlias(s.section, s.name);
    if (alias) {
      deprecations.push(`${s.source}: [${s.section}] ${s.name} is a deprecated name of [${alias.section}] ${alias.name}, read as that`);
      // the current name wins over the deprecated one, as in oslo.config, whatever their order
      const current = `${alias.section}.${alias.name}`;
      if (provenance.has(current) && !viaAlias.has(current)) continue;
      viaAlias.add(current);
      s = { ...s, ...alias };
      spec = optionSpec(s.section, s.name);
    }
    if (!spec) {
      // the others were warned about as their file was read; [porthole] is Porthole's alone: a
      // name it does not know there is always a mistake
      const problem = s.section === 'porthole' ? unknownOption(s.section, s.name) : undefined;
      if (problem) throw new GatewayError('CONFIG_INVALID', `${s.source}: ${problem}`);
      continue;
    }
    let value = coerce(s, spec);
    const key = `${s.section}.${s.name}`;
    if (CONNECTIONS.has(key) && typeof value === 'string') {
      value = absoluteSqlite(value, s.file ? configFileDirectory(s.file) : (input.cwd ?? process.cwd()));
    }
    values[s.section]![s.name] = value;
    provenance.set(key, s.source);
    if (!alias) viaAlias.delete(key);
  }
  const database = values['database']!;
  if (!database['connection']) database['connection'] = defaultConnection(input.state ?? currentStateContext(input.env ?? {}));

  const config = values as unknown as Config;
  if (config.porthole.strict_config && warnings.length > 0) {
    throw new GatewayError('CONFIG_INVALID', `${warnings.join('\n')}\n([porthole] strict_config = true makes these fatal)`);
  }
  return { config, provenance, files, warnings: [...warnings, ...deprecations] };
}

/** Maps a command-line flag name (without `--`) to its option, or undefined if it is not one. */
export function configFlag(flag: string): { section: SectionName; name: string; negated: boolean } | undefined {
  for (const section of sections()) {
    const prefix = section === 'DEFAULT' ? '' : `${section}-`;
    if (!flag.startsWith(prefix)) continue;
    let name = flag.slice(prefix.length).replaceAll('-', '_');
    let negated = false;
    if (!(name in OPTIONS[section]) && name.startsWith('no') && name.slice(2) in OPTIONS[section]) {
      name = name.slice(2);
      negated = true;
    }
    if (!(name in OPTIONS[section])) continue;
    if (negated && OPTIONS[section][name as keyof (typeof OPTIONS)[typeof section]]['kind'] !== 'bool') continue;
    return { section, name, negated };
  }
  return undefined;
}

export function envName(section: SectionName, name: string): string {
  return section === 'DEFAULT' ? `PORTHOLE_${name.toUpperCase()}` : `PORTHOLE_${section.toUpperCase()}_${name.toUpperCase()}`;
}

function readEnvironment(env: NodeJS.ProcessEnv, warnings: string[]): RawSetting[] {
  const out: RawSetting[] = [];
  const known = new Set<string>();
  for (const section of sections()) {
    for (const name of optionNames(section)) {
      const key = envName(section, name);
      known.add(key);
      const raw = env[key];
      if (raw !== undefined) out.push({ section, name, raw, source: `environment ${key}` });
    }
  }
  // PORTHOLE_<SECTION>_<NAME> with a section of ours but no such option: a typo. A bare
  // PORTHOLE_<NAME> cannot be told from the variables of other tools, so it is not looked at
  for (const key of Object.keys(env).sort()) {
    if (!key.startsWith('PORTHOLE_') || known.has(key)) continue;
    const section = sections()
      .filter((s) => s !== 'DEFAULT' && key.startsWith(`PORTHOLE_${s.toUpperCase()}_`))
      .sort((a, b) => b.length - a.length)[0];
    if (!section) continue;
    const name = key.slice(`PORTHOLE_${section}_`.length).toLowerCase();
    const problem = unknownOption(section, name);
    if (problem) warnings.push(`environment ${key}: ${problem}`);
  }
  return out;
}

function confFilesIn(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', `cannot read --config-dir ${dir}: ${(err as Error).message}`);
  }
  return names.filter((n) => n.endsWith('.conf')).sort().map((n) => join(dir, n)).filter((p) => statSync(p).isFile());
}

function readConfigFile(file: string, warnings: string[]): RawSetting[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', `cannot read config file ${file}: ${(err as Error).message}`);
  }
  let doc;
  const headers = new Map<string, number>();
  try {
    doc = parseIni(text, headers);
  } catch (err) {
    if (err instanceof IniSyntaxError) throw new GatewayError('CONFIG_INVALID', `${file}:${err.line}: ${err.message}`);
    throw err;
  }
  const out: RawSetting[] = [];
  for (const [section, options] of doc) {
    const problem = unknownSection(section);
    if (problem) {
      warnings.push(`${file}:${headers.get(section) ?? 1}: ${problem}`);
      continue;
    }
    if (!isPortholeSection(section) && ![...options.keys()].some((name) => novaAlias(section, name))) continue;
    for (const [name, entries] of options) {
      const spec = optionSpec(section, name);
      const problem = spec || section === 'porthole' || novaAlias(section, name) ? undefined : unknownOption(section, name);
      if (problem) warnings.push(`${file}:${entries[0]!.line}: ${problem}`);
      if (spec?.kind === 'list') {
        // a repeated list option accumulates, as oslo's MultiStrOpt; a single one is comma-split
        const last = entries[entries.length - 1]!;
        out.push({ section, name, raw: entries.map((e) => e.value).join(','), source: `${file}:${last.line}`, file });
      } else {
        for (const e of entries) out.push({ section, name, raw: e.value, source: `${file}:${e.line}`, file });
      }
    }
  }
  return out;
}

function invalid(s: RawSetting, expected: string): GatewayError {
  return new GatewayError('CONFIG_INVALID', `${s.source}: [${s.section}] ${s.name} = ${JSON.stringify(s.raw)}: ${expected}`);
}

function coerce(s: RawSetting, spec: OptionSpec<unknown>): unknown {
  const raw = s.raw.trim();
  switch (spec.kind) {
    case 'string':
      return raw === '' && spec.default === null ? null : raw;
    case 'bool': {
      const v = raw.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      throw invalid(s, 'expected a boolean (true or false)');
    }
    case 'int':
    case 'port': {
      if (!/^[+-]?\d+$/.test(raw)) throw invalid(s, spec.kind === 'port' ? 'expected a port number (0-65535)' : 'expected an integer');
      return inRange(s, spec, Number(raw));
    }
    case 'float': {
      const n = Number(raw);
      if (raw === '' || !Number.isFinite(n)) throw invalid(s, 'expected a number');
      return inRange(s, spec, n);
    }
    case 'list': {
      const items = raw.split(',').map((x) => x.trim()).filter((x) => x !== '');
      const bad = spec.choices ? items.find((x) => !spec.choices!.includes(x)) : undefined;
      if (bad !== undefined) throw invalid(s, `"${bad}" is not one of ${spec.choices!.join(', ')}`);
      return items;
    }
    case 'url': {
      let u: URL;
      try {
        u = new URL(raw);
      } catch {
        throw invalid(s, 'expected an absolute URL such as http://host:6080/vnc_auto.html');
      }
      if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) throw invalid(s, 'expected an http, https, ws or wss URL');
      return raw;
    }
    case 'choice':
      if (!spec.choices!.includes(raw)) throw invalid(s, `expected one of ${spec.choices!.join(', ')}`);
      return raw;
  }
}

function inRange(s: RawSetting, spec: OptionSpec<unknown>, n: number): number {
  if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
    const range = spec.max === undefined ? `at least ${spec.min}` : spec.min === undefined ? `at most ${spec.max}` : `between ${spec.min} and ${spec.max}`;
    throw invalid(s, `expected a ${spec.kind === 'port' ? 'port number' : 'value'} ${range}`);
  }
  return n;
}
