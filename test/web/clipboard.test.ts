/**
 * The console page's clipboard panel (src/web/static/clipboard.js) in headless Chromium, through
 * Porthole to a real TigerVNC Xvnc whose clipboard is set and read with xclip: the machine's
 * clipboard shown in the panel and copied into the browser's (Clipboard API, permission granted),
 * text typed or pasted from the browser's clipboard sent to the machine's; each `[porthole]
 * clipboard` policy leaving out the part it blocks (and `off` the button); the words in German;
 * axe-core with the panel open; a screenshot in the test output directory. And noVNC through the
 * framers of policy `off` to QEMU's VNC server (its own encodings and pseudo-encodings: LED
 * state, audio, extended key events), showing QEMU's screen and typing. Paste as keystrokes on the
 * us and de layouts (the X server's keymap set with setxkbmap; Xvnc maps the keysyms), the characters read back with
 * `xev -root`; a character the layout cannot type refused in words; the password field cleared.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { haveChromium, launchBrowser, waitForConsoleState } from '../support/browser.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { haveQemu, startQemu } from '../support/qemu.ts';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const haveXclip = existsSync('/usr/bin/xclip');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const SHOTS = join(process.env.TEST_OUTPUT_DIR ?? join(process.cwd(), '.tmp', 'test-output'), 'web-clipboard');

describe('console page clipboard panel (Chromium, Xvnc, xclip)', { skip: (!haveXvnc || !haveChromium || !haveXclip) && 'needs Xvnc, Chromium and xclip', timeout: 120_000 }, () => {
  let xvnc: Xvnc;
  let browser: Browser;
  const owners: ChildProcess[] = [];

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    xvnc = await startXvnc({ colour: '#3366cc' });
    browser = await launchBrowser();
  });
  after(async () => {
    for (const o of owners) if (o.exitCode === null) o.kill('SIGTERM');
    await browser?.close();
    await xvnc?.stop();
  });

  const env = () => ({ ...process.env, DISPLAY: xvnc.display });
  // Xvnc asks noVNC for the text when an X client first reads it after a paste (Extended
  // Clipboard): that first read may time out while later ones get the text, hence short reads, retried
  const readXClipboard = () => spawnSync('xclip', ['-o', '-selection', 'clipboard'], { env: env(), encoding: 'utf8', timeout: 2000 }).stdout;
  function setXClipboard(text: string): void {
    const owner = spawn('xclip', ['-i', '-quiet', '-selection', 'clipboard'], { env: env(), stdio: ['pipe', 'ignore', 'ignore'] });
    owner.stdin!.end(text);
    owners.push(owner);
  }

  /** A gateway with `policy` and a page connected to the Xvnc through it, with clipboard permissions. */
  async function openConsole(policy: string, lang = 'en'): Promise<{ gw: TestGateway; context: BrowserContext; page: Page }> {
    const gw = await startGateway({ 'porthole.clipboard': policy });
    // axe-core goes in as a script of the test's own: the page's CSP would refuse it
    const context = await browser.newContext({ bypassCSP: true, locale: 'en-US' });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.origin });
    const page = await context.newPage();
    const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port });
    await page.goto(`${gw.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}&lang=${lang}`);
    await waitForConsoleState(page, 'connected');
    return { gw, context, page };
  }

  it('both: shows the machine\'s clipboard and copies it into the browser\'s; sends typed and pasted text to the machine', async () => {
    const { gw, context, page } = await openConsole('both');
    try {
      assert.equal(await page.textContent('#clipboard-toggle'), 'Clipboard');
      await page.click('#clipboard-toggle');
      assert.equal(await page.getAttribute('#clipboard-toggle', 'aria-expanded'), 'true');

      const fromVm = `from the machine ${randomBytes(4).toString('hex')}`;
      setXClipboard(fromVm);
      await page.waitForFunction((t) => (document.getElementById('clipboard-from-vm') as HTMLTextAreaElement).value === t, fromVm, { timeout: 10_000 });
      await page.click('#clipboard-copy');
      assert.equal(await page.textContent('#clipboard-message'), 'Copied to this computer\'s clipboard.');
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), fromVm);

      const typed = `typed in the panel ${randomBytes(4).toString('hex')}`;
      assert.equal(await page.isDisabled('#clipboard-send'), true, 'Send waits for text');
      await page.fill('#clipboard-to-vm', typed);
      await page.click('#clipboard-send');
      assert.equal(await page.textContent('#clipboard-message'), 'Sent to the machine\'s clipboard.');
      await eventually('the X clipboard holds the typed text', () => readXClipboard() === typed, 15_000);

      const pasted = `from the browser's clipboard ${randomBytes(4).toString('hex')}`;
      await page.evaluate((t) => navigator.clipboard.writeText(t), pasted);
      await page.click('#clipboard-paste-here');
      // the browser's clipboard is read asynchronously (navigator.clipboard.readText): wait for the box
      await page.waitForFunction((t) => (document.getElementById('clipboard-to-vm') as HTMLTextAreaElement).value === t, pasted, { timeout: 10_000 });
      await page.click('#clipboard-send');
      await eventually('the X clipboard holds the pasted text', () => readXClipboard() === pasted, 15_000);

      await page.addScriptTag({ path: AXE });
      const result = await page.evaluate(async () => (globalThis as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> } }).axe.run());
      const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
      assert.deepEqual(serious, []);
      await page.screenshot({ path: join(SHOTS, 'clipboard-panel.png') });

      await page.keyboard.press('Escape');
      assert.equal(await page.isVisible('#clipboard-panel'), false);
    } finally {
      await context.close();
      await gw.close();
    }
  });

  for (const [policy, toVm, fromVm] of [['to-vm', true, false], ['from-vm', false, true]] as const) {
    it(`${policy}: the panel offers only the way the policy lets through`, async () => {
      const { gw, context, page } = await openConsole(policy);
      try {
        await page.click('#clipboard-toggle');
        assert.equal(await page.isVisible('#clipboard-to-vm'), toVm);
        assert.equal(await page.isVisible('#clipboard-from-vm'), fromVm);
        if (fromVm) {
          const text = `from-vm policy ${randomBytes(4).toString('hex')}`;
          setXClipboard(text);
          await page.waitForFunction((t) => (document.getElementById('clipboard-from-vm') as HTMLTextAreaElement).value === t, text, { timeout: 10_000 });
        } else {
          const text = `to-vm policy ${randomBytes(4).toString('hex')}`;
          await page.fill('#clipboard-to-vm', text);
          await page.click('#clipboard-send');
          await eventually('the X clipboard holds the text', () => readXClipboard() === text, 15_000);
        }
      } finally {
        await context.close();
        await gw.close();
      }
    });
  }

  it('off: noVNC through the framers to QEMU shows its screen and stays connected', { skip: !haveQemu && 'needs QEMU' }, async () => {
    const qemu = await startQemu();
    const gw = await startGateway({ 'porthole.clipboard': 'off' });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const { token } = await gw.mint({ host: '127.0.0.1', port: qemu.port });
      await page.goto(`${gw.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}`);
      await waitForConsoleState(page, 'connected');
      // QEMU's placeholder: grey text on black, 640 x 480
      await page.waitForFunction(() => {
        const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
        if (!canvas || canvas.width !== 640 || canvas.height !== 480) return false;
        const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] === 170 && d[i + 1] === 170 && d[i + 2] === 170) n++;
        return n > 100;
      }, undefined, { timeout: 15_000 });
      await page.keyboard.type('abc');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await page.evaluate(() => document.body.dataset.consoleState), 'connected');
      assert.equal(gw.logs.find((l) => l.msg === 'console session ended'), undefined, JSON.stringify(gw.logs.filter((l) => l.msg === 'console session ended')));
    } finally {
      await context.close();
      await gw.close();
      await qemu.stop();
    }
  });

  it('off: the panel has no clipboard part, only typing; German words where the policy allows it', async () => {
    const off = await openConsole('off');
    try {
      await off.page.click('#clipboard-toggle');
      assert.equal(await off.page.isVisible('#clipboard-to-vm'), false);
      assert.equal(await off.page.isVisible('#clipboard-from-vm'), false);
      assert.equal(await off.page.isVisible('#keys-text'), true);
    } finally {
      await off.context.close();
      await off.gw.close();
    }
    const de = await openConsole('both', 'de');
    try {
      assert.equal(await de.page.textContent('#clipboard-toggle'), 'Zwischenablage');
      await de.page.click('#clipboard-toggle');
      assert.equal(await de.page.textContent('label[for="clipboard-to-vm"]'), 'Text in die Zwischenablage der Maschine senden');
      await de.page.screenshot({ path: join(SHOTS, 'clipboard-panel-de.png') });
    } finally {
      await de.context.close();
      await de.gw.close();
    }
  });

  it('types text and a password as keystrokes on the us and de layouts; refuses what a layout cannot type', async () => {
    const { gw, context, page } = await openConsole('off');
    const xev = spawn('xev', ['-root', '-event', 'keyboard'], { env: env(), stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    xev.stdout!.on('data', (d: Buffer) => (out += d.toString('latin1')));
    /** The characters the X server made of the key presses since `from` (XLookupString, in the locale's UTF-8). */
    const arrived = (from: number) => out.slice(from).split('KeyPress event').slice(1).map((block) => {
      const m = /XLookupString gives \d+ bytes: (?:\(([0-9a-f ]+)\))?/.exec(block);
      return m?.[1] ? Buffer.from(m[1].replace(/ /g, ''), 'hex').toString('utf8') : '';
    }).join('');
    try {
      await new Promise((r) => setTimeout(r, 300));
      await page.click('#clipboard-toggle');
      assert.equal(await page.inputValue('#keys-layout'), 'us');
      const us = 'Hello, World! 123 @#$%^&*()_+-=[]{};:\'"\\|,.<>/?~`';
      let mark = out.length;
      await page.fill('#keys-text', us);
      await page.click('#keys-type');
      await page.waitForFunction((n) => document.getElementById('clipboard-message')!.textContent === `Typed ${n} characters.`, [...us].length, { timeout: 15_000 });
      await eventually('the us text arrives', () => arrived(mark) === us, 5000).catch(() => assert.equal(arrived(mark), us));

      spawnSync('setxkbmap', ['-layout', 'de'], { env: env() });
      // Xvnc goes by the keysym (the key's position, sent too, matters to a VM): the positions
      // of each layout are checked against xkb in test/web/keystrokes.test.ts
      await page.selectOption('#keys-layout', 'de');
      const de = 'Hallo Welt! äöüß ÄÖÜ @{[]}\\~|<>µ §$%&/()=?*+#\'_-:;²³°yzYZ';
      mark = out.length;
      await page.fill('#keys-text', de);
      await page.click('#keys-type');
      await page.waitForFunction((n) => document.getElementById('clipboard-message')!.textContent === `Typed ${n} characters.`, [...de].length, { timeout: 15_000 });
      await eventually('the de text arrives', () => arrived(mark) === de, 5000).catch(() => assert.equal(arrived(mark), de));

      mark = out.length;
      await page.fill('#keys-text', 'tête-à-tête ^');
      await page.click('#keys-type');
      assert.equal(await page.textContent('#clipboard-message'), 'Nothing was typed: the Deutsch layout cannot type “ê” “à” “^”.');

      const password = 'Geheim!ß§Ä@9';
      await page.fill('#keys-password', password);
      await page.click('#keys-type-password');
      assert.equal(await page.inputValue('#keys-password'), '', 'the password is cleared before it is typed');
      await page.waitForFunction(() => /^Typed \d+ characters\.$/.test(document.getElementById('clipboard-message')!.textContent ?? ''), undefined, { timeout: 15_000 });
      await eventually('the password arrives', () => arrived(mark) === password, 5000).catch(() => assert.equal(arrived(mark), password));
      assert.equal((await page.content()).includes(password), false, 'the password is nowhere in the page');

      await page.fill('#keys-password', 'naïve');
      await page.click('#keys-type-password');
      assert.equal(await page.textContent('#clipboard-message'), 'Nothing was typed: the Deutsch layout cannot type some characters of the password.');
    } finally {
      spawnSync('setxkbmap', ['-layout', 'us'], { env: env() });
      xev.kill('SIGTERM');
      await context.close();
      await gw.close();
    }
  });
});
