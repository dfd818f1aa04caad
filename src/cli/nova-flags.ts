/**
 * @module cli/nova-flags
 * The command lines of Nova's console daemons (`nova-novncproxy`, `nova-serialproxy`,
 * `nova-spicehtml5proxy` of Nova 26, as their `--help` lists them: test/fixtures/), in every form
 * oslo.config's argparse gives them: `--opt value`, `--opt=value`, the names exactly as declared
 * (oslo.log's with dashes, websockify's and the groups' with underscores: `--log-file`,
 * `--ssl_only`, `--vnc-novncproxy_port`), `--noOPT` for each boolean, `-d` for `--debug`, the
 * deprecated names (`--logfile`, `--logdir`, `--log-config`, `--log_config`), and, as argparse,
 * any unambiguous prefix of a long option (`--log-f`). Each maps to the nova.conf option it sets,
 * so a flag and the same option in nova.conf are one thing to the rest of Porthole.
 */

export type NovaDaemon = 'novncproxy' | 'serialproxy' | 'spicehtml5proxy';

export interface NovaFlag {
  /** The name after `--`, as oslo.config declares it. */
  readonly flag: string;
  /** Deprecated names oslo.config also accepts. */
  readonly aliases?: readonly string[];
  /** `-d` */
  readonly short?: string;
  readonly section: string;
  readonly name: string;
  /** A boolean takes no value and has a `--no` form; the others take one (its name, for help). */
  readonly value?: string;
  readonly help: string;
}

const bool = (flag: string, section: string, name: string, help: string, extra: Partial<NovaFlag> = {}): NovaFlag => ({ flag, section, name, help, ...extra });
const valued = (flag: string, section: string, name: string, value: string, help: string, extra: Partial<NovaFlag> = {}): NovaFlag => ({ flag, section, name, value, help, ...extra });

/** oslo.log's options (oslo_log/_options.py), registered by every Nova daemon. */
const OSLO_LOG: readonly NovaFlag[] = [
  bool('debug', 'DEFAULT', 'debug', 'Log at debug level, with per-connection detail.', { short: 'd' }),
  valued('log-config-append', 'DEFAULT', 'log_config_append', 'PATH', 'A Python logging configuration: accepted, not read (one warning at start).', { aliases: ['log-config', 'log_config'] }),
  valued('log-date-format', 'DEFAULT', 'log_date_format', 'DATE_FORMAT', 'strftime format of the time in log lines.'),
  valued('log-dir', 'DEFAULT', 'log_dir', 'LOG_DIR', 'Directory of log files (relative --log-file, else <program>.log).', { aliases: ['logdir'] }),
  valued('log-file', 'DEFAULT', 'log_file', 'PATH', 'Write the log to this file (oslo.log\'s text lines, JSON with --use-json).', { aliases: ['logfile'] }),
  valued('syslog-log-facility', 'DEFAULT', 'syslog_log_facility', 'SYSLOG_LOG_FACILITY', 'Syslog facility for --use-syslog (LOG_USER, LOG_LOCAL0...).'),
  bool('use-journal', 'DEFAULT', 'use_journal', 'Log to the systemd journal (native protocol).'),
  bool('use-json', 'DEFAULT', 'use_json', 'Log JSON objects, one a line.'),
  bool('use-syslog', 'DEFAULT', 'use_syslog', 'Also log to syslog (/dev/log).'),
  bool('watch-log-file', 'DEFAULT', 'watch_log_file', 'Reopen the log file when logrotate moves it.'),
];

/** websockify's options as Nova declares them (nova/conf/novnc.py's siblings in nova/conf/). */
const WEBSOCKIFY: readonly NovaFlag[] = [
  valued('cert', 'DEFAULT', 'cert', 'CERT', 'TLS certificate (PEM) of the console listener.'),
  bool('daemon', 'DEFAULT', 'daemon', 'Run in the background: accepted, Porthole stays in the foreground (warns).'),
  valued('key', 'DEFAULT', 'key', 'KEY', 'TLS private key (PEM), if not inside --cert.'),
  valued('record', 'DEFAULT', 'record', 'RECORD', 'Record WebSocket frames: accepted, Porthole does not record (warns).'),
  bool('source_is_ipv6', 'DEFAULT', 'source_is_ipv6', 'Accepted; the listen address alone decides IPv4 or IPv6 (warns).'),
  bool('ssl_only', 'DEFAULT', 'ssl_only', 'Refuse connections that are not TLS.'),
  valued('web', 'DEFAULT', 'web', 'WEB', 'Directory of extra static files served by the console listener.'),
];

/** nova/conf/remote_debug.py: a Python debugger, which Porthole cannot attach (warns). */
const DEBUGGER: readonly NovaFlag[] = [
  valued('remote_debug-host', 'remote_debug', 'host', 'REMOTE_DEBUG_HOST', 'Python remote debugger host: accepted, not used (warns).'),
  valued('remote_debug-port', 'remote_debug', 'port', 'REMOTE_DEBUG_PORT', 'Python remote debugger port: accepted, not used (warns).'),
];

/** Each daemon's own group (nova/conf/vnc.py, serial_console.py, spice.py: register_cli_opts). */
const GROUPS: Record<NovaDaemon, { readonly title: string; readonly flags: readonly NovaFlag[] }> = {
  novncproxy: {
    title: 'VNC options',
    flags: [
      valued('vnc-auth_schemes', 'vnc', 'auth_schemes', 'VNC_AUTH_SCHEMES', 'RFB schemes towards the compute host: none, vencrypt (and vnc).'),
      valued('vnc-novncproxy_host', 'vnc', 'novncproxy_host', 'VNC_NOVNCPROXY_HOST', 'Address the noVNC console proxy binds to.'),
      valued('vnc-novncproxy_port', 'vnc', 'novncproxy_port', 'VNC_NOVNCPROXY_PORT', 'Port the noVNC console proxy binds to (6080).'),
      valued('vnc-vencrypt_ca_certs', 'vnc', 'vencrypt_ca_certs', 'VNC_VENCRYPT_CA_CERTS', 'CA certificates (PEM) of the compute hosts\' VNC servers.'),
      valued('vnc-vencrypt_client_cert', 'vnc', 'vencrypt_client_cert', 'VNC_VENCRYPT_CLIENT_CERT', 'Client certificate (PEM) shown to the compute host.'),
      valued('vnc-vencrypt_client_key', 'vnc', 'vencrypt_client_key', 'VNC_VENCRYPT_CLIENT_KEY', 'Private key (PEM) of the client certificate.'),
    ],
  },
  serialproxy: {
    title: 'The serial console feature',
    flags: [
      valued('serial_console-serialproxy_host', 'serial_console', 'serialproxy_host', 'SERIAL_CONSOLE_SERIALPROXY_HOST', 'Address the serial console proxy binds to.'),
      valued('serial_console-serialproxy_port', 'serial_console', 'serialproxy_port', 'SERIAL_CONSOLE_SERIALPROXY_PORT', 'Port the serial console proxy binds to (6083).'),
    ],
  },
  spicehtml5proxy: {
    title: 'SPICE console features',
    flags: [
      valued('spice-html5proxy_host', 'spice', 'html5proxy_host', 'SPICE_HTML5PROXY_HOST', 'Address the SPICE console proxy binds to.'),
      valued('spice-html5proxy_port', 'spice', 'html5proxy_port', 'SPICE_HTML5PROXY_PORT', 'Port the SPICE console proxy binds to (6082).'),
    ],
  },
};

/** The executable Nova installs for a daemon: also the name oslo.log gives its log file. */
export function novaProgram(daemon: NovaDaemon): string {
  return `nova-${daemon}`;
}

/** The daemon's options, grouped as its `--help` groups them. */
export function novaFlagGroups(daemon: NovaDaemon): { title: string; flags: readonly NovaFlag[] }[] {
  return [
    { title: 'oslo.log and websockify options', flags: [...OSLO_LOG, ...WEBSOCKIFY].sort((a, b) => a.flag.localeCompare(b.flag)) },
    GROUPS[daemon],
    { title: 'debugger options', flags: DEBUGGER },
  ];
}

export function novaFlags(daemon: NovaDaemon): NovaFlag[] {
  return novaFlagGroups(daemon).flatMap((g) => g.flags);
}

/**
 * Every long name the daemon's argparse knows (without `--`), with what it sets: the flags,
 * their deprecated names, the `--no` forms of the booleans (also of the deprecated names), and
 * oslo.config's own `config-file`, `config-dir`, `help`, `version` (mapped to no flag).
 */
export function novaNames(daemon: NovaDaemon): Map<string, { flag?: NovaFlag; negated: boolean }> {
  const names = new Map<string, { flag?: NovaFlag; negated: boolean }>();
  for (const own of ['config-file', 'config-dir', 'help', 'version']) names.set(own, { negated: false });
  for (const flag of novaFlags(daemon)) {
    for (const n of [flag.flag, ...(flag.aliases ?? [])]) {
      names.set(n, { flag, negated: false });
      if (flag.value === undefined) names.set(`no${n}`, { flag, negated: true });
    }
  }
  return names;
}

/**
 * What argparse makes of a long option name: itself when it is one, else the one name it is an
 * unambiguous prefix of; `ambiguous` lists the candidates when there are several.
 */
export function expandAbbreviation(names: Iterable<string>, given: string): { name?: string; ambiguous?: string[] } {
  const all = [...names];
  if (all.includes(given)) return { name: given };
  const matches = all.filter((n) => n.startsWith(given));
  if (matches.length === 1) return { name: matches[0] };
  return matches.length > 1 ? { ambiguous: matches.sort() } : {};
}
