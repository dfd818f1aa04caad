/**
 * @module config/load
 * Builds the one typed `Config` from, in rising precedence: the defaults of `options.ts`, INI
 * files (`--config-file`, repeatable, then the `*.conf` files of each `--config-dir` in name
 * order, as oslo.config does), `PORTHOLE_<SECTION>_<OPTION>` environment variables (`[DEFAULT]`
 * options as `PORTHOLE_<OPTION>`), and command-line flags in Nova's form (`--vnc-novncproxy_port
 * 6080`, `--ssl_only`, `--vnc-noenabled`). A bad value stops the start with where it came from,
 * the section, the option and what was expected.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError } from '../errors.ts';
import { parseIni, IniSyntaxError } from './ini.ts';
import { OPTIONS, optionSpec, sections, optionNames, type Config, type OptionSpec, type SectionName } from './options.ts';

export interface RawSetting {
  readonly section: string;
  readonly name: string;
  readonly raw: string;
  /** e.g. `/etc/nova/nova.conf:12`, `flag --vnc-novncproxy_port`, `environment PORTHOLE_...` */
  readonly source: string;
}

export interface LoadedConfig {
  readonly config: Config;
  /** Where each explicitly set option came from, keyed `section.name`; defaults are absent. */
  readonly provenance: ReadonlyMap<string, string>;
  readonly files: readonly string[];
}

export interface ConfigInput {
  files?: readonly string[];
  dirs?: readonly string[];
  flags?: readonly RawSetting[];
  env?: NodeJS.ProcessEnv;
}

export function loadConfig(input: ConfigInput = {}): LoadedConfig {
  const settings: RawSetting[] = [];
  const files = [...(input.files ?? [])];
  for (const dir of input.dirs ?? []) files.push(...confFilesIn(dir));
  for (const file of files) settings.push(...readConfigFile(file));
  settings.push(...readEnvironment(input.env ?? {}));
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
  for (const s of settings) {
    const spec = optionSpec(s.section, s.name);
    if (!spec) {
      // nova.conf holds hundreds of options for other services: only our own section is strict
      if (s.section === 'porthole') {
        throw invalid(s, `unknown option; [porthole] knows ${optionNames('porthole').join(', ')}`);
      }
      continue;
    }
    values[s.section]![s.name] = coerce(s, spec);
    provenance.set(`${s.section}.${s.name}`, s.source);
  }
  return { config: values as unknown as Config, provenance, files };
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

function readEnvironment(env: NodeJS.ProcessEnv): RawSetting[] {
  const out: RawSetting[] = [];
  for (const section of sections()) {
    for (const name of optionNames(section)) {
      const key = envName(section, name);
      const raw = env[key];
      if (raw !== undefined) out.push({ section, name, raw, source: `environment ${key}` });
    }
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

function readConfigFile(file: string): RawSetting[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', `cannot read config file ${file}: ${(err as Error).message}`);
  }
  let doc;
  try {
    doc = parseIni(text);
  } catch (err) {
    if (err instanceof IniSyntaxError) throw new GatewayError('CONFIG_INVALID', `${file}:${err.line}: ${err.message}`);
    throw err;
  }
  const out: RawSetting[] = [];
  for (const [section, options] of doc) {
    for (const [name, entries] of options) {
      const spec = optionSpec(section, name);
      if (spec?.kind === 'list') {
        // a repeated list option accumulates, as oslo's MultiStrOpt; a single one is comma-split
        const last = entries[entries.length - 1]!;
        out.push({ section, name, raw: entries.map((e) => e.value).join(','), source: `${file}:${last.line}` });
      } else {
        for (const e of entries) out.push({ section, name, raw: e.value, source: `${file}:${e.line}` });
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
