/**
 * What test/proxy/shared-console.test.ts leaves untested of the shared consoles' engine, against a
 * real TigerVNC Xvnc through a real gateway with `[porthole] shared_consoles` and short control
 * times (`GatewayParts.sharedConsoleTimes`): control moves to a requester when the controller
 * does not answer within the answer time, and stays when it declines in time or the requester
 * leaves first; a controller idle past the idle time loses control at once to whoever asks, one
 * who keeps giving input does not; keys at the X server (`xinput test-xi2`) follow control. A `novnc-view-only` viewer never has
 * control: not first, not by request, not by a token that says `control`, not when given, not
 * when the controller leaves (a younger viewer that may control takes it, or nobody). A recorded
 * server's shared console with three viewers is one recording, listed in the store, named in
 * every viewer's session in the registry, and played back by the recording player
 * (`rfb/recording/player.ts`) shows the painted colours at their times; under `[DEFAULT] record`
 * a shared console is recorded once under its prefix, unless its server says `record` false.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { NOVNC_VIEW_ONLY } from '../../src/proxy/view-only.ts';
import type { SharedConsoleEvent } from '../../src/proxy/shared-types.ts';
import { RecordingPlayer } from '../../src/rfb/recording/player.ts';
import { hashToken } from '../../src/store/types.ts';
import { eventually, startGateway, tempDir, type TestGateway } from '../support/gateway.ts';
import { connectionsTo } from '../support/leak-meter.ts';
import { RfbClient, RGB888_LE } from '../support/rfb-client.ts';
import { haveXvnc, keycodeOf, startXvnc, type Xvnc } from '../support/xvnc.ts';

const SERVER = '5e1d2c3b-4a59-4687-9a6b-5c4d3e2f1a00';
const RECORDED = '5e1d2c3b-4a59-4687-9a6b-5c4d3e2f1a01';
const ANSWER_MS = 2000;
const IDLE_MS = 4000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('shared consoles: control times, view-only viewers, recording at the hub (Xvnc)', { skip: !haveXvnc && 'needs Xvnc', timeout: 300_000 }, () => {
  let xvnc: Xvnc;
  let recordedXvnc: Xvnc;
  let gw: TestGateway;
  let dir: string;
  const open: RfbClient[] = [];

  before(async () => {
    xvnc = await startXvnc({ colour: '#103050' });
    recordedXvnc = await startXvnc({ colour: 'black', geometry: '320x240' });
    dir = tempDir('porthole-shared-rec-');
    gw = await startGateway({ 'porthole.shared_consoles': 'true', 'porthole.recording_dir': join(dir, 'recordings') }, { sharedConsoleTimes: { answerMs: ANSWER_MS, idleMs: IDLE_MS, lingerMs: 300 } });
    await gw.gateway.stores.inventory.put({ id: SERVER, name: 'shared', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port } });
    await gw.gateway.stores.inventory.put({ id: RECORDED, name: 'recorded', projectId: 'p1', status: 'ACTIVE', vnc: { host: '127.0.0.1', port: recordedXvnc.port }, record: true });
    await xvnc.watchKeys();
  });

  after(async () => {
    for (const c of open) c.close();
    await gw?.close();
    await xvnc?.stop();
    await recordedXvnc?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A viewer through the gateway: its token (view-only when asked, with extras when given), the RFB handshake done. */
  async function viewer(opts: { server?: string; port?: number; viewOnly?: boolean; control?: boolean } = {}): Promise<RfbClient> {
    const { token } = await gw.gateway.stores.tokens.create({
      consoleType: opts.viewOnly ? NOVNC_VIEW_ONLY : 'novnc', host: '127.0.0.1', port: opts.port ?? xvnc.port, instanceUuid: opts.server ?? SERVER,
      accessUrlBase: gw.gateway.novnc!.baseUrl, ttl: 600, internalAccessPath: null,
    });
    if (opts.control !== undefined) {
      await gw.gateway.stores.tokenExtras!.put(hashToken(token), { label: null, mintedBy: 'test', control: opts.control, record: false }, Math.floor(Date.now() / 1000) + 600);
    }
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/websockify?token=${token}&viewer=${crypto.randomUUID()}`, ['binary']);
    ws.on('error', () => {});
    const c = RfbClient.overWebSocket(ws);
    open.push(c);
    await c.handshake({ timeoutMs: 20_000 });
    return c;
  }

  const hub = (server = SERVER) => gw.gateway.sharedConsoles!.kept.get(server)!;
  /** The newest viewer's id (viewers are listed oldest first). */
  const newest = (server = SERVER) => hub(server).state().viewers.at(-1)!.id;
  const code = (name: string) => keycodeOf(xvnc.display, name)!;
  /** Types `name` (a letter) as `who`: true when the X server saw it within a while. */
  async function reachesX(who: RfbClient, name: string, keysym: number): Promise<boolean> {
    who.key(keysym);
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      if (xvnc.keycodes.includes(code(name))) return true;
      await sleep(100);
    }
    return false;
  }
  async function allGone(server = SERVER, port = xvnc.port) {
    await eventually('the console closed', () => !gw.gateway.sharedConsoles!.kept.has(server) && connectionsTo(port) === 0, 20_000);
  }

  it('moves control to the requester when the controller does not answer in time, not when it declines', async () => {
    const a = await viewer();
    const ida = newest();
    const b = await viewer();
    const idb = newest();
    const c = await viewer();
    const idc = newest();
    const events: SharedConsoleEvent[] = [];
    const stop = hub().subscribe((e) => events.push(e));
    try {
      assert.equal(hub().state().controller, ida);
      // a has just taken control (not idle): b's request waits for a's answer
      assert.equal(hub().requestControl(idb), 'asked');
      const asked = hub().state().request!;
      assert.equal(asked.from, idb);
      assert.equal(asked.deadline - asked.at, ANSWER_MS, 'the request carries the answer time as its deadline');
      assert.equal(hub().state().controller, ida, 'control stays while the answer is awaited');
      // a says nothing: control moves when the answer time is over
      const moved = await eventually('control moved on the timeout', () => events.find((e) => e.kind === 'control'), ANSWER_MS * 10);
      assert.equal(moved.kind === 'control' && moved.viewer, idb);
      assert.equal(moved.kind === 'control' && moved.why, 'timeout');
      assert.equal(hub().state().controller, idb);
      assert.equal(hub().state().request, null);
      assert.ok(await reachesX(b, 'g', 0x67), 'the new controller\'s key reaches X');
      assert.ok(!(await reachesX(a, 'h', 0x68)), 'the former controller\'s key reached X');
      // c asks, b declines in time: nothing moves, not even once the answer time is over
      b.key(0x69); // b is busy typing (i)
      assert.equal(hub().requestControl(idc), 'asked');
      assert.equal(hub().answerRequest(idb, idc, false), 'granted');
      assert.ok(events.some((e) => e.kind === 'declined' && e.viewer === idc));
      await sleep(ANSWER_MS + 1500);
      assert.equal(hub().state().controller, idb, 'a declined request moved control');
      assert.equal(events.filter((e) => e.kind === 'control').length, 1);
      // the audit trail says who could type from when: the first viewer's control, then the move on the timeout
      const sessionOf = (id: string) => hub().state().viewers.find((v) => v.id === id)!.sessionId;
      const lines = await eventually('control.changed in the audit trail', async () => {
        const found = await gw.gateway.stores.auditEvents!.query({ server: SERVER, events: ['control.changed'], limit: 100, order: 'oldest' });
        return found.some((l) => l.session === sessionOf(idb)) ? found : undefined;
      }, 10_000);
      const moves = lines.filter((l) => l.session === sessionOf(ida) || l.session === sessionOf(idb));
      assert.deepEqual(moves.map((l) => [l.session, l.reason?.split(':')[0], l.actor]), [[sessionOf(ida), 'first', { system: 'proxy' }], [sessionOf(idb), 'timeout', { system: 'proxy' }]]);
    } finally {
      stop();
      for (const v of [a, b, c]) v.close();
    }
    await allGone();
  });

  it('keeps control with the controller when the requester leaves before the answer time is over', async () => {
    const a = await viewer();
    const ida = newest();
    const b = await viewer();
    const idb = newest();
    const c = await viewer();
    const events: SharedConsoleEvent[] = [];
    const stop = hub().subscribe((e) => events.push(e));
    try {
      assert.equal(hub().requestControl(idb), 'asked');
      b.close();
      await eventually('b gone', () => hub().state().viewers.length === 2, 10_000);
      assert.equal(hub().state().request, null, 'the request of a viewer that left is still shown');
      await sleep(ANSWER_MS + 1500);
      assert.equal(hub().state().controller, ida);
      assert.deepEqual(events.filter((e) => e.kind === 'control'), [], 'control moved for a viewer that left');
    } finally {
      stop();
      a.close();
      c.close();
    }
    await allGone();
  });

  it('gives control at once to whoever asks when the controller has been idle past the idle time, not while it gives input', async () => {
    const a = await viewer();
    const ida = newest();
    const b = await viewer();
    const idb = newest();
    const events: SharedConsoleEvent[] = [];
    const stop = hub().subscribe((e) => events.push(e));
    try {
      // a keeps giving input (pointer moves) for longer than the idle time: b has to ask (and is declined)
      const until = Date.now() + IDLE_MS + 1000;
      while (Date.now() < until) {
        a.pointer(10, 10);
        await sleep(400);
      }
      assert.equal(hub().requestControl(idb), 'asked', 'a controller giving input was treated as idle');
      assert.equal(hub().answerRequest(ida, idb, false), 'granted');
      // a stops: once the idle time is over, b's request is granted at once, no answer awaited
      await sleep(IDLE_MS + 1000);
      assert.equal(hub().requestControl(idb), 'granted');
      const moved = events.find((e) => e.kind === 'control');
      assert.ok(moved && moved.kind === 'control' && moved.viewer === idb && moved.why === 'idle', `control event ${JSON.stringify(moved && { ...moved, state: undefined })}`);
      assert.equal(hub().state().controller, idb);
      assert.ok(await reachesX(b, 'j', 0x6a), 'the new controller\'s key reaches X');
      assert.ok(!(await reachesX(a, 'k', 0x6b)), 'the idle former controller\'s key reached X');
    } finally {
      stop();
      a.close();
      b.close();
    }
    await allGone();
  });

  it('never gives a novnc-view-only viewer control: not first, not asked, not by its token, not given, not when the controller leaves', async () => {
    // first on an empty console, and its token even says control: it watches
    const watcher = await viewer({ viewOnly: true, control: true });
    const idw = newest();
    assert.deepEqual(hub().state().viewers.map((v) => [v.role, v.viewOnly]), [['view', true]]);
    assert.equal(hub().state().controller, null);
    assert.equal(hub().requestControl(idw), 'refused');
    assert.equal(hub().state().controller, null);
    assert.ok(!(await reachesX(watcher, 'l', 0x6c)), 'a view-only viewer\'s key reached X with nobody in control');
    const a = await viewer();
    const ida = newest();
    const b = await viewer();
    const idb = newest();
    assert.equal(hub().state().controller, ida, 'the first viewer that may control takes it');
    assert.equal(hub().giveControl(ida, idw), 'refused');
    assert.equal(hub().state().controller, ida);
    assert.equal(hub().requestControl(idw), 'refused');
    assert.equal(hub().state().request, null, 'a view-only viewer\'s request is not put to the controller');
    // the controller leaves: b, though younger than the watcher, takes it
    a.close();
    await eventually('control to b', () => hub().state().controller === idb, 10_000);
    assert.equal(hub().state().viewers.find((v) => v.id === idw)!.role, 'view');
    assert.ok(!(await reachesX(watcher, 'm', 0x6d)), 'a view-only viewer\'s key reached X');
    assert.ok(await reachesX(b, 'n', 0x6e), 'the controller\'s key reaches X');
    // the last viewer that may control leaves: nobody has control, the watcher still watches
    b.close();
    await eventually('b gone', () => hub().state().viewers.length === 1, 10_000);
    assert.equal(hub().state().controller, null);
    assert.equal(hub().requestControl(idw), 'refused');
    assert.ok(!(await reachesX(watcher, 'o', 0x6f)), 'a view-only viewer\'s key reached X once alone');
    const fb = await watcher.requestFramebuffer(RGB888_LE, 20_000);
    assert.deepEqual(fb.pixel(5, 5), [0x10, 0x30, 0x50], 'the watcher still sees the screen');
    watcher.close();
    await allGone();
  });

  it('records a recorded server\'s shared console once for three viewers: listed, in every viewer\'s session, colours at their times in playback', async () => {
    const paint = (colour: string) => {
      const r = spawnSync('xsetroot', ['-solid', colour], { env: { ...process.env, DISPLAY: recordedXvnc.display } });
      assert.equal(r.status, 0, `xsetroot ${colour}`);
    };
    const viewers = [await viewer({ server: RECORDED, port: recordedXvnc.port }), await viewer({ server: RECORDED, port: recordedXvnc.port }), await viewer({ server: RECORDED, port: recordedXvnc.port })];
    const consoleId = hub(RECORDED).id;
    const listed = await gw.gateway.stores.recordings!.list({ serverId: RECORDED });
    assert.equal(listed.length, 1, `${listed.length} recordings for one shared console of three viewers`);
    const rec = listed[0]!;
    assert.equal(rec.sessionId, consoleId, 'the recording is the shared console\'s');
    assert.equal(rec.endedAt, null);
    assert.equal(hub(RECORDED).recording, rec.id);
    const sessions = await eventually('three sessions registered', async () => {
      const all = (await gw.gateway.registry.list()).sessions.filter((s) => s.instanceUuid === RECORDED);
      return all.length === 3 ? all : undefined;
    }, 10_000);
    for (const s of sessions) {
      assert.equal(s.recording, rec.id, 'a viewer\'s session does not name the console\'s recording');
      assert.equal(s.sharedConsole, consoleId);
    }
    // colours painted at marked times (recording time: ms after its start) while the three watch
    const marks: Array<{ colour: [number, number, number]; at: number }> = [];
    for (const [name, colour] of [['red', [255, 0, 0]], ['blue', [0, 0, 255]], ['green', [0, 255, 0]], ['yellow', [255, 255, 0]]] as const) {
      await sleep(1500);
      const t0 = Date.now();
      paint(name);
      marks.push({ colour: [...colour], at: Math.round((t0 + Date.now()) / 2 - rec.startedAt) });
    }
    await sleep(1500);
    for (const v of viewers) v.close();
    await allGone(RECORDED, recordedXvnc.port);
    const done = await eventually('the recording finished', async () => {
      const r = await gw.gateway.stores.recordings!.get(rec.id);
      return r?.endedAt ? r : undefined;
    }, 20_000);
    assert.equal((await gw.gateway.stores.recordings!.list({ serverId: RECORDED })).length, 1, 'still one recording');
    assert.equal(statSync(done.path).size, done.sizeBytes);
    assert.equal(statSync(done.path).mode & 0o777, 0o600);
    const player = await RecordingPlayer.open(done.path);
    try {
      assert.ok(player.failure === undefined, `playback stops early: ${player.failure}`);
      const at = async (t: number) => {
        const s = await player.seek(t);
        const i = (120 * s.framebuffer.width + 160) * 4;
        return [...s.framebuffer.pixels.subarray(i, i + 3)];
      };
      // before the first mark: the colour Xvnc started with; between marks (a margin either
      // side for the paint to reach Xvnc, the hub and the file): each mark's colour
      assert.deepEqual(await at(Math.max(0, marks[0]!.at - 700)), [0, 0, 0]);
      for (let i = 0; i < marks.length; i++) {
        const end = i + 1 < marks.length ? marks[i + 1]!.at : player.durationMs;
        assert.deepEqual(await at(Math.round(marks[i]!.at + (end - marks[i]!.at) / 2)), marks[i]!.colour, `colour ${i} at its time`);
      }
      // and in order, when played through: every colour appears, none before its mark
      const seen: Array<{ time: number; rgb: number[] }> = [];
      await player.seek(0);
      await player.advance(player.durationMs, (u) => {
        const i = (120 * u.framebuffer.width + 160) * 4;
        const rgb = [...u.framebuffer.pixels.subarray(i, i + 3)];
        if (!seen.length || seen.at(-1)!.rgb.join() !== rgb.join()) seen.push({ time: u.time, rgb });
      });
      assert.deepEqual(seen.map((s) => s.rgb), [[0, 0, 0], ...marks.map((m) => m.colour)]);
      for (let i = 0; i < marks.length; i++) assert.ok(seen[i + 1]!.time >= marks[i]!.at - 300, `colour ${i} at ${seen[i + 1]!.time} ms, painted at ${marks[i]!.at} ms`);
    } finally {
      await player.close();
    }
  });

  it('records a shared console once under [DEFAULT] record, not one of a server that says record false', async () => {
    const other = await startGateway({ 'porthole.shared_consoles': 'true', 'DEFAULT.record': join(dir, 'by-default', 'console-') }, { sharedConsoleTimes: { lingerMs: 300 } });
    const clients: RfbClient[] = [];
    try {
      const UNSET = '5e1d2c3b-4a59-4687-9a6b-5c4d3e2f1a02';
      const OFF = '5e1d2c3b-4a59-4687-9a6b-5c4d3e2f1a03';
      await other.gateway.stores.inventory.put({ id: UNSET, name: 'unset', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: recordedXvnc.port } });
      await other.gateway.stores.inventory.put({ id: OFF, name: 'off', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: xvnc.port }, record: false });
      const join1 = async (server: string, port: number) => {
        const { token } = await other.gateway.stores.tokens.create({ consoleType: 'novnc', host: '127.0.0.1', port, instanceUuid: server, accessUrlBase: other.gateway.novnc!.baseUrl, ttl: 600, internalAccessPath: null });
        const ws = new WebSocket(`ws://127.0.0.1:${other.port}/websockify?token=${token}`, ['binary']);
        ws.on('error', () => {});
        const c = RfbClient.overWebSocket(ws);
        clients.push(c);
        await c.handshake({ timeoutMs: 20_000 });
        return c;
      };
      await join1(UNSET, recordedXvnc.port);
      await join1(UNSET, recordedXvnc.port);
      await join1(OFF, xvnc.port);
      await join1(OFF, xvnc.port);
      const recorded = await other.gateway.stores.recordings!.list({ serverId: UNSET });
      assert.equal(recorded.length, 1, `${recorded.length} recordings of one shared console under [DEFAULT] record`);
      assert.ok(recorded[0]!.path.startsWith(join(dir, 'by-default', 'console-')), `recorded at ${recorded[0]!.path}, not under the [DEFAULT] record prefix`);
      assert.equal(other.gateway.sharedConsoles!.kept.get(UNSET)!.recording, recorded[0]!.id);
      assert.deepEqual(await other.gateway.stores.recordings!.list({ serverId: OFF }), [], 'a server with record false was recorded');
      assert.equal(other.gateway.sharedConsoles!.kept.get(OFF)!.recording, null);
    } finally {
      for (const c of clients) c.close();
      await other.close();
    }
  });
});
