/**
 * @module proxy/extras-gate
 * Whether a plain console (no shared console: those read their token's extras anyway) needs its
 * token's extras read (`store/token-extras.ts`): only when recording may apply to it, so that
 * where no feature needs them a console costs the store what it did before (the token lookup and
 * the inventory's read, nothing more). They are needed when `[DEFAULT] record` records every
 * session, when the server is recorded (`server add --record`), or when some token not expired
 * yet was minted with `--record`: that last is one query (`anyRecorded`) at most every
 * `maxAgeMs` per proxy, whatever the number of consoles, and the answer is remembered that long
 * (a token minted with `--record` records from its first console once the answer is renewed:
 * within `maxAgeMs` of its mint).
 */
import type { Server } from '../inventory/types.ts';
import type { TokenExtrasStore } from '../store/token-extras.ts';

/** How long the answer to "is any token recorded?" is kept. */
export const EXTRAS_GATE_MAX_AGE_MS = 1000;

export interface ExtrasGateOptions {
  /** `[DEFAULT] record` is set: every session is recorded. */
  readonly recordAll: boolean;
  readonly maxAgeMs?: number;
  readonly now?: () => number;
}

export class ExtrasGate {
  private answer: { at: number; recorded: boolean } | undefined;
  private asking: Promise<boolean> | undefined;

  constructor(
    private readonly store: Pick<TokenExtrasStore, 'anyRecorded'>,
    private readonly opts: ExtrasGateOptions,
  ) {}

  /** Whether this server's consoles need their token's extras read now. */
  async wanted(server: Pick<Server, 'record'> | undefined): Promise<boolean> {
    if (this.opts.recordAll || server?.record === true) return true;
    const now = (this.opts.now ?? Date.now)();
    if (this.answer && now - this.answer.at < (this.opts.maxAgeMs ?? EXTRAS_GATE_MAX_AGE_MS)) return this.answer.recorded;
    // one question in flight for every console that waits on it; a store that fails: read them (fail towards recording)
    this.asking ??= this.store.anyRecorded().then(
      (recorded) => ((this.answer = { at: now, recorded }), (this.asking = undefined), recorded),
      () => ((this.asking = undefined), true),
    );
    return this.asking;
  }
}
