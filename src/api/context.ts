/**
 * @module api/context
 * What the API's routes are handed (no globals), and the per-request facts the hooks attach:
 * the caller and the microversion.
 */
import type {} from '@fastify/swagger';
import type { Config } from '../config/options.ts';
import type { ConsoleKind } from '../consoles/types.ts';
import type { Sessions } from '../sessions/service.ts';
import type { Stores } from '../store/index.ts';
import type { Caller } from './auth.ts';
import type { Microversion } from './microversion.ts';

export interface ApiContext {
  readonly config: Config;
  readonly stores: Stores;
  /** The live-sessions registry (list, kill); absent: the admin API has no session routes. */
  readonly registry?: Sessions;
  /**
   * The kept serial log of a server (`GET /porthole/v1/servers/{id}/serial-log`): from this
   * process's kept consoles or `[porthole] serial_log_dir`; undefined: none kept here. Absent:
   * this process keeps no serial log at all.
   */
  serialLog?(serverId: string): Promise<Buffer | undefined>;
  /** Base of a console kind's URLs (`[vnc] novncproxy_base_url`, or the running proxy's). */
  consoleBaseUrl(kind: ConsoleKind): string;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller;
    microversion: Microversion;
  }
  interface FastifyContextConfig {
    /** Served without credentials (version documents, OpenAPI). */
    public?: boolean;
  }
}

/** The two URL forms of every compute route: with and without `{project_id}` (Huawei ECS uses the latter). */
export const COMPUTE_PREFIXES = ['/v2.1', '/v2.1/:project_id'] as const;
