/**
 * @module cli
 * The `porthole` command: arguments → config → the part that runs. No logic of its own beyond
 * parsing and printing; every subcommand takes `--config-file`/`--config-dir` and Nova's option
 * flags, so scripts act on the same store as the daemons.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { configFlag, loadConfig, type LoadedConfig, type RawSetting } from './config/load.ts';
import { OPTIONS, optionSpec, sections, optionNames } from './config/options.ts';
import { GatewayError, isGatewayError } from './errors.ts';

import { backendAuthSummary, formatEndpoint, isUuid, parseEndpoint, type BackendAuth, type Server } from './inventory/types.ts';
import { CONSOLE_KINDS, kindOfConsoleType } from './consoles/index.ts';
import { mintConsoleToken, type Minted } from './consoles/mint.ts';
import { novnc } from './consoles/novnc.ts';
import { readPasswordFile } from './rfb/config.ts';
import { AUTH_SCHEMES, isAuthSchemeName } from './rfb/types.ts';
import type { Sessions } from './sessions/service.ts';
import type { Started } from './workers.ts';
import { openStores, storeSettings, type OpenedStores as Stores } from './database/index.ts';

interface CommandSpec {
  readonly usage: string;
  readonly summary: string;
  /** command options: name → takes a value */
  readonly options: Readonly<Record<string, boolean>>;
  readonly defaultConfigFiles?: readonly string[];
  run(args: ParsedArgs, loaded: () => LoadedConfig): Promise<number>;
}

interface ParsedArgs {
  /** The whole command line after `porthole` (the workers of `[porthole] workers` are started with it). */
  readonly argv: readonly string[];
  readonly positional: string[];
  readonly options: Map<string, string | true>;
  readonly json: boolean;
}

class UsageError extends Error {}

const VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version as string;

const COMMON = 'Common options: --config-file FILE (repeatable), --config-dir DIR, --json, --help, and any option as --SECTION-OPTION VALUE (e.g. --vnc-novncproxy_port 6080, --database-connection sqlite:////var/lib/porthole/porthole.db); see `porthole help options`.';

/** Read when no --config-file is given, so scripts act on the same store as `porthole serve`. */
const DAEMON_CONFIG = ['/etc/porthole/porthole.conf'];

const COMMANDS: Record<string, CommandSpec> = {
  serve: {
    usage: 'porthole serve [--demo] [--config-file FILE]...',
    summary: 'Run the gateway: every enabled console proxy (noVNC on [vnc] novncproxy_host:novncproxy_port) and the compute API ([DEFAULT] osapi_compute_listen:osapi_compute_listen_port). --demo also starts the built-in demo VNC server and prints its console URL.',
    options: { demo: false },
    defaultConfigFiles: DAEMON_CONFIG,
    run: (a, l) => runServe(a, l, undefined),
  },
  api: {
    usage: 'porthole api [--config-file FILE]... [--osapi_compute_listen ADDR] [--osapi_compute_listen_port 8774]',
    summary: 'The Nova-compatible compute API alone (remote-consoles, console auth tokens, servers) and the admin API.',
    options: {},
    defaultConfigFiles: DAEMON_CONFIG,
    run: (a, l) => runServe(a, l, { proxies: false, api: true }),
  },
  'api-token create': {
    usage: 'porthole api-token create --user U --project P [--roles member,admin] [--file F] [--json]',
    summary: 'Make a static API token ([api] auth_strategy = static): prints the token once and appends its hash line to --file or [porthole] api_tokens_file.',
    options: { user: true, project: true, roles: true, file: true },
    defaultConfigFiles: DAEMON_CONFIG,
    run: async (a, l) => apiTokenCreate(a, l()),
  },
  novncproxy: {
    usage: 'porthole novncproxy [--config-file /etc/nova/nova.conf] [--vnc-novncproxy_host H] [--vnc-novncproxy_port P] [--web DIR] [--ssl_only --cert F --key F]',
    summary: 'Drop-in for nova-novncproxy: the noVNC console proxy alone, reading nova.conf and the console_auth_tokens table of [database] connection (a Nova cell database is used as is, never migrated).',
    options: {},
    defaultConfigFiles: ['/etc/nova/nova.conf'],
    run: (a, l) => runServe(a, l, { proxies: true, api: false }),
  },
  'token create': {
    usage: 'porthole token create --instance-uuid UUID [--host HOST --port PORT] [--console-type novnc] [--ttl SECONDS] [--internal-access-path PATH] [--json]',
    summary: 'Mint a console token and print it with its console URL. Host and port default to the server\'s console endpoint in the inventory.',
    options: { 'instance-uuid': true, host: true, port: true, 'console-type': true, ttl: true, 'internal-access-path': true },
    defaultConfigFiles: DAEMON_CONFIG,
    run: (a, l) => withStores(l(), (s, c) => tokenCreate(a, c, s)),
  },
  'token show': {
    usage: 'porthole token show TOKEN [--json]',
    summary: 'Show what a token opens and whether it is valid, expired or unknown.',
    options: {},
    defaultConfigFiles: DAEMON_CONFIG,
    run: (a, l) => withStores(l(), (s) => tokenShow(a, s)),
  },
  'token revoke': {
    usage: 'porthole token revoke TOKEN | porthole token revoke --instance-uuid UUID [--json]',
    summary: 'Delete one token, or every token of a server.',
    options: { 'instance-uuid': true },
    defaultConfigFiles: DAEMON_CONFIG,
    run: (a, l) => withSessions(l(), (s) => tokenRevoke(a, s)),
  },
  'server add': {
    usage: 'porthole server add --id UUID --name NAME --vnc HOST:PORT [--project-id P] [--status ACTIVE] [--auth-schemes vencrypt,vnc,none] [--vnc-password-file F] [--vnc-username U] [--tls-server-name N] [--json]',
    summary: 'Register a server (or replace it) with its VNC console endpoint and how the proxy authenticates to it: --auth-schemes replaces [vnc] auth_schemes for this server; --vnc-password-file holds its VNC password (first line; also the X509Plain password), stored in the database and never printed; --vnc-username is its X509Plain user; --tls-server-name is the name its certificate must carry (turns the name check on).',
    options: { id: true, name: true, vnc: true, 'project-id': true, status: true, 'auth-schemes': true, 'vnc-password-file': true, 'vnc-username': true, 'tls-server-name': true },
    defaultConfigFiles: DAEMON_CONFIG,
    run: (a, l) => withStores(l(), (s) => serverAdd(a, s)),
  },
  'server list': {
    usage: 'porthole server list [--json]',
    summary: 'List registered servers.',
    options: {},
    defaultConfigFiles: DAEMON_CONFIG,
    run: (a, l) => withStores(l(), (s) => serverList(a, s)),
  },
  'server remove': {
    usage: 'porthole server remove UUID [--json]',
    summary: 'Remove a server from the inventory and revoke its console tokens, which closes its live consoles on every proxy (as DELETE /porthole/v1/servers/{id}).',
    options: {},
    defaultConfigFiles: DAEMON_CONFIG,
    run: (a, l) => withSessions(l(), (s, stores) => serverRemove(a, stores, s)),
  },
  'sessions list': {
    usage: 'porthole sessions list [--json]',
    summary: 'List the live console sessions of every proxy sharing the store (server, client, proxy, since when, bytes each way as of the last heartbeat), and the proxies.',
    options: {},
    defaultConfigFiles: DAEMON_CONFIG,
    run: (a, l) => withSessions(l(), (s) => sessionsList(a, s)),
  },
  'sessions kill': {
    usage: 'porthole sessions kill SESSION_ID [--json]',
    summary: 'Close a live console session on whichever proxy holds it (WebSocket close 1008). The console page reconnects while its token is valid: revoke the token to keep the person out.',
    options: {},
    defaultConfigFiles: DAEMON_CONFIG,
    run: (a, l) => withSessions(l(), (s) => sessionsKill(a, s)),
  },
  'db migrate': {
    usage: 'porthole db migrate [--json]',
    summary: 'Create or upgrade Porthole\'s tables in [database] connection (and [porthole] connection). A Nova database is never migrated.',
    options: {},
    defaultConfigFiles: DAEMON_CONFIG,
    run: (a, l) => withStores(l(), async (s) => dbMigrate(a, s), false),
  },
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

async function runServe(args: ParsedArgs, load: () => LoadedConfig, run: { proxies: boolean; api: boolean } | undefined): Promise<number> {
  // imported here so that the short-lived subcommands do not load the proxy and the demo server
  const workers = await import('./workers.ts');
  if (workers.isWorker()) return workers.asWorker(async () => serve(load(), run, true));
  const loaded = load();
  const count = workers.workerCount(loaded.config);
  if (count > 1) return workers.runPrimary(loaded, { count, argv: args.argv, started: (s) => printStarted(loaded, s) });
  return serve(loaded, run, false);
}

/** Runs the gateway until a signal: the whole daemon, or one worker of `[porthole] workers`. */
async function serve(loaded: LoadedConfig, run: { proxies: boolean; api: boolean } | undefined, worker: boolean): Promise<number> {
  const { createGateway } = await import('./gateway.ts');
  const workers = await import('./workers.ts');
  // a worker leaves what is done once to its primary, which prints the summary (workers.ts)
  const gateway = await createGateway(loaded, { run, ...(worker ? { once: false, log: workers.workerLogger(loaded.config) } : {}) });
  if (worker) workers.reportListening(gateway);
  else await printStarted(loaded, gateway);
  await new Promise<void>((resolve) => {
    // SIGTERM (systemd, Kubernetes, a rolling restart) drains; SIGINT (Ctrl-C) closes at once,
    // also during a drain. A SIGTERM during the drain changes nothing: systemd sends it to every
    // process of the service alike, and with [porthole] workers the primary passes its own on
    let terminating = false;
    const stop = (signal: string) => {
      if (signal === 'SIGTERM' && terminating) return;
      terminating ||= signal === 'SIGTERM';
      const drainMs = signal === 'SIGTERM' ? loaded.config.porthole.drain_seconds * 1000 : 0;
      gateway.log.info({ event: 'stopping', signal, drainSeconds: drainMs / 1000 }, `received ${signal}, ${drainMs > 0 ? `draining console sessions (up to ${drainMs / 1000} s; SIGINT closes them at once)` : 'closing console sessions'}`);
      gateway.close({ drainMs }).then(resolve, resolve);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

/** The start-up summary: the demo console's URL (with a fresh token), the compute API's. */
async function printStarted(loaded: LoadedConfig, started: Started): Promise<void> {
  const { DEMO_SERVER_ID } = await import('./gateway.ts');
  if (started.demo && started.novnc) {
    const { url } = await mintConsoleToken(started.stores, {
      kind: novnc,
      instanceUuid: DEMO_SERVER_ID,
      endpoint: { host: started.demo.host, port: started.demo.port },
      base: started.novnc.baseUrl,
      ttl: loaded.config.consoleauth.token_ttl,
    });
    const minutes = Math.round(loaded.config.consoleauth.token_ttl / 60);
    process.stdout.write(`\nPorthole is running. Open the demo console (valid for ${minutes} minutes):\n\n  ${url}\n\nA new URL: npx porthole token create --instance-uuid ${DEMO_SERVER_ID}\n\n`);
  }
  if (started.api) {
    const host = started.api.host === '0.0.0.0' ? '127.0.0.1' : started.api.host;
    process.stdout.write(`Compute API: http://${host}:${started.api.port}/v2.1 ([api] auth_strategy = ${loaded.config.api.auth_strategy})\n\n`);
  }
}

async function apiTokenCreate(a: ParsedArgs, loaded: LoadedConfig): Promise<number> {
  const { newStaticToken } = await import('./api/auth.ts');
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

async function withStores(loaded: LoadedConfig, fn: (s: Stores, l: LoadedConfig) => Promise<number>, autoMigrate = loaded.config.porthole.auto_migrate): Promise<number> {
  const stores = await openStores(loaded.config.database.connection, { migrate: autoMigrate, ...storeSettings(loaded.config) });
  try {
    return await fn(stores, loaded);
  } finally {
    await stores.close();
  }
}

/** The stores, and the sessions registry in them: revocations through it close live sessions on every proxy. */
async function withSessions(loaded: LoadedConfig, fn: (s: Sessions, stores: Stores) => Promise<number>): Promise<number> {
  return withStores(loaded, async (stores) => {
    const { openSessions, sessionsOptions } = await import('./sessions/service.ts');
    const sessions = await openSessions(stores, sessionsOptions(loaded.config));
    try {
      return await fn(sessions, stores);
    } finally {
      await sessions.close();
    }
  });
}

async function sessionsList(a: ParsedArgs, sessions: Sessions): Promise<number> {
  if (!sessions.shared) throw new GatewayError('CONFIG_INVALID', REGISTRY_OFF);
  const { listingJson, listingText } = await import('./sessions/format.ts');
  const listing = await sessions.list();
  print(a, listingJson(listing), listingText(listing));
  return 0;
}

async function sessionsKill(a: ParsedArgs, sessions: Sessions): Promise<number> {
  const id = onePositional(a, 'SESSION_ID');
  if (!sessions.shared) throw new GatewayError('CONFIG_INVALID', REGISTRY_OFF);
  const result = await sessions.kill(id);
  const text = result === 'closed' ? `closed session ${id}` : result === 'requested' ? `asked its proxy to close session ${id}; not seen closed yet (the proxy closes it at its next heartbeat at the latest)` : `no live session ${id}`;
  print(a, { session: id, result }, text);
  return result === 'unknown' ? 1 : 0;
}

const REGISTRY_OFF = 'the live-sessions registry is off: [database] connection is a Nova database and [porthole] connection is not set, so there is no store of Porthole\'s own to keep it in (each proxy\'s admin API still lists and kills its own sessions)';

async function tokenCreate(a: ParsedArgs, loaded: LoadedConfig, stores: Stores): Promise<number> {
  const instanceUuid = requireOption(a, 'instance-uuid').toLowerCase();
  if (!isUuid(instanceUuid)) throw new UsageError(`--instance-uuid ${instanceUuid}: expected a UUID`);
  const consoleType = optionString(a, 'console-type') ?? 'novnc';
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
    });
  } catch (err) {
    // what the caller got wrong (no endpoint, another endpoint than the server's) is a usage error
    if (isGatewayError(err) && err.code === 'ENDPOINT_MISSING') throw new UsageError(err.message === 'a host is needed' ? '--host is required' : err.message === 'a port is needed' ? '--port is required' : `--host and --port are needed: ${err.message.replace(/^[^:]*: /, '')}`);
    if (isGatewayError(err) && err.code === 'CONSOLE_PORT_MISMATCH') throw new UsageError(err.message);
    throw err;
  }
  const out = { token: minted.token, url: minted.url, expires_at: new Date(minted.record.expires * 1000).toISOString() };
  process.stdout.write(a.json ? `${JSON.stringify(out)}\n` : `token:      ${out.token}\nurl:        ${out.url}\nexpires at: ${out.expires_at}\n`);
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

async function tokenRevoke(a: ParsedArgs, stores: Sessions): Promise<number> {
  const instance = optionString(a, 'instance-uuid');
  if (instance !== undefined) {
    if (a.positional.length) throw new UsageError('give either a TOKEN or --instance-uuid, not both');
    const n = await stores.tokens.revokeByInstance(instance);
    print(a, { revoked: n }, `revoked ${n} token(s) of ${instance}`);
    return 0;
  }
  const ok = await stores.tokens.revoke(onePositional(a, 'TOKEN'));
  print(a, { revoked: ok ? 1 : 0 }, ok ? 'revoked' : 'no such token');
  return ok ? 0 : 1;
}

async function serverAdd(a: ParsedArgs, stores: Stores): Promise<number> {
  const id = requireOption(a, 'id').toLowerCase();
  if (!isUuid(id)) throw new UsageError(`--id ${id}: expected a UUID`);
  const vncText = requireOption(a, 'vnc');
  const vnc = parseEndpoint(vncText);
  if (!vnc) throw new UsageError(`--vnc ${vncText}: expected HOST:PORT`);
  const status = (optionString(a, 'status') ?? 'ACTIVE').toUpperCase();
  const server: Server = { id, name: requireOption(a, 'name'), projectId: optionString(a, 'project-id') ?? null, status, vnc, backendAuth: backendAuthOptions(a) };
  await stores.inventory.put(server);
  print(a, serverJson(server), `server ${server.id} (${server.name}) console at ${formatEndpoint(vnc)}${server.backendAuth ? `, backend auth ${authText(server)}` : ''}`);
  return 0;
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
    const rows = [['ID', 'NAME', 'PROJECT', 'STATUS', 'VNC', 'AUTH'], ...servers.map((s) => [s.id, s.name, s.projectId ?? '', s.status, s.vnc ? formatEndpoint(s.vnc) : '', authText(s)])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    process.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n');
  }
  return 0;
}

async function serverRemove(a: ParsedArgs, stores: Stores, sessions: Sessions): Promise<number> {
  const id = onePositional(a, 'UUID').toLowerCase();
  const ok = await stores.inventory.remove(id);
  const revoked = ok ? await sessions.tokens.revokeByInstance(id) : 0;
  print(a, { removed: ok, revoked }, ok ? `removed ${id}; revoked ${revoked} console token(s)` : `no server ${id}`);
  return ok ? 0 : 1;
}

async function dbMigrate(a: ParsedArgs, stores: Stores): Promise<number> {
  const applied = await stores.migrate();
  // a Nova database is never migrated; Porthole's own tables may be elsewhere ([porthole] connection)
  const targets = [...(stores.nova ? [] : [stores.description]), ...(stores.own && stores.own !== stores.description ? [stores.own] : [])];
  const novaNote = stores.nova ? `${stores.description} is a Nova database: Porthole does not migrate it${stores.own ? '' : '; [porthole] connection is not set, so there are no tables of Porthole\'s own (the inventory is off)'}` : '';
  const text = targets.length === 0 ? novaNote : `${applied.length ? `applied ${applied.join(', ')} to ${targets.join(' and ')}` : `${targets.join(' and ')} ${targets.length > 1 ? 'are' : 'is'} up to date`}${novaNote ? `\n${novaNote}` : ''}`;
  const extra = stores.nova || (stores.own !== null && stores.own !== stores.description) ? { own: stores.own, nova: stores.nova } : {};
  print(a, { database: stores.description, applied, ...extra }, text);
  return 0;
}

function serverJson(s: Server) {
  // the password itself is never printed: only whether one is set
  return { id: s.id, name: s.name, project_id: s.projectId, status: s.status, vnc: s.vnc ? formatEndpoint(s.vnc) : null, backend_auth: s.backendAuth ? backendAuthSummary(s.backendAuth) : null };
}

function print(a: ParsedArgs, json: unknown, text: string): void {
  process.stdout.write(a.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
}

function optionString(a: ParsedArgs, name: string): string | undefined {
  const v = a.options.get(name);
  return typeof v === 'string' ? v : undefined;
}

function requireOption(a: ParsedArgs, name: string): string {
  const v = optionString(a, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

function onePositional(a: ParsedArgs, what: string): string {
  if (a.positional.length !== 1) throw new UsageError(`expected exactly one ${what}`);
  return a.positional[0]!;
}

function parsePort(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new UsageError(`${what} ${text}: expected a port number 1-65535`);
  return n;
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
