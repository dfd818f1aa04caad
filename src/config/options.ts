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
const choiceList = (def: string[], choices: readonly string[], help: string): OptionSpec<string[]> => ({ kind: 'list', default: def, help, choices });
const choice = <C extends string>(def: C, choices: readonly C[], help: string): OptionSpec<C> => ({ kind: 'choice', default: def, help, choices });

export const OPTIONS = {
  DEFAULT: {
    web: str('/usr/share/spice-html5', 'Directory of extra static files served by the console proxies (Nova\'s option). Porthole\'s own console pages are always served; files from this directory are served for other paths when it exists.'),
    ssl_only: bool(false, 'Accept only TLS connections on the console proxies (needs `cert`).'),
    cert: str('self.pem', 'TLS certificate file (PEM) for the console proxies. When the file exists, each proxy port accepts TLS and plain connections (detected per connection), as websockify does.'),
    key: optStr('TLS private key file (PEM); defaults to the key inside `cert`.'),
    source_is_ipv6: bool(false, 'Accepted for compatibility with Nova; Porthole listens on whatever address the *_host options give.'),
    record: optStr('Record every noVNC console session (Nova\'s and websockify\'s option, a file prefix): each session goes to `<record>.<session id>.rfbrec` in Porthole\'s recording format (the RFB stream from the VM with its timestamps, and the browser\'s input), listed in the store and played back in the browser; see [porthole] recording_*. Unset: only servers and tokens asked to be recorded are.'),
    debug: bool(false, 'Log at debug level, with per-connection detail (oslo.log\'s option; also `-d`).'),
    log_file: optStr('File to write the log to, in oslo.log\'s text format (JSON with use_json), opened for appending; relative to log_dir when that is set (oslo.log\'s option, also `--log-file`, `--logfile`). Unset: the log goes to standard output (to the journal with use_journal).'),
    log_dir: optStr('Directory of log_file; with no log_file, the log goes to `<log_dir>/<program>.log` (e.g. `nova-novncproxy.log`), as oslo.log does.'),
    log_date_format: str('%Y-%m-%d %H:%M:%S', 'strftime format of the time in text log lines (oslo.log\'s option); milliseconds follow it, as in oslo.log\'s lines.'),
    log_config_append: optStr('A Python logging configuration file (oslo.log\'s option). Porthole cannot read Python logging configurations: it says so once at start and logs as the other options say.'),
    watch_log_file: bool(false, 'Reopen log_file when it is moved or deleted (logrotate without copytruncate), as oslo.log\'s WatchedFileHandler does. SIGHUP reopens it too, always.'),
    use_syslog: bool(false, 'Also send the log to syslog (/dev/log), with syslog_log_facility.'),
    syslog_log_facility: str('LOG_USER', 'Syslog facility of the log sent with use_syslog (`LOG_USER`, `LOG_DAEMON`, `LOG_LOCAL0`..`LOG_LOCAL7`, ...).'),
    use_journal: bool(false, 'Send the log to the systemd journal with its native protocol and fields (PRIORITY, SYSLOG_IDENTIFIER, CODE, ...) instead of standard output.'),
    use_json: bool(false, 'Write log lines as JSON objects (one per line) instead of oslo.log\'s text format.'),
    use_stderr: bool(false, 'Log to standard error instead of standard output when no log_file is set (oslo.log\'s option).'),
    daemon: bool(false, 'Run as a background process (websockify\'s --daemon). Porthole always runs in the foreground: it says so once at start; run it under systemd or start-stop-daemon --background.'),
    osapi_compute_listen: str('0.0.0.0', 'Address of the compute API listener.'),
    osapi_compute_listen_port: port(8774, 'Port of the compute API listener.'),
    enabled_ssl_apis: list([], 'Nova\'s list of the APIs that nova-api serves over TLS (`osapi_compute`, `metadata`). With `osapi_compute` in it, Porthole\'s compute API speaks HTTPS only, with `[wsgi] ssl_cert_file` and `ssl_key_file`, as nova-api does ([porthole] api_cert, when set, wins).'),
  },
  wsgi: {
    ssl_cert_file: optStr('Certificate (PEM) of the compute API when `[DEFAULT] enabled_ssl_apis` has `osapi_compute` (Nova\'s option).'),
    ssl_key_file: optStr('Private key (PEM) of ssl_cert_file; unset: read from ssl_cert_file.'),
    ssl_ca_file: optStr('CA certificates (PEM): when set, an HTTPS compute API asks every client for a certificate and refuses one not signed by them, as nova-api does (Nova\'s option; it applies to `[porthole] api_cert` too).'),
  },
  vnc: {
    enabled: bool(true, 'Serve noVNC consoles.'),
    novncproxy_host: str('0.0.0.0', 'Address the noVNC console proxy binds to.'),
    novncproxy_port: port(6080, 'Port the noVNC console proxy binds to.'),
    novncproxy_base_url: url('http://127.0.0.1:6080/vnc_auto.html', 'Public base URL of the console page; a console URL is `<base>?path=%3Ftoken%3D<token>`. When left at its default, Porthole uses the port it actually listens on.'),
    auth_schemes: choiceList(['none'], ['none', 'vnc', 'vencrypt'], 'RFB authentication schemes allowed towards the compute host (Nova\'s `none`, `vencrypt`; Porthole adds `vnc`, the VNC password). The browser is always offered None; Porthole authenticates to the VNC server with the first of the types the *server* offers that is in this list (as Nova). A server\'s own list in the inventory replaces this one.'),
    vencrypt_ca_certs: optStr('CA certificates (PEM) that sign the compute hosts\' VNC server certificates. VeNCrypt X509 connections are verified against them, always; without them no VeNCrypt X509 connection is made.'),
    vencrypt_client_cert: optStr('Client certificate (PEM) the proxy presents to the compute host (VeNCrypt).'),
    vencrypt_client_key: optStr('Private key (PEM) of the client certificate; unset: the key is read from vencrypt_client_cert.'),
  },
  api: {
    auth_strategy: choice('noauth2', ['noauth2', 'static', 'jwt', 'keystone'] as const, 'How API callers authenticate: `noauth2` (Nova\'s development mode: `X-Auth-Token: user:project`, admin when the user is `admin`; never on a network you do not trust), `static` (tokens listed, hashed, in `[porthole] api_tokens_file`), `jwt` (bearer tokens signed by your identity provider), `keystone` (OpenStack Keystone tokens in `X-Auth-Token`, validated with Keystone as keystonemiddleware does, with the credentials of `[keystone_authtoken]`). Nova\'s own default is keystone; Porthole\'s is noauth2, so a nova.conf that relies on Nova\'s default must say `auth_strategy = keystone`.'),
  },
  keystone_authtoken: {
    auth_url: optStr('Keystone\'s URL for Porthole\'s own service token and for validating callers\' tokens (`GET <auth_url>/v3/auth/tokens`), e.g. `http://keystone.example.com:5000/v3` (`/v3` is added when missing). keystonemiddleware finds the identity endpoint in the catalog by `interface`; Porthole uses this URL as given.'),
    www_authenticate_uri: optStr('The Keystone URL that a 401 names (`WWW-Authenticate: Keystone uri="..."`), where clients should get a token: usually the public identity endpoint. Unset: auth_url. (Nova\'s deprecated `auth_uri` is read as this.)'),
    auth_type: optStr('How Porthole gets its own service token: `password` or `v3password` (username and password), or `v3applicationcredential` (application_credential_id or _name, and application_credential_secret). Other keystoneauth plugins stop the start.'),
    username: optStr('Porthole\'s service user (auth_type = password).'),
    user_id: optStr('Porthole\'s service user by id, instead of username.'),
    password: optStr('Password of the service user. Never logged.'),
    user_domain_name: optStr('Domain of username (usually `Default`).'),
    user_domain_id: optStr('Domain of username, by id.'),
    project_name: optStr('Project the service token is scoped to (usually `service`).'),
    project_id: optStr('Project the service token is scoped to, by id.'),
    project_domain_name: optStr('Domain of project_name (usually `Default`).'),
    project_domain_id: optStr('Domain of project_name, by id.'),
    application_credential_id: optStr('Application credential of the service user (auth_type = v3applicationcredential).'),
    application_credential_name: optStr('Application credential by name (with username or user_id and its domain).'),
    application_credential_secret: optStr('Secret of the application credential. Never logged.'),
    cafile: optStr('CA certificates (PEM) that Keystone\'s HTTPS certificate is checked against. Unset: the system\'s CAs.'),
    certfile: optStr('Client certificate (PEM) Porthole presents to Keystone over HTTPS.'),
    keyfile: optStr('Private key (PEM) of certfile.'),
    insecure: bool(false, 'Do not verify Keystone\'s HTTPS certificate. Never in production.'),
    token_cache_time: int(300, 'Seconds a validated token is remembered, so a caller\'s requests do not each ask Keystone (keystonemiddleware\'s option, same default): never past the token\'s own expiry, at most 10 000 tokens (the least recently used go first). A token Keystone refused is remembered for 5 seconds at most. A token revoked in Keystone keeps working here until its entry ages out, as with keystonemiddleware. -1: no cache.', -1),
    http_connect_timeout: float(5, 'Seconds to connect to Keystone, and again for Keystone to answer once connected. keystonemiddleware waits forever by default; Porthole does not.', 0.1, 300),
    http_request_max_retries: int(3, 'Times a Keystone request is tried again after a connection failure or a timeout (after 0.5 s, 1 s, 2 s, ...) before the caller gets 503.', 0, 10),
    memcached_servers: list([], 'keystonemiddleware\'s shared token cache. Accepted and ignored, with one warning: Porthole caches validated tokens in each process\'s memory (token_cache_time). (Nova\'s deprecated `memcache_servers` is read as this.)'),
    memcache_security_strategy: optStr('Accepted and ignored with memcached_servers (one warning when set).'),
    memcache_secret_key: optStr('Accepted and ignored with memcached_servers (one warning when set).'),
    service_token_roles: list(['service'], 'Roles an `X-Service-Token` must have (keystonemiddleware). Accepted and ignored, with one warning when set: Porthole reads no X-Service-Token; the caller\'s X-Auth-Token alone decides.'),
    service_token_roles_required: bool(false, 'Accepted and ignored, with one warning when set (see service_token_roles).'),
    region_name: optStr('Region of the identity endpoint in the catalog. Accepted and ignored, with one warning: Porthole talks to auth_url as given.'),
    interface: optStr('Catalog interface of the identity endpoint (keystonemiddleware\'s default: internal). Accepted and ignored, with one warning: Porthole talks to auth_url as given.'),
    delay_auth_decision: bool(false, 'Let the service decide about unauthenticated requests. Accepted and ignored, with one warning when true: Porthole always refuses them (401).'),
  },
  consoleauth: {
    token_ttl: int(600, 'Seconds a console token stays valid.', 1),
    enforce_session_timeout: bool(false, 'Close a live console session when its token expires (Nova 2024.1\'s option; the console page says why). Off: a session opened with a valid token lasts as long as the client stays, as in Nova before 2024.1.'),
  },
  database: {
    connection: str('', 'Token store (SQLAlchemy URL forms, as in nova.conf): `sqlite:////absolute/path.db`, `sqlite:///relative.db` (relative to the directory of the config file that names it; of a flag or environment variable: to the current directory), `postgresql://user:pw@host:5432/db` (also `postgresql+psycopg2://`), `mysql+pymysql://user:pw@host:3306/db` (also `mysql://`; MariaDB and MySQL), `redis://[:pw@]host:6379/0` (also `rediss://`). A Nova cell database is used as is: see `[porthole] nova_database`. Unset: SQLite in `porthole.db` of the state directory, the same file for the daemons and every command of one user wherever they start: `$STATE_DIRECTORY` (systemd\'s StateDirectory=), else `/var/lib/porthole` for root or a user who can write it, else `$XDG_STATE_HOME/porthole` (`~/.local/state/porthole`); the directory is created (0700). The start-up lines name the database in use.'),
  },
  console: {
    allowed_origins: list([], 'Extra hostnames allowed in the Origin header of console WebSocket connections, besides the Host header\'s.'),
    ssl_ciphers: optStr('OpenSSL cipher string (`openssl ciphers` format) for TLS 1.2 and below on the console proxies, e.g. `kEECDH+aECDSA+AES:kEECDH+AES+aRSA`; TLS 1.3 keeps its three suites unless the string names `TLS_*` suites itself. Unset: Mozilla\'s "intermediate" list (forward-secret AEAD suites only: ECDHE with AES-GCM or ChaCha20-Poly1305). Nova\'s unset means the TLS library\'s default list, which lets in RSA key exchange and CBC suites; Porthole\'s does not.'),
    ssl_minimum_version: choice('default', ['default', 'tlsv1_1', 'tlsv1_2', 'tlsv1_3'] as const, 'Oldest TLS version the console proxies accept. `default` is TLS 1.2 in Porthole (Mozilla\'s intermediate profile), where Nova\'s means the system OpenSSL\'s own minimum. `tlsv1_1` also needs ssl_ciphers with TLS 1.1 suites and `@SECLEVEL=0`: OpenSSL 3 refuses TLS 1.1 otherwise.'),
  },
  serial_console: {
    serialproxy_host: str('0.0.0.0', 'Address the serial console proxy binds to (nova-serialproxy\'s option).'),
    serialproxy_port: port(6083, 'Port the serial console proxy binds to.'),
    base_url: url('ws://127.0.0.1:6083/', 'Public base URL of serial console WebSockets; a console URL is `<base_url>?token=<token>`, as Nova forms it. When left at its default, Porthole uses the port it actually listens on.'),
  },
  spice: {
    html5proxy_host: str('0.0.0.0', 'Address the SPICE console proxy binds to (nova-spicehtml5proxy\'s option).'),
    html5proxy_port: port(6082, 'Port the SPICE console proxy binds to.'),
    html5proxy_base_url: url('http://127.0.0.1:6082/spice_auto.html', 'Public base URL of the SPICE console page; a console URL is `<html5proxy_base_url>?token=<token>`. When left at its default, Porthole uses the port it actually listens on.'),
  },
  remote_debug: {
    host: optStr('Address of a Python remote debugger (Nova\'s debugger option). Porthole is not Python: it says so once at start; use `node --inspect` instead.'),
    port: optStr('Port of the Python remote debugger (see host).'),
  },
  porthole: {
    serialproxy_enabled: bool(true, 'Serve serial consoles in `porthole serve` (on [serial_console] serialproxy_host:serialproxy_port). Nova\'s own `[serial_console] enabled` is a compute host\'s switch and does not turn this listener off.'),
    spicehtml5proxy_enabled: bool(true, 'Serve SPICE consoles in `porthole serve` (on [spice] html5proxy_host:html5proxy_port). Nova\'s own `[spice] enabled` is a compute host\'s switch and does not turn this listener off.'),
    serial_keep_attached: bool(false, 'Hold one connection to each registered serial console endpoint whether or not anyone watches, keep its last serial_log_bytes of output, show them to a viewer before the live stream, and let several viewers share the one connection (a QEMU chardev takes one client at a time).'),
    serial_log_bytes: int(1024 * 1024, 'Bytes of serial console output kept per server with serial_keep_attached.', 1024, 256 * 1024 * 1024),
    serial_log_dir: optStr('Directory where serial_keep_attached also writes each server\'s kept output, one file per server (`<server id>.log`), so it survives a restart. Unset: memory only.'),
    strict_config: bool(false, 'Stop at start, with status 1, on an option or section that is neither Porthole\'s nor Nova\'s in the sections Porthole reads (a typo such as `[vnc] novncproxy_prot`). False: one warning each, naming the closest known option.'),
    frame_ancestors: list([], 'Origins allowed to show the console page inside a frame (CSP `frame-ancestors`), e.g. `https://horizon.example.com` or `https://*.example.com:8443`. Empty (the default): no site may frame it (`frame-ancestors \'none\'`, `X-Frame-Options: DENY`), which stops clickjacking. Nova\'s proxy lets any site frame the page, and Horizon\'s console tab does: list Horizon\'s origin here when Porthole replaces nova-novncproxy behind Horizon.'),
    trusted_proxies: list([], 'Addresses of load balancers in front of the console proxies (e.g. HAProxy with `option forwardfor`): for connections from them, the client is the right-most X-Forwarded-For address that is not one of them, in logs, the sessions registry and the single-use reconnect check. Empty: X-Forwarded-For is ignored.'),
    failed_lookup_budget: int(20, 'Failed console token lookups (a token that is unknown, revoked or expired) one client address may make per failed_lookup_window, on a console WebSocket, the console page and /porthole/token-state together. Past it the address is refused with HTTP 429 (Retry-After), even with a valid token, until the window ends, and one warning is logged per address and window. An IPv6 client counts by its /64 network, an IPv4-mapped IPv6 address as the IPv4 address; loopback is not exempt. With a store of Porthole\'s own ([porthole] connection, or a [database] connection that is not a Nova database), every process and proxy sharing it counts together (each lets at most one more failure through before it learns the shared count); with a Nova database and no [porthole] connection, each process counts alone. Behind a load balancer set trusted_proxies, or every client counts as the balancer. 0: no limit.', 0),
    failed_lookup_window: int(60, 'Seconds of the window that failed_lookup_budget counts in. Windows are fixed periods of the clock, the same on every proxy, so a guesser may get up to twice the budget across the end of one window.', 1, 86400),
    api_enabled: bool(true, 'Serve the compute API in `porthole serve` (`porthole api` serves it alone, `porthole novncproxy` never).'),
    api_max_body_size: int(64 * 1024, 'Largest API request body, in bytes (Nova answers 413 above its limit).', 1024, 16 * 1024 * 1024),
    api_tokens_file: optStr('File of static API tokens for `[api] auth_strategy = static`: one per line, `<sha256 hex of the token> <user> <project> <role,role>`; `porthole api-token create` adds lines.'),
    jwt_secret: optStr('Shared secret for HS256 JWTs (`[api] auth_strategy = jwt`).'),
    jwt_public_key_file: optStr('PEM public key for RS256/ES256 JWTs (`[api] auth_strategy = jwt`).'),
    jwt_issuer: optStr('Required `iss` of JWTs, when set.'),
    jwt_audience: optStr('Required `aud` of JWTs, when set.'),
    jwt_roles_claim: str('roles', 'JWT claim holding the caller\'s roles (a list or a space-separated string); `admin` makes an admin.'),
    jwt_project_claim: str('project_id', 'JWT claim holding the caller\'s project.'),
    demo: bool(false, 'Start the built-in demo VNC server, register it in the inventory and print a console URL for it.'),
    demo_port: port(0, 'Port of the demo VNC server (0: any free port); it listens on 127.0.0.1 only.'),
    log_level: choice('info', ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const, 'Log level (`[DEFAULT] debug = true` means debug).'),
    auto_migrate: bool(true, 'Create or upgrade Porthole\'s tables at start (`porthole db migrate` does it explicitly).'),
    backend_connect_timeout: float(5, 'Seconds to wait for the TCP connection to a console backend.', 0.1, 300),
    handshake_timeout: float(10, 'Seconds a client may take to send its HTTP request headers, and a backend to answer an internal_access_path CONNECT.', 0.1, 300),
    max_message_size: int(4 * 1024 * 1024, 'Largest WebSocket message accepted from a client, in bytes.', 1024, 256 * 1024 * 1024),
    token_sweep_interval: int(300, 'Seconds between sweeps of expired tokens from the store (0: never).', 0),
    max_header_size: int(16 * 1024, 'Largest HTTP request header block accepted, in bytes.', 1024, 1024 * 1024),
    rfb_handshake_timeout: float(10, 'Seconds for each side of the RFB handshake of the security proxy: the VNC server from TCP connect to SecurityResult (TLS included), then the browser up to ClientInit, then the server\'s ServerInit.', 0.1, 300),
    screenshot_timeout: float(10, 'Seconds a screenshot (`GET /porthole/v1/servers/{id}/screenshot`, `porthole server screenshot`) may take when it needs a connection of its own to the VNC server: from the dial to the last pixel of one full screen update. Past it: HTTP 504, and the connection is closed.', 0.1, 300),
    vencrypt_verify_hostname: bool(false, 'Also check that the VNC server\'s certificate names the console\'s host (a server with its own TLS server name in the inventory has that name checked either way). Off by default, as in Nova: compute certificates often name the host rather than the VNC listen address; the certificate chain is verified against [vnc] vencrypt_ca_certs either way.'),
    vencrypt_allow_insecure_tls: bool(false, 'Allow VeNCrypt\'s anonymous-TLS subtypes (TLSNone, TLSVnc, TLSPlain): encrypted, but with no server certificate, so anyone in the path can intercept them.'),
    vnc_password_file: optStr('File holding the VNC password used for servers that have none of their own in the inventory (security type VncAuth, VeNCrypt X509Vnc, and the X509Plain password); one line, read at start. VNC authentication uses the first 8 bytes.'),
    vnc_username: optStr('User name for VeNCrypt X509Plain for servers that have none of their own in the inventory.'),
    connection: optStr('Where Porthole keeps its own tables (the inventory, the uses of single-use tokens), as a `[database] connection` URL. Unset: beside the tokens in `[database] connection`, unless that is a Nova database, where Porthole creates nothing: then the inventory is off (and with it the console-port check of CVE-2013-0335) and single-use tokens are unavailable.'),
    nova_database: choice('auto', ['auto', 'true', 'false'] as const, 'Whether `[database] connection` is a Nova cell database, whose schema Porthole never migrates or alters (it reads, inserts and deletes rows of `console_auth_tokens` only, as Nova does). `auto`: yes when it has Nova\'s `instances` table (looked up at start, so the database must be reachable then); `true`: always (also starts while the database is down); `false`: never.'),
    single_use_tokens: bool(false, 'A console token opens one session: the first successful connection consumes it, atomically across every proxy sharing the store (Nova\'s tokens are reusable until they expire: false).'),
    reconnect_grace_seconds: int(30, 'With single_use_tokens: seconds after its session ended during which a consumed token may connect again, from the same client address only (a network blip; the console page reconnects by itself). 0: never.', 0, 86400),
    store_pool_size: int(10, 'Most connections this process opens to a PostgreSQL or MariaDB/MySQL store; further queries wait for a free one (within store_query_timeout).', 1, 1000),
    store_connect_timeout: float(5, 'Seconds to open a connection to a PostgreSQL, MariaDB/MySQL or Redis store (TCP, TLS and login).', 0.1, 300),
    store_query_timeout: float(5, 'Seconds one store operation (a token lookup, a mint, a revocation) may take, waiting for a pooled connection included; after it the operation fails with STORE_UNAVAILABLE: a console connection is refused with 503, an API call answers 503.', 0.1, 300),
    store_idle_timeout: float(30, 'Seconds an unused pooled connection to PostgreSQL or MariaDB/MySQL stays open.', 1, 86400),
    store_reconnect_max_delay: float(2, 'Longest wait, in seconds, between attempts to reconnect to a Redis store that went away (the waits grow 0.1 s, 0.2 s, ... up to this). SQL pools need none: a broken connection is dropped and the next query opens a new one.', 0.1, 300),
    redis_key_prefix: str('porthole:', 'Prefix of every Redis key Porthole writes, so several Porthole installations (or test runs) can share one Redis database.'),
    drain_seconds: int(30, 'On SIGTERM, a console proxy stops accepting connections at once and lets its live sessions run for up to this many seconds before closing them (WebSocket close 1001 "proxy shutting down"); the console page reconnects through another proxy. 0: close them at once. SIGINT (Ctrl-C) closes at once, also during a drain; under systemd, keep TimeoutStopSec above this.', 0, 86400),
    workers: int(1, 'Processes serving the daemons\' listeners (`serve`, `novncproxy`, `api`), for when one CPU core is the limit. 1: one process, as always. N > 1: a primary process supervises N worker processes (node:cluster) that share the same ports; each worker is a proxy of its own in the live-sessions registry, and one console is served by one worker. 0: one per CPU (os.availableParallelism(), at most 64).', 0, 64),
    session_heartbeat_interval: float(5, 'Seconds between a proxy\'s heartbeats in the live-sessions registry (Porthole\'s own store): each writes its sessions\' byte counts, and checks that their tokens were not deleted by someone who did not tell (Nova). A proxy that missed 3 heartbeats is gone from the registry with its sessions.', 0.2, 300),
    new_link_url: { kind: 'url', default: null, help: 'Where the person at the console gets a new console link (your portal\'s page of the server, an http or https URL): the console page shows it as a "Get a new link" button when its link is expired, revoked, unknown, damaged or used up. Unset: the page asks them to get a new link from where they got this one.' } as OptionSpec<string | null>,
    console_page: choice('porthole', ['porthole', 'web'] as const, 'Which noVNC page answers at /vnc_auto.html and /vnc.auto.html (the paths Nova hands out) when `[DEFAULT] web` holds noVNC\'s own app (vnc.html, vnc_lite.html, app/, core/: Debian\'s /usr/share/novnc), whose vnc.html and vnc_lite.html are then served at their own paths as websockify serves them. `porthole`: Porthole\'s page, which says the token\'s state in words; `web`: the app\'s vnc_lite.html. Without the app in `[DEFAULT] web`, Porthole\'s page answers at every path.'),
    clipboard: choice('both', ['both', 'to-vm', 'from-vm', 'off'] as const, 'Which ways the clipboard may go on noVNC (RFB) consoles, enforced by the proxy on the RFB stream (cut-text messages left out) and shown by the console page: `both`; `to-vm` (the browser may paste into the VM, the VM\'s clipboard never reaches the browser); `from-vm` (the reverse); `off`. Other than `both`, the proxy reads the message framing (the client may then ask only for the encodings Raw, CopyRect, RRE, Hextile, Tight and ZRLE), and a stream it cannot frame closes the session.'),
    revocation_poll_interval: float(0.5, 'Seconds between a proxy\'s reads of the revocations and kills of the live-sessions registry on SQLite and MariaDB/MySQL (PostgreSQL and Redis tell proxies at once: LISTEN/NOTIFY, pub/sub). Keep it at most 1 for revocations that close live sessions within a second.', 0.05, 60),
    metrics_enabled: bool(true, 'Serve Prometheus metrics at `/metrics` (and the probes `/healthz`, `/readyz`, which are always served): on metrics_listen when it is set, else on every console listener\'s port and the compute API\'s port. The metrics hold counts and durations only: no token, server id or client address.'),
    metrics_listen: optStr('`HOST:PORT` of a listener of its own for `/metrics`, `/healthz` and `/readyz` (e.g. `127.0.0.1:9180`), kept off the ports browsers reach; then the console and API ports no longer serve `/metrics`. Unset: `/metrics` on every listener\'s port.'),
    audit_log: optStr('Where the audit trail goes besides the store: one JSON line per security event (token minted, used, refused, revoked, consumed; console session opened, closed, killed). A file path (appended to, created 0600, reopened on SIGHUP), `syslog` or `journal`. Unset: the store only (`GET /porthole/v1/events`, `porthole events list`) and the main log.'),
    audit_retention_days: int(30, 'Days the store keeps audit events (the events API\'s history); older ones are deleted by the sweep. 0: kept until deleted by hand.', 0, 36500),
    max_consoles: int(10000, 'Most live console sessions in total: on every proxy sharing Porthole\'s own store together (SQLite: the processes on this host), else per process. Past it a new console is refused with HTTP 503 (the page says the service is full). 0: no limit.', 0),
    max_consoles_per_server: int(50, 'Most live console sessions of one server (instance), counted as max_consoles is. Past it: HTTP 429. 0: no limit.', 0),
    max_consoles_per_client: int(200, 'Most live console sessions from one client address (an IPv6 client by its /64; behind a load balancer set trusted_proxies), counted as max_consoles is. Past it: HTTP 429. 0: no limit.', 0),
    max_consoles_per_project: int(1000, 'Most live console sessions of the servers of one project (the inventory\'s project_id; servers without one are not counted), counted as max_consoles is. Past it: HTTP 429. 0: no limit.', 0),
    console_idle_timeout: int(0, 'Seconds without input from the browser (keys, pointer, clipboard; an RFB client\'s screen update requests, continuous-update switches and fence replies are not input; on serial every byte is input, on SPICE every message of the channel) after which a console session is closed (WebSocket 1008 "console idle timeout"; the page says why). 0 (the default): never.', 0, 31 * 86400),
    max_console_duration: int(0, 'Longest a console session may last, in seconds, whatever happens in it (WebSocket 1008 "console session reached its maximum duration"; the page says why). 0 (the default): no limit.', 0, 366 * 86400),
    api_console_requests_per_minute: int(120, 'Remote-console requests (POST remote-consoles and the os-get*Console actions) one project may make per clock minute on the compute API; past it HTTP 429 with Retry-After and Nova\'s overLimit body. Counted in Porthole\'s own store: across hosts on PostgreSQL, MariaDB/MySQL or Redis, across the processes of one host on SQLite; per process with a Nova database and no [porthole] connection. 0: no limit.', 0),
    api_cert: optStr('TLS certificate (PEM; intermediates after it) of the compute API listener: set, the API speaks HTTPS only, with the console proxies\' `[console] ssl_ciphers` and `ssl_minimum_version`. Unset: plain HTTP, unless api_use_console_cert. The file (and api_key) is read again when it changes and on SIGHUP, without a restart. A file that cannot be read or does not match its key stops the start.'),
    api_key: optStr('Private key (PEM, unencrypted) of api_cert; unset: read from the api_cert file.'),
    api_use_console_cert: bool(false, 'Serve the compute API over HTTPS with the console proxies\' `[DEFAULT] cert` and `key` when api_cert is unset (the file must then exist). Off by default, so that a deployment whose console proxies have a certificate and whose API sits behind a TLS-terminating load balancer keeps a plain HTTP API.'),
    shared_consoles: bool(false, 'Every viewer of a server\'s noVNC console goes through one backend connection that Porthole holds (a shared console): one viewer has control (keys, pointer, clipboard), the others watch, control can be asked for and handed over, and every viewer sees who else is there. Per server with `porthole server add --shared-consoles`. Off (the default): each console is its own byte-exact relay.'),
    recording_dir: optStr('Directory of console recordings (servers added with `--record`, tokens minted with `--record`) when `[DEFAULT] record` is unset; created 0700, files 0600. Unset: `recordings/` in Porthole\'s state directory.'),
    recording_retention_days: int(30, 'Days a recording is kept; older ones are deleted (file and listing) by the sweep. 0: kept until deleted.', 0, 36500),
    recording_max_total_size: int(10240, 'Most MiB all recordings of this host may take; past it the oldest finished recordings are deleted by the sweep. 0: no limit.', 0),
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
