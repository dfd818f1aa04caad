/**
 * @module cli/tokens
 * `porthole token create|show|revoke`. Minting goes through `mintConsoleToken`, the function
 * the API and the start-up summary call (with the CVE-2013-0335 endpoint check); revocations go
 * through the sessions registry, so they close live consoles on every proxy. Each mint and
 * revocation is in the audit trail, the actor being the operating-system user, who is also the
 * token's minter (`cli:<user>`) in Porthole's own store, beside its label and flags.
 */
import type { LoadedConfig } from '../config/load.ts';
import { isGatewayError } from '../errors.ts';
import { isUuid } from '../inventory/types.ts';
import { CONSOLE_KINDS, kindOfConsoleType } from '../consoles/index.ts';
import { mintConsoleToken, type Minted } from '../consoles/mint.ts';
import type { Sessions } from '../sessions/service.ts';
import { NOVNC_VIEW_ONLY, SERIAL_VIEW_ONLY } from '../proxy/view-only.ts';
import type { AuditBy } from '../store/audit-events.ts';
import { parseTokenLabel, TOKEN_LABEL_MAX, type ConsoleTokenExtras } from '../store/token-extras.ts';
import { revokeServerTokens, revokeToken } from '../store/revoke.ts';
import { UsageError, onePositional, optionString, parsePort, print, requireOption, type CommandRun, type ParsedArgs } from './args.ts';
import { withAudit, withSessions, withStores, type Stores } from './stores.ts';

/** The code of `token create|show|revoke`; their help is in commands.ts. */
export const tokenCommands: Record<string, CommandRun> = {
  'token create': (a, l) => withStores(l(), (s, c) => withAudit(c, s, (by) => tokenCreate(a, c, s, by))),
  'token show': (a, l) => withStores(l(), (s) => tokenShow(a, s)),
  'token revoke': (a, l) => {
    const loaded = l();
    return withSessions(loaded, (s, stores) => withAudit(loaded, stores, (by) => tokenRevoke(a, s, by)));
  },
};

async function tokenCreate(a: ParsedArgs, loaded: LoadedConfig, stores: Stores, by: AuditBy): Promise<number> {
  const instanceUuid = requireOption(a, 'instance-uuid').toLowerCase();
  if (!isUuid(instanceUuid)) throw new UsageError(`--instance-uuid ${instanceUuid}: expected a UUID`);
  const viewOnly = a.options.get('view-only') === true;
  let consoleType = optionString(a, 'console-type') ?? 'novnc';
  if (viewOnly) {
    // a console type, not a flag: Nova's proxies and an older Porthole refuse it rather than let the viewer type
    if (consoleType === 'novnc' || consoleType === NOVNC_VIEW_ONLY) consoleType = NOVNC_VIEW_ONLY;
    else if (consoleType === 'serial' || consoleType === SERIAL_VIEW_ONLY) consoleType = SERIAL_VIEW_ONLY;
    else throw new UsageError(`--view-only: only noVNC and serial consoles have a view-only kind, not ${consoleType}`);
  }
  const labelText = optionString(a, 'label');
  const label = labelText === undefined ? null : parseTokenLabel(labelText);
  if (label === undefined) throw new UsageError(`--label: expected 1 to ${TOKEN_LABEL_MAX} printable characters`);
  const control = a.options.get('control') === true;
  const record = a.options.get('record') === true;
  if (control && consoleType === NOVNC_VIEW_ONLY) throw new UsageError('--control and --view-only: a view-only viewer cannot take control');
  const extras: ConsoleTokenExtras = { label, mintedBy: `cli:${'cli' in by.actor ? by.actor.cli : 'unknown'}`, control, record };
  const kind = kindOfConsoleType(consoleType);
  if (!kind) throw new UsageError(`--console-type ${consoleType}: this version serves ${CONSOLE_KINDS.flatMap((k) => k.consoleTypes).join(', ')} consoles only`);
  const hostOpt = optionString(a, 'host');
  const portOpt = optionString(a, 'port');
  const ttlText = optionString(a, 'ttl');
  const ttl = ttlText === undefined ? loaded.config.consoleauth.token_ttl : Number(ttlText);
  if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError(`--ttl ${ttlText}: expected a whole number of seconds, at least 1`);
  let minted: Minted;
  try {
    minted = await mintConsoleToken(stores, {
      kind,
      consoleType,
      instanceUuid,
      endpoint: { host: hostOpt, port: portOpt === undefined ? undefined : parsePort(portOpt, '--port') },
      base: kind.baseUrl(loaded),
      ttl,
      internalAccessPath: optionString(a, 'internal-access-path') ?? null,
      audit: by,
      extras,
      // asked for: kept, or nothing minted; the minter's name alone is worth a warning only
      extrasRequired: label !== null || control || record,
      warn: (message) => process.stderr.write(`porthole: warning: ${message}\n`),
    });
  } catch (err) {
    // what the caller got wrong (no endpoint, another endpoint than the server's) is a usage error
    if (isGatewayError(err) && err.code === 'ENDPOINT_MISSING') throw new UsageError(err.message === 'a host is needed' ? '--host is required' : err.message === 'a port is needed' ? '--port is required' : `--host and --port are needed: ${err.message.replace(/^[^:]*: /, '')}`);
    if (isGatewayError(err) && err.code === 'CONSOLE_PORT_MISMATCH') throw new UsageError(err.message);
    throw err;
  }
  const out = { token: minted.token, url: minted.url, expires_at: new Date(minted.record.expires * 1000).toISOString(), ...(label !== null ? { label } : {}), ...(control ? { control } : {}), ...(record ? { record } : {}) };
  const more = [label !== null && `label:      ${label}\n`, control && 'control:    takes control of a shared console on joining\n', record && 'record:     its session is recorded\n'].filter(Boolean).join('');
  process.stdout.write(a.json ? `${JSON.stringify(out)}\n` : `token:      ${out.token}\nurl:        ${out.url}\nexpires at: ${out.expires_at}\n${more}`);
  return 0;
}

async function tokenShow(a: ParsedArgs, stores: Stores): Promise<number> {
  const token = onePositional(a, 'TOKEN');
  const found = await stores.tokens.lookup(token);
  if (found.status === 'unknown') {
    print(a, { state: 'unknown' }, 'unknown or revoked token');
    return 1;
  }
  const t = found.token;
  const out = { state: found.status, console_type: t.consoleType, instance_uuid: t.instanceUuid, host: t.host, port: t.port, internal_access_path: t.internalAccessPath, access_url_base: t.accessUrlBase, expires_at: new Date(t.expires * 1000).toISOString() };
  print(a, out, Object.entries(out).map(([k, v]) => `${k.padEnd(21)} ${v ?? ''}`).join('\n'));
  return found.status === 'valid' ? 0 : 1;
}

async function tokenRevoke(a: ParsedArgs, stores: Sessions, by: AuditBy): Promise<number> {
  const instance = optionString(a, 'instance-uuid');
  if (instance !== undefined) {
    if (a.positional.length) throw new UsageError('give either a TOKEN or --instance-uuid, not both');
    const n = await revokeServerTokens(stores.tokens, instance.toLowerCase(), by);
    print(a, { revoked: n }, `revoked ${n} token(s) of ${instance}`);
    return 0;
  }
  const ok = await revokeToken(stores.tokens, onePositional(a, 'TOKEN'), by);
  print(a, { revoked: ok ? 1 : 0 }, ok ? 'revoked' : 'no such token');
  return ok ? 0 : 1;
}
