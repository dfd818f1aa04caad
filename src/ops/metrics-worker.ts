/**
 * @module ops/metrics-worker
 * A cluster worker's side of the summed `/metrics` (`metrics-cluster.ts` has the protocol and the
 * primary's side): it answers the primary's `metrics-collect` with its own registry, and a scrape
 * it receives becomes a `metrics-scrape` to the primary, answered with the sum. The wait is
 * bounded (`SCRAPE_TIMEOUT_MS`, above the primary's own collection timeout); past it the scrape
 * fails (503), as a partial sum would.
 */
import cluster from 'node:cluster';
import type { MetricsSource } from './health-endpoints.ts';
import { COLLECT_TIMEOUT_MS, isMetricsMessage, type MetricsMessage } from './metrics-cluster.ts';
import type { GatewayMetrics } from './metrics.ts';

/** How long a worker waits for the primary's sum. */
export const SCRAPE_TIMEOUT_MS = COLLECT_TIMEOUT_MS + 1000;

/** This process is a worker of `[porthole] workers`, with its IPC channel to the primary. */
export function inClusterWorker(): boolean {
  return cluster.isWorker && typeof process.send === 'function';
}

export class WorkerMetrics implements MetricsSource {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  private readonly onMessage = (m: unknown) => this.message(m);

  constructor(private readonly own: GatewayMetrics) {
    process.on('message', this.onMessage);
  }

  get contentType(): string {
    return this.own.contentType;
  }

  /** The sum of every worker's metrics, from the primary. */
  text(): Promise<string> {
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`metrics unavailable: the primary did not answer within ${SCRAPE_TIMEOUT_MS} ms`));
      }, SCRAPE_TIMEOUT_MS);
      this.waiting.set(id, { resolve, reject, timer });
      this.send({ porthole: 'metrics-scrape', id }, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.waiting.delete(id);
        reject(new Error('metrics unavailable: no channel to the primary'));
      });
    });
  }

  /** Stops answering the primary; scrapes still waiting fail. */
  close(): void {
    process.off('message', this.onMessage);
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new Error('metrics unavailable: the worker is stopping'));
    }
    this.waiting.clear();
  }

  private message(m: unknown): void {
    if (!isMetricsMessage(m)) return;
    if (m.porthole === 'metrics-collect') {
      this.own.json().then(
        (metrics) => this.send({ porthole: 'metrics-json', id: m.id, metrics }),
        // said at once, so the primary does not wait out its timeout
        (err: Error) => this.send({ porthole: 'metrics-json', id: m.id, metrics: [], error: err.message }),
      );
    } else if (m.porthole === 'metrics-text') {
      const w = this.waiting.get(m.id);
      if (!w) return;
      clearTimeout(w.timer);
      this.waiting.delete(m.id);
      if (m.text !== undefined) w.resolve(m.text);
      else w.reject(new Error(m.error ?? 'metrics unavailable'));
    }
  }

  private send(m: MetricsMessage, cb?: (err: Error | null) => void): void {
    if (!process.connected || !process.send) {
      cb?.(new Error('disconnected'));
      return;
    }
    process.send(m, undefined, undefined, (err) => cb?.(err ?? null));
  }
}
