/**
 * @module bench/profile-top
 * Reads a V8 CPU profile (`node --cpu-prof`, as `npm run bench -- --cpu-prof` writes for the
 * Porthole it measures) and prints where the time went: self time per function, largest first.
 * For a flame graph, open the same `.cpuprofile` file in Chrome DevTools (Performance, load
 * profile) or https://www.speedscope.app; this summary is for the terminal and for comparing runs.
 * Time in the kernel (a `writev` that copies into a socket) shows under the JS frame that made
 * the call; reads done by libuv between callbacks show as "(program)" or "(idle)".
 *
 * Usage: node --import tsx bench/profile-top.ts FILE.cpuprofile [N]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Self time per function (`name file:line`), milliseconds, largest first, and the total. */
export function selfTimes(profile: Profile): { rows: { what: string; ms: number }[]; totalMs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    const f = node.callFrame;
    const what = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    const us = profile.timeDeltas[i] ?? 0;
    self.set(what, (self.get(what) ?? 0) + us);
    total += us;
  }
  const rows = [...self].map(([what, us]) => ({ what, ms: us / 1000 })).sort((a, b) => b.ms - a.ms);
  return { rows, totalMs: total / 1000 };
}

export function printTop(file: string, n: number): void {
  const { rows, totalMs } = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile);
  process.stdout.write(`${file}: ${totalMs.toFixed(0)} ms sampled\n`);
  for (const r of rows.slice(0, n)) process.stdout.write(`${r.ms.toFixed(0).padStart(8)} ms ${((100 * r.ms) / totalMs).toFixed(1).padStart(5)} %  ${r.what}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, n] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node --import tsx bench/profile-top.ts FILE.cpuprofile [N]\n');
    process.exitCode = 2;
  } else {
    printTop(file, Number(n ?? 25));
  }
}
