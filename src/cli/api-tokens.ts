/**
 * @module cli/api-tokens
 * `porthole api-token create`: a static API token for `[api] auth_strategy = static`, printed
 * once; only its hash line is written to the tokens file.
 */
import { appendFileSync } from 'node:fs';
import type { LoadedConfig } from '../config/load.ts';
import { UsageError, optionString, print, requireOption, type CommandRun, type ParsedArgs } from './args.ts';

/** The code of `api-token create`; its help is in commands.ts. */
export const apiTokenCreateCommand: CommandRun = async (a, l) => apiTokenCreate(a, l());

async function apiTokenCreate(a: ParsedArgs, loaded: LoadedConfig): Promise<number> {
  const { newStaticToken } = await import('../api/auth.ts');
  const user = requireOption(a, 'user');
  const project = requireOption(a, 'project');
  const roles = (optionString(a, 'roles') ?? 'member').split(',').map((r) => r.trim()).filter(Boolean);
  if ([user, project, ...roles].some((x) => /\s/.test(x))) throw new UsageError('--user, --project and --roles may not contain spaces');
  const file = optionString(a, 'file') ?? loaded.config.porthole.api_tokens_file;
  if (!file) throw new UsageError('--file is required when [porthole] api_tokens_file is not set');
  const { token, line } = newStaticToken(user, project, roles);
  appendFileSync(file, `${line}\n`, { mode: 0o600 });
  print(a, { token, user, project, roles, file }, `token: ${token}\n(only its SHA-256 was written to ${file}; keep the token, it is not shown again)`);
  return 0;
}
