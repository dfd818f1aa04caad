/**
 * The on-screen keyboard of the console page (src/web/static/touch-keyboard.js) in Chromium at a
 * phone's viewport (touch, mobile), through a gateway to a real Xvnc, with `xev -root` reading the
 * keys the X server gets: the Keyboard button shows on a phone and not on a desktop, it focuses the
 * hidden textarea (where the phone's keyboard would open), text typed there (insertText: what a
 * phone keyboard's input events do) arrives as its keys, a deletion as BackSpace and a line break
 * as Return; axe-core with no serious violation; German words; no button when view-only or on a
 * final page. Screenshots in the test output directory.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { checkState } from '../support/axe.ts';
import { consolePageUrl, haveChromium, launchBrowser, openConsolePage, waitForConsoleState } from '../support/browser.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { haveXvnc, readRootKeys, startXvnc, type Xvnc } from '../support/xvnc.ts';

const PHONE = { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true };

describe('console page on-screen keyboard (Chromium phone, Xvnc, xev)', { skip: (!haveXvnc || !haveChromium) && 'needs Xvnc and Chromium', timeout: 120_000 }, () => {
  let xvnc: Xvnc;
  let browser: Browser;
  let gw: TestGateway;

  before(async () => {
    xvnc = await startXvnc({ colour: '#336633' });
    browser = await launchBrowser();
    gw = await startGateway({});
  });
  after(async () => {
    await gw?.close();
    await browser?.close();
    await xvnc?.stop();
  });

  async function open(query: string, phone = true): Promise<{ context: BrowserContext; page: Page }> {
    const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port });
    return openConsolePage(browser, consolePageUrl(gw.origin, token, query), phone ? PHONE : {});
  }

  const readKeys = () => readRootKeys(xvnc.display);

  /** The keys pressed (not released, not Xvnc's own Shift around a shifted character), in order. */
  const presses = (keys: string[]) => keys.filter((k) => k.startsWith('+') && !/^\+Shift_[LR]$/.test(k)).map((k) => k.slice(1));

  it('on a phone: the Keyboard button opens the textarea; typed text, deletions and line breaks arrive as keys; accessible', async () => {
    const { context, page } = await open('lang=en');
    const keys = readKeys();
    try {
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await page.isVisible('#touch-keyboard-toggle'), true, 'the button shows at a phone viewport');
      assert.equal(await page.textContent('#touch-keyboard-toggle'), 'Keyboard');
      const box = (await page.locator('#touch-keyboard-toggle').boundingBox())!;
      assert.ok(box.x >= 0 && box.x + box.width <= PHONE.viewport.width, `the button lies within the phone's width: ${JSON.stringify(box)}`);
      // every button of the bar can be reached on the phone, not only this one (console.css wraps the bar there)
      const offScreen = await page.$$eval('#bar button:not([hidden]), #bar a.button:not([hidden])', (buttons, width) => buttons.filter((b) => {
        const r = b.getBoundingClientRect();
        return r.width > 0 && (r.left < 0 || r.right > width);
      }).map((b) => b.id), PHONE.viewport.width);
      assert.deepEqual(offScreen, [], 'bar buttons off the phone\'s screen');
      assert.equal(await page.getAttribute('#touch-keyboard-toggle', 'aria-pressed'), 'false');
      await page.tap('#touch-keyboard-toggle');
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'touch-keyboard-input', 'the textarea has the focus: the phone opens its keyboard');
      assert.equal(await page.getAttribute('#touch-keyboard-toggle', 'aria-pressed'), 'true');
      await checkState(page, 'web-touch-keyboard', 'phone-open');

      let mark = keys.mark();
      await page.keyboard.insertText('a');
      await page.keyboard.insertText('b');
      await page.keyboard.insertText('1');
      await eventually('ab1', () => presses(keys.since(mark)).length >= 3, 5000).catch(() => undefined);
      assert.deepEqual(presses(keys.since(mark)), ['a', 'b', '1']);

      mark = keys.mark();
      await page.keyboard.press('Backspace'); // deletes one character of the textarea: an input event
      await eventually('BackSpace', () => presses(keys.since(mark)).length >= 1, 5000).catch(() => undefined);
      assert.deepEqual(presses(keys.since(mark)), ['BackSpace']);

      mark = keys.mark();
      await page.keyboard.insertText('X\n');
      await eventually('X Return', () => presses(keys.since(mark)).length >= 2, 5000).catch(() => undefined);
      assert.deepEqual(presses(keys.since(mark)), ['X', 'Return']);

      // a word replaced at once (what an autocorrecting keyboard does): deletions, then the new text
      mark = keys.mark();
      await page.evaluate(() => {
        const input = document.getElementById('touch-keyboard-input') as HTMLTextAreaElement;
        input.value = `${input.value.slice(0, -2)}yz`;
        input.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'insertReplacementText' }));
      });
      await eventually('replace', () => presses(keys.since(mark)).length >= 4, 5000).catch(() => undefined);
      assert.deepEqual(presses(keys.since(mark)), ['BackSpace', 'BackSpace', 'y', 'z']);

      await page.tap('#touch-keyboard-toggle');
      assert.equal(await page.getAttribute('#touch-keyboard-toggle', 'aria-pressed'), 'false', 'a second tap closes it');
      assert.notEqual(await page.evaluate(() => document.activeElement?.id), 'touch-keyboard-input');
    } finally {
      keys.xev.kill('SIGTERM');
      await context.close();
    }
  });

  it('not on a desktop; German words; no button when view-only or on a final page', async () => {
    const desktop = await open('lang=en', false);
    try {
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await desktop.page.isVisible('#touch-keyboard-toggle'), false, 'a desktop has its keyboard');
    } finally {
      await desktop.context.close();
    }
    const de = await open('lang=de');
    try {
      assert.equal(await de.page.textContent('#touch-keyboard-toggle'), 'Tastatur');
      await checkState(de.page, 'web-touch-keyboard', 'phone-de', false);
    } finally {
      await de.context.close();
    }
    const viewOnly = await open('lang=en&view_only=1');
    try {
      assert.equal(await viewOnly.page.isVisible('#touch-keyboard-toggle'), false, 'view-only');
    } finally {
      await viewOnly.context.close();
    }
    const context = await browser.newContext({ locale: 'en-US', ...PHONE });
    try {
      const page = await context.newPage();
      await page.goto(`${gw.origin}/vnc_auto.html?lang=en&path=${encodeURIComponent('?token=abc')}`);
      await waitForConsoleState(page, 'refused');
      assert.equal(await page.isVisible('#touch-keyboard-toggle'), false, 'final page');
      await checkState(page, 'web-touch-keyboard', 'refused-phone', false);
    } finally {
      await context.close();
    }
  });
});
