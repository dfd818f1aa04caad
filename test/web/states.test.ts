/**
 * The console page's final states, each with its own words and the one next step that helps
 * (issue 16), in headless Chromium through Porthole: expired, revoked, damaged, missing and used
 * (single-use) links have their own words, no console button, and a "Get a new link" button when
 * `[porthole] new_link_url` is set (none when it is not). Each state is photographed into the test
 * output directory and checked with axe-core (no serious or critical violation; once per markup).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { hashToken } from '../../src/store/types.ts';
import { checkState } from '../support/axe.ts';
import { haveChromium, launchBrowser, waitForConsoleState } from '../support/browser.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { freePort, haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER_ID = '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d';
const OFF_ID = '8b7c6d5e-4f3a-4b2c-9d0e-1f2a3b4c5d6e';
const NEW_LINK = 'https://portal.example.com/servers/web-1/console';

async function visible(page: Page, selector: string): Promise<boolean> {
  return page.isVisible(selector);
}

describe('console page: final states with a next step', { skip: (!haveXvnc || !haveChromium) && 'needs Xvnc and Chromium', timeout: 120_000 }, () => {
  let xvnc: Xvnc;
  let browser: Browser;
  let context: BrowserContext;
  let gw: TestGateway | undefined;
  let offPort: number;

  before(async () => {
    xvnc = await startXvnc({ colour: '#3366cc' });
    browser = await launchBrowser();
    // axe-core is put in the page as a script of the test's own: the page's CSP would refuse it
    context = await browser.newContext({ bypassCSP: true, locale: 'en-US' });
    offPort = await freePort();
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await gw?.close();
    await xvnc?.stop();
  });

  async function start(settings: Record<string, string> = {}): Promise<TestGateway> {
    await gw?.close();
    gw = await startGateway(settings);
    await gw.gateway.stores.inventory.put({ id: SERVER_ID, name: 'web-1', projectId: 'p1', status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port } });
    await gw.gateway.stores.inventory.put({ id: OFF_ID, name: 'db-off', projectId: 'p1', status: 'SHUTOFF', vnc: { host: '127.0.0.1', port: offPort } });
    return gw;
  }

  /** A screenshot of the state; axe-core too unless the same markup was checked in another state (axe takes seconds). */
  function check(page: Page, name: string, axe = true): Promise<void> {
    return checkState(page, 'web-states', name, axe);
  }

  it('gives expired, revoked, damaged, used and missing links each their own words, no console buttons, and the operator\'s new-link button', async () => {
    const g = await start({ 'porthole.new_link_url': NEW_LINK, 'porthole.single_use_tokens': 'true' });
    const expired = await g.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    await g.gateway.stores.database!.db.updateTable('console_auth_tokens').set({ expires: Math.floor(Date.now() / 1000) - 5 }).where('token_hash', '=', hashToken(expired.token)).execute();
    const revoked = await g.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    await g.gateway.stores.tokens.revoke(revoked.token);
    const base = `http://127.0.0.1:${g.port}/vnc_auto.html`;
    const cases: Array<[string, string, string]> = [
      ['expired', `${expired.url}&lang=en`, 'This console link has expired. Ask for a new console URL.'],
      ['revoked', `${revoked.url}&lang=en`, 'This console link is not valid: it was revoked, or it never existed. Ask for a new link.'],
      ['malformed', `${base}?lang=en&path=${encodeURIComponent(`?token=${revoked.token.slice(0, 20)}`)}`, 'This console link is incomplete or damaged. Copy the whole link again, or ask for a new one.'],
      ['missing', `${base}?lang=en`, 'No console token in this URL.'],
    ];
    for (const [name, url, words] of cases) {
      const page = await context.newPage();
      try {
        await page.goto(url);
        await waitForConsoleState(page, 'refused');
        assert.equal(await page.textContent('#status'), words, name);
        for (const button of ['#connect', '#ctrl-alt-del', '#fullscreen', '#clipboard-toggle']) assert.equal(await visible(page, button), false, `${name}: ${button} is not shown`);
        assert.equal(await visible(page, '#new-link'), true, `${name}: the new-link button`);
        assert.equal(await page.textContent('#new-link'), 'Get a new link');
        assert.equal(await page.getAttribute('#new-link', 'href'), NEW_LINK);
        // the refused pages share their markup: axe-core checks two of them
        await check(page, name, name === 'expired' || name === 'revoked');
      } finally {
        await page.close();
      }
    }

    // single-use: the first page has the console; a second browser (another client would do
    // too) with the same link is refused because the token is used, and says so
    const used = await g.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    const first = await context.newPage();
    const other = await browser.newContext({ bypassCSP: true, locale: 'en-US' });
    try {
      await first.goto(`${used.url}&lang=en`);
      await waitForConsoleState(first, 'connected');
      const second = await other.newPage();
      await second.goto(`${used.url}&lang=en`);
      await waitForConsoleState(second, 'refused');
      assert.equal(await second.textContent('#status'), 'This console link has already been used: it opens one session only. Ask for a new link.');
      assert.equal(await visible(second, '#connect'), false);
      assert.equal(await second.getAttribute('#new-link', 'href'), NEW_LINK);
      await check(second, 'used', false);
    } finally {
      await first.close();
      await other.close();
    }
  });

  it('without new_link_url shows no new-link button, and the German words', async () => {
    const g = await start();
    const { url, token } = await g.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    await g.gateway.stores.tokens.revoke(token);
    const page = await context.newPage();
    try {
      await page.goto(`${url}&lang=de`);
      await waitForConsoleState(page, 'refused');
      assert.equal(await page.textContent('#status'), 'Dieser Konsolen-Link ist ungültig: Er wurde widerrufen oder hat nie existiert. Fordern Sie einen neuen Link an.');
      assert.equal(await visible(page, '#new-link'), false);
      await check(page, 'revoked-de', false);
    } finally {
      await page.close();
    }
  });

});
