/**
 * The console page in a real browser: headless Chromium (Debian) opens a console URL minted by
 * the `porthole` command, noVNC connects through Porthole to a real TigerVNC Xvnc, and the
 * canvas shows the colour the X root window was painted; keys typed in the page reach the X
 * server. Also: the page says in words when its token is expired or unknown, and reconnects by
 * itself after a network blip.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { hashToken } from '../../src/store/types.ts';
import { launchBrowser, waitForCanvasPixel, waitForConsoleState } from '../support/browser.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { keycodeOf, startXvnc, type Xvnc } from '../support/xvnc.ts';

const run = promisify(execFile);
const SERVER_ID = '5d1c2b9e-3f4a-4e6b-8c7d-9e0f1a2b3c4d';

describe('console page in Chromium', () => {
  let gw: TestGateway;
  let xvnc: Xvnc;
  let browser: Browser;

  async function porthole(...args: string[]): Promise<string> {
    const { stdout } = await run(process.execPath, ['bin/porthole.js', ...args, '--database-connection', `sqlite:///${gw.dbPath}`, '--vnc-novncproxy_port', String(gw.port)], { timeout: 30_000 });
    return stdout;
  }

  before(async () => {
    gw = await startGateway();
    xvnc = await startXvnc({ colour: '#3366cc' });
    await xvnc.watchKeys();
    browser = await launchBrowser();
    await porthole('server', 'add', '--id', SERVER_ID, '--name', 'web-1', '--vnc', `127.0.0.1:${xvnc.port}`);
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
    await xvnc?.stop();
  });

  it('shows the Xvnc desktop from a token made by `porthole token create`, and typing reaches the VNC server', async () => {
    const minted = JSON.parse(await porthole('token', 'create', '--instance-uuid', SERVER_ID, '--json')) as { token: string; url: string; expires_at: string };
    assert.deepEqual(Object.keys(minted).sort(), ['expires_at', 'token', 'url']);
    assert.equal(minted.url, `http://127.0.0.1:${gw.port}/vnc_auto.html?path=%3Ftoken%3D${minted.token}`);
    const page = await browser.newPage();
    try {
      await page.goto(minted.url);
      await waitForConsoleState(page, 'connected');
      assert.match(await page.textContent('#status') ?? '', /web-1/);
      await waitForCanvasPixel(page, 5, 5, [0x33, 0x66, 0xcc]);

      const keycodeA = keycodeOf(xvnc.display, 'a');
      assert.ok(keycodeA, 'keycode of "a" on the Xvnc display');
      await page.click('#screen canvas');
      await page.keyboard.type('a');
      await eventually('the X server to see the key "a"', () => xvnc.keycodes.includes(keycodeA!), 10_000);
    } finally {
      await page.close();
    }
  });

  it('serves the page at every path clouds hand out, and honours the lang parameter', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    for (const path of ['/vnc.html', '/vnc_lite.html', '/vnc_auto.html', '/vnc.auto.html']) {
      const res = await fetch(`${gw.origin}${path}?path=${encodeURIComponent(`?token=${token}`)}`);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
      assert.match(await res.text(), /"state":"valid","server":"web-1"/);
    }
    const page = await browser.newPage();
    try {
      await page.goto(`${gw.origin}/vnc.html?token=${token}&lang=de`);
      await waitForConsoleState(page, 'connected');
      assert.match(await page.textContent('#status') ?? '', /Verbunden mit web-1/);
      assert.equal(await page.getAttribute('html', 'lang'), 'de');
    } finally {
      await page.close();
    }
  });

  it('says in words that a token has expired, and does not try to connect', async () => {
    const { url, token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    await gw.gateway.stores.database!.db.updateTable('console_auth_tokens').set({ expires: Math.floor(Date.now() / 1000) - 5 }).where('token_hash', '=', hashToken(token)).execute();
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await waitForConsoleState(page, 'refused');
      assert.match(await page.textContent('#status') ?? '', /expired/);
      assert.ok(!gw.logs.some((l) => l.tokenHash === hashToken(token).slice(0, 8)), 'no WebSocket was attempted');
    } finally {
      await page.close();
    }
  });

  it('says in words that a token is unknown', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${gw.origin}/vnc_auto.html?path=${encodeURIComponent('?token=6f1e2d3c-0000-4000-8000-000000000000')}`);
      await waitForConsoleState(page, 'refused');
      assert.match(await page.textContent('#status') ?? '', /not valid/);
    } finally {
      await page.close();
    }
  });

  it('reconnects by itself after a network blip while the token is valid, and stops once it is revoked', async () => {
    const { url, token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: SERVER_ID });
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await waitForConsoleState(page, 'connected');
      const sessionsOf = () => [...gw.gateway.sessions].filter((s) => s.info.tokenLogId === hashToken(token).slice(0, 8));
      assert.equal(sessionsOf().length, 1);
      const first = sessionsOf()[0]!;
      // the network drops: the TCP connection to the browser dies without a close frame
      first._clientSocket.destroy();
      await eventually('a new session for the same token', () => sessionsOf().some((s) => s !== first), 15_000);
      await waitForConsoleState(page, 'connected');
      await waitForCanvasPixel(page, 5, 5, [0x33, 0x66, 0xcc]);

      await gw.gateway.stores.tokens.revoke(token);
      for (const s of sessionsOf()) s._clientSocket.destroy();
      await waitForConsoleState(page, 'refused');
      assert.match(await page.textContent('#status') ?? '', /not valid|revoked/);
    } finally {
      await page.close();
    }
  });
});
