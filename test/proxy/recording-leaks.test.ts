/**
 * Recorded sessions own their sockets and their files as plain ones do: with `[DEFAULT] record`
 * set (every noVNC session recorded), whichever way a session ends (the browser closes, a message
 * the recording's framer cannot frame, the backend goes, no input for the idle timeout, the
 * maximum duration, the gateway's shutdown), the gateway's descriptors (recording files
 * included), its connections to the backend and its live sessions are back at their baseline,
 * and every recording is finished in the listing with its file's size and an END record.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { WebSocket } from 'ws';
import { RecordingReader, RecordType } from '../../src/rfb/recording/format.ts';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, tempDir, type TestGateway } from '../support/gateway.ts';
import { connectionsTo, leakMeter, openDescriptors, settled, type Counts, type LeakMeter } from '../support/leak-meter.ts';

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe('recorded sessions: nothing left open on any end, every recording finished', { timeout: 120_000 }, () => {
  let backend: TestBackend;
  let idle: TestGateway;
  let limited: TestGateway;
  let meter: LeakMeter;
  let baseline: Counts;
  const dir = tempDir('porthole-recleak-');

  before(async () => {
    backend = await echoBackend();
    idle = await startGateway({ 'DEFAULT.record': join(dir, 'a', 'rec'), 'porthole.console_idle_timeout': '1' });
    limited = await startGateway({ 'DEFAULT.record': join(dir, 'b', 'rec'), 'porthole.max_console_duration': '1' });
    meter = leakMeter({
      descriptors: () => openDescriptors(),
      backendConnections: () => connectionsTo(backend.port),
      sessions: () => idle.gateway.sessions.size + limited.gateway.sessions.size,
    });
    for (const gw of [idle, limited]) {
      const { ws } = await open(gw);
      const end = closed(ws);
      ws.close();
      await end;
    }
    await eventually('no live session', () => idle.gateway.sessions.size + limited.gateway.sessions.size === 0);
    await finishedAll(idle);
    await finishedAll(limited);
    baseline = await meter.read();
  });
  after(async () => {
    await idle?.close();
    await limited?.close();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(gw: TestGateway): Promise<{ ws: WebSocket }> {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    return openRfbConsole(`ws://127.0.0.1:${gw.port}/websockify?token=${token}`);
  }

  /** Every listed recording finished, with its file's size and an END record last. */
  async function finishedAll(gw: TestGateway): Promise<number> {
    const store = gw.gateway.stores.recordings!;
    const rows = await eventually('every recording finished', async () => {
      const all = await store.list({});
      return all.length > 0 && all.every((r) => r.endedAt !== null) ? all : undefined;
    }, 15_000);
    for (const r of rows) {
      assert.equal(statSync(r.path).size, r.sizeBytes, `${r.id}: the listing's size is the file's`);
      assert.equal(statSync(r.path).mode & 0o777, 0o600);
      const reader = new RecordingReader();
      reader.push(readFileSync(r.path));
      let last: number | undefined;
      for (let e; (e = reader.next()); ) last = e.type;
      assert.equal(last, RecordType.END, `${r.id} ends with an END record`);
    }
    return rows.length;
  }

  it('ends each way, 4 recorded consoles each, and every count returns to its baseline', async () => {
    const ends: Array<[string, Promise<{ code: number; reason: string }>]> = [];
    for (let i = 0; i < 4; i++) {
      const byClient = await open(idle);
      byClient.ws.send(Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61])); // a key press, recorded both ways (echoed)
      ends.push(['the browser closes', closed(byClient.ws)]);
      byClient.ws.close();

      const unframed = await open(idle);
      ends.push(['a message the framer cannot frame', closed(unframed.ws)]);
      unframed.ws.send(Buffer.from([99, 0, 0, 0]));

      const backendGone = await open(idle);
      ends.push(['the backend goes', closed(backendGone.ws)]);
      backend.sockets.at(-1)!.destroy();

      const quiet = await open(idle);
      ends.push(['no input', closed(quiet.ws)]);

      const long = await open(limited);
      ends.push(['the maximum duration', closed(long.ws)]);
    }
    const results = await Promise.all(ends.map(async ([how, end]) => [how, await end] as const));
    const codes = new Map<string, Set<string>>();
    for (const [how, end] of results) codes.set(how, (codes.get(how) ?? new Set()).add(`${end.code} ${end.reason}`));
    assert.deepEqual(codes.get('no input'), new Set(['1008 console idle timeout']));
    assert.deepEqual(codes.get('the maximum duration'), new Set(['1008 console session reached its maximum duration']));
    assert.equal(codes.get('a message the framer cannot frame')?.size, 1);
    await settled(meter, baseline, 15_000);
    assert.equal(await finishedAll(idle), 1 + 4 * 4);
    assert.equal(await finishedAll(limited), 1 + 4);
  });

  it('a recording under way at shutdown is finished by the gateway\'s close', async () => {
    const gw = await startGateway({ 'DEFAULT.record': join(dir, 'c', 'rec') });
    try {
      await open(gw);
      await eventually('the session live', () => gw.gateway.sessions.size === 1);
    } finally {
      await gw.gateway.close();
    }
    // the store closed with the gateway: its SQLite file says what was written before
    const db = new BetterSqlite3(gw.dbPath, { readonly: true });
    try {
      const rows = db.prepare('SELECT path, ended_at, size_bytes FROM porthole_recordings').all() as Array<{ path: string; ended_at: number | null; size_bytes: number }>;
      assert.equal(rows.length, 1);
      assert.notEqual(rows[0]!.ended_at, null, 'finished at shutdown');
      assert.equal(statSync(rows[0]!.path).size, Number(rows[0]!.size_bytes));
      const reader = new RecordingReader();
      reader.push(readFileSync(rows[0]!.path));
      let last: number | undefined;
      for (let e; (e = reader.next()); ) last = e.type;
      assert.equal(last, RecordType.END);
    } finally {
      db.close();
      rmSync(gw.dir, { recursive: true, force: true });
    }
  });
});
