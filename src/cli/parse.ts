/**
 * @module cli/parse
 * One command's command line → its options, positional arguments, config files and config flags.
 * A long option is, in this order: `--config-file`/`--config-dir` (repeatable, as oslo.config);
 * one of the command's own; for a Nova drop-in, one of its Nova daemon's names (nova-flags.ts:
 * deprecated names, `--no` forms, argparse's unambiguous prefixes); or any config option in
 * Porthole's flag form (`--SECTION-OPTION`, `[DEFAULT]` as `--OPTION`, `--noOPTION` for a
 * boolean). Anything else is a usage error that names the closest known option. Each flag becomes
 * a setting with its source (`flag --log-file`), which config/load.ts applies over the files.
 */
import { configFlag, type RawSetting } from '../config/load.ts';
import { optionNames, optionSpec, sections } from '../config/options.ts';
import { UsageError, type CommandSpec } from './args.ts';
import { expandAbbreviation, novaNames, type NovaFlag } from './nova-flags.ts';
import { closestName } from '../config/suggest.ts';

export interface CommandLine {
  readonly positional: string[];
  readonly options: Map<string, string | true>;
  readonly json: boolean;
  readonly files: string[];
  readonly dirs: string[];
  readonly flags: RawSetting[];
}

/** oslo.log's deprecated names, accepted by every command as oslo.config accepts them. */
const DEPRECATED: Readonly<Record<string, string>> = { logfile: 'log_file', logdir: 'log_dir', 'log-config': 'log_config_append', log_config: 'log_config_append' };

/** `-h`/`--help` or `--version` anywhere wins, as with argparse, before anything is checked. */
export function wants(argv: readonly string[]): 'help' | 'version' | undefined {
  for (const arg of argv) {
    if (arg === '--') return undefined;
    if (arg === '-h' || arg === '--help') return 'help';
    if (arg === '--version') return 'version';
  }
  return undefined;
}

/** `program` is how the command was called (`porthole token create`, `nova-novncproxy`), for errors. */
export function parseCommandLine(command: CommandSpec, program: string, argv: readonly string[]): CommandLine {
  const line: CommandLine = { positional: [], options: new Map(), json: false, files: [], dirs: [], flags: [] };
  const nova = command.nova ? novaNames(command.nova) : undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      line.positional.push(...argv.slice(i + 1));
      break;
    }
    if (nova && /^-d+$/.test(arg)) {
      // argparse takes -d, and a repeated -dd, as --debug
      line.flags.push({ section: 'DEFAULT', name: 'debug', raw: 'true', source: 'flag -d' });
      continue;
    }
    if (!arg.startsWith('--')) {
      const short = arg.length === 2 && arg.startsWith('-') ? Object.entries(command.options).find(([, o]) => o.short === arg[1]) : undefined;
      if (short) {
        const [name, spec] = short;
        // its value may be `-` (standard output), which a long option's value reading would also take
        if (spec.value && argv[i + 1] === undefined) throw new UsageError(`${arg} needs a value`);
        line.options.set(name, spec.value ? argv[++i]! : true);
        continue;
      }
      if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) throw unknownOption(command, program, arg.replace(/^-+/, ''), arg);
      line.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const given = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (name: string): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UsageError(`--${name} needs a value`);
      i++;
      return next;
    };
    let name = given;
    if (nova && !nova.has(name) && !(name in command.options) && !configFlag(name) && !(name in DEPRECATED)) {
      const expanded = expandAbbreviation(nova.keys(), name);
      if (expanded.ambiguous) throw new UsageError(`ambiguous option --${name}: could be ${expanded.ambiguous.map((n) => `--${n}`).join(', ')}`);
      if (expanded.name) name = expanded.name;
    }
    if (name === 'config-file') line.files.push(value(name));
    else if (name === 'config-dir') line.dirs.push(value(name));
    else if (name === 'json' && 'json' in command.options) json = true;
    else if (name in command.options) line.options.set(name, command.options[name]!.value ? value(name) : true);
    else if (nova?.get(name)?.flag) {
      const { flag, negated } = nova.get(name)!;
      setting(line, flag!, negated, flag!.value === undefined ? inline : value(name), name);
    } else if (name in DEPRECATED) {
      line.flags.push({ section: 'DEFAULT', name: DEPRECATED[name]!, raw: value(name), source: `flag --${name}` });
    } else {
      const opt = configFlag(name);
      if (!opt) throw unknownOption(command, program, given, `--${given}`);
      const kind = optionSpec(opt.section, opt.name)!.kind;
      const raw = kind === 'bool' && inline === undefined ? String(!opt.negated) : value(name);
      line.flags.push({ section: opt.section, name: opt.name, raw, source: `flag --${name}` });
    }
  }
  // as argparse: a Nova daemon takes no positional arguments
  if (command.nova && line.positional.length) throw new UsageError(`unexpected argument ${line.positional[0]} (${program} --help lists the options)`);
  if (line.options.get('demo') === true) line.flags.push({ section: 'porthole', name: 'demo', raw: 'true', source: 'flag --demo' });
  return { ...line, json };
}

/** A Nova flag: a config setting, or (an option of a console kind not in this version) kept as is. */
function setting(line: CommandLine, flag: NovaFlag, negated: boolean, raw: string | undefined, used: string): void {
  // a boolean's inline value (`--debug=false`, Porthole's leniency) is inverted by its --no form
  const value = flag.value !== undefined ? raw! : raw === undefined ? String(!negated) : negated ? String(!/^(true|1|yes|on)$/i.test(raw)) : raw;
  if (optionSpec(flag.section, flag.name)) line.flags.push({ section: flag.section, name: flag.name, raw: value, source: `flag --${used}` });
  else line.options.set(`${flag.section}-${flag.name}`, value);
}

/** Every long option a command takes, for "did you mean". */
export function knownOptions(command: CommandSpec): string[] {
  const names = new Set<string>(['config-file', 'config-dir', 'help', 'version', ...Object.keys(command.options)]);
  if (command.nova) for (const n of novaNames(command.nova).keys()) names.add(n);
  for (const section of sections()) {
    for (const option of optionNames(section)) names.add(section === 'DEFAULT' ? option : `${section}-${option}`);
  }
  return [...names];
}

function unknownOption(command: CommandSpec, program: string, given: string, shown: string): UsageError {
  const guess = closestName(given, knownOptions(command));
  return new UsageError(`unknown option ${shown}${guess ? `; did you mean --${guess}?` : ''} (${program} --help lists the options)`);
}
