#!/usr/bin/env node
// Entry point of the `porthole` command: loads the TypeScript sources through tsx's loader, so
// `npx porthole` works right after `npm ci` with no build step.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const DAEMONS = new Set(['serve', 'novncproxy', 'api']);
const args = process.argv.slice(2);
if (DAEMONS.has(args[0] ?? '')) keepHeapPages();

const { register } = await import('tsx/esm/api');
register();
const { main } = await import('../src/cli/index.ts');
process.exitCode = await main(args);

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
