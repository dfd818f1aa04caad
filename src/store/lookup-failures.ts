/**
 * @module store/lookup-failures
 * The contract of the shared count of failed console token lookups per client and window
 * (`src/proxy/lookup-budget.ts` decides what the count means; each storage kind keeps it:
 * `src/database/<kind>/lookup-failures.ts`). `add` counts one failure and answers the client's
 * count in that window, atomically. Windows are fixed periods of the clock, named by their start
 * in epoch seconds, so processes agree on them without talking. Never in a Nova database: only
 * Porthole's own store has it.
 */

export interface LookupFailureCounter {
  /** Where the count is kept (no password), for log lines. */
  readonly description: string;
  /** Counts one failed lookup of `client` in the window starting at `windowStart` (epoch s, ending at `windowEnd`); returns its count there. */
  add(client: string, windowStart: number, windowEnd: number): Promise<number>;
  /** Deletes the counts of windows that started before `windowStart`. */
  sweep(windowStart: number): Promise<void>;
}
