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

export interface Server {
  /** UUID, as Nova's instance uuid. */
  readonly id: string;
  readonly name: string;
  readonly projectId: string | null;
  /** Nova's server status words: ACTIVE, SHUTOFF, PAUSED, ... */
  readonly status: string;
  readonly vnc: ConsoleEndpoint | null;
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
