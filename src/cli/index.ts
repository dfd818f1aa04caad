/**
 * @module cli
 * The `porthole` command (and the `nova-*` executables, which call it with their daemon's
 * command): arguments → config → the command that runs, with the help texts, `--version`, usage
 * errors (exit 2, naming the closest command or option) and other failures (exit 1). The command
 * table (commands.ts) holds each command's help and a loader: only the command that runs is
 * imported. Every subcommand takes `--config-file`/`--config-dir` and the config options as
 * flags, and without them reads the same default files as the daemons (config-search.ts).
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '../config/load.ts';
import { isGatewayError } from '../errors.ts';
import { UsageError, type CommandSpec } from './args.ts';
import { COMMANDS } from './commands.ts';
import { defaultConfig } from './config-search.ts';
import { commandHelp, generalHelp, optionsHelp, wrap } from './help.ts';
import { parseCommandLine, wants } from './parse.ts';
import { closestName } from '../config/suggest.ts';

const VERSION = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;

export interface Invocation {
  /** The executable's name when it is a Nova drop-in's (`nova-novncproxy`): errors and help use it. */
  readonly executable?: string;
}

export async function main(argv: string[], how: Invocation = {}): Promise<number> {
  const prefix = how.executable ?? 'porthole';
  try {
    return await dispatch(argv, how);
  } catch (err) {
    if (err instanceof HelpShown) return printed(err.text);
    if (err instanceof UsageError) {
      process.stderr.write(`${prefix}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`${prefix}: ${isGatewayError(err) ? err.message : (err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

async function dispatch(argv: string[], how: Invocation): Promise<number> {
  const first = argv[0];
  if (first === '--version' || first === 'version') return printed(`porthole ${VERSION}\n`);
  if (first === undefined || first === '--help' || first === '-h') return printed(generalHelp(VERSION, COMMANDS));
  if (first === 'help') return help(argv.slice(1));
  const name = commandName(argv);
  const command = COMMANDS[name]!;
  const program = how.executable ?? `porthole ${name}`;
  const rest = argv.slice(name.split(' ').length);
  const wanted = wants(rest);
  if (wanted === 'help') return printed(commandHelp(name, command, program));
  if (wanted === 'version') return printed(`porthole ${VERSION}\n`);
  const line = parseCommandLine(command, program, rest);
  const run = await command.load();
  const loaded = () => {
    // as oslo.config: --config-file replaces the default files, --config-dir the default directories
    const defaults = line.files.length && line.dirs.length ? { files: [], dirs: [] } : defaultConfig(command.config);
    const files = line.files.length ? line.files : defaults.files;
    const dirs = line.dirs.length ? line.dirs : defaults.dirs;
    return loadConfig({ files, dirs, flags: line.flags, env: process.env });
  };
  return run({ argv, positional: line.positional, options: line.options, json: line.json, program }, loaded);
}

/** The command `argv` names (one or two words), or a usage error naming the closest. */
function commandName(argv: readonly string[]): string {
  const [a = '', b = ''] = argv;
  if (COMMANDS[`${a} ${b}`]) return `${a} ${b}`;
  if (COMMANDS[a]) return a;
  const group = groupOf(a);
  if (group.length) {
    if (wants(argv.slice(1)) === 'help') throw new HelpShown(group.map((g) => commandHelp(g, COMMANDS[g]!, `porthole ${g}`)).join('\n'));
    const guess = b && !b.startsWith('-') ? closestName(`${a} ${b}`, group) : undefined;
    const said = b && !b.startsWith('-') ? `unknown command "${a} ${b}"${guess ? `; did you mean "${guess}"?` : ''}` : `"${a}" needs one more word`;
    throw new UsageError(`${said}\n${group.map((g, i) => wrap(COMMANDS[g]!.usage, 7, i ? '       ' : 'usage:')).join('\n')}`);
  }
  const guess = closestName(a, [...Object.keys(COMMANDS), ...new Set(Object.keys(COMMANDS).map((c) => c.split(' ')[0]!))]);
  throw new UsageError(`unknown command "${a}"${guess ? `; did you mean "${guess}"?` : ''} (porthole --help lists the commands)`);
}

function groupOf(word: string): string[] {
  return Object.keys(COMMANDS).filter((c) => c.startsWith(`${word} `));
}

/** `porthole help [options | COMMAND]` */
function help(topic: string[]): number {
  if (topic.length === 0) return printed(generalHelp(VERSION, COMMANDS));
  if (topic[0] === 'options') return printed(optionsHelp());
  const name = COMMANDS[topic.join(' ')] ? topic.join(' ') : topic[0]!;
  const command: CommandSpec | undefined = COMMANDS[name];
  if (command) return printed(commandHelp(name, command, `porthole ${name}`));
  commandName([...topic, '--help']); // a group's help (thrown as HelpShown), or a usage error
  return 0;
}

/** A group's help (`porthole token --help`), found while looking for the command. */
class HelpShown extends Error {
  constructor(readonly text: string) {
    super('help');
  }
}

function printed(text: string): number {
  process.stdout.write(text);
  return 0;
}
