/**
 * @module consoles/types
 * A console kind: what one kind of console (noVNC now; serial and SPICE next) declares so that
 * the gateway, the workers, the API and the CLI iterate over kinds instead of naming VNC. One
 * file per kind in `src/consoles/`, listed in `index.ts`.
 */
import type { LoadedConfig } from '../config/load.ts';
import type { Config } from '../config/options.ts';
import type { ConsoleEndpoint, Server } from '../inventory/types.ts';
import type { ConsolePage } from '../web/pages.ts';

export interface ConsoleListenerSettings {
  readonly enabled: boolean;
  readonly host: string;
  readonly port: number;
  /** The options host and port come from, for messages (`[vnc] novncproxy_port`). */
  readonly options: { readonly host: string; readonly port: string };
}

export interface ConsoleKind {
  /** The kind's name, as logs and the gateway's proxies map name it (`novnc`). */
  readonly name: string;
  /** The Nova API protocol of its consoles (`vnc`, `serial`, `spice`). */
  readonly protocol: string;
  /** The token console types its listener serves (`console_auth_tokens.console_type`). */
  readonly consoleTypes: readonly string[];
  /** Words for logs and messages (`noVNC console proxy`). */
  readonly title: string;
  /** Its listener's options (`[vnc] novncproxy_host`, ...). */
  listener(config: Config): ConsoleListenerSettings;
  /** The base of its console URLs; `listeningPort`: the port the listener actually has. */
  baseUrl(loaded: LoadedConfig, listeningPort?: number): string;
  /** A console URL for `token`, as Nova forms it for this kind. */
  accessUrl(base: string, token: string): string;
  /** A server's console endpoint of this kind in the inventory (null: it has none). */
  endpoint(server: Server): ConsoleEndpoint | null;
  /**
   * Paths that take the console WebSocket; `any`: every path, as websockify takes an upgrade
   * wherever it comes (for a kind whose console URL is the WebSocket URL itself, whose path the
   * operator's base URL decides).
   */
  readonly paths: readonly string[] | 'any';
  /** Whether the RFB security proxy runs between the browser and the backend. */
  readonly rfb: boolean;
  /** Its console page: the paths clouds hand out and the page's file in `src/web/static/`. */
  readonly page: ConsolePage;
}
