/**
 * Shared consoles as people see and use them: three Chromium contexts on one shared console of a
 * real TigerVNC Xvnc, through a real gateway with `[porthole] shared_consoles`. One types and the
 * characters reach the X server (`xev -root`); each typed r, g or b paints the X root red, green or
 * blue (`xsetroot`), and all three canvases show it. The watchers' noVNC is view-only, and their
 * keys, sent anyway, are dropped by the proxy. Control moves on request (accepted, and ignored:
 * after the engine's 10 s), then the former watcher's keys reach X. Every Viewers panel lists the
 * three names with their roles; Xvnc sees one connection (`ss -tn`). An admin's shadow
 * (`POST /porthole/v1/sessions/{id}/shadow`) joins view-only under the admin's label; a view-only
 * token never takes control, even by speaking to the control channel itself; the channel refuses
 * a foreign Origin, an unknown token, a key with another token, floods and oversize messages;
 * axe-core on the panel and on the prompt. Screenshots in the test output directory.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { NOVNC_VIEW_ONLY } from '../../src/store/view-only.ts';
import { checkState } from '../support/axe.ts';
import { startApi, type TestApi } from '../support/api.ts';
import { canvasPixel, consolePageUrl, haveChromium, launchBrowser, openConsolePage, waitForConsoleState } from '../support/browser.ts';
import { eventually } from '../support/gateway.ts';
import { porthole } from '../support/process.ts';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER = '5a4e0c3d-6b1f-4c2a-9d8e-7f6a5b4c3d2e';
const PRIVATE_SERVER = '5a4e0c3d-6b1f-4c2a-9d8e-7f6a5b4c3d2f';
const COLOURS: Record<string, [number, number, number]> = { r: [255, 0, 0], g: [0, 255, 0], b: [0, 0, 255] };
const KEYSYMS: Record<string, number> = { r: 0x72, g: 0x67, b: 0x62, x: 0x78 };

describe('shared consoles in three browsers (Chromium, Xvnc, xev)', { skip: (!haveXvnc || !haveChromium) && 'needs Xvnc and Chromium', timeout: 300_000 }, () => {
  let xvnc: Xvnc;
  let browser: Browser;
  let gw: TestApi;
  let xev: ChildProcess;
  /** Every key press X saw, in order (keysym names). */
  const pressed: string[] = [];
  const contexts: BrowserContext[] = [];
  let alice: Page;
  let bob: Page;
  let carol: Page;
  const tokens: Record<string, string> = {};

  before(async () => {
    xvnc = await startXvnc({ colour: '#336633' });
    // the "typed result" on screen: each r, g, b typed on the machine paints its root
    xev = spawn('xev', ['-root', '-event', 'keyboard'], { env: { ...process.env, DISPLAY: xvnc.display }, stdio: ['ignore', 'pipe', 'ignore'] });
    let buf = '';
    xev.stdout!.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const m = /KeyPress event[^]*?keycode \d+ \(keysym 0x[0-9a-f]+, (\w+)\)/.exec(buf);
        if (!m) break;
        buf = buf.slice(m.index + m[0].length);
        pressed.push(m[1]!);
        const rgb = COLOURS[m[1]!];
        if (rgb) spawnSync('xsetroot', ['-solid', `rgb:${rgb.map((v) => v.toString(16).padStart(2, '0')).join('/')}`], { env: { ...process.env, DISPLAY: xvnc.display } });
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    browser = await launchBrowser();
    gw = await startApi({ 'porthole.shared_consoles': 'true' });
    await gw.addServer({ id: SERVER, name: 'shared-vm', vnc: { host: '127.0.0.1', port: xvnc.port } });
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await gw?.close();
    await browser?.close();
    xev?.kill('SIGTERM');
    await xvnc?.stop();
  });

  /** A token for the shared server, with the viewer's name (and control flag) in its extras. */
  async function mint(label: string, opts: { control?: boolean; consoleType?: string; server?: string } = {}): Promise<string> {
    const stores = gw.gateway.stores;
    const { token, record } = await stores.tokens.create({ consoleType: opts.consoleType ?? 'novnc', host: '127.0.0.1', port: xvnc.port, instanceUuid: opts.server ?? SERVER, accessUrlBase: gw.gateway.novnc!.baseUrl, ttl: 600, internalAccessPath: null });
    await stores.tokenExtras!.put(record.tokenHash, { label, mintedBy: 'test', control: opts.control ?? false, record: false }, record.expires);
    tokens[label] = token;
    return token;
  }

  async function open(token: string, lang = 'en'): Promise<Page> {
    const { context, page } = await openConsolePage(browser, consolePageUrl(gw.origin, token, `lang=${lang}`));
    contexts.push(context);
    return page;
  }

  /** The Viewers panel's list as `name:role` (the DOM is there whether the panel is open or not). */
  const listed = (page: Page) => page.$$eval('#viewers-list li', (items) => items.map((li) => `${li.querySelector('.viewers-name')!.textContent!.replace(/ \(you\)$/, '')}:${(li as HTMLElement).dataset.role}`));
  /** The name this page's own line shows. */
  const own = (page: Page) => page.$$eval('#viewers-list .viewers-name', (names) => names.map((n) => n.textContent).filter((t) => t!.endsWith(' (you)')));
  const summary = (page: Page) => page.textContent('#viewers-summary');

  async function waitListed(page: Page, expected: string[], ms = 15_000): Promise<void> {
    let last: string[] = [];
    await eventually(`list ${expected.join(', ')}`, async () => {
      last = await listed(page);
      return JSON.stringify([...last].sort()) === JSON.stringify([...expected].sort());
    }, ms).catch(() => assert.deepEqual([...last].sort(), [...expected].sort()));
  }

  async function waitColour(page: Page, rgb: readonly number[], what: string): Promise<void> {
    let last: number[] = [];
    await eventually(`${what}: canvas ${rgb}`, async () => {
      last = await canvasPixel(page, 20, 20).catch(() => []);
      return last.length === 3 && last.every((v, i) => Math.abs(v - rgb[i]!) <= 2);
    }, 15_000).catch(() => assert.deepEqual(last, rgb, what));
  }

  /** Types `key` on the page's screen; `force`: even while noVNC is view-only (the proxy must drop it). */
  async function type(page: Page, key: string, force = false): Promise<void> {
    await page.evaluate(([keysym, f]) => {
      const rfb = (window as any).porthole.rfb;
      const was = rfb.viewOnly;
      if (f) rfb.viewOnly = false;
      rfb.sendKey(keysym, null, true);
      rfb.sendKey(keysym, null, false);
      if (f) rfb.viewOnly = was;
    }, [KEYSYMS[key]!, force] as const);
  }

  /** Established connections at Xvnc's port, counted on Xvnc's side. */
  function backendConnections(): number {
    const r = spawnSync('ss', ['-Htn', 'state', 'established', `( sport = :${xvnc.port} )`], { encoding: 'utf8' });
    return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
  }

  const viewOnlyOf = (page: Page) => page.evaluate(() => (window as any).porthole.rfb.viewOnly as boolean);

  it('one types and the two watching see it; the watchers are view-only and their keys dropped; one backend connection', async () => {
    alice = await open(await mint('Alice', { control: true }));
    bob = await open(await mint('Bob'));
    carol = await open(await mint('Carol'));
    for (const page of [alice, bob, carol]) await waitListed(page, ['Alice:control', 'Bob:view', 'Carol:view']);
    assert.deepEqual(await own(alice), ['Alice (you)']);
    assert.deepEqual(await own(bob), ['Bob (you)']);
    assert.equal(await summary(alice), 'You have control.');
    assert.equal(await summary(bob), 'You are watching — Alice has control.');
    // the same words in the bar, seen without opening the panel
    assert.equal(await bob.isVisible('#viewers-role'), true);
    assert.equal(await bob.textContent('#viewers-role'), 'You are watching — Alice has control.');
    assert.equal(await alice.textContent('#viewers-role'), 'You have control.');
    assert.equal(await bob.$eval('#viewers-ask', (b) => (b as HTMLButtonElement).hidden), false, 'a watcher may ask');
    assert.equal(await alice.textContent('#viewers-toggle'), 'Viewers (3)');
    assert.deepEqual([await viewOnlyOf(alice), await viewOnlyOf(bob), await viewOnlyOf(carol)], [false, true, true]);
    // no button that cannot work: the watchers' bar has no Ctrl-Alt-Del and no Keys
    const inputButtons = (page: Page) => page.$$eval('#ctrl-alt-del, #keys-toggle', (bs) => bs.filter((b) => !(b as HTMLElement).hidden).map((b) => b.id));
    assert.deepEqual(await inputButtons(alice), ['ctrl-alt-del', 'keys-toggle']);
    assert.deepEqual(await inputButtons(bob), []);
    assert.equal(backendConnections(), 1, 'Xvnc sees one connection for three viewers');

    const mark = pressed.length;
    await type(alice, 'r');
    await eventually('r at X', () => pressed.slice(mark).includes('r'), 10_000);
    for (const [name, page] of [['Alice', alice], ['Bob', bob], ['Carol', carol]] as const) await waitColour(page, COLOURS.r!, `${name} sees red`);

    const before = pressed.length;
    await type(bob, 'g', true);
    await type(carol, 'b', true);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(pressed.slice(before), [], 'the watchers\' keys are dropped');
    await waitColour(alice, COLOURS.r!, 'still red');
  });

  it('lists the viewers in an accessible panel, used from the keyboard, one panel at a time', async () => {
    await bob.focus('#viewers-toggle');
    await bob.keyboard.press('Enter');
    assert.equal(await bob.getAttribute('#viewers-toggle', 'aria-expanded'), 'true');
    assert.equal(await bob.evaluate(() => document.activeElement?.id), 'viewers-ask', 'the focus goes to the first thing to do');
    await checkState(bob, 'web-viewers', 'panel-watching');
    await bob.keyboard.press('Escape');
    assert.equal(await bob.isVisible('#viewers-panel'), false);
    await alice.click('#keys-toggle');
    assert.equal(await alice.isVisible('#keys-panel'), true);
    await alice.click('#viewers-toggle');
    assert.equal(await alice.isVisible('#keys-panel'), false, 'the Keys menu closes when the Viewers panel opens');
    assert.equal(await alice.isVisible('#viewers-release'), true);
    assert.equal(await alice.isVisible('#viewers-ask'), false);
    assert.equal(await alice.locator('#viewers-list button.viewers-give').count(), 2, 'give control to each of the two watchers');
    await checkState(alice, 'web-viewers', 'panel-control');
    await alice.click('#viewers-close');
  });

  it('moves control when the viewer in control accepts a request; the new controller\'s keys reach X', async () => {
    await bob.click('#viewers-toggle');
    await bob.click('#viewers-ask');
    await eventually('the prompt at Alice', () => alice.isVisible('#viewers-request'), 10_000);
    assert.equal(await alice.textContent('#viewers-request-text'), 'Bob asks for control.');
    assert.equal(await alice.textContent('#viewers-announce'), 'Bob asks for control.', 'read out to the viewer in control');
    assert.match((await alice.textContent('#viewers-request-timeout'))!, /^Control goes to them in \d+ s unless you keep it\.$/);
    await checkState(alice, 'web-viewers', 'prompt');
    await alice.click('#viewers-accept');
    for (const page of [alice, bob, carol]) await waitListed(page, ['Alice:view', 'Bob:control', 'Carol:view']);
    assert.equal(await summary(bob), 'You have control.');
    assert.equal(await summary(alice), 'You are watching — Bob has control.');
    assert.equal(await alice.textContent('#viewers-role'), 'You are watching — Bob has control.');
    assert.equal(await alice.textContent('#viewers-announce'), '', 'nothing left to read out');
    assert.deepEqual([await viewOnlyOf(alice), await viewOnlyOf(bob)], [true, false]);
    await eventually('Bob\'s Ctrl-Alt-Del', async () => !(await bob.$eval('#ctrl-alt-del', (b) => (b as HTMLElement).hidden)));
    assert.equal(await alice.$eval('#ctrl-alt-del', (b) => (b as HTMLElement).hidden), true, 'Alice watches: no Ctrl-Alt-Del');
    const mark = pressed.length;
    await type(bob, 'g');
    await eventually('g at X', () => pressed.slice(mark).includes('g'), 10_000);
    for (const page of [alice, bob, carol]) await waitColour(page, COLOURS.g!, 'green everywhere');
    await type(alice, 'b', true);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(pressed.slice(mark), ['g'], 'Alice watches now: her key is dropped');

    // asked again, the controller keeps control (from the keyboard: Escape in the prompt)
    await alice.click('#viewers-toggle');
    await alice.click('#viewers-ask');
    await eventually('the prompt at Bob', () => bob.isVisible('#viewers-request'), 10_000);
    await bob.focus('#viewers-deny');
    await bob.keyboard.press('Escape');
    await eventually('Alice told', async () => (await summary(alice))!.includes('Bob kept control.'), 10_000);
    assert.equal(await bob.isVisible('#viewers-request'), false);
    await waitListed(carol, ['Alice:view', 'Bob:control', 'Carol:view']);
    assert.equal(await alice.textContent('#viewers-ask'), 'Ask for control', 'she may ask again');
    await alice.click('#viewers-close');
  });

  it('moves control after the engine\'s timeout when the viewer in control does not answer', async () => {
    await carol.click('#viewers-toggle');
    await carol.click('#viewers-ask');
    assert.equal(await carol.textContent('#viewers-ask'), 'Asked for control…');
    await eventually('the prompt at Bob', () => bob.isVisible('#viewers-request'), 10_000);
    // nobody answers: the engine gives it to Carol after its 10 s
    for (const page of [alice, bob, carol]) await waitListed(page, ['Alice:view', 'Bob:view', 'Carol:control'], 30_000);
    assert.equal(await bob.isVisible('#viewers-request'), false, 'the prompt goes when control has moved');
    const mark = pressed.length;
    await type(carol, 'b');
    await eventually('b at X', () => pressed.slice(mark).includes('b'), 10_000);
    for (const page of [alice, bob, carol]) await waitColour(page, COLOURS.b!, 'blue everywhere');
  });

  it('porthole sessions list groups the viewers under their console; porthole sessions shadow prints a view-only URL', async () => {
    const db = ['--database-connection', `sqlite:///${gw.dbPath}`];
    const list = await porthole(['sessions', 'list', ...db]);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.split('\n');
    const head = lines.findIndex((l) => /^shared console [0-9a-f]{8}\s+shared-vm\s+3 viewers/.test(l));
    assert.ok(head > 0, list.stdout);
    const viewers = lines.slice(head + 1, head + 4);
    assert.ok(viewers.every((l) => l.startsWith('  ')), list.stdout);
    assert.deepEqual(viewers.map((l) => /\s(Alice|Bob|Carol)\s+(control|watching)\s/.exec(l)?.slice(1).join(':')).sort(), ['Alice:watching', 'Bob:watching', 'Carol:control']);
    const json = await porthole(['sessions', 'list', '--json', ...db]);
    const sessions = JSON.parse(json.stdout).sessions as Array<{ id: string; viewer: string; role: string; shared_console: string }>;
    assert.equal(new Set(sessions.map((s) => s.shared_console)).size, 1, 'one shared console');
    assert.deepEqual(sessions.map((s) => `${s.viewer}:${s.role}`).sort(), ['Alice:view', 'Bob:view', 'Carol:control']);
    const shadow = await porthole(['sessions', 'shadow', sessions[0]!.id, '--json', ...db, '--porthole-shared_consoles=true', '--vnc-novncproxy_base_url', `${gw.origin}/vnc_auto.html`]);
    assert.equal(shadow.code, 0, shadow.stderr);
    const out = JSON.parse(shadow.stdout);
    assert.match(out.label, /^admin \S+/);
    const token = new URLSearchParams(new URL(out.url).searchParams.get('path')!.replace(/^[^?]*\?/, '')).get('token')!;
    const found = await gw.gateway.stores.tokens.lookup(token);
    assert.equal(found.status === 'valid' && found.token.consoleType, NOVNC_VIEW_ONLY);
    assert.ok(found.status === 'valid' && found.token.expires - Date.now() / 1000 <= 121, 'short-lived');
  });

  it('a view-only token never takes control, not even through the control channel itself', async () => {
    const dave = await open(await mint('Dave', { consoleType: NOVNC_VIEW_ONLY }));
    await waitListed(carol, ['Alice:view', 'Bob:view', 'Carol:control', 'Dave:view']);
    assert.equal(await dave.$eval('#viewers-ask', (b) => (b as HTMLButtonElement).hidden), true, 'no ask button for a view-only link');
    assert.match((await summary(dave))!, /Your link is view only/);
    assert.equal(await viewOnlyOf(dave), true);
    assert.equal(await dave.isHidden('#ctrl-alt-del'), true);
    // speak to the proxy directly, as a tampered page would
    const answers = await dave.evaluate(async () => {
      const ws = new WebSocket((window as any).porthole.shared.controlUrl);
      const got: string[] = [];
      ws.onmessage = (e) => got.push(String(e.data));
      await new Promise((r) => (ws.onopen = r));
      for (const type of ['request-control', 'release-control']) ws.send(JSON.stringify({ type }));
      await new Promise((r) => setTimeout(r, 1500));
      ws.close();
      return got;
    });
    assert.ok(answers.length >= 1, 'the channel answered with the viewers list');
    await new Promise((r) => setTimeout(r, 11_000));
    await waitListed(carol, ['Alice:view', 'Bob:view', 'Carol:control', 'Dave:view']);
    const mark = pressed.length;
    await type(dave, 'x', true);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(pressed.slice(mark), [], 'a view-only viewer\'s keys are dropped');
    await dave.context().close();
  });

  it('shadow: an admin joins view-only under the admin\'s label; a console that is not shared gets 409 and no token', async () => {
    const list = await gw.call('GET', '/porthole/v1/sessions', { token: 'admin' });
    assert.equal(list.status, 200);
    const session = list.body.sessions.find((s: { instance_uuid: string }) => s.instance_uuid === SERVER);
    assert.ok(session, 'a session of the shared server is listed');
    const r = await gw.call('POST', `/porthole/v1/sessions/${session.id}/shadow`, { token: 'admin' });
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.url, /vnc_auto\.html\?path=/);
    assert.ok(Date.parse(r.body.expires_at) > Date.now());
    const shadowToken = new URLSearchParams(new URL(r.body.url).searchParams.get('path')!.replace(/^[^?]*\?/, '')).get('token')!;
    const found = await gw.gateway.stores.tokens.lookup(shadowToken);
    assert.equal(found.status === 'valid' && found.token.consoleType, NOVNC_VIEW_ONLY);
    const shadow = await open(shadowToken, 'de');
    const label = r.body.label as string;
    assert.match(label, /^admin /);
    for (const page of [alice, bob, carol]) await waitListed(page, ['Alice:view', 'Bob:view', 'Carol:control', `${label}:view`]);
    assert.equal(await viewOnlyOf(shadow), true);
    // in the page's language (German here)
    assert.equal(await shadow.textContent('#viewers-toggle'), 'Zuschauer (4)');
    assert.equal(await summary(shadow), 'Sie schauen zu – Carol hat die Steuerung. Ihr Link ist nur zum Ansehen: Sie können zuschauen, aber nicht die Steuerung übernehmen.');
    assert.equal(await shadow.$eval('#viewers-ask', (b) => (b as HTMLButtonElement).hidden), true);
    assert.ok(!(await carol.textContent(`#viewers-list li:has-text("${label}") .viewers-role`))!.includes('has control'));
    assert.equal(await carol.textContent(`#viewers-list li:has-text("${label}") .viewers-role`), 'watching, view only');
    assert.equal(backendConnections(), 1, 'still one backend connection with four viewers');
    await shadow.context().close();

    // a server whose consoles are private: a plain relay, which cannot hold a watcher's keys back
    await gw.addServer({ id: PRIVATE_SERVER, name: 'private-vm', vnc: { host: '127.0.0.1', port: xvnc.port }, sharedConsoles: false });
    const priv = await open(await mint('Eve', { server: PRIVATE_SERVER }));
    assert.equal(await priv.isHidden('#viewers-toggle'), true, 'no Viewers button on a private console');
    const sessions = (await gw.call('GET', '/porthole/v1/sessions', { token: 'admin' })).body.sessions as Array<{ id: string; instance_uuid: string }>;
    const privSession = sessions.find((s) => s.instance_uuid === PRIVATE_SERVER)!;
    const refused = await gw.call('POST', `/porthole/v1/sessions/${privSession.id}/shadow`, { token: 'admin' });
    assert.equal(refused.status, 409);
    assert.match(refused.body.conflictingRequest.message, /needs shared consoles on for server/);
    assert.equal((await gw.call('POST', '/porthole/v1/sessions/00000000-0000-4000-8000-000000000000/shadow', { token: 'admin' })).status, 404);
    await priv.context().close();
  });

  it('on a phone every button of the bar, Viewers included, lies within the screen and the bar', async () => {
    const context = await browser.newContext({ bypassCSP: true, locale: 'en-US', viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
    contexts.push(context);
    const phone = await context.newPage();
    await phone.goto(`${gw.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${await mint('Frank')}`)}&lang=de`);
    await waitForConsoleState(phone, 'connected');
    await eventually('the Viewers button', () => phone.isVisible('#viewers-toggle'), 10_000);
    const bar = (await phone.locator('#bar').boundingBox())!;
    const outside = await phone.$$eval('#bar button:not([hidden]), #bar a.button:not([hidden])', (buttons, b) => buttons.filter((x) => {
      const r = x.getBoundingClientRect();
      return r.left < 0 || r.right > 390 || r.top < b.y || r.bottom > b.y + b.height;
    }).map((x) => `${x.id}: ${x.textContent}`), bar);
    assert.deepEqual(outside, [], 'bar buttons off the screen or out of the bar');
    await checkState(phone, 'web-viewers', 'phone', false);
    await context.close();
    await waitListed(carol, ['Alice:view', 'Bob:view', 'Carol:control']);
  });

  describe('the control channel refuses', () => {
    /** Opens the channel from Node; resolves with the HTTP status of a refusal, or the open socket. */
    function channel(query: string, headers: Record<string, string> = {}): Promise<{ status: number; ws?: WebSocket; messages: string[] }> {
      const messages: string[] = [];
      return new Promise((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/porthole/shared?${query}`, { headers });
        // the list comes with the 101, before anyone could add a listener after `open`
        ws.on('message', (d) => messages.push(d.toString()));
        ws.on('unexpected-response', (_req, res) => {
          resolve({ status: res.statusCode ?? 0, messages });
          ws.terminate();
        });
        ws.on('open', () => resolve({ status: 101, ws, messages }));
        ws.on('error', () => resolve({ status: 0, messages }));
      });
    }
    const keyOf = (page: Page) => page.evaluate(() => (window as any).porthole.shared.key as string);

    it('a foreign Origin, an unknown token, a key with another token; it takes the right pair', async () => {
      const key = await keyOf(alice);
      const q = (token: string, k = key) => `token=${encodeURIComponent(token)}&viewer=${k}`;
      assert.equal((await channel(q(tokens.Alice!), { Origin: 'http://evil.example' })).status, 403);
      assert.equal((await channel(q('0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9'))).status, 403);
      assert.equal((await channel(q(tokens.Bob!))).status, 404, 'Alice\'s key with Bob\'s token');
      assert.equal((await channel(q(tokens.Alice!, 'not-a-uuid'))).status, 400);
      const ok = await channel(q(tokens.Alice!), { Origin: gw.origin });
      assert.equal(ok.status, 101);
      await eventually('the viewers list', () => ok.messages.length > 0);
      const first = JSON.parse(ok.messages[0]!);
      assert.equal(first.type, 'viewers');
      assert.deepEqual(first.viewers.map((v: { name: string }) => v.name).sort(), ['Alice', 'Bob', 'Carol']);
      ok.ws!.close();
      assert.ok(gw.logs.every((l) => !JSON.stringify(l).includes(tokens.Alice!)), 'no token in the log');
    });

    it('closes with its viewer: the console page goes, its channel closes and the others\' lists drop it', async () => {
      const erin = await open(await mint('Erin'));
      await waitListed(carol, ['Alice:view', 'Bob:view', 'Carol:control', 'Erin:view']);
      const ch = await channel(`token=${tokens.Erin}&viewer=${await keyOf(erin)}`);
      assert.equal(ch.status, 101);
      const closed = new Promise<[number, string]>((r) => ch.ws!.on('close', (code, reason) => r([code, reason.toString()])));
      await erin.context().close();
      assert.deepEqual(await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open after 15 s'), 15_000))]), [1000, 'viewer left the console']);
      await waitListed(carol, ['Alice:view', 'Bob:view', 'Carol:control']);
    });

    it('a flood of messages and an oversize one close the channel', async () => {
      const key = await keyOf(alice);
      const flood = await channel(`token=${tokens.Alice}&viewer=${key}`);
      const closed = new Promise<[number, string]>((r) => flood.ws!.on('close', (code, reason) => r([code, reason.toString()])));
      for (let i = 0; i < 100; i++) flood.ws!.send(JSON.stringify({ type: 'nonsense' }));
      assert.deepEqual(await closed, [1008, 'too many messages']);
      const big = await channel(`token=${tokens.Alice}&viewer=${key}`);
      const closedBig = new Promise<number>((r) => big.ws!.on('close', (code) => r(code)));
      big.ws!.send('x'.repeat(4096));
      assert.equal(await closedBig, 1009);
      // the console itself goes on
      await waitForConsoleState(alice, 'connected');
    });
  });
});
