/**
 * The README's first command: `npm start` starts the gateway on the embedded SQLite store with
 * the demo VNC server, prints a console URL, and that URL shows the demo pattern in Chromium; it
 * also prints the demo serial console's page URL, whose xterm.js page shows the demo shell and
 * its answer to what is typed.
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
    const serialUrl = await eventually('the serial console line', () => /^Serial console: (http:\/\/127\.0\.0\.1:\d+\/serial\.html\?token=[0-9a-f-]{36})$/m.exec(out)?.[1]);
    await eventually('the compute API line', () => /Compute API: http:\/\/127\.0\.0\.1:\d+\/v2\.1/.test(out));

    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(url);
      await waitForConsoleState(page, 'connected');
      assert.match(await page.textContent('#status') ?? '', /Porthole demo/);
      await waitForCanvasPixel(page, 10, 10, DEMO_MARKER_RGB);

      const serialPage = await browser.newPage();
      await serialPage.goto(serialUrl);
      await waitForConsoleState(serialPage, 'connected');
      const screen = () => serialPage.evaluate(() => {
        const b = (window as unknown as { porthole: { term: { buffer: { active: { length: number; getLine(i: number): { translateToString(trim: boolean): string } | undefined } } } } }).porthole.term.buffer.active;
        const lines: string[] = [];
        for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
        return lines.join('\n');
      });
      await eventually('the demo serial console\'s banner and prompt', async () => /Porthole demo serial console, [\s\S]*\ndemo\$$/.test((await screen()).trimEnd()), 15_000);
      await serialPage.click('#screen');
      await serialPage.keyboard.type('echo hello from npm start');
      await serialPage.keyboard.press('Enter');
      await eventually('the demo shell\'s answer on the page', async () => /demo\$ echo hello from npm start\nhello from npm start\ndemo\$/.test(await screen()), 15_000);
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
