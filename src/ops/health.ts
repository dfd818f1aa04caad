/**
 * @module ops/health
 * Whether this process is ready for new consoles (`/readyz`): every listener it runs listens, the
 * store answers a cheap query within `[porthole] store_query_timeout`, and it is not stopping
 * (a drain or a close began). Liveness (`/healthz`) is only that the process answers, and needs
 * nothing from here.
 *
 * The store is asked at most once a second, whatever the number of probes (HAProxy's checks from
 * each balancer, Kubernetes, Prometheus): probes share the answer of the last second, and the
 * question in flight. The query is the one a console connection makes first, a token lookup (of
 * a token that cannot exist: one indexed read), through the same guard and deadline; so a store
 * that recovers makes the process ready again by itself. The reasons a probe is told are short
 * and general: the probe may be public (a console port), and the store's address and the
 * driver's words are information for the log, said once per change.
 */
import type { Logger } from 'pino';
import { isGatewayError } from '../errors.ts';

/** How long one store check's answer is reused. */
export const STORE_CHECK_TTL_MS = 1000;

/** A probe's token: never minted (tokens are UUIDs or 43-character base64url), so a lookup is a miss. */
const PROBE_TOKEN = 'porthole-readiness-probe';

export interface Readiness {
  readonly ready: boolean;
  /** Why not, one short phrase each: `store unavailable`, `listener novnc not listening`, `draining`. */
  readonly reasons: readonly string[];
}

export interface HealthParts {
  /** A read the store answers (or fails as STORE_UNAVAILABLE) within its query timeout. */
  readonly storeCheck: () => Promise<unknown>;
  readonly log: Logger;
  /** Clock, for tests. */
  readonly now?: () => number;
}

/** The token store's cheapest read, as a store check: a lookup of a token no one minted. */
export function tokenLookupCheck(tokens: { lookup(token: string): Promise<unknown> }): () => Promise<unknown> {
  return () => tokens.lookup(PROBE_TOKEN);
}

export class Health {
  private readonly listeners = new Map<string, () => boolean>();
  private stopping = false;
  private checked: { at: number; ok: boolean } | undefined;
  private inFlight: Promise<boolean> | undefined;
  /** The last readiness said in the log, so it is said once per change. */
  private said = 'ready';
  /** The store check's last failure, logged once until it changes or the store answers. */
  private storeTrouble: string | undefined;
  private readonly now: () => number;

  constructor(private readonly parts: HealthParts) {
    this.now = parts.now ?? Date.now;
  }

  /** A listener that must listen for the process to be ready (`novnc`, `api`, `metrics`). */
  addListener(name: string, listening: () => boolean): void {
    this.listeners.set(name, listening);
  }

  /** The process stops taking consoles (a drain, a close): not ready from now on. */
  stop(): void {
    this.stopping = true;
  }

  async readiness(): Promise<Readiness> {
    const reasons: string[] = [];
    if (this.stopping) reasons.push('draining');
    for (const [name, listening] of this.listeners) if (!listening()) reasons.push(`listener ${name} not listening`);
    if (!(await this.storeOk())) reasons.push('store unavailable');
    const r = { ready: reasons.length === 0, reasons };
    this.tell(r);
    return r;
  }

  private storeOk(): Promise<boolean> {
    const c = this.checked;
    if (c && this.now() - c.at < STORE_CHECK_TTL_MS) return Promise.resolve(c.ok);
    this.inFlight ??= this.parts.storeCheck().then(
      () => {
        this.storeTrouble = undefined;
        return true;
      },
      (err: unknown) => {
        const detail = isGatewayError(err) ? err.message : `bug: ${(err as Error)?.message ?? err}`;
        if (this.storeTrouble !== detail) this.parts.log.warn({ event: 'readiness', code: isGatewayError(err) ? err.code : 'INTERNAL' }, `readiness check: ${detail}`);
        this.storeTrouble = detail;
        return false;
      },
    ).then((ok) => {
      this.checked = { at: this.now(), ok };
      this.inFlight = undefined;
      return ok;
    });
    return this.inFlight;
  }

  /** Logs a change of readiness (not the first ready: the start-up lines say the process listens). */
  private tell(r: Readiness): void {
    const now = r.ready ? 'ready' : r.reasons.join('; ');
    if (now === this.said) return;
    this.said = now;
    if (r.ready) this.parts.log.info({ event: 'readiness', ready: true }, 'ready for console connections again');
    else this.parts.log.warn({ event: 'readiness', ready: false, reasons: r.reasons }, `not ready: ${now}`);
  }
}
