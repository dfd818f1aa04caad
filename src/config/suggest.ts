/**
 * @module config/suggest
 * "Did you mean": the known name closest to a mistyped one, for config options and sections and
 * for the CLI's commands and flags alike. The distance is the optimal-string-alignment
 * Damerau-Levenshtein one (insertions, deletions, substitutions and swaps of two neighbours count
 * one each, so `prot` is one step from `port`); case does not count, and dashes and underscores
 * are the same character, since Nova's flags mix them (`--log-file`, `--ssl_only`). Nothing is
 * suggested when the closest name is further than about a third of its length: a guess that far
 * off misleads more than it helps.
 */

/** The closest of `known` to `name`, if one is close enough to be a likely typo. */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replaceAll('_', '-');
  const given = norm(name);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(given, norm(candidate));
    // on a tie the shorter name wins: `novncproxy_prot` is nearer `novncproxy_port` than `..._base_url`
    if (d < bestDistance || (d === bestDistance && best !== undefined && candidate.length < best.length)) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  return bestDistance <= Math.max(1, Math.floor(Math.max(given.length, best.length) / 3)) ? best : undefined;
}

/** Optimal string alignment distance (Damerau-Levenshtein without repeated edits of a substring). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1);
      d[i * cols + j] = v;
    }
  }
  return d[rows * cols - 1]!;
}
