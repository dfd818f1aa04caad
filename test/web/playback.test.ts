/**
 * Recording and playback end to end: a real noVNC session in Chromium through a gateway to a real
 * Xvnc, whose root window is painted in marked colours at marked times (`xsetroot -solid`), is
 * recorded (its server has `record`); the recording is listed, its file 0600; the playback page,
 * opened in Chromium with a playback token, shows each colour at its moment (canvas pixels
 * sampled against the marked times, with a margin for timing), pause holds, 2× runs faster than
 * 1×, and a seek to the middle comes through a keyframe of the sidecar built at first playback.
 * A session of a server without `record` writes nothing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { mintPlayback } from '../../src/recordings/service.ts';
import { hashToken } from '../../src/store/types.ts';
import { haveChromium, launchBrowser, waitForConsoleState } from '../support/browser.ts';
import { eventually, startGateway, tempDir, type TestGateway } from '../support/gateway.ts';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const RECORDED = '00000000-0000-4000-8000-00000000ec01';
const NOT_RECORDED = '00000000-0000-4000-8000-00000000ec02';

type Rgb = readonly [number, number, number];
const COLOURS: Record<string, Rgb> = { black: [0, 0, 0], red: [255, 0, 0], blue: [0, 0, 255], green: [0, 255, 0], yellow: [255, 255, 0], magenta: [255, 0, 255] };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const near = (a: readonly number[], b: Rgb, tol = 24) => a.every((v, i) => Math.abs(v - b[i]!) <= tol);

/** Position (recording ms) and the colour at the centre of the playback canvas, read together. */
async function sample(page: Page): Promise<{ position: number; rgb: number[] }> {
  return page.evaluate(() => {
    const c = document.getElementById('canvas') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data;
    return { position: (window as unknown as { portholePlayback: { position: number } }).portholePlayback.position, rgb: [d[0]!, d[1]!, d[2]!] };
  });
}

async function seekTo(page: Page, t: number): Promise<void> {
  await page.evaluate((ms) => (window as unknown as { portholePlayback: { seek(t: number): void } }).portholePlayback.seek(ms), t);
  await page.waitForFunction(() => document.body.dataset.seeking === 'false', undefined, { timeout: 60_000 });
}

describe('recording and playback (Chromium, Xvnc)', { skip: (!haveXvnc || !haveChromium) && 'needs Xvnc and Chromium', timeout: 300_000 }, () => {
  let xvnc: Xvnc;
  let browser: Browser;
  let gw: TestGateway;
  let dir: string;
  /** Colour name → its paint time, ms after the recording's start. */
  const marks: Array<{ colour: string; at: number }> = [];
  let recordingId: string;
  let duration = 0;

  const paint = (colour: string) => {
    const r = spawnSync('xsetroot', ['-solid', colour], { env: { ...process.env, DISPLAY: xvnc.display } });
    assert.equal(r.status, 0, `xsetroot ${colour}`);
  };
  /** The colour the marks say the screen had at recording time `t`, or undefined within `margin` of a change. */
  const expected = (t: number, margin = 600): string | undefined => {
    let colour = 'black';
    for (const m of marks) {
      if (Math.abs(t - m.at) < margin) return undefined;
      if (m.at <= t) colour = m.colour;
    }
    return colour;
  };

  before(async () => {
    xvnc = await startXvnc({ colour: 'black', geometry: '320x240' });
    browser = await launchBrowser();
    dir = tempDir('porthole-recordings-');
    gw = await startGateway({ 'porthole.recording_dir': join(dir, 'recordings') });
    await gw.gateway.stores.inventory.put({ id: RECORDED, name: 'recorded-1', projectId: 'p1', status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port }, record: true });
    await gw.gateway.stores.inventory.put({ id: NOT_RECORDED, name: 'plain-1', projectId: 'p1', status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port }, record: false });
  });
  after(async () => {
    await gw?.close();
    await browser?.close();
    await xvnc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records a noVNC session of a server with record: listed, 0600, colours at their times', async () => {
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: RECORDED });
    // the viewer's name, as `token create --label` keeps it
    await gw.gateway.stores.tokenExtras!.put(hashToken(token), { label: 'alice at the console', mintedBy: 'cli:test', control: false, record: false }, Math.floor(Date.now() / 1000) + 600);
    await page.goto(`${gw.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}&lang=en`);
    await waitForConsoleState(page, 'connected');
    const listed = await eventually('the recording listed', async () => (await gw.gateway.stores.recordings!.list({ serverId: RECORDED }))[0]);
    recordingId = listed.id;
    const start = listed.startedAt;
    const schedule: Array<[string, number]> = [['red', 1500], ['blue', 3500], ['green', 5500], ['yellow', 11_500], ['magenta', 13_500]];
    for (const [colour, at] of schedule) {
      await sleep(Math.max(0, start + at - Date.now()));
      const before = Date.now();
      paint(colour);
      marks.push({ colour, at: Math.round((before + Date.now()) / 2 - start) });
    }
    await sleep(1500);
    await context.close();
    const done = await eventually('the recording finished', async () => {
      const r = await gw.gateway.stores.recordings!.get(recordingId);
      return r?.endedAt ? r : undefined;
    }, 20_000);
    assert.equal(done.serverId, RECORDED);
    assert.equal(done.serverName, 'recorded-1');
    assert.equal(done.projectId, 'p1');
    assert.equal(done.viewer, 'alice at the console');
    assert.ok(done.sizeBytes > 1000, `size ${done.sizeBytes}`);
    assert.equal(statSync(done.path).size, done.sizeBytes);
    assert.equal(statSync(done.path).mode & 0o777, 0o600, 'the file is 0600');
    assert.equal(statSync(join(done.path, '..')).mode & 0o777, 0o700, 'its directory 0700');
    assert.equal(existsSync(`${done.path}.keys`), false, 'no keyframes are made live');
    duration = done.endedAt! - done.startedAt;
  });

  it('plays it back in the browser: the colours at their moments, pause holds, 2× is faster, a seek goes through a keyframe', async () => {
    assert.ok(recordingId, 'recorded by the test before');
    const base = gw.gateway.novnc!.baseUrl;
    const link = await mintPlayback({ store: gw.gateway.stores.recordings!, tokens: gw.gateway.stores.tokens }, recordingId, base, 600);
    const context = await browser.newContext({ locale: 'en-US' });
    try {
      const page = await context.newPage();
      await page.goto(link.url);
      await page.waitForFunction(() => document.body.dataset.state === 'paused', undefined, { timeout: 120_000 });
      const rec = (await gw.gateway.stores.recordings!.get(recordingId))!;
      assert.ok(existsSync(`${rec.path}.keys`), 'the first playback built the keyframe sidecar');
      assert.equal(statSync(`${rec.path}.keys`).mode & 0o777, 0o600);
      assert.ok(Number(await page.evaluate(() => document.body.dataset.keyframes)) >= 1, `a keyframe after 10 s (${JSON.stringify(gw.logs.filter((l) => l.event === 'playback'))})`);

      // a seek to the middle: through the keyframe, the frame painted there
      const yellow = marks.find((m) => m.colour === 'yellow')!.at;
      await seekTo(page, yellow + 900);
      const keyAt = await page.evaluate(() => document.body.dataset.keyframeAt);
      assert.ok(keyAt !== '' && Number(keyAt) >= 10_000, `the seek restored a keyframe (keyframeAt ${keyAt})`);
      assert.ok(near((await sample(page)).rgb, COLOURS.yellow!), `yellow after the seek: ${(await sample(page)).rgb}`);

      // a seek back before any keyframe, then pause holds
      const red = marks.find((m) => m.colour === 'red')!.at;
      await seekTo(page, red + 700);
      assert.ok(near((await sample(page)).rgb, COLOURS.red!), `red at ${red + 700}: ${(await sample(page)).rgb}`);
      const held = await sample(page);
      await sleep(1500);
      const still = await sample(page);
      assert.equal(still.position, held.position, 'paused: the clock holds');
      assert.ok(near(still.rgb, COLOURS.red!), 'paused: the picture holds');

      // play from the start at 1x: every sample's colour is the one painted at its moment
      await seekTo(page, 0);
      await page.evaluate(() => (window as unknown as { portholePlayback: { play(): void } }).portholePlayback.play());
      const seen = new Set<string>();
      let checked = 0;
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const s = await sample(page);
        const want = expected(s.position);
        if (want !== undefined && s.position > 200) {
          assert.ok(near(s.rgb, COLOURS[want]!), `at ${Math.round(s.position)} ms the canvas is ${s.rgb}, painted ${want}`);
          seen.add(want);
          checked++;
        }
        if (s.position >= 6500) break;
        await sleep(150);
      }
      assert.deepEqual([...seen].sort(), ['black', 'blue', 'green', 'red'], `colours seen in order of play (${checked} samples)`);

      // 2x runs the clock faster than 1x, in the page's own time
      const rate = async (speed: number) => {
        await page.evaluate((s) => (window as unknown as { portholePlayback: { speed(s: number): void } }).portholePlayback.speed(s), speed);
        const a = await page.evaluate(() => ({ p: (window as unknown as { portholePlayback: { position: number } }).portholePlayback.position, t: performance.now() }));
        await sleep(1500);
        const b = await page.evaluate(() => ({ p: (window as unknown as { portholePlayback: { position: number } }).portholePlayback.position, t: performance.now() }));
        return (b.p - a.p) / (b.t - a.t);
      };
      await seekTo(page, 6000);
      await page.evaluate(() => (window as unknown as { portholePlayback: { play(): void } }).portholePlayback.play());
      const one = await rate(1);
      const two = await rate(2);
      assert.ok(two > one * 1.3, `2x advances faster: ${two.toFixed(2)} vs ${one.toFixed(2)} recording ms per ms`);
      await page.waitForFunction(() => document.body.dataset.state === 'ended', undefined, { timeout: 60_000 });
      assert.ok(near((await sample(page)).rgb, COLOURS.magenta!), 'the last colour at the end');
      assert.ok(duration > 14_000);
    } finally {
      await context.close();
    }
  });

  it('a session of a server without record writes nothing', async () => {
    const before = readdirSync(join((await gw.gateway.stores.recordings!.get(recordingId))!.path, '..'));
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: NOT_RECORDED });
    await page.goto(`${gw.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}&lang=en`);
    await waitForConsoleState(page, 'connected');
    paint('red');
    await sleep(800);
    await context.close();
    await sleep(500);
    assert.deepEqual(await gw.gateway.stores.recordings!.list({ serverId: NOT_RECORDED }), []);
    assert.deepEqual(readdirSync(join((await gw.gateway.stores.recordings!.get(recordingId))!.path, '..')), before);
  });

  it('a playback token opens no console, and a console token no playback', async () => {
    const link = await mintPlayback({ store: gw.gateway.stores.recordings!, tokens: gw.gateway.stores.tokens }, recordingId, gw.gateway.novnc!.baseUrl, 60);
    const playbackToken = new URL(link.url).searchParams.get('token')!;
    const { token: consoleToken } = await gw.mint({ host: '127.0.0.1', port: xvnc.port, instanceUuid: NOT_RECORDED });
    const status = async (path: string) => {
      const { WebSocket } = await import('ws');
      return new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${gw.port}${path}`, ['binary']);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('error', () => resolve(-1));
      });
    };
    assert.equal(await status(`/websockify?token=${playbackToken}`), 403);
    assert.equal(await status(`/porthole/playback?token=${consoleToken}`), 403);
    assert.equal(await status(`/porthole/playback?token=00000000-0000-4000-8000-000000000000`), 403);
    assert.equal(await status(`/porthole/playback?token=${playbackToken}`), 101);
  });
});
