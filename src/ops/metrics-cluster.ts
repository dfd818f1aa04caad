/**
 * @module ops/metrics-cluster
 * `/metrics` with `[porthole] workers = N`: one scrape of any worker answers the sum of all
 * workers, which the primary makes. The worker that got the scrape asks the primary
 * (`metrics-scrape`); the primary asks every worker that listens for its registry as prom-client's
 * JSON (`metrics-collect`), sums them with prom-client's `AggregatorRegistry.aggregate` (counters
 * and histograms summed, gauges by each metric's own aggregator) and sends the text back
 * (`metrics-text`). Concurrent scrapes share one collection.
 *
 * The messages are Porthole's own, on the cluster's IPC channel beside the workers' `ready`
 * (`workers.ts`), each marked `porthole: 'metrics-…'`: prom-client's own cluster listeners
 * (`AggregatorRegistry`'s constructor, which reads its module-wide list of registries) are never
 * installed, so nothing here is global. A collection waits `COLLECT_TIMEOUT_MS` at most; a worker
 * that does not answer by then fails the scrape (503) rather than leave its counts out: a sum
 * missing a worker looks like a counter reset to Prometheus, and its rates would jump when the
 * worker is counted again.
 */
import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/** One metric as prom-client's `getMetricsAsJSON` gives it. */
export type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

/** How long the primary waits for every worker's metrics. */
export const COLLECT_TIMEOUT_MS = 2000;

/** The metrics protocol's messages, worker to primary and back. */
export type MetricsMessage =
  | { readonly porthole: 'metrics-scrape'; readonly id: number }
  | { readonly porthole: 'metrics-collect'; readonly id: number }
  | { readonly porthole: 'metrics-json'; readonly id: number; readonly metrics: readonly MetricJson[]; readonly error?: string }
  | { readonly porthole: 'metrics-text'; readonly id: number; readonly text?: string; readonly error?: string };

export function isMetricsMessage(m: unknown): m is MetricsMessage {
  const tag = (m as { porthole?: unknown } | null)?.porthole;
  return typeof tag === 'string' && tag.startsWith('metrics-') && typeof (m as { id?: unknown }).id === 'number';
}

interface Collection {
  readonly waiting: Set<Worker>;
  readonly answers: MetricJson[][];
  readonly done: (err: Error | null, text?: string) => void;
}

/** The primary's side: sums the workers' metrics for whichever worker was scraped. */
export class ClusterMetrics {
  private nextId = 0;
  private readonly collections = new Map<number, Collection>();
  private current: Promise<string> | undefined;

  constructor(
    /** The workers that listen (started, their gateway built): those that answer. */
    private readonly workers: () => Iterable<Worker>,
    private readonly timeoutMs = COLLECT_TIMEOUT_MS,
  ) {}

  /** Takes `m` if it is a metrics message from `from`: true; anything else is not its business. */
  message(from: Worker, m: unknown): boolean {
    if (!isMetricsMessage(m)) return false;
    if (m.porthole === 'metrics-scrape') {
      const answer = (reply: MetricsMessage) => {
        if (from.isConnected()) from.send(reply);
      };
      this.sum().then(
        (text) => answer({ porthole: 'metrics-text', id: m.id, text }),
        (err: Error) => answer({ porthole: 'metrics-text', id: m.id, error: err.message }),
      );
    } else if (m.porthole === 'metrics-json') {
      const c = this.collections.get(m.id);
      if (c?.waiting.delete(from)) {
        if (m.error !== undefined) {
          this.collections.delete(m.id);
          c.done(new Error(`metrics unavailable: a worker could not collect its own: ${m.error}`));
          return true;
        }
        c.answers.push([...m.metrics]);
        if (c.waiting.size === 0) this.finish(m.id);
      }
    }
    return true;
  }

  /** A worker exited: collections stop waiting for it. */
  gone(w: Worker): void {
    for (const [id, c] of this.collections) if (c.waiting.delete(w) && c.waiting.size === 0) this.finish(id);
  }

  /** The sum of every listening worker's metrics, in Prometheus's text format. */
  sum(): Promise<string> {
    this.current ??= this.collect().finally(() => {
      this.current = undefined;
    });
    return this.current;
  }

  private collect(): Promise<string> {
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      const waiting = new Set([...this.workers()].filter((w) => w.isConnected()));
      const timer = setTimeout(() => {
        this.collections.delete(id);
        reject(new Error(`metrics unavailable: ${waiting.size} worker(s) did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const done = (err: Error | null, text?: string) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(text!);
      };
      this.collections.set(id, { waiting, answers: [], done });
      for (const w of waiting) w.send({ porthole: 'metrics-collect', id } satisfies MetricsMessage);
      if (waiting.size === 0) this.finish(id);
    });
  }

  private finish(id: number): void {
    const c = this.collections.get(id);
    if (!c) return;
    this.collections.delete(id);
    AggregatorRegistry.aggregate(c.answers).metrics().then(
      (text) => c.done(null, text),
      (err: Error) => c.done(err),
    );
  }
}
