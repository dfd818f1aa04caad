/**
 * @module config/options
 * Every option Porthole reads, declared once with its type, default and help. Where Nova has the
 * option, the section, name and default are Nova's (nova/conf/*.py), so a `nova.conf` works as
 * is; Porthole's own options live in `[porthole]`. The `Config` type is derived from this table.
 */

export type OptionKind = 'string' | 'int' | 'float' | 'bool' | 'list' | 'port' | 'url' | 'choice';

export interface OptionSpec<T> {
  readonly kind: OptionKind;
  readonly default: T;
  readonly help: string;
  readonly min?: number;
  readonly max?: number;
  readonly choices?: readonly string[];
}

const str = (def: string, help: string): OptionSpec<string> => ({ kind: 'string', default: def, help });
const optStr = (help: string): OptionSpec<string | null> => ({ kind: 'string', default: null, help });
const int = (def: number, help: string, min?: number, max?: number): OptionSpec<number> => ({ kind: 'int', default: def, help, min, max });
const float = (def: number, help: string, min?: number, max?: number): OptionSpec<number> => ({ kind: 'float', default: def, help, min, max });
const bool = (def: boolean, help: string): OptionSpec<boolean> => ({ kind: 'bool', default: def, help });
const list = (def: string[], help: string): OptionSpec<string[]> => ({ kind: 'list', default: def, help });
const port = (def: number, help: string): OptionSpec<number> => ({ kind: 'port', default: def, help, min: 0, max: 65535 });
const url = (def: string, help: string): OptionSpec<string> => ({ kind: 'url', default: def, help });
const choice = <C extends string>(def: C, choices: readonly C[], help: string): OptionSpec<C> => ({ kind: 'choice', default: def, help, choices });

export const OPTIONS = {
  DEFAULT: {
    web: str('/usr/share/spice-html5', 'Directory of extra static files served by the console proxies (Nova\'s option). Porthole\'s own console pages are always served; files from this directory are served for other paths when it exists.'),
    ssl_only: bool(false, 'Accept only TLS connections on the console proxies (needs `cert`).'),
    cert: str('self.pem', 'TLS certificate file (PEM) for the console proxies. When the file exists, each proxy port accepts TLS and plain connections (detected per connection), as websockify does.'),
    key: optStr('TLS private key file (PEM); defaults to the key inside `cert`.'),
    source_is_ipv6: bool(false, 'Accepted for compatibility with Nova; Porthole listens on whatever address the *_host options give.'),
    record: optStr('Accepted for compatibility with Nova (websockify session recording); Porthole does not record sessions and says so at start.'),
    debug: bool(false, 'Log at debug level.'),
    osapi_compute_listen: str('0.0.0.0', 'Address of the compute API listener (the API is not in this version; the option is read and kept for it).'),
    osapi_compute_listen_port: port(8774, 'Port of the compute API listener.'),
  },
  vnc: {
    enabled: bool(true, 'Serve noVNC consoles.'),
    novncproxy_host: str('0.0.0.0', 'Address the noVNC console proxy binds to.'),
    novncproxy_port: port(6080, 'Port the noVNC console proxy binds to.'),
    novncproxy_base_url: url('http://127.0.0.1:6080/vnc_auto.html', 'Public base URL of the console page; a console URL is `<base>?path=%3Ftoken%3D<token>`. When left at its default, Porthole uses the port it actually listens on.'),
    auth_schemes: list(['none'], 'RFB authentication schemes allowed towards the compute host, strongest first. This version relays RFB unchanged and accepts only `none`; the RFB security proxy (vnc, vencrypt) is not built yet, and Porthole refuses to start rather than silently skip the authentication you asked for.'),
    vencrypt_ca_certs: optStr('CA certificates (PEM) that sign the compute hosts\' VNC server certificates.'),
    vencrypt_client_cert: optStr('Client certificate (PEM) the proxy presents to the compute host.'),
    vencrypt_client_key: optStr('Private key (PEM) of the client certificate.'),
  },
  consoleauth: {
    token_ttl: int(600, 'Seconds a console token stays valid.', 1),
  },
  database: {
    connection: str('sqlite:///porthole.db', 'Token store: `sqlite:///relative.db`, `sqlite:////absolute.db` (SQLAlchemy URL forms, as in nova.conf).'),
  },
  console: {
    allowed_origins: list([], 'Extra hostnames allowed in the Origin header of console WebSocket connections, besides the Host header\'s.'),
  },
  porthole: {
    demo: bool(false, 'Start the built-in demo VNC server, register it in the inventory and print a console URL for it.'),
    demo_port: port(0, 'Port of the demo VNC server (0: any free port); it listens on 127.0.0.1 only.'),
    log_level: choice('info', ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const, 'Log level (`[DEFAULT] debug = true` means debug).'),
    auto_migrate: bool(true, 'Create or upgrade Porthole\'s tables at start (`porthole db migrate` does it explicitly).'),
    backend_connect_timeout: float(5, 'Seconds to wait for the TCP connection to a console backend.', 0.1, 300),
    handshake_timeout: float(10, 'Seconds a client may take to send its HTTP request headers, and a backend to answer an internal_access_path CONNECT.', 0.1, 300),
    max_message_size: int(4 * 1024 * 1024, 'Largest WebSocket message accepted from a client, in bytes.', 1024, 256 * 1024 * 1024),
    token_sweep_interval: int(300, 'Seconds between sweeps of expired tokens from the store (0: never).', 0),
    max_header_size: int(16 * 1024, 'Largest HTTP request header block accepted, in bytes.', 1024, 1024 * 1024),
  },
} as const;

type Options = typeof OPTIONS;
export type SectionName = keyof Options;
type ValueOf<S> = S extends OptionSpec<infer T> ? T : never;

export type Config = {
  readonly [S in SectionName]: { readonly [O in keyof Options[S]]: ValueOf<Options[S][O]> };
};

export function optionSpec(section: string, name: string): OptionSpec<unknown> | undefined {
  const s = (OPTIONS as Record<string, Record<string, OptionSpec<unknown>>>)[section];
  return s?.[name];
}

export function sections(): SectionName[] {
  return Object.keys(OPTIONS) as SectionName[];
}

export function optionNames(section: SectionName): string[] {
  return Object.keys(OPTIONS[section]);
}
