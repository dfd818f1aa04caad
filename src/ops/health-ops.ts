/**
 * @module ops/health-ops
 * The operations parts of one gateway, made from its config: the metrics (`metrics.ts`, off with
 * `[porthole] metrics_enabled = false`), readiness (`health.ts`), the endpoints (`health-endpoints.ts`)
 * as each port serves them, and where `[porthole] metrics_listen` asks for a listener of their
 * own. The gateway wires them: the metrics' watcher into the console events, the handler into
 * each console listener, `api` into the compute API, the listeners into readiness.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import { GatewayError } from '../errors.ts';
import { OpsEndpoints, type MetricsSource, type OpsAnswer, type OpsHandler } from './health-endpoints.ts';
import { Health } from './health.ts';
import { GatewayMetrics } from './metrics.ts';
import { inClusterWorker, WorkerMetrics } from './metrics-worker.ts';

export interface OpsParts {
  /** The console kinds whose listeners run here. */
  readonly consoles: readonly string[];
  readonly api: boolean;
  /** The token store's kind, for the metrics' `store` label (`postgres`, `nova-mysql`). */
  readonly store: string;
  /** A cheap read the token store answers within its query timeout (`tokenLookupCheck`). */
  readonly storeCheck: () => Promise<unknown>;
  readonly log: Logger;
  /** This process is a worker of `[porthole] workers`: `/metrics` answers the sum of all workers. */
  readonly clusterWorker?: boolean;
}

/** What the compute API is handed: its ops paths and their answers, and the request counter. */
export interface ApiOps {
  readonly paths: readonly string[];
  answer(path: string): Promise<OpsAnswer>;
  apiRequest(route: string, method: string, status: number, ms: number): void;
}

export interface Ops {
  /** null: `metrics_enabled = false`. */
  readonly metrics: GatewayMetrics | null;
  readonly health: Health;
  readonly endpoints: OpsEndpoints;
  /** For each console listener, before its pages. */
  readonly consoleHandler: OpsHandler;
  readonly api: ApiOps;
  /**
   * `[porthole] metrics_listen`, parsed when asked (a bad value is CONFIG_INVALID, thrown where
   * the gateway opens listeners and closes what it opened); null: unset.
   */
  listenAddress(): { readonly host: string; readonly port: number } | null;
  close(): void;
}

export function createOps(config: Config, parts: OpsParts): Ops {
  const p = config.porthole;
  const listen = p.metrics_listen === null || p.metrics_listen.trim() === '' ? null : p.metrics_listen;
  const metrics = p.metrics_enabled ? new GatewayMetrics({ consoles: parts.consoles, api: parts.api, store: parts.store }) : null;
  const worker = metrics && (parts.clusterWorker ?? inClusterWorker()) ? new WorkerMetrics(metrics) : null;
  const source: MetricsSource | null = worker ?? metrics;
  const health = new Health({ storeCheck: parts.storeCheck, log: parts.log });
  const endpoints = new OpsEndpoints(health, source);
  // with a listener of their own, /metrics is served there only; the probes stay on every port
  const elsewhere = listen === null;
  const apiPaths = endpoints.paths(elsewhere);
  return {
    metrics,
    health,
    endpoints,
    consoleHandler: endpoints.handler(elsewhere),
    api: {
      paths: apiPaths,
      answer: (path) => endpoints.answer(path),
      apiRequest: (route, method, status, ms) => metrics?.apiRequest(route, method, status, ms),
    },
    listenAddress: () => (listen === null ? null : parseListen(listen)),
    close: () => worker?.close(),
  };
}

/** `HOST:PORT`, `[v6]:PORT`. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new GatewayError('CONFIG_INVALID', `[porthole] metrics_listen = ${value}: expected HOST:PORT (e.g. 127.0.0.1:9180, [::1]:9180, 0.0.0.0:9180)`);
  return { host: (m[1] ?? m[2])!, port };
}
