/**
 * @module test/deps/engines
 * `npm ci` on the Node the project supports (package.json `engines`, Node 20 here) prints no
 * EBADENGINE warning: no package in the lockfile asks for a Node the running one is not. Ranges
 * are judged by npm's own semver (the copy inside the npm that runs `npm ci`), so this test and
 * npm agree. cookie@2 (Node >= 22, pulled in by fastify's light-my-request) is held at 1.x by an
 * `overrides` entry in package.json; the last test checks that light-my-request still encodes
 * cookies with it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';

interface LockPackage {
  readonly version?: string;
  readonly engines?: { readonly node?: string } | readonly string[];
  readonly optional?: boolean;
  readonly os?: readonly string[];
  readonly cpu?: readonly string[];
}

interface Semver {
  satisfies(version: string, range: string, options?: { includePrerelease?: boolean }): boolean;
}

const ROOT = new URL('../../', import.meta.url).pathname;

/** npm's bundled semver: the judge npm itself uses for EBADENGINE. */
function npmSemver(): Semver {
  const npmRoot = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' }).stdout.trim();
  return createRequire(join(npmRoot, 'npm', 'package.json'))('semver') as Semver;
}

/** Packages of `lock` whose `engines.node` excludes `nodeVersion` (those npm would install on this OS and CPU). */
export function engineMismatches(lock: { packages: Record<string, LockPackage> }, nodeVersion: string, semver: Semver): string[] {
  const bad: string[] = [];
  for (const [path, pkg] of Object.entries(lock.packages)) {
    if (path === '') continue;
    // an optional package for another platform is skipped by npm, engines and all
    if (pkg.optional && ((pkg.os && !pkg.os.includes(process.platform)) || (pkg.cpu && !pkg.cpu.includes(process.arch)))) continue;
    const range = Array.isArray(pkg.engines) ? undefined : (pkg.engines as { node?: string } | undefined)?.node;
    if (range === undefined) continue;
    if (!semver.satisfies(nodeVersion, range, { includePrerelease: true })) bad.push(`${path.replace(/^.*node_modules\//, '')}@${pkg.version} wants node ${range}`);
  }
  return bad;
}

describe('dependencies and the running Node', () => {
  const semver = npmSemver();

  it('has no package in the lockfile whose engines.node excludes the running Node', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
    assert.deepEqual(engineMismatches(lock, process.version, semver), []);
  });

  it('flags cookie@2.0.2 (engines node >=22) on Node 20, as npm ci did before the override', () => {
    const lock = { packages: { '': {}, 'node_modules/cookie': { version: '2.0.2', engines: { node: '>=22' } } } };
    assert.deepEqual(engineMismatches(lock, 'v20.20.2', semver), ['cookie@2.0.2 wants node >=22']);
    assert.deepEqual(engineMismatches(lock, 'v22.1.0', semver), []);
  });

  it('lets light-my-request (fastify inject) still send cookies with the overridden cookie package', async () => {
    const { default: inject } = (await import('light-my-request')) as unknown as { default: (d: unknown, o: unknown) => Promise<{ body: string }> };
    const dispatch = (req: { headers: Record<string, string> }, res: { end(s: string): void }) => res.end(req.headers.cookie ?? '');
    const res = await inject(dispatch, { url: '/console/x', cookies: { token: 'abc', path: '?token=xyz', other: { value: 'no', path: '/elsewhere' } } });
    assert.equal(res.body, 'token=abc; path=%3Ftoken%3Dxyz');
  });
});
