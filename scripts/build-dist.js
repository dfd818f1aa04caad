// Compiles src/ to dist/ (tsconfig.build.json: tsc with rewriteRelativeImportExtensions) and
// copies src/'s other files (console pages, JSON tables) beside the JavaScript, so bin/launch.js
// can start the CLI without compiling TypeScript at every start. Built in dist.tmp/ and then
// moved into place, so a reader never sees half a tree; the stamp's time is when the build began,
// so a source changed during the build makes dist/ stale at once.
//
// `npm run build` fails on a compile error. As npm's `prepare` script (`--prepare`, run by
// `npm ci`), a failure or a missing TypeScript (`npm ci --omit=dev`) removes dist/ and says so,
// and `npm ci` still succeeds: the CLI then runs the sources through tsx.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
const TMP = join(ROOT, 'dist.tmp');
const prepare = process.argv.includes('--prepare');

function fail(message) {
  rmSync(TMP, { recursive: true, force: true });
  if (!prepare) {
    process.stderr.write(`build: ${message}\n`);
    process.exit(1);
  }
  rmSync(DIST, { recursive: true, force: true });
  process.stderr.write(`porthole: no dist/ (${message}); the CLI runs the TypeScript sources through tsx, about a second slower to start\n`);
  process.exit(0);
}

const began = new Date();
let tsc;
try {
  tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
} catch {
  fail('TypeScript is not installed');
}
rmSync(TMP, { recursive: true, force: true });
const compiled = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', TMP], { cwd: ROOT, stdio: 'inherit' });
if (compiled.status !== 0) fail(`tsc -p tsconfig.build.json exited with ${compiled.status ?? compiled.signal}`);
copyAssets(join(ROOT, 'src'), TMP);
writeFileSync(join(TMP, '.build-stamp'), `${began.toISOString()}\n`);
utimesSync(join(TMP, '.build-stamp'), began, began);
rmSync(DIST, { recursive: true, force: true });
renameSync(TMP, DIST);

/** Every file of `from` that is not TypeScript, at the same place under `to`. */
function copyAssets(from, to) {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) copyAssets(source, target);
    else if (!entry.name.endsWith('.ts')) {
      if (!existsSync(dirname(target))) mkdirSync(dirname(target), { recursive: true });
      copyFileSync(source, target);
    }
  }
}
