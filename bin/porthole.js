#!/usr/bin/env node
// Entry point of the `porthole` command: loads the TypeScript sources through tsx's loader, so
// `npx porthole` works right after `npm ci` with no build step.
//
// The daemons run with glibc's heap top pad raised (MALLOC_TOP_PAD_). Node reads each socket
// into a fresh 64 KiB buffer; when the garbage collector frees a batch of them, glibc hands the
// top of the heap back to the kernel and the next reads fault the pages in again. Measured with
// `npm run bench`: 165 page faults per MiB relayed and 4.4 CPU s/GiB without, 0.4 and 2.2 with.
// glibc reads the variable only at process start, so the daemon re-runs itself once with it;
// set MALLOC_TOP_PAD_ yourself (any value) or PORTHOLE_MALLOC_TUNING=0 to skip this.
import { spawn } from 'node:child_process';

const DAEMONS = new Set(['serve', 'novncproxy', 'api']);
const TOP_PAD = String(64 * 1024 * 1024);

const args = process.argv.slice(2);
if (DAEMONS.has(args[0] ?? '') && process.env.MALLOC_TOP_PAD_ === undefined && process.env.PORTHOLE_MALLOC_TUNING !== '0' && process.platform === 'linux') {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, MALLOC_TOP_PAD_: TOP_PAD },
  });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (!signal) process.exit(code ?? 1);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
} else {
  let done = false;
  if (process.send) {
    // started by the launcher above: if it dies (even by SIGKILL), so does the daemon
    process.on('disconnect', () => done || process.kill(process.pid, 'SIGKILL'));
  }
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../src/cli.ts');
  process.exitCode = await main(args);
  done = true;
  // the launcher's channel would keep this process alive after the daemon closed
  if (process.connected) process.disconnect();
}
