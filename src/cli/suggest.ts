/**
 * @module cli/suggest
 * "Did you mean": the known name closest to a mistyped one, by the optimal-string-alignment
 * Damerau-Levenshtein distance (insertions, deletions, substitutions and swaps of two neighbours
 * count one each, so `prot` is one step from `port`). Dashes and underscores count as the same
 * character, since Nova's flags mix them (`--log-file`, `--ssl_only`). Nothing is suggested
 * when the closest name is further than about a third of its length: a guess that far off
 * misleads more than it helps.
 */

export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest of `known` to `given`, if one is close enough to be a likely typo. */
export function closest(given: string, known: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replaceAll('_', '-');
  const g = norm(given);
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(g, norm(name));
    if (!best || distance < best.distance) best = { name, distance };
  }
  if (!best) return undefined;
  return best.distance <= Math.max(1, Math.floor(Math.max(g.length, best.name.length) / 3)) ? best.name : undefined;
}
