/**
 * The Keys menu of the console page (src/web/static/keys.js) in Chromium, through a gateway to a
 * real Xvnc, with `xev -root` reading the key presses and releases the X server gets: each menu
 * entry as its keys in order (modifiers down first, up last), sticky Ctrl/Alt/Super held for the
 * next key typed on the screen or picked in the menu and let go after it, the menu's
 * aria-expanded/aria-pressed, Escape closing it, axe-core with no serious violation, German words,
 * and no Keys button on a final page or when view-only. Screenshots in the test output directory.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { checkState } from '../support/axe.ts';
import { consolePageUrl, haveChromium, launchBrowser, openConsolePage, waitForConsoleState } from '../support/browser.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { haveXvnc, readRootKeys, startXvnc, type Xvnc } from '../support/xvnc.ts';

describe('console page Keys menu (Chromium, Xvnc, xev)', { skip: (!haveXvnc || !haveChromium) && 'needs Xvnc and Chromium', timeout: 120_000 }, () => {
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

  async function open(query: string): Promise<{ context: BrowserContext; page: Page }> {
    const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port });
    return openConsolePage(browser, consolePageUrl(gw.origin, token, query));
  }

  const readKeys = () => readRootKeys(xvnc.display);

  const expanded = (page: Page) => page.getAttribute('#keys-toggle', 'aria-expanded');
  const pressed = (page: Page, name: string) => page.getAttribute(`#keys-sticky-${name}`, 'aria-pressed');

  it('sends each menu entry as its keys, modifiers first and let go last; accessible', async () => {
    const { context, page } = await open('lang=en');
    const keys = readKeys();
    try {
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await page.textContent('#keys-toggle'), 'Keys');
      assert.equal(await expanded(page), 'false');
      await page.click('#keys-toggle');
      assert.equal(await expanded(page), 'true');
      await checkState(page, 'web-keys', 'menu-open');
      const cases: Array<[string, string[]]> = [
        ['ctrl-alt-del', ['+Control_L', '+Alt_L', '+Delete', '-Delete', '-Alt_L', '-Control_L']],
        ['alt-tab', ['+Alt_L', '+Tab', '-Tab', '-Alt_L']],
        ['super', ['+Super_L', '-Super_L']],
        ['print', ['+Print', '-Print']],
        ['esc', ['+Escape', '-Escape']],
        ['tab', ['+Tab', '-Tab']],
      ];
      for (let n = 1; n <= 12; n++) cases.push([`ctrl-alt-f${n}`, ['+Control_L', '+Alt_L', `+F${n}`, `-F${n}`, '-Alt_L', '-Control_L']]);
      for (const [id, expected] of cases) {
        const mark = keys.mark();
        await page.click(`#keys-${id}`);
        await eventually(id, () => keys.since(mark).length >= expected.length, 5000).catch(() => undefined);
        // Xvnc maps keysyms itself: for F1..F12 with Ctrl+Alt held it adds a Shift of its own around
        // the key (the page sends none), and xkb names the key's release XF86Switch_VT_n: the same key
        const got = keys.since(mark).filter((k) => !/^[+-]Shift_L$/.test(k) || !id.startsWith('ctrl-alt-f'))
          .map((k) => k.replace(/XF86Switch_VT_(\d+)/, 'F$1'));
        assert.deepEqual(got, expected, id);
      }
      assert.equal(await expanded(page), 'true', 'the menu stays open for the next key');
      await page.keyboard.press('Escape');
      assert.equal(await expanded(page), 'false', 'Escape closes the menu');
      assert.equal(await page.isVisible('#keys-panel'), false);
    } finally {
      keys.xev.kill('SIGTERM');
      await context.close();
    }
  });

  it('sticky Ctrl and Alt hold for the next key typed on the screen or picked in the menu, then let go', async () => {
    const { context, page } = await open('lang=en');
    const keys = readKeys();
    try {
      await new Promise((r) => setTimeout(r, 300));
      await page.click('#keys-toggle');
      await page.click('#keys-sticky-ctrl');
      assert.equal(await pressed(page, 'ctrl'), 'true');
      await page.keyboard.press('Escape'); // closes the menu, the screen has the focus again
      let mark = keys.mark();
      await page.keyboard.press('c');
      await eventually('ctrl+c', () => keys.since(mark).length >= 4, 5000).catch(() => undefined);
      assert.deepEqual(keys.since(mark), ['+Control_L', '+c', '-c', '-Control_L']);
      assert.equal(await pressed(page, 'ctrl'), 'false', 'let go after one key');
      mark = keys.mark();
      await page.keyboard.press('d');
      await eventually('d', () => keys.since(mark).length >= 2, 5000).catch(() => undefined);
      assert.deepEqual(keys.since(mark), ['+d', '-d'], 'the next key is plain');

      await page.click('#keys-toggle');
      await page.click('#keys-sticky-alt');
      await page.click('#keys-sticky-super');
      assert.deepEqual([await pressed(page, 'alt'), await pressed(page, 'super')], ['true', 'true']);
      mark = keys.mark();
      await page.click('#keys-esc');
      await eventually('alt+super+esc', () => keys.since(mark).length >= 6, 5000).catch(() => undefined);
      assert.deepEqual(keys.since(mark), ['+Alt_L', '+Super_L', '+Escape', '-Escape', '-Super_L', '-Alt_L']);
      assert.deepEqual([await pressed(page, 'alt'), await pressed(page, 'super')], ['false', 'false']);
    } finally {
      keys.xev.kill('SIGTERM');
      await context.close();
    }
  });

  it('German words; no Keys button when view-only or on a final page', async () => {
    const de = await open('lang=de');
    try {
      assert.equal(await de.page.textContent('#keys-toggle'), 'Tasten');
      await de.page.click('#keys-toggle');
      assert.equal(await de.page.textContent('#keys-ctrl-alt-del'), 'Strg-Alt-Entf');
      await checkState(de.page, 'web-keys', 'menu-de', false);
    } finally {
      await de.context.close();
    }
    const viewOnly = await open('lang=en&view_only=1');
    try {
      assert.equal(await viewOnly.page.isVisible('#keys-toggle'), false, 'view-only');
    } finally {
      await viewOnly.context.close();
    }
    const context = await browser.newContext({ locale: 'en-US' });
    try {
      const page = await context.newPage();
      await page.goto(`${gw.origin}/vnc_auto.html?lang=en&path=${encodeURIComponent('?token=abc')}`);
      await waitForConsoleState(page, 'refused');
      assert.equal(await page.isVisible('#keys-toggle'), false, 'final page');
      await checkState(page, 'web-keys', 'refused', false);
    } finally {
      await context.close();
    }
  });
});
