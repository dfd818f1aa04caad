/**
 * @module test/support/fuzz-runs
 * What the property-based fuzz files (the `fuzz*.test.ts` files under `test/`) share: how many runs each
 * property gets (a few hundred to a few thousand in `npm test`; the long sizes with
 * `PORTHOLE_FUZZ_LONG=1`, which `npm run fuzz` sets; `PORTHOLE_FUZZ_RUNS` forces one number for
 * every property), one fixed seed (`PORTHOLE_FUZZ_SEED`) so a run is the same run on every
 * machine, and the replay of a failure: fast-check's message names the seed and the path of the
 * shrunk case, and `PORTHOLE_FUZZ_SEED=<seed> PORTHOLE_FUZZ_PATH=<path>` runs exactly that case.
 * Also what every fuzz file asserts at its end: no uncaught exception and no unhandled rejection
 * in the process, and resident memory after a forced GC back near where it was after warm-up.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { assert as fcAssert, type IProperty, type Parameters } from 'fast-check';

export const LONG = process.env.PORTHOLE_FUZZ_LONG === '1';
export const SEED = Number(process.env.PORTHOLE_FUZZ_SEED ?? 0x15f022);
const PATH = process.env.PORTHOLE_FUZZ_PATH;
const FORCED = process.env.PORTHOLE_FUZZ_RUNS === undefined ? undefined : Number(process.env.PORTHOLE_FUZZ_RUNS);

/** Runs of one property: `quick` in `npm test`, `long` in `npm run fuzz`. */
export function runs(quick: number, long: number): number {
  return FORCED ?? (LONG ? long : quick);
}

/** fc.assert's parameters: the run count, the fixed seed, and the replay path when one is given. */
export function params<T>(numRuns: number, more: Parameters<T> = {}): Parameters<T> {
  // a replayed path is one case: the count only bounds how far fast-check looks
  return { numRuns, seed: SEED, ...(PATH ? { path: PATH } : {}), ...more };
}

/** Counts the inputs a file's properties ran, for its closing line and the README's figures. */
export class InputCount {
  private readonly byName = new Map<string, number>();
  add(name: string, n: number): void {
    this.byName.set(name, (this.byName.get(name) ?? 0) + n);
  }
  get total(): number {
    let n = 0;
    for (const v of this.byName.values()) n += v;
    return n;
  }
  toString(): string {
    return `${this.total} inputs (${[...this.byName].map(([k, v]) => `${k} ${v}`).join(', ')})`;
  }
}

/** Records what escapes to the process: an uncaught exception or an unhandled rejection is a crash. */
export function crashRecorder(): { readonly crashes: string[]; stop(): void } {
  const crashes: string[] = [];
  const on = (err: unknown) => crashes.push(String((err as Error)?.stack ?? err).split('\n').slice(0, 4).join(' | '));
  process.on('uncaughtException', on);
  process.on('unhandledRejection', on);
  return {
    crashes,
    stop() {
      process.off('uncaughtException', on);
      process.off('unhandledRejection', on);
    },
  };
}

let gcFn: (() => void) | undefined;
/** `global.gc` (node --expose-gc, as `npm run fuzz` runs), else V8's gc exposed at run time. */
function gc(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (g) gcFn = g;
    else {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    }
  }
  gcFn();
}

/** Resident memory of this process in bytes, after a full GC. */
export async function residentAfterGc(): Promise<number> {
  // two passes with turns between: weak callbacks and finalizers of the first free more in the second
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage.rss();
}

/**
 * How far resident memory after GC may end above its level after warm-up: what a healthy process
 * wanders by (V8's heap pages kept for reuse, code compiled after warm-up), far below what a
 * per-input leak costs over a long run (a leaked Buffer or closure per input is tens to hundreds
 * of MB per 10^6 inputs).
 */
export const RSS_TOLERANCE = 64 * 1024 * 1024;

/** `before` and `after` in MiB, for a file's closing line. */
export function memoryFigure(before: number, after: number): string {
  const mib = (b: number) => (b / 1048576).toFixed(1);
  return `RSS after GC ${mib(before)} MiB before, ${mib(after)} MiB after (${after >= before ? '+' : ''}${mib(after - before)} MiB)`;
}

/**
 * A property-fuzz file's bracket: records crashes from the start, reads resident memory after a
 * forced GC before the first test and after the last, then prints the file's figures and asserts
 * no crash and memory back within `RSS_TOLERANCE`. `check` runs one property `n` times
 * (`defaultRuns` when not given) and counts its inputs; `counted` takes the counts of properties
 * run otherwise (asynchronous ones).
 */
export function fuzzFile(label: string, defaultRuns = 0): { readonly counted: InputCount; check<T extends unknown[]>(name: string, prop: IProperty<T>, n?: number): void } {
  const counted = new InputCount();
  const rec = crashRecorder();
  let rssBefore = 0;
  before(async () => {
    rssBefore = await residentAfterGc();
  });
  after(async () => {
    rec.stop();
    const rssAfter = await residentAfterGc();
    console.log(`# ${label} (seed ${SEED}): ${counted}; ${memoryFigure(rssBefore, rssAfter)}; ${rec.crashes.length} crashes`);
    assert.deepEqual(rec.crashes, []);
    assert.ok(rssAfter - rssBefore < RSS_TOLERANCE, memoryFigure(rssBefore, rssAfter));
  });
  return {
    counted,
    check(name, prop, n = defaultRuns) {
      fcAssert(prop, params(n));
      counted.add(name, n);
    },
  };
}
