/**
 * @module inventory/types
 * Servers Porthole knows about and where their consoles listen. The proxy uses a server's
 * current `consoleEndpoint` to refuse a token whose host:port no longer belongs to that server
 * (Nova's fix for CVE-2013-0335: a VNC port reused by another VM after a move or a restart).
 */

export interface ConsoleEndpoint {
  readonly host: string;
  readonly port: number;
}

/** A SPICE console: its plain port and, where QEMU has one, its TLS port (Nova 2.99's `tls_port`). */
export interface SpiceEndpoint extends ConsoleEndpoint {
  readonly tlsPort?: number | null;
}

/**
 * Names of the backend auth schemes a server's settings and `[vnc] auth_schemes` may list:
 * Nova's two (`none`, `vencrypt`) plus `vnc` (VNC password). The RFB security proxy implements
 * them (`rfb/auth/`; `rfb/types.ts` re-exports these names); the API and the CLI check a
 * server's list against them.
 */
export const AUTH_SCHEMES = ['none', 'vnc', 'vencrypt'] as const;
export type AuthSchemeName = (typeof AUTH_SCHEMES)[number];

export function isAuthSchemeName(s: string): s is AuthSchemeName {
  return (AUTH_SCHEMES as readonly string[]).includes(s);
}

/**
 * How the proxy authenticates to a server's VNC console (the RFB security proxy); every field
 * left null falls back to the config (`[vnc] auth_schemes`, `[porthole] vnc_password_file`, ...).
 */
export interface BackendAuth {
  /** RFB schemes allowed for this server (`none`, `vnc`, `vencrypt`); null: `[vnc] auth_schemes`. */
  readonly authSchemes: readonly string[] | null;
  /** VeNCrypt X509Plain user name. */
  readonly vncUsername: string | null;
  /**
   * VNC password (and X509Plain password). Held in clear because VNC authentication needs it to
   * answer the server's challenge; never logged, never printed, never returned by an API: show
   * `backendAuthSummary` instead.
   */
  readonly vncPassword: string | null;
  /** Name the VNC server's certificate must carry; also sent as SNI. Setting it turns the name check on. */
  readonly tlsServerName: string | null;
}

export interface Server {
  /** UUID, as Nova's instance uuid. */
  readonly id: string;
  readonly name: string;
  readonly projectId: string | null;
  /** Nova's server status words: ACTIVE, SHUTOFF, PAUSED, ... */
  readonly status: string;
  readonly vnc: ConsoleEndpoint | null;
  /** The serial console's TCP endpoint (QEMU `-chardev socket,server=on` or `-serial tcp:`). */
  readonly serial?: ConsoleEndpoint | null;
  readonly spice?: SpiceEndpoint | null;
  /** Absent or null: the config's defaults. `put` replaces it with the rest of the server. */
  readonly backendAuth?: BackendAuth | null;
  /** Its noVNC viewers share one backend connection (`server add --shared-consoles`); absent or null: `[porthole] shared_consoles`. */
  readonly sharedConsoles?: boolean | null;
  /** Its noVNC sessions are recorded (`server add --record`); absent or null: `[DEFAULT] record` decides. */
  readonly record?: boolean | null;
}

/** A server's backend auth settings as the CLI and APIs may show them: whether a password is set, never the password. */
export function backendAuthSummary(auth: BackendAuth | null | undefined): { auth_schemes: string[] | null; vnc_username: string | null; vnc_password_set: boolean; tls_server_name: string | null } {
  return {
    auth_schemes: auth?.authSchemes ? [...auth.authSchemes] : null,
    vnc_username: auth?.vncUsername ?? null,
    vnc_password_set: auth?.vncPassword != null,
    tls_server_name: auth?.tlsServerName ?? null,
  };
}

export interface Inventory {
  /** Adds or replaces a server (keyed by id). */
  put(server: Server): Promise<void>;
  get(id: string): Promise<Server | undefined>;
  list(): Promise<Server[]>;
  remove(id: string): Promise<boolean>;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

/** Parses `HOST:PORT` or `[IPV6]:PORT`. */
export function parseEndpoint(text: string): ConsoleEndpoint | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:\s]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}

export function formatEndpoint(e: ConsoleEndpoint): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** Parses a SPICE endpoint as `porthole server add --spice` takes it: `HOST:PORT[,tls=PORT]`. */
export function parseSpiceEndpoint(text: string): SpiceEndpoint | undefined {
  const m = /^(.*?)(?:,tls=(\d{1,5}))?$/.exec(text)!;
  const plain = parseEndpoint(m[1]!);
  if (!plain) return undefined;
  const tlsPort = m[2] === undefined ? null : Number(m[2]);
  if (tlsPort !== null && (tlsPort < 1 || tlsPort > 65535)) return undefined;
  return { ...plain, tlsPort };
}

/** `HOST:PORT[,tls=PORT]`, the form `parseSpiceEndpoint` reads. */
export function formatSpiceEndpoint(e: SpiceEndpoint): string {
  return e.tlsPort != null ? `${formatEndpoint(e)},tls=${e.tlsPort}` : formatEndpoint(e);
}
