/**
 * @module bench/results-file
 * `bench/RESULTS.md` is shared: `bench/relay.ts` owns the top and the History, and each other
 * benchmark owns one section between its `<!-- name -->` and `<!-- /name -->` markers, which it
 * replaces in place or, the first time, inserts before `## History`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'RESULTS.md');

/** `section` must start with `begin` and end with `end`. */
export function writeSection(begin: string, end: string, section: string): void {
  let text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from >= 0 && to > from) {
    text = text.slice(0, from) + section + text.slice(to + end.length).replace(/^\n/, '');
  } else {
    const at = text.indexOf('\n## History\n');
    text = at >= 0 ? `${text.slice(0, at + 1)}${section}\n${text.slice(at + 1)}` : `${text}${text && !text.endsWith('\n') ? '\n' : ''}\n${section}`;
  }
  writeFileSync(RESULTS, text);
}
