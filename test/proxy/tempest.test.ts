/**
 * OpenStack's own acceptance test for the noVNC proxy, tempest's `test_novnc` and
 * `test_novnc_bad_token` (Debian python3-tempest), run unchanged against Porthole's console
 * URL, with a real TigerVNC Xvnc behind it and with the built-in demo server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startDemoServer, type DemoServer } from '../../src/demo/server.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { startXvnc, type Xvnc } from '../support/xvnc.ts';

const run = promisify(execFile);
// Debian's interpreter: python3-tempest is installed for it, not for other pythons on PATH
const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '..', 'support', 'tempest_novnc.py');

async function tempest(url: string): Promise<string> {
  try {
    const { stdout } = await run(PYTHON, [SCRIPT, url], { timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    assert.fail(`tempest failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

describe('tempest test_novnc', () => {
  let gw: TestGateway;
  let xvnc: Xvnc;
  let demo: DemoServer;

  before(async () => {
    assert.ok(existsSync('/usr/lib/python3/dist-packages/tempest/api/compute/servers/test_novnc.py'), 'Debian python3-tempest is required (.ci/run installs it)');
    gw = await startGateway();
    xvnc = await startXvnc({ colour: '#204060' });
    demo = await startDemoServer();
  });
  after(async () => {
    await gw?.close();
    await xvnc?.stop();
    await demo?.close();
  });

  it('passes against a TigerVNC Xvnc behind Porthole', async () => {
    const { url } = await gw.mint({ host: '127.0.0.1', port: xvnc.port });
    const out = await tempest(url);
    assert.match(out, /^PASS test_novnc$/m);
    assert.match(out, /^PASS test_novnc_bad_token$/m);
  });

  it('passes against the demo server behind Porthole', async () => {
    const { url } = await gw.mint({ host: '127.0.0.1', port: demo.port });
    const out = await tempest(url);
    assert.match(out, /^PASS test_novnc$/m);
    assert.match(out, /^PASS test_novnc_bad_token$/m);
  });

  it('fails when the console is unreachable (the check can fail)', async () => {
    await xvnc.stop();
    const { url } = await gw.mint({ host: '127.0.0.1', port: xvnc.port });
    const { stdout } = await run(PYTHON, [SCRIPT, url], { timeout: 60_000 }).catch((e: { stdout: string }) => e);
    assert.match(stdout, /^FAIL test_novnc: /m);
  });
});
