/**
 * The README's first command: `npm start` starts the gateway on the embedded SQLite store with
 * the demo VNC server, prints a console URL, and that URL shows the demo pattern in Chromium.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEMO_MARKER_RGB } from '../../src/demo/server.ts';
import { launchBrowser, waitForCanvasPixel, waitForConsoleState } from '../support/browser.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { OTHER_CONSOLES_ON_LOOPBACK } from '../support/process.ts';

describe('npm start', () => {
  let child: ChildProcess | undefined;
  after(() => {
    // npm runs the gateway in a child of its own: stop the whole process group
    try {
      if (child?.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  });

  it('prints a console URL that shows the demo pattern in a browser, and stops on SIGTERM', async () => {
    const dir = tempDir();
    child = spawn('npm', ['start', '--', ...OTHER_CONSOLES_ON_LOOPBACK, '--vnc-novncproxy_port', '0', '--osapi_compute_listen_port', '0', '--database-connection', `sqlite:///${join(dir, 'porthole.db')}`], { cwd: process.cwd(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const url = await eventually('the console URL on stdout', () => /(http:\/\/127\.0\.0\.1:\d+\/vnc_auto\.html\?path=%3Ftoken%3D[0-9a-f-]{36})/.exec(out)?.[1], 30_000);
    assert.match(out, /valid for 10 minutes/);
    await eventually('the compute API line', () => /Compute API: http:\/\/127\.0\.0\.1:\d+\/v2\.1/.test(out));

    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(url);
      await waitForConsoleState(page, 'connected');
      assert.match(await page.textContent('#status') ?? '', /Porthole demo/);
      await waitForCanvasPixel(page, 10, 10, DEMO_MARKER_RGB);
    } finally {
      await browser.close();
    }

    // npm itself dies of the signal it forwards; what matters is that the gateway closes and exits
    process.kill(-child.pid!, 'SIGTERM');
    await eventually('the gateway to log its shutdown', () => out.includes('received SIGTERM'), 10_000);
    await eventually('every process of the group to exit', () => {
      try {
        process.kill(-child!.pid!, 0);
        return false;
      } catch {
        return true;
      }
    }, 10_000);
  });
});
