/**
 * @module api/context
 * What the API's routes are handed (no globals), and the per-request facts the hooks attach:
 * the caller and the microversion.
 */
import type {} from '@fastify/swagger';
import type { ServerOptions } from 'node:https';
import type { Config } from '../config/options.ts';
import type { ConsoleKind } from '../consoles/types.ts';
import type { Sessions } from '../sessions/service.ts';
import type { Server } from '../inventory/types.ts';
import type { AuditBy, AuditRecorder } from '../store/audit-events.ts';
import type { Stores } from '../store/index.ts';
import type { Caller } from './auth.ts';
import type { Microversion } from './microversion.ts';

export interface ApiContext {
  readonly config: Config;
  readonly stores: Stores;
  /** The live-sessions registry (list, kill); absent: the admin API has no session routes. */
  readonly registry?: Sessions;
  /** The audit trail (token minted, revoked; session killed, by whom); absent: not recorded. */
  readonly audit?: AuditRecorder;
  /**
   * The kept serial log of a server (`GET /porthole/v1/servers/{id}/serial-log`): from this
   * process's kept consoles or `[porthole] serial_log_dir`; undefined: none kept here. Absent:
   * this process keeps no serial log at all.
   */
  serialLog?(serverId: string): Promise<Buffer | undefined>;
  /**
   * A PNG of `server`'s VNC console (`GET /porthole/v1/servers/{id}/screenshot`): the screenshot
   * service of `src/proxy/screenshots.ts`, handed over by the gateway as a function (the API
   * never imports the proxy). Absent: this process takes no screenshots (409).
   */
  screenshot?(server: Server, request: { readonly width?: number; readonly by?: AuditBy }): Promise<{ readonly png: Buffer; readonly width: number; readonly height: number; readonly source: 'live' | 'connection' }>;
  /** Base of a console kind's URLs (`[vnc] novncproxy_base_url`, or the running proxy's). */
  consoleBaseUrl(kind: ConsoleKind): string;
  /** The operations endpoints and the request metrics (`src/ops/`, wired by the gateway); absent: none. */
  readonly ops?: ApiOps;
  /** The API's certificate, key and TLS policy (`api/tls.ts`, read by `http/tls.ts`): given, it serves HTTPS only. */
  readonly https?: ServerOptions;
}

/** What the API serves of the operations endpoints, and tells the metrics. */
export interface ApiOps {
  /** Served without credentials: `/healthz`, `/readyz`, and `/metrics` unless it is served elsewhere. */
  readonly paths: readonly string[];
  answer(path: string): Promise<{ readonly status: number; readonly contentType: string; readonly body: string }>;
  /** Told once per answered request: the route pattern (never the URL: it may hold a token), method, status, ms. */
  apiRequest(route: string, method: string, status: number, ms: number): void;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller;
    microversion: Microversion;
  }
  interface FastifyContextConfig {
    /** Served without credentials (version documents, OpenAPI). */
    public?: boolean;
    /** A probe or scrape (`/healthz`, `/readyz`, `/metrics`): logged at debug, not once per check at info. */
    probe?: boolean;
  }
}

/** The two URL forms of every compute route: with and without `{project_id}` (Huawei ECS uses the latter). */
export const COMPUTE_PREFIXES = ['/v2.1', '/v2.1/:project_id'] as const;
