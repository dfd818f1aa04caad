/**
 * @module cli/args
 * What every command module shares: the command's shape (its help and a loader of the code that
 * runs it, so `porthole --help` or `token create` load no other command's modules), the parsed
 * command line, the usage error (exit code 2), and the helpers that read options and print a
 * result as text or `--json`.
 */
import type { LoadedConfig } from '../config/load.ts';
import type { ConfigSearch } from './config-search.ts';
import type { NovaDaemon } from './nova-flags.ts';

/** What runs a command once its command line is parsed; `loaded` reads the configuration. */
export type CommandRun = (args: ParsedArgs, loaded: () => LoadedConfig) => Promise<number>;

/** One option of a command's own (not a config option): its value's name, if it takes one. */
export interface CommandOption {
  readonly value?: string;
  readonly help: string;
  /** A one-letter form (`o` for `-o FILE`), for the options whose short form everyone types. */
  readonly short?: string;
}

export interface CommandSpec {
  readonly usage: string;
  readonly summary: string;
  readonly options: Readonly<Record<string, CommandOption>>;
  /** Where the configuration is looked for when no `--config-file`/`--config-dir` is given. */
  readonly config: ConfigSearch;
  /** The Nova daemon whose command line this command takes, if it is a drop-in. */
  readonly nova?: NovaDaemon;
  /** Imports the command's module only when it runs. */
  load(): Promise<CommandRun>;
}

export interface ParsedArgs {
  /** The whole command line after `porthole` (the workers of `[porthole] workers` are started with it). */
  readonly argv: readonly string[];
  readonly positional: string[];
  readonly options: Map<string, string | true>;
  readonly json: boolean;
  /** How the person called it: `porthole novncproxy`, `nova-novncproxy`. */
  readonly program: string;
}

export class UsageError extends Error {}

export function print(a: ParsedArgs, json: unknown, text: string): void {
  process.stdout.write(a.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
}

export function optionString(a: ParsedArgs, name: string): string | undefined {
  const v = a.options.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function requireOption(a: ParsedArgs, name: string): string {
  const v = optionString(a, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

export function onePositional(a: ParsedArgs, what: string): string {
  if (a.positional.length !== 1) throw new UsageError(`expected exactly one ${what}`);
  return a.positional[0]!;
}

export function parsePort(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new UsageError(`${what} ${text}: expected a port number 1-65535`);
  return n;
}
