/**
 * @module test/support/axe
 * What a page test checks of each state a person sees: a screenshot in the test output directory
 * (`$TEST_OUTPUT_DIR`, else `.tmp/test-output`, which git ignores), and axe-core's accessibility
 * rules (labels, contrast, landmarks, language) with no serious or critical violation. axe-core
 * is put in the page as a script of the test's own: open the page in a context made with
 * `bypassCSP: true`, or the page's CSP refuses it.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

export const TEST_OUTPUT = process.env.TEST_OUTPUT_DIR ?? join(process.cwd(), '.tmp', 'test-output');

/** axe-core's serious and critical violations on `page`, as `rule: targets` lines. */
export async function axeProblems(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(async () => (globalThis as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> } }).axe.run());
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** A screenshot of the state as `<group>/<name>.png`; axe-core too unless `axe` is false (it takes seconds: once per markup). */
export async function checkState(page: Page, group: string, name: string, axe = true): Promise<void> {
  const dir = join(TEST_OUTPUT, group);
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`) });
  if (axe) assert.deepEqual(await axeProblems(page), [], `axe-core on ${name}`);
}
