/**
 * The arrows of DESIGN.md's layout table, as `.dependency-cruiser.mjs` states them: `src/` breaks
 * none, and a broken arrow fails this test. The fixture tree `test/fixtures/layout/src/` breaks
 * every rule once, beside arrows that are allowed (the composition roots importing everything,
 * `web` importing `http`, `demo` importing `rfb/types.ts`), so each rule is shown to fire.
 *
 * dependency-cruiser runs as `npx depcruise` would, in a child process of plain Node: under the
 * test's tsx loader its import of swc's Visitor gets another module shape and finds nothing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ICruiseResult, IViolation } from 'dependency-cruiser';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CONFIG = join(ROOT, '.dependency-cruiser.mjs');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'layout');
const DEPCRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

/** Cruises `<cwd>/src` with the repository's rules (or those of `config`). */
function cruiseSrc(cwd: string, config = CONFIG): ICruiseResult {
  const run = spawnSync(process.execPath, [DEPCRUISE, 'src', '--config', config, '--output-type', 'json'], { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.ok(run.stdout.startsWith('{'), `depcruise exited with ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout) as ICruiseResult;
}

function arrow(v: IViolation): string {
  if (v.cycle) return `${v.rule.name}: ${v.cycle.map((step) => step.name).sort().join(' ⇄ ')}`;
  return `${v.rule.name}: ${v.from} → ${v.to}`;
}

async function configModule(): Promise<{ default: { forbidden: { name: string }[] } }> {
  return (await import(pathToFileURL(CONFIG).href)) as Awaited<ReturnType<typeof configModule>>;
}

describe('layout', () => {
  it('src/ breaks no arrow of the layout', () => {
    const result = cruiseSrc(ROOT);
    assert.ok(result.summary.totalCruised > 50, `cruised only ${result.summary.totalCruised} modules`);
    const broken = result.summary.violations.map(arrow);
    assert.deepEqual(broken, [], `arrows that point the wrong way (rules in .dependency-cruiser.mjs; \`npx depcruise src\` says more):\n  ${broken.join('\n  ')}`);
  });

  it('a broken arrow fails: each rule fires on the fixture tree, allowed arrows do not', async () => {
    const result = cruiseSrc(FIXTURE);
    assert.deepEqual(result.summary.violations.map(arrow).sort(), [
      'api-not-rfb-proxy: src/api/admin.ts → src/proxy/relay.ts',
      'api-not-rfb-proxy: src/api/admin.ts → src/rfb/types.ts',
      'contracts-not-drivers: src/sessions/tracker.ts → src/proxy/relay.ts',
      'database-only-from-roots: src/store/index.ts → src/database/index.ts',
      'demo-only-rfb-types: src/demo/server.ts → src/log.ts',
      'http-is-pure: src/http/request-checks.ts → src/log.ts',
      'no-cycles: src/inventory/endpoints.ts ⇄ src/inventory/servers.ts',
      'rfb-not-proxy-api: src/rfb/security-proxy.ts → src/proxy/relay.ts',
      'web-not-proxy: src/web/pages.ts → src/proxy/token-source.ts',
    ]);
    // a rule added to the config gets its case in the fixture tree
    const rules = (await configModule()).default.forbidden.map((r) => r.name);
    assert.deepEqual(new Set(result.summary.violations.map((v) => v.rule.name)), new Set(rules));
  });
});
