// Compiles src/ to dist/ (tsconfig.build.json: tsc with rewriteRelativeImportExtensions) and
// copies src/'s other files (console pages, JSON tables) beside the JavaScript, so bin/launch.js
// can start the CLI without compiling TypeScript at every start. Built in dist.tmp/ and then
// moved into place, so a reader never sees half a tree; the stamp's time is when the build began,
// so a source changed during the build makes dist/ stale at once.
//
// Packages published as hundreds of small ES modules are bundled into one file each under
// dist/vendor/ (esbuild, which tsx brings) and dist/'s imports of them point there: kysely's 263
// modules took 400-800 ms of `porthole token create`'s start, its one bundled file 70-110 ms
// (measured side by side on this machine under the same load, bench/RESULTS.md).
//
// `npm run build` fails on a compile error. As npm's `prepare` script (`--prepare`, run by
// `npm ci`), a failure or a missing TypeScript (`npm ci --omit=dev`) removes dist/ and says so,
// and `npm ci` still succeeds: the CLI then runs the sources through tsx.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
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
await vendor(['kysely']);
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

/**
 * Bundles each package into dist/vendor/<name>.js and points dist/'s imports of it there. Without
 * esbuild the imports stay as they are (slower to start, same behaviour).
 */
async function vendor(packages) {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    return;
  }
  for (const name of packages) {
    const out = join(TMP, 'vendor', `${name}.js`);
    await esbuild.build({ entryPoints: [name], bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: out, logLevel: 'error', absWorkingDir: ROOT });
    for (const file of jsFiles(TMP)) {
      if (file === out) continue;
      const text = readFileSync(file, 'utf8');
      let target = relative(dirname(file), out);
      if (!target.startsWith('.')) target = `./${target}`;
      const rewritten = text.replaceAll(`from '${name}'`, `from '${target}'`).replaceAll(`import('${name}')`, `import('${target}')`);
      if (rewritten !== text) writeFileSync(file, rewritten);
    }
  }
}

function jsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : []));
}
