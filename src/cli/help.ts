/**
 * @module cli/help
 * The help texts: `porthole --help` (the commands), `porthole COMMAND --help` (its usage, its
 * own options with one line each, a Nova drop-in's daemon options, where the configuration is
 * read from) and `porthole help options` (every config option). Every line is at most
 * HELP_WIDTH characters: long texts are wrapped at spaces, with the indentation of their column.
 */
import { OPTIONS, optionNames, sections, type OptionSpec } from '../config/options.ts';
import type { CommandSpec } from './args.ts';
import { describeSearch } from './config-search.ts';
import { novaFlagGroups, type NovaFlag } from './nova-flags.ts';

export const HELP_WIDTH = 100;
/** Where the help of an option starts; a longer option name puts its help on the next line. */
const HELP_COLUMN = 32;

/** `text` in lines of at most `width`, the first after `first`, the others after `indent` spaces. */
export function wrap(text: string, indent: number, first = ' '.repeat(indent), width = HELP_WIDTH): string {
  const lines: string[] = [];
  let line = first;
  let empty = first === '' || first.endsWith(' ');
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line);
      line = ' '.repeat(indent);
      empty = true;
    }
    line += empty ? word : ` ${word}`;
    empty = false;
  }
  lines.push(line);
  return lines.join('\n');
}

function row(left: string, help: string): string {
  const head = `  ${left}`;
  if (head.length < HELP_COLUMN - 1) return wrap(help, HELP_COLUMN, head.padEnd(HELP_COLUMN));
  return `${head}\n${wrap(help, HELP_COLUMN)}`;
}

export function generalHelp(version: string, commands: Readonly<Record<string, CommandSpec>>): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length)) + 4;
  const lines = Object.entries(commands).map(([name, c]) => wrap(firstSentence(c.summary), width, `  ${name}`.padEnd(width)));
  return [
    `porthole ${version}: remote-console gateway for virtual machines`,
    '',
    'usage: porthole COMMAND [options]',
    '       porthole COMMAND --help     (or porthole help COMMAND): the command\'s usage and options',
    '       porthole help options       every configuration option',
    '       porthole --version',
    '',
    'Commands:',
    ...lines,
    '',
    wrap('The Nova drop-ins are also installed as the executables nova-novncproxy, nova-serialproxy and nova-spicehtml5proxy, taking the same options as Nova\'s.', 0),
    '',
    configHelp(commands.serve!),
    '',
  ].join('\n');
}

/** `usage`, with `porthole novncproxy` shown as the executable's name when called by it. */
export function commandHelp(name: string, command: CommandSpec, program: string): string {
  const usage = command.usage.replaceAll(`porthole ${name}`, program);
  const out = [wrap(usage, 7, 'usage:'), '', wrap(command.summary, 0), ''];
  const own = Object.entries(command.options);
  if (own.length) {
    out.push('Options:');
    for (const [option, spec] of own) out.push(row(`${spec.short ? `-${spec.short}, ` : ''}--${option}${spec.value ? ` ${spec.value}` : ''}`, spec.help));
    out.push('');
  }
  if (command.nova) {
    out.push(wrap(`Options of nova-${command.nova}, all accepted (those Porthole cannot honour give one warning at start):`, 2, ''));
    out.push(row('-h, --help', 'Show this help and exit.'));
    out.push(row('--version', 'Print the version and exit.'));
    out.push(row('--config-file PATH', 'A config file (repeatable; later files win).'));
    out.push(row('--config-dir DIR', 'The *.conf files of a directory, in name order, after the files.'));
    for (const group of novaFlagGroups(command.nova)) {
      out.push('', `${group.title}:`);
      for (const flag of group.flags) out.push(row(flagForms(flag), flag.help));
    }
    out.push('');
  }
  out.push(configHelp(command), '');
  return out.join('\n');
}

function flagForms(flag: NovaFlag): string {
  const value = flag.value ? ` ${flag.value}` : '';
  const names = [flag.flag, ...(flag.aliases ?? [])].map((n) => `--${n}${value}`);
  if (flag.short) names.push(`-${flag.short}`);
  if (flag.value === undefined) names.push(`--no${flag.flag}`);
  return names.join(', ');
}

function configHelp(command: CommandSpec): string {
  return [
    wrap(`Configuration: ${describeSearch(command.config)}. --config-file FILE (repeatable) replaces the default files, --config-dir DIR the default directories.`, 2, ''),
    wrap('Every config option is also a flag, --SECTION-OPTION VALUE ([DEFAULT] options as --OPTION), e.g. --vnc-novncproxy_port 6080 or --database-connection postgresql://u:pw@db/nova; and an environment variable PORTHOLE_SECTION_OPTION. `porthole help options` lists them.', 2, '  '),
  ].join('\n');
}

export function optionsHelp(): string {
  const out: string[] = [
    wrap('Configuration options, by INI section. Each is also a flag --SECTION-NAME VALUE ([DEFAULT] ones as --NAME; --noNAME for a false boolean) and an environment variable PORTHOLE_SECTION_NAME (PORTHOLE_NAME for [DEFAULT]). Flags win over the environment, which wins over the files.', 0),
    '',
  ];
  for (const section of sections()) {
    out.push(`[${section}]`);
    for (const name of optionNames(section)) {
      const spec = (OPTIONS[section] as Record<string, OptionSpec<unknown>>)[name]!;
      out.push(wrap(`${name} (${spec.kind}, default ${JSON.stringify(spec.default)})`, 6, '  '), wrap(spec.help, 6));
    }
    out.push('');
  }
  return out.join('\n');
}

function firstSentence(text: string): string {
  const m = /^(.*?\.)(\s|$)/.exec(text);
  return m ? m[1]! : text;
}
