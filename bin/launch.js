// The start of every Porthole executable (`porthole`, `nova-novncproxy`, ...): runs the compiled
// JavaScript of dist/ when it is there and not older than the sources, else the TypeScript
// sources through tsx's loader. `npm ci` builds dist/ (the `prepare` script, scripts/build-dist.js),
// which saves the second or so that compiling every source at each start costs; a developer who
// edits src/ gets the sources again until the next `npm run build`, never stale JavaScript.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DAEMONS = new Set(['serve', 'novncproxy', 'serialproxy', 'spicehtml5proxy', 'api']);
/** Written by scripts/build-dist.js with the time its build began as its modification time. */
export const STAMP = '.build-stamp';

/**
 * Runs the CLI with `argv` (the words after `porthole`); `executable` is the Nova drop-in's name
 * when started as one. The exit status is the CLI's.
 */
export async function launch(argv, how = {}) {
  if (DAEMONS.has(argv[0] ?? '')) keepHeapPages();
  let entry;
  if (freshDist(ROOT)) {
    entry = new URL('../dist/cli/index.js', import.meta.url).href;
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    entry = new URL('../src/cli/index.ts', import.meta.url).href;
  }
  const { main } = await import(entry);
  process.exitCode = await main(argv, how);
}

/**
 * Whether `root`/dist/ may run: its stamp exists and no file or directory under `root`/src/ was
 * changed after the build began (a directory's time also moves when a file is added, removed or
 * renamed in it). PORTHOLE_RUN_SOURCES=1 always runs the sources.
 */
export function freshDist(root, env = process.env) {
  if (env.PORTHOLE_RUN_SOURCES === '1') return false;
  let built;
  try {
    built = statSync(join(root, 'dist', STAMP)).mtimeMs;
  } catch {
    return false;
  }
  return newestUnder(join(root, 'src'), built) <= built;
}

/** The newest modification time under `dir`, stopping early once one is newer than `limit`. */
function newestUnder(dir, limit) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (newest > limit) break;
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(path, limit) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Node reads each socket into a fresh 64 KiB buffer. When the garbage collector frees a batch
 * of them, glibc gives the top of its heap back to the kernel as soon as more than
 * M_TRIM_THRESHOLD (128 KiB) is free there, and the next reads fault the same pages in again:
 * `npm run bench` counted 165–280 page faults per MiB relayed and twice the system time of a
 * relay without them. glibc raises that threshold by itself to twice the size of the largest
 * mmap()ed block freed so far, up to 32 MiB (its "dynamic mmap threshold", malloc(3),
 * M_MMAP_THRESHOLD), so allocating and freeing one such block at start leaves 62 MiB of free
 * heap in place: 7 faults per MiB, as with MALLOC_TOP_PAD_=64MiB, without re-running the daemon.
 * The block is freed by a full collection, run here through `gc` exposed to a throwaway context.
 */
function keepHeapPages() {
  if (process.platform !== 'linux') return;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  let block = Buffer.allocUnsafeSlow(31 * 1024 * 1024);
  block[0] = 1;
  block = null;
  gc();
}
