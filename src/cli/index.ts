/**
 * @module cli
 * The `porthole` command: arguments → config → the command that runs, with the help text, usage
 * errors (exit 2) and other failures (exit 1). Each command group lives in its own module; none
 * holds logic of its own beyond parsing and printing. Every subcommand takes
 * `--config-file`/`--config-dir` and Nova's option flags, so scripts act on the same store as the
 * daemons.
 */
import { existsSync, readFileSync } from 'node:fs';
import { configFlag, loadConfig, type RawSetting } from '../config/load.ts';
import { OPTIONS, optionSpec, sections, optionNames } from '../config/options.ts';
import { isGatewayError } from '../errors.ts';
import { apiTokenCreateCommand } from './api-tokens.ts';
import { UsageError, type CommandSpec, type ParsedArgs } from './args.ts';
import { apiCommand, novncproxyCommand, serveCommand } from './daemons.ts';
import { dbMigrateCommand } from './db.ts';
import { serverCommands } from './servers.ts';
import { sessionCommands } from './sessions.ts';
import { tokenCommands } from './tokens.ts';

const VERSION = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;

const COMMON = 'Common options: --config-file FILE (repeatable), --config-dir DIR, --json, --help, and any option as --SECTION-OPTION VALUE (e.g. --vnc-novncproxy_port 6080, --database-connection sqlite:////var/lib/porthole/porthole.db); see `porthole help options`.';

/** In the order `porthole --help` lists them. */
const COMMANDS: Record<string, CommandSpec> = {
  serve: serveCommand,
  api: apiCommand,
  'api-token create': apiTokenCreateCommand,
  novncproxy: novncproxyCommand,
  ...tokenCommands,
  ...serverCommands,
  ...sessionCommands,
  'db migrate': dbMigrateCommand,
};

export async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`porthole: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`porthole: ${isGatewayError(err) ? err.message : (err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

async function dispatch(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === 'version') {
    process.stdout.write(`porthole ${VERSION}\n`);
    return 0;
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(argv[1] === 'options' ? optionsHelp() : generalHelp());
    return 0;
  }
  const name = COMMANDS[`${argv[0]} ${argv[1]}`] ? `${argv[0]} ${argv[1]}` : argv[0]!;
  const command = COMMANDS[name];
  if (!command) {
    const group = Object.keys(COMMANDS).filter((c) => c.startsWith(`${argv[0]} `));
    if (group.length && (argv[1] === '--help' || argv[1] === '-h')) {
      process.stdout.write(`${group.map((g) => `usage: ${COMMANDS[g]!.usage}\n       ${COMMANDS[g]!.summary}`).join('\n\n')}\n\n${COMMON}\n`);
      return 0;
    }
    throw new UsageError(group.length ? `usage: ${group.map((g) => COMMANDS[g]!.usage).join('\n       ')}` : `unknown command "${argv[0]}"; try porthole --help`);
  }
  const rest = argv.slice(name.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${command.usage}\n\n${command.summary}\n\n${COMMON}\n`);
    return 0;
  }
  const { args, files, dirs, flags } = parseArgs(argv, rest, command);
  const loaded = () => loadConfig({ files: files.length || dirs.length ? files : (command.defaultConfigFiles ?? []).filter((f) => existsSync(f)), dirs, flags, env: process.env });
  return command.run(args, loaded);
}

function parseArgs(whole: readonly string[], argv: string[], command: CommandSpec): { args: ParsedArgs; files: string[]; dirs: string[]; flags: RawSetting[] } {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  const files: string[] = [];
  const dirs: string[] = [];
  const flags: RawSetting[] = [];
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') || arg === '--') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`--${name} needs a value`);
      i++;
      return next;
    };
    if (name === 'json') json = true;
    else if (name === 'config-file') files.push(value());
    else if (name === 'config-dir') dirs.push(value());
    else if (name in command.options) options.set(name, command.options[name] ? value() : true);
    else {
      const opt = configFlag(name);
      if (!opt) throw new UsageError(`unknown option --${name}; try porthole ${Object.keys(COMMANDS).find((k) => COMMANDS[k] === command)} --help`);
      const kind = optionSpec(opt.section, opt.name)!.kind;
      const raw = kind === 'bool' && inline === undefined ? String(!opt.negated) : value();
      flags.push({ section: opt.section, name: opt.name, raw, source: `flag --${name}` });
    }
  }
  if (options.get('demo') === true) flags.push({ section: 'porthole', name: 'demo', raw: 'true', source: 'flag --demo' });
  return { args: { argv: whole, positional, options, json }, files, dirs, flags };
}

function generalHelp(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(15)} ${c.summary}`);
  return `porthole ${VERSION}: remote-console gateway for virtual machines\n\nusage: porthole COMMAND [options]\n\n${lines.join('\n')}\n\n${COMMON}\n`;
}

function optionsHelp(): string {
  const out: string[] = ['Options (INI section / name; flag --SECTION-NAME, [DEFAULT] as --NAME; environment PORTHOLE_SECTION_NAME):', ''];
  for (const section of sections()) {
    out.push(`[${section}]`);
    for (const name of optionNames(section)) {
      const spec = (OPTIONS[section] as Record<string, { default: unknown; help: string; kind: string }>)[name]!;
      out.push(`  ${name} (${spec.kind}, default ${JSON.stringify(spec.default)})`, `      ${spec.help}`);
    }
    out.push('');
  }
  return out.join('\n');
}
