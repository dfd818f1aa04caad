/**
 * @module ops/health-endpoints
 * The operations endpoints of a process, as answers any of its HTTP servers can give:
 * `/healthz` (200 `ok`: the process answers), `/readyz` (200 `ready`, or 503 with the reasons, one
 * a line: `health.ts`) and `/metrics` (Prometheus's text format; with `[porthole] workers`, the
 * sum over every worker, which the cluster primary makes: `metrics-worker.ts`).
 *
 * They are served on every console listener's port (the console pages get every other path) and
 * on the compute API's port, or, with `[porthole] metrics_listen`, on a listener of their own
 * (`createServer`), and then `/metrics` only there: the probes stay on every port, because a
 * balancer checks the very port it sends consoles to. `[porthole] metrics_enabled = false`: no
 * `/metrics` anywhere, the probes stay.
 *
 * The answers carry no token, server id or address, and take no input but the path: the query
 * string is ignored, the body is never read.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isGatewayError } from '../errors.ts';
import type { Health } from './health.ts';

export const OPS_PATHS = { health: '/healthz', ready: '/readyz', metrics: '/metrics' } as const;

/** An endpoint's answer, for a plain `node:http` response or Fastify's reply. */
export interface OpsAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** Where `/metrics` comes from: this process's registry, or the cluster's sum. */
export interface MetricsSource {
  readonly contentType: string;
  text(): Promise<string>;
}

/** A `node:http` request handler that takes the requests for its paths: false, not one of them. */
export type OpsHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const TEXT = 'text/plain; charset=utf-8';

export class OpsEndpoints {
  constructor(
    private readonly health: Health,
    /** null: `/metrics` is served nowhere (`metrics_enabled = false`). */
    private readonly metrics: MetricsSource | null,
  ) {}

  /** The paths a port serves: the probes always, `/metrics` where `withMetrics` and metrics are on. */
  paths(withMetrics: boolean): string[] {
    const paths: string[] = [OPS_PATHS.health, OPS_PATHS.ready];
    if (withMetrics && this.metrics) paths.push(OPS_PATHS.metrics);
    return paths;
  }

  async answer(path: string): Promise<OpsAnswer> {
    if (path === OPS_PATHS.health) return { status: 200, contentType: TEXT, body: 'ok\n' };
    if (path === OPS_PATHS.ready) {
      const r = await this.health.readiness();
      return r.ready ? { status: 200, contentType: TEXT, body: 'ready\n' } : { status: 503, contentType: TEXT, body: `not ready\n${r.reasons.map((x) => `${x}\n`).join('')}` };
    }
    if (path === OPS_PATHS.metrics && this.metrics) {
      try {
        return { status: 200, contentType: this.metrics.contentType, body: await this.metrics.text() };
      } catch (err) {
        // a partial sum would look like a counter reset to Prometheus: no answer is better (`up`
        // 0); the words are Porthole's own (`metrics-cluster.ts`, `metrics-worker.ts`)
        const why = isGatewayError(err) ? err.clientMessage : err instanceof Error ? err.message : 'metrics unavailable';
        return { status: 503, contentType: TEXT, body: `${why}\n` };
      }
    }
    return { status: 404, contentType: TEXT, body: 'not found\n' };
  }

  /** The handler a console listener puts before its pages. */
  handler(withMetrics: boolean): OpsHandler {
    const paths = new Set(this.paths(withMetrics));
    return (req, res) => {
      const path = (req.url ?? '/').split('?', 1)[0]!;
      if (!paths.has(path)) return false;
      this.respond(path, req, res);
      return true;
    };
  }

  /**
   * A listener of the endpoints' own (`[porthole] metrics_listen`), not yet listening: the gateway
   * binds, owns and closes it. Every other path is a 404; requests are bounded in size and time.
   */
  createServer(): Server {
    const handle = this.handler(true);
    const server = createServer({ maxHeaderSize: 8192, requestTimeout: 10_000, headersTimeout: 5000, connectionsCheckingInterval: 1000 }, (req, res) => {
      if (!handle(req, res)) send(req, res, { status: 404, contentType: TEXT, body: 'not found\n' });
    });
    server.keepAliveTimeout = 5000;
    return server;
  }

  private respond(path: string, req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(req, res, { status: 405, contentType: TEXT, body: 'method not allowed\n' });
      return;
    }
    this.answer(path).then(
      (a) => send(req, res, a),
      () => send(req, res, { status: 500, contentType: TEXT, body: 'internal error\n' }),
    );
  }
}

function send(req: IncomingMessage, res: ServerResponse, a: OpsAnswer): void {
  if (res.headersSent || res.destroyed) return;
  // probes and scrapers read the whole answer; nothing is cached in between
  res.writeHead(a.status, { 'Content-Type': a.contentType, 'Content-Length': Buffer.byteLength(a.body), 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : a.body);
}

/** Closes a server of `createServer`: no new connections, and the kept-alive ones of scrapers end now. */
export function closeOpsServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
