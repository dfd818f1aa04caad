/**
 * @module cli/servers
 * `porthole server add|list|show|remove`: the inventory of servers and their console endpoints
 * (VNC, serial, SPICE: any of them, at least one), with the backend auth the proxy uses for a VNC
 * console and whether its consoles are shared and recorded (unset: the config decides). The VNC
 * password is stored, never printed. `server add` replaces a server whole: an endpoint or a
 * choice not given again is gone.
 */
import { backendAuthSummary, formatEndpoint, formatSpiceEndpoint, isUuid, parseEndpoint, parseSpiceEndpoint, type BackendAuth, type ConsoleEndpoint, type Server } from '../inventory/types.ts';
import { readPasswordFile } from '../rfb/config.ts';
import { AUTH_SCHEMES, isAuthSchemeName } from '../rfb/types.ts';
import type { Sessions } from '../sessions/service.ts';
import type { AuditBy } from '../store/audit-events.ts';
import { revokeServerTokens } from '../store/revoke.ts';
import { UsageError, onePositional, optionString, print, requireOption, type CommandRun, type ParsedArgs } from './args.ts';
import { withAudit, withSessions, withStores, type Stores } from './stores.ts';

/** The code of `server add|list|remove`; their help is in commands.ts. */
export const serverCommands: Record<string, CommandRun> = {
  'server add': (a, l) => withStores(l(), (s) => serverAdd(a, s)),
  'server list': (a, l) => withStores(l(), (s) => serverList(a, s)),
  'server show': (a, l) => withStores(l(), (s) => serverShow(a, s)),
  'server remove': (a, l) => {
    const loaded = l();
    return withSessions(loaded, (s, stores) => withAudit(loaded, stores, (by) => serverRemove(a, stores, s, by)));
  },
};

async function serverAdd(a: ParsedArgs, stores: Stores): Promise<number> {
  const id = requireOption(a, 'id').toLowerCase();
  if (!isUuid(id)) throw new UsageError(`--id ${id}: expected a UUID`);
  const name = requireOption(a, 'name');
  const vnc = endpointOption(a, 'vnc', 'HOST:PORT', parseEndpoint);
  const serial = endpointOption(a, 'serial', 'HOST:PORT', parseEndpoint);
  const spice = endpointOption(a, 'spice', 'HOST:PORT or HOST:PORT,tls=PORT', parseSpiceEndpoint);
  // a server with a serial console only (no display) is a server; one with no console is not worth keeping
  if (!vnc && !serial && !spice) throw new UsageError('--vnc, --serial or --spice is required (a console endpoint: HOST:PORT)');
  const status = (optionString(a, 'status') ?? 'ACTIVE').toUpperCase();
  const sharedConsoles = choice(a, 'shared-consoles');
  const record = choice(a, 'record');
  const server: Server = { id, name, projectId: optionString(a, 'project-id') ?? null, status, vnc, serial, spice, backendAuth: backendAuthOptions(a), sharedConsoles, record };
  await stores.inventory.put(server);
  const choices = choicesText(server);
  print(a, serverJson(server), `server ${server.id} (${server.name}): ${endpointsText(server)}${server.backendAuth ? `, backend auth ${authText(server)}` : ''}${choices ? `, ${choices}` : ''}`);
  return 0;
}

/** `--NAME` (true), `--no-NAME` (false), neither (null: the config decides); both is a usage error. */
function choice(a: ParsedArgs, name: string): boolean | null {
  const on = a.options.get(name) === true;
  const off = a.options.get(`no-${name}`) === true;
  if (on && off) throw new UsageError(`--${name} and --no-${name}: give one of them`);
  return on ? true : off ? false : null;
}

/** A server's own shared-console and recording choices, as the list shows them; '' when both are the config's. */
function choicesText(s: Server): string {
  return [s.sharedConsoles != null && (s.sharedConsoles ? 'shared consoles' : 'no shared consoles'), s.record != null && (s.record ? 'recorded' : 'not recorded')].filter(Boolean).join(', ');
}

/** An endpoint option, parsed; null when not given. */
function endpointOption<T extends ConsoleEndpoint>(a: ParsedArgs, option: string, form: string, parse: (text: string) => T | undefined): T | null {
  const text = optionString(a, option);
  if (text === undefined) return null;
  const endpoint = parse(text);
  if (!endpoint) throw new UsageError(`--${option} ${text}: expected ${form}`);
  return endpoint;
}

function endpointsText(s: Server): string {
  return [s.vnc && `vnc ${formatEndpoint(s.vnc)}`, s.serial && `serial ${formatEndpoint(s.serial)}`, s.spice && `spice ${formatSpiceEndpoint(s.spice)}`].filter(Boolean).join(', ');
}

/** `--auth-schemes`, `--vnc-password-file`, `--vnc-username`, `--tls-server-name`, or null when none is given. */
function backendAuthOptions(a: ParsedArgs): BackendAuth | null {
  const schemesText = optionString(a, 'auth-schemes');
  const passwordFile = optionString(a, 'vnc-password-file');
  const username = optionString(a, 'vnc-username');
  const tlsServerName = optionString(a, 'tls-server-name');
  if (schemesText === undefined && passwordFile === undefined && username === undefined && tlsServerName === undefined) return null;
  let authSchemes: string[] | null = null;
  if (schemesText !== undefined) {
    authSchemes = schemesText.split(',').map((x) => x.trim()).filter((x) => x !== '');
    const bad = authSchemes.find((x) => !isAuthSchemeName(x));
    if (bad !== undefined || authSchemes.length === 0) throw new UsageError(`--auth-schemes ${schemesText}: expected a comma-separated list of ${AUTH_SCHEMES.join(', ')}`);
  }
  let vncPassword: string | null = null;
  if (passwordFile !== undefined) {
    try {
      vncPassword = readPasswordFile(passwordFile, '--vnc-password-file');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (Buffer.byteLength(vncPassword) > 8) process.stderr.write('porthole: note: VNC authentication (VncAuth, X509Vnc) uses only the first 8 bytes of the password, as VNC servers do\n');
  }
  if (username === '') throw new UsageError('--vnc-username must not be empty');
  if (tlsServerName === '') throw new UsageError('--tls-server-name must not be empty');
  return { authSchemes, vncPassword, vncUsername: username ?? null, tlsServerName: tlsServerName ?? null };
}

function authText(s: Server): string {
  const auth = backendAuthSummary(s.backendAuth);
  if (!s.backendAuth) return '';
  return [auth.auth_schemes?.join(',') ?? 'default', auth.vnc_username && `user ${auth.vnc_username}`, auth.vnc_password_set && 'password set', auth.tls_server_name && `tls ${auth.tls_server_name}`].filter(Boolean).join(' ');
}

async function serverList(a: ParsedArgs, stores: Stores): Promise<number> {
  const servers = await stores.inventory.list();
  if (a.json) process.stdout.write(`${JSON.stringify(servers.map(serverJson))}\n`);
  else {
    const rows = [
      ['ID', 'NAME', 'PROJECT', 'STATUS', 'VNC', 'SERIAL', 'SPICE', 'AUTH', 'SHARED', 'RECORD'],
      ...servers.map((s) => [s.id, s.name, s.projectId ?? '', s.status, s.vnc ? formatEndpoint(s.vnc) : '', s.serial ? formatEndpoint(s.serial) : '', s.spice ? formatSpiceEndpoint(s.spice) : '', authText(s), flagText(s.sharedConsoles), flagText(s.record)]),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    process.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n');
  }
  return 0;
}

/** A server's own choice: yes, no, or '' (the config decides, as an empty AUTH is the config's). */
function flagText(v: boolean | null | undefined): string {
  return v == null ? '' : v ? 'yes' : 'no';
}

async function serverShow(a: ParsedArgs, stores: Stores): Promise<number> {
  const id = onePositional(a, 'UUID').toLowerCase();
  const s = await stores.inventory.get(id);
  if (!s) {
    print(a, { server: null }, `no server ${id}`);
    return 1;
  }
  const auth = authText(s);
  const rows: Array<[string, string]> = [
    ['id', s.id],
    ['name', s.name],
    ['project_id', s.projectId ?? ''],
    ['status', s.status],
    ['vnc', s.vnc ? formatEndpoint(s.vnc) : ''],
    ['serial', s.serial ? formatEndpoint(s.serial) : ''],
    ['spice', s.spice ? formatSpiceEndpoint(s.spice) : ''],
    ['backend_auth', auth || 'default'],
    ['shared_consoles', flagText(s.sharedConsoles) || 'default ([porthole] shared_consoles)'],
    ['record', flagText(s.record) || 'default ([DEFAULT] record)'],
  ];
  print(a, serverJson(s), rows.map(([k, v]) => `${k.padEnd(16)} ${v}`.trimEnd()).join('\n'));
  return 0;
}

async function serverRemove(a: ParsedArgs, stores: Stores, sessions: Sessions, by: AuditBy): Promise<number> {
  const id = onePositional(a, 'UUID').toLowerCase();
  const ok = await stores.inventory.remove(id);
  const revoked = ok ? await revokeServerTokens(sessions.tokens, id, by, 'server removed from the inventory: every token of it revoked') : 0;
  print(a, { removed: ok, revoked }, ok ? `removed ${id}; revoked ${revoked} console token(s)` : `no server ${id}`);
  return ok ? 0 : 1;
}

function serverJson(s: Server) {
  // endpoints in the form the flags take, so a script can give them back to `server add`;
  // the password itself is never printed: only whether one is set
  return {
    id: s.id,
    name: s.name,
    project_id: s.projectId,
    status: s.status,
    vnc: s.vnc ? formatEndpoint(s.vnc) : null,
    serial: s.serial ? formatEndpoint(s.serial) : null,
    spice: s.spice ? formatSpiceEndpoint(s.spice) : null,
    backend_auth: s.backendAuth ? backendAuthSummary(s.backendAuth) : null,
    shared_consoles: s.sharedConsoles ?? null,
    record: s.record ?? null,
  };
}
