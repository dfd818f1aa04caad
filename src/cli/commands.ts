/**
 * @module cli/commands
 * The table of `porthole` commands, in the order `porthole --help` lists them: each command's
 * usage, summary, own options with their one-line help, where it looks for its configuration,
 * and a loader of the module that runs it. Nothing here imports a command's module: starting
 * `porthole token create` loads the token code and nothing of the daemons (measured by
 * `npm run bench:cli`).
 */
import type { CommandSpec } from './args.ts';
import { PORTHOLE_CONFIG, novaConfig } from './config-search.ts';

const JSON_OUT = { json: { help: 'Print the result as JSON.' } };

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  serve: {
    usage: 'porthole serve [--demo] [--config-file FILE]... [--SECTION-OPTION VALUE]...',
    summary: 'Run the gateway: every enabled console proxy (noVNC on [vnc] novncproxy_host:novncproxy_port, serial on [serial_console] serialproxy_host:serialproxy_port, SPICE on [spice] html5proxy_host:html5proxy_port; [porthole] serialproxy_enabled and spicehtml5proxy_enabled switch the last two off) and the compute API ([DEFAULT] osapi_compute_listen:osapi_compute_listen_port).',
    options: { demo: { help: 'Also start the built-in demo server (a VNC console and a serial console) and print their console URLs.' } },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./daemons.ts')).serveCommand,
  },
  api: {
    usage: 'porthole api [--config-file FILE]... [--osapi_compute_listen ADDR] [--osapi_compute_listen_port 8774]',
    summary: 'The Nova-compatible compute API alone (remote-consoles, console auth tokens, servers) and the admin API.',
    options: {},
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./daemons.ts')).apiCommand,
  },
  novncproxy: {
    usage: 'porthole novncproxy [--config-file /etc/nova/nova.conf] [NOVA-NOVNCPROXY OPTIONS]...',
    summary: 'Drop-in for nova-novncproxy (also installed as the `nova-novncproxy` executable): the noVNC console proxy alone, reading nova.conf and the console_auth_tokens table of [database] connection (a Nova cell database is used as is, never migrated). Takes every option nova-novncproxy takes.',
    options: {},
    config: novaConfig('nova-novncproxy'),
    nova: 'novncproxy',
    load: async () => (await import('./daemons.ts')).novncproxyCommand,
  },
  serialproxy: {
    usage: 'porthole serialproxy [--config-file /etc/nova/nova.conf] [NOVA-SERIALPROXY OPTIONS]...',
    summary: 'Drop-in for nova-serialproxy (also installed as the `nova-serialproxy` executable): the serial console proxy alone on [serial_console] serialproxy_host:serialproxy_port, a plain relay between the console WebSocket (<base_url>?token=, any path) and the server\'s serial port, with an xterm.js page at /serial.html?token=; reads nova.conf and the console_auth_tokens table of [database] connection. Takes every option nova-serialproxy takes.',
    options: {},
    config: novaConfig('nova-serialproxy'),
    nova: 'serialproxy',
    load: async () => (await import('./daemons.ts')).serialproxyCommand,
  },
  spicehtml5proxy: {
    usage: 'porthole spicehtml5proxy [--config-file /etc/nova/nova.conf] [NOVA-SPICEHTML5PROXY OPTIONS]...',
    summary: 'Drop-in for nova-spicehtml5proxy (also installed as the `nova-spicehtml5proxy` executable): the SPICE console proxy alone on [spice] html5proxy_host:html5proxy_port, serving the spice-html5 client of [DEFAULT] web at /spice_auto.html and /spice.html, reading nova.conf and the console_auth_tokens table of [database] connection. Takes every option nova-spicehtml5proxy takes.',
    options: {},
    config: novaConfig('nova-spicehtml5proxy'),
    nova: 'spicehtml5proxy',
    load: async () => (await import('./daemons.ts')).spicehtml5proxyCommand,
  },
  'token create': {
    usage: 'porthole token create --instance-uuid UUID [--host HOST --port PORT] [--console-type novnc] [--view-only] [--ttl SECONDS] [--internal-access-path PATH] [--json]',
    summary: 'Mint a console token and print it with its console URL. Host and port default to the server\'s console endpoint in the inventory.',
    options: {
      'instance-uuid': { value: 'UUID', help: 'The server the console is of.' },
      host: { value: 'HOST', help: 'Console endpoint on the hypervisor (default: the inventory\'s).' },
      port: { value: 'PORT', help: 'Its port (default: the inventory\'s).' },
      'console-type': { value: 'TYPE', help: 'Nova console type (default novnc).' },
      'view-only': { help: 'A serial console whose viewer sees the output and cannot type (console type serial-view-only; needs [porthole] serial_keep_attached on the serial proxy).' },
      ttl: { value: 'SECONDS', help: 'Lifetime of the token (default [consoleauth] token_ttl, 600).' },
      'internal-access-path': { value: 'PATH', help: 'Path to CONNECT to on the endpoint (Nova\'s internal_access_path).' },
      ...JSON_OUT,
    },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./tokens.ts')).tokenCommands['token create']!,
  },
  'token show': {
    usage: 'porthole token show TOKEN [--json]',
    summary: 'Show what a token opens and whether it is valid, expired or unknown (exit status 1 unless valid).',
    options: { ...JSON_OUT },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./tokens.ts')).tokenCommands['token show']!,
  },
  'token revoke': {
    usage: 'porthole token revoke TOKEN | porthole token revoke --instance-uuid UUID [--json]',
    summary: 'Delete one token, or every token of a server; live consoles opened with them close on every proxy.',
    options: { 'instance-uuid': { value: 'UUID', help: 'Revoke every token of this server.' }, ...JSON_OUT },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./tokens.ts')).tokenCommands['token revoke']!,
  },
  'server add': {
    usage: 'porthole server add --id UUID --name NAME [--vnc HOST:PORT] [--serial HOST:PORT] [--spice HOST:PORT[,tls=PORT]] [--project-id P] [--status ACTIVE] [--auth-schemes vencrypt,vnc,none] [--vnc-password-file F] [--vnc-username U] [--tls-server-name N] [--json]',
    summary: 'Register a server (or replace it whole) with its console endpoints, at least one of --vnc, --serial, --spice, and how the proxy authenticates to its VNC console.',
    options: {
      id: { value: 'UUID', help: 'The server\'s id (Nova\'s instance_uuid).' },
      name: { value: 'NAME', help: 'Its name.' },
      vnc: { value: 'HOST:PORT', help: 'Its VNC console endpoint.' },
      serial: { value: 'HOST:PORT', help: 'Its serial console: a TCP chardev (QEMU -serial tcp:HOST:PORT,server=on,wait=off).' },
      spice: { value: 'HOST:PORT[,tls=PORT]', help: 'Its SPICE console: plain port and, if any, TLS port.' },
      'project-id': { value: 'P', help: 'Project owning it (default: none, an admin\'s only).' },
      status: { value: 'STATUS', help: 'Nova status (default ACTIVE).' },
      'auth-schemes': { value: 'LIST', help: 'Replaces [vnc] auth_schemes for this server: vencrypt, vnc, none.' },
      'vnc-password-file': { value: 'F', help: 'File whose first line is its VNC password (stored, never printed).' },
      'vnc-username': { value: 'U', help: 'Its VeNCrypt X509Plain user name.' },
      'tls-server-name': { value: 'N', help: 'Name its certificate must carry (turns the name check on).' },
      ...JSON_OUT,
    },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./servers.ts')).serverCommands['server add']!,
  },
  'server list': {
    usage: 'porthole server list [--json]',
    summary: 'List registered servers.',
    options: { ...JSON_OUT },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./servers.ts')).serverCommands['server list']!,
  },
  'server remove': {
    usage: 'porthole server remove UUID [--json]',
    summary: 'Remove a server from the inventory and revoke its console tokens, which closes its live consoles on every proxy (as DELETE /porthole/v1/servers/{id}).',
    options: { ...JSON_OUT },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./servers.ts')).serverCommands['server remove']!,
  },
  'server screenshot': {
    usage: 'porthole server screenshot ID|NAME -o FILE.png [--width N] [--json]',
    summary: 'Save a PNG of a server\'s VNC console as it is now (as GET /porthole/v1/servers/{id}/screenshot does, by a short connection of its own: ClientInit shared, so nobody at the console is disconnected; through the security proxy, with the server\'s backend auth). The file is written 0600.',
    options: {
      output: { value: 'FILE', short: 'o', help: 'Where the PNG goes (created or replaced, mode 0600); - writes it to standard output.' },
      width: { value: 'N', help: 'Scale it down to N pixels wide, aspect ratio kept (16 at least; wider than the screen: its own size).' },
      json: { help: 'Print {file, width, height, bytes} as JSON.' },
    },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./screenshot.ts')).serverScreenshotCommand,
  },
  'sessions list': {
    usage: 'porthole sessions list [--json]',
    summary: 'List the live console sessions of every proxy sharing the store (server, client, proxy, since when, bytes each way as of the last heartbeat), and the proxies.',
    options: { ...JSON_OUT },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./sessions.ts')).sessionCommands['sessions list']!,
  },
  'sessions kill': {
    usage: 'porthole sessions kill SESSION_ID [--json]',
    summary: 'Close a live console session on whichever proxy holds it (WebSocket close 1008). The console page reconnects while its token is valid: revoke the token to keep the person out.',
    options: { ...JSON_OUT },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./sessions.ts')).sessionCommands['sessions kill']!,
  },
  'sessions shadow': {
    usage: 'porthole sessions shadow SESSION_ID [--json]',
    summary: 'Print a short-lived view-only console URL (2 minutes to open it) that joins a live noVNC session\'s shared console as a watcher, shown to the others as "admin <you>" (as POST /porthole/v1/sessions/{id}/shadow). Needs shared consoles on for the session\'s server (server add --shared-consoles or [porthole] shared_consoles).',
    options: { ...JSON_OUT },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./sessions.ts')).sessionCommands['sessions shadow']!,
  },
  'events list': {
    usage: 'porthole events list [--server UUID] [--since TIME] [--until TIME] [--event NAME[,NAME]] [--token HASH8] [--session ID] [--limit N] [--order newest|oldest] [--json]',
    summary: 'The audit trail\'s recent events (tokens minted, used, refused, revoked, consumed; console sessions opened, closed, killed) recorded by every proxy sharing Porthole\'s own store, newest first, as GET /porthole/v1/events answers them. TIME is ISO 8601 or epoch seconds.',
    options: {
      server: { value: 'UUID', help: 'Only this server\'s events.' },
      since: { value: 'TIME', help: 'Events at or after TIME (ISO 8601 or epoch seconds).' },
      until: { value: 'TIME', help: 'Events before TIME.' },
      event: { value: 'NAME', help: 'Only these events (comma-separated: token.minted, session.closed, ...).' },
      token: { value: 'HASH8', help: 'Only this token\'s: the 8 hex digits of its SHA-256 (the audit lines\' token).' },
      session: { value: 'ID', help: 'Only this session\'s.' },
      limit: { value: 'N', help: 'At most N events (1-1000, default 100).' },
      order: { value: 'newest|oldest', help: 'Newest first (default) or oldest first.' },
      ...JSON_OUT,
    },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./events.ts')).eventsListCommand,
  },
  'db migrate': {
    usage: 'porthole db migrate [--json]',
    summary: 'Create or upgrade Porthole\'s tables in [database] connection (and [porthole] connection). A Nova database is never migrated.',
    options: { ...JSON_OUT },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./db.ts')).dbMigrateCommand,
  },
  'api-token create': {
    usage: 'porthole api-token create --user U --project P [--roles member,admin] [--file F] [--json]',
    summary: 'Make a static API token ([api] auth_strategy = static): prints the token once and appends its hash line to --file or [porthole] api_tokens_file.',
    options: {
      user: { value: 'U', help: 'User name the token authenticates as.' },
      project: { value: 'P', help: 'Its project.' },
      roles: { value: 'LIST', help: 'Comma-separated roles (default member; admin makes an admin).' },
      file: { value: 'F', help: 'Tokens file to append to (default [porthole] api_tokens_file).' },
      ...JSON_OUT,
    },
    config: PORTHOLE_CONFIG,
    load: async () => (await import('./api-tokens.ts')).apiTokenCreateCommand,
  },
};
