/**
 * @module cli/args
 * What every command module shares: the command's shape, the parsed command line, the usage
 * error (exit code 2), and the helpers that read options and print a result as text or `--json`.
 */
import type { LoadedConfig } from '../config/load.ts';

export interface CommandSpec {
  readonly usage: string;
  readonly summary: string;
  /** command options: name → takes a value */
  readonly options: Readonly<Record<string, boolean>>;
  readonly defaultConfigFiles?: readonly string[];
  run(args: ParsedArgs, loaded: () => LoadedConfig): Promise<number>;
}

export interface ParsedArgs {
  /** The whole command line after `porthole` (the workers of `[porthole] workers` are started with it). */
  readonly argv: readonly string[];
  readonly positional: string[];
  readonly options: Map<string, string | true>;
  readonly json: boolean;
}

export class UsageError extends Error {}

/** Read when no --config-file is given, so scripts act on the same store as `porthole serve`. */
export const DAEMON_CONFIG = ['/etc/porthole/porthole.conf'];

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
