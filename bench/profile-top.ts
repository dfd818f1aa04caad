/**
 * @module bench/profile-top
 * Reads a V8 CPU profile (`node --cpu-prof`, as `npm run bench -- --cpu-prof` writes for the
 * Porthole it measures) and prints where the time went: self time per function, largest first.
 * For a flame graph, open the same `.cpuprofile` file in Chrome DevTools (Performance, load
 * profile) or https://www.speedscope.app; this summary is for the terminal and for comparing runs.
 * Time in the kernel (a `writev` that copies into a socket) shows under the JS frame that made
 * the call; reads done by libuv between callbacks show as "(program)" or "(idle)".
 *
 * `--inclusive`: time per function with its callees (samples whose stack holds it) instead.
 *
 * Usage: node --import tsx bench/profile-top.ts [--inclusive] FILE.cpuprofile [N]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** The profile without its first `skipMs` (a daemon's start-up), for the phase measured after it. */
export function after(profile: Profile, skipMs: number): Profile {
  if (skipMs <= 0) return profile;
  let t = 0;
  let i = 0;
  while (i < profile.timeDeltas.length && (t += profile.timeDeltas[i]!) < skipMs * 1000) i++;
  return { nodes: profile.nodes, samples: profile.samples.slice(i), timeDeltas: profile.timeDeltas.slice(i) };
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

/**
 * Inclusive time per function (`name file:line`): the samples whose stack holds it, counted once
 * per sample however deep it recurses; milliseconds, largest first.
 */
export function inclusiveTimes(profile: Profile): { rows: { what: string; ms: number }[]; totalMs: number } {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const name = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-2).join('/')}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
  const incl = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i] ?? 0;
    total += us;
    const seen = new Set<string>();
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const node = byId.get(id);
      if (!node) break;
      const what = name(node);
      if (seen.has(what)) continue;
      seen.add(what);
      incl.set(what, (incl.get(what) ?? 0) + us);
    }
  }
  const rows = [...incl].map(([what, us]) => ({ what, ms: us / 1000 })).sort((a, b) => b.ms - a.ms);
  return { rows, totalMs: total / 1000 };
}

export function printInclusive(file: string, n: number, skipMs = 0): void {
  const { rows, totalMs } = inclusiveTimes(after(JSON.parse(readFileSync(file, 'utf8')) as Profile, skipMs));
  process.stdout.write(`${file}: inclusive, ${totalMs.toFixed(0)} ms sampled\n`);
  for (const r of rows.slice(0, n)) process.stdout.write(`${r.ms.toFixed(0).padStart(8)} ms ${((100 * r.ms) / totalMs).toFixed(1).padStart(5)} %  ${r.what}\n`);
}

export function printTop(file: string, n: number, skipMs = 0): void {
  const { rows, totalMs } = selfTimes(after(JSON.parse(readFileSync(file, 'utf8')) as Profile, skipMs));
  process.stdout.write(`${file}: ${totalMs.toFixed(0)} ms sampled\n`);
  for (const r of rows.slice(0, n)) process.stdout.write(`${r.ms.toFixed(0).padStart(8)} ms ${((100 * r.ms) / totalMs).toFixed(1).padStart(5)} %  ${r.what}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const inclusive = args.includes('--inclusive');
  const [file, n] = args.filter((a) => a !== '--inclusive');
  if (!file) {
    process.stderr.write('usage: node --import tsx bench/profile-top.ts [--inclusive] FILE.cpuprofile [N]\n');
    process.exitCode = 2;
  } else {
    if (inclusive) printInclusive(file, Number(n ?? 25));
    else printTop(file, Number(n ?? 25));
  }
}
