/**
 * The Settings panel of the console page (src/web/static/settings.js) in Chromium, through a
 * gateway to a real Xvnc: scaling, quality, compression and view-only changed in the panel reach
 * noVNC's RFB object, are remembered across a reload (localStorage), and a URL parameter wins
 * over a remembered setting without replacing it; the panel is accessible (axe-core) and not
 * offered on a final page. Screenshots in the test output directory.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { checkState } from '../support/axe.ts';
import { haveChromium, launchBrowser, waitForConsoleState } from '../support/browser.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

interface RfbView { scaleViewport: boolean; resizeSession: boolean; qualityLevel: number; compressionLevel: number; viewOnly: boolean; _shared: boolean }

describe('console page Settings panel (Chromium, Xvnc)', { skip: (!haveXvnc || !haveChromium) && 'needs Xvnc and Chromium', timeout: 120_000 }, () => {
  let xvnc: Xvnc;
  let browser: Browser;
  let gw: TestGateway;

  before(async () => {
    xvnc = await startXvnc({ colour: '#663333' });
    browser = await launchBrowser();
    gw = await startGateway({});
  });
  after(async () => {
    await gw?.close();
    await browser?.close();
    await xvnc?.stop();
  });

  const rfb = (page: Page) => page.evaluate(() => {
    const r = (globalThis as unknown as { porthole: { rfb: RfbView } }).porthole.rfb;
    return { scaleViewport: r.scaleViewport, resizeSession: r.resizeSession, qualityLevel: r.qualityLevel, compressionLevel: r.compressionLevel, viewOnly: r.viewOnly, shared: r._shared };
  });
  const choices = async (page: Page) => ({
    scaling: await page.inputValue('#settings-scaling'),
    quality: await page.inputValue('#settings-quality'),
    compression: await page.inputValue('#settings-compression'),
    viewOnly: await page.isChecked('#settings-view-only'),
    shared: await page.isChecked('#settings-shared'),
  });

  it('a setting changed reaches noVNC, is remembered across a reload, and a URL parameter wins', async () => {
    const context = await browser.newContext({ bypassCSP: true, locale: 'en-US' });
    try {
      const page = await context.newPage();
      const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port });
      const url = `${gw.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}&lang=en`;
      await page.goto(url);
      await waitForConsoleState(page, 'connected');
      assert.equal(await page.textContent('#settings-toggle'), 'Settings');
      assert.equal((await rfb(page)).scaleViewport, true, 'fit to the window by default');

      await page.click('#settings-toggle');
      assert.equal(await page.getAttribute('#settings-toggle', 'aria-expanded'), 'true');
      await checkState(page, 'web-settings', 'panel-open');
      await page.selectOption('#settings-scaling', 'off');
      await page.selectOption('#settings-quality', '3');
      await page.selectOption('#settings-compression', '7');
      await page.check('#settings-view-only');
      assert.equal(await page.isChecked('#settings-shared'), true, 'shared by default');
      await page.uncheck('#settings-shared');
      const live = await rfb(page);
      assert.deepEqual([live.scaleViewport, live.resizeSession, live.qualityLevel, live.compressionLevel], [false, false, 3, 7], 'applied at once');
      await page.keyboard.press('Escape');
      assert.equal(await page.isVisible('#settings-panel'), false, 'Escape closes the panel');
      // one panel at a time: opening another closes the one that is open
      await page.click('#settings-toggle');
      await page.click('#clipboard-toggle');
      assert.deepEqual([await page.isVisible('#settings-panel'), await page.isVisible('#clipboard-panel')], [false, true], 'the clipboard panel replaces the settings');
      await page.click('#settings-toggle');
      assert.deepEqual([await page.isVisible('#settings-panel'), await page.isVisible('#clipboard-panel')], [true, false], 'and the settings the clipboard panel');
      await page.keyboard.press('Escape');

      await page.reload();
      await waitForConsoleState(page, 'connected');
      assert.deepEqual(await choices(page), { scaling: 'off', quality: '3', compression: '7', viewOnly: true, shared: false });
      // noVNC keeps the ClientInit flag in _shared (no public getter)
      assert.deepEqual(await rfb(page), { scaleViewport: false, resizeSession: false, qualityLevel: 3, compressionLevel: 7, viewOnly: true, shared: false }, 'remembered');
      assert.equal(await page.isVisible('#ctrl-alt-del'), false, 'view-only: no keys to send');
      assert.equal(await page.isVisible('#keys-toggle'), false);

      await page.goto(`${url}&resize=remote&quality=9&view_only=0&shared=1`);
      await waitForConsoleState(page, 'connected');
      assert.deepEqual(await choices(page), { scaling: 'remote', quality: '9', compression: '7', viewOnly: false, shared: true });
      assert.deepEqual(await rfb(page), { scaleViewport: false, resizeSession: true, qualityLevel: 9, compressionLevel: 7, viewOnly: false, shared: true }, 'the URL wins');
      const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('porthole.console.settings') ?? '{}'));
      assert.deepEqual(stored, { resize: 'off', quality: '3', compression: '7', view_only: '1', shared: '0' }, 'the URL does not replace what is remembered');

      // `scale` in the URL is a choice of scaling too: a remembered `resize` does not override it
      await page.goto(`${url}&scale=true`);
      await waitForConsoleState(page, 'connected');
      assert.equal((await rfb(page)).scaleViewport, true);
      assert.equal(await page.inputValue('#settings-scaling'), 'scale');
    } finally {
      await context.close();
    }
  });

  it('German words; not offered on a final page', async () => {
    const context = await browser.newContext({ locale: 'en-US' });
    try {
      const page = await context.newPage();
      const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port });
      await page.goto(`${gw.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}&lang=de`);
      await waitForConsoleState(page, 'connected');
      assert.equal(await page.textContent('#settings-toggle'), 'Einstellungen');
      await page.goto(`${gw.origin}/vnc_auto.html?lang=en&path=${encodeURIComponent('?token=abc')}`);
      await waitForConsoleState(page, 'refused');
      assert.equal(await page.isVisible('#settings-toggle'), false);
    } finally {
      await context.close();
    }
  });
});
