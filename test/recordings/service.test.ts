/**
 * Recordings beyond the live path: the player on a hand-made RFB stream (colours at their
 * times, seeks through keyframes of the sidecar, a torn file plays up to its tear), the
 * recordings API on a real gateway and its SQLite store (list and filters, download of the same
 * bytes, 409 naming another host, playback link, delete of file, sidecar and listing with its
 * audit event, admin only), the CLI calling the same functions, and the retention sweep by age
 * and by total size (this host's finished recordings only).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sweepRecordings } from '../../src/recordings/service.ts';
import { encodeHeader, encodeRecord, RecordType } from '../../src/rfb/recording/format.ts';
import { RecordingPlayer } from '../../src/rfb/recording/player.ts';
import type { RecordingRecord } from '../../src/store/recordings.ts';
import { startApi, type TestApi } from '../support/api.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { porthole } from '../support/process.ts';

const W = 8;
const H = 6;

/** ServerInit of a W×H screen, 32 bpp little-endian RGB888 (what a Raw rectangle below uses). */
function serverInit(): Buffer {
  const b = Buffer.alloc(24 + 4);
  b.writeUInt16BE(W, 0);
  b.writeUInt16BE(H, 2);
  Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]).copy(b, 4);
  b.writeUInt32BE(4, 20);
  b.write('test', 24);
  return b;
}

/** A FramebufferUpdate painting the whole screen one colour in Raw. */
function paint(r: number, g: number, bl: number): Buffer {
  const head = Buffer.alloc(4 + 12);
  head.writeUInt8(0, 0);
  head.writeUInt16BE(1, 2);
  head.writeUInt16BE(W, 8);
  head.writeUInt16BE(H, 10);
  head.writeInt32BE(0, 12);
  const px = Buffer.alloc(W * H * 4);
  for (let i = 0; i < W * H; i++) px.set([bl, g, r, 0], i * 4);
  return Buffer.concat([head, px]);
}

/** A recording: red at 1 s, blue at 2 s (split across two records), green at 3 s, ... one colour a second. */
function recordingBytes(id: string, colours: Array<[number, number, number]>): { bytes: Buffer; ends: number[] } {
  const parts = [encodeHeader({ format: 1, kind: 'recording', recordingId: id, serverId: 's', startedAt: Date.now() - 60_000, serverInit: serverInit().toString('base64') })];
  const ends: number[] = [];
  let size = parts[0]!.length;
  colours.forEach(([r, g, b], i) => {
    const update = paint(r, g, b);
    // split each update across two records, as a relay's chunks fall
    for (const piece of [update.subarray(0, 10), update.subarray(10)]) {
      const rec = encodeRecord(RecordType.SERVER, (i + 1) * 1000, piece);
      parts.push(rec);
      size += rec.length;
    }
    ends.push(size);
  });
  parts.push(encodeRecord(RecordType.END, colours.length * 1000 + 500, Buffer.alloc(0)));
  return { bytes: Buffer.concat(parts), ends };
}

const rgbAt = (fb: { pixels: Uint8Array }, x = 3, y = 2) => [...fb.pixels.subarray((y * W + x) * 4, (y * W + x) * 4 + 3)];

describe('recording player', () => {
  const dir = tempDir('porthole-player-');
  after(() => rmSync(dir, { recursive: true, force: true }));
  const colours: Array<[number, number, number]> = [[255, 0, 0], [0, 0, 255], [0, 255, 0], [255, 255, 0], [255, 0, 255], [0, 255, 255]];

  it('shows each colour from its time on; a seek restores the last keyframe before it', async () => {
    const path = join(dir, 'a.rfbrec');
    writeFileSync(path, recordingBytes('a', colours).bytes);
    const p = await RecordingPlayer.open(path, { intervalMs: 2000 });
    try {
      assert.equal(p.builtIndex, true);
      assert.deepEqual(p.keyframes.map((k) => k.time), [2000, 4000, 6000]);
      assert.equal(p.durationMs, 6500);
      const seen: Array<[number, number[]]> = [];
      await p.seek(0);
      await p.advance(6500, (u) => seen.push([u.time, rgbAt(u.framebuffer)]));
      assert.deepEqual(seen.map(([t]) => t), [1000, 2000, 3000, 4000, 5000, 6000]);
      assert.deepEqual(seen.map(([, c]) => c), colours.map((c) => [...c]));
      const far = await RecordingPlayer.open(path, { intervalMs: 2000 });
      try {
        assert.equal(far.builtIndex, false, 'the sidecar of the first open is read, not built again');
        const s = await far.seek(4700);
        assert.equal(s.keyframeAt, 4000);
        assert.deepEqual(rgbAt(s.framebuffer), [255, 255, 0]);
        const back = await far.seek(1500);
        assert.equal(back.keyframeAt, null, 'before the first keyframe: from the start');
        assert.deepEqual(rgbAt(back.framebuffer), [255, 0, 0]);
        assert.equal(far.keyframeSeeks, 1);
      } finally {
        await far.close();
      }
    } finally {
      await p.close();
    }
  });

  it('a torn file plays up to its tear', async () => {
    const path = join(dir, 'torn.rfbrec');
    const { bytes, ends } = recordingBytes('torn', colours);
    // cut inside the third colour's second record (a crash mid-write)
    writeFileSync(path, bytes.subarray(0, ends[2]! - 50));
    const p = await RecordingPlayer.open(path, { intervalMs: 60_000 });
    try {
      assert.equal(p.durationMs, 3000, 'the last whole record is the third colour\'s first half');
      const s = await p.seek(10_000);
      assert.deepEqual(rgbAt(s.framebuffer), [0, 0, 255], 'blue, the last whole colour before the tear');
    } finally {
      await p.close();
    }
    // torn in the header: not a recording that can be opened
    writeFileSync(path, bytes.subarray(0, 12));
    await assert.rejects(RecordingPlayer.open(path));
  });
});

describe('recordings API, CLI and retention (SQLite)', { timeout: 120_000 }, () => {
  let gw: TestApi;
  let dir: string;
  const SERVER = '00000000-0000-4000-8000-0000000000a1';
  const rows: RecordingRecord[] = [];

  function fileRow(id: string, over: Partial<RecordingRecord> & { bytes?: Buffer } = {}): RecordingRecord {
    const path = join(dir, `${id}.rfbrec`);
    const bytes = over.bytes ?? recordingBytes(id, [[255, 0, 0], [0, 0, 255]]).bytes;
    writeFileSync(path, bytes, { mode: 0o600 });
    const { bytes: _b, ...rest } = over;
    return { id, sessionId: `s-${id}`, serverId: SERVER, serverName: 'rec-1', projectId: 'p1', viewer: 'alice', client: '127.0.0.1', proxyHost: hostname(), path, startedAt: Date.now() - 60_000, endedAt: Date.now() - 1000, sizeBytes: bytes.length, ...rest };
  }

  before(async () => {
    dir = tempDir('porthole-recapi-');
    mkdirSync(dir, { recursive: true });
    gw = await startApi({});
    rows.push(fileRow('rec-a'), fileRow('rec-b', { serverId: '00000000-0000-4000-8000-0000000000b2', projectId: 'p2', startedAt: Date.now() - 3_600_000 }), fileRow('rec-elsewhere', { proxyHost: 'another-host' }), fileRow('rec-live', { endedAt: null }));
    for (const r of rows) await gw.gateway.stores.recordings!.add(r);
  });
  after(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const admin = (method: string, path: string) => gw.call(method, path, { token: 'admin' });

  it('lists with filters, shows one, 404 for an unknown one, admins only', async () => {
    const all = await admin('GET', '/porthole/v1/recordings');
    assert.equal(all.status, 200, all.text);
    assert.equal(all.body.recordings.length, 4);
    const byServer = await admin('GET', `/porthole/v1/recordings?server=${SERVER}`);
    assert.deepEqual(byServer.body.recordings.map((r: { id: string }) => r.id).sort(), ['rec-a', 'rec-elsewhere', 'rec-live']);
    const byProject = await admin('GET', '/porthole/v1/recordings?project=p2');
    assert.deepEqual(byProject.body.recordings.map((r: { id: string }) => r.id), ['rec-b']);
    const since = await admin('GET', `/porthole/v1/recordings?since=${new Date(Date.now() - 600_000).toISOString()}&limit=2`);
    assert.equal(since.body.recordings.length, 2);
    assert.ok(since.body.recordings.every((r: { id: string }) => r.id !== 'rec-b'));
    const one = await admin('GET', '/porthole/v1/recordings/rec-a');
    assert.equal(one.body.recording.viewer, 'alice');
    assert.equal(one.body.recording.size_bytes, rows[0]!.sizeBytes);
    assert.equal((await admin('GET', '/porthole/v1/recordings/nope')).status, 404);
    assert.equal((await gw.call('GET', '/porthole/v1/recordings', { token: 'alice:p1' })).status, 403);
    assert.equal((await admin('GET', '/porthole/v1/recordings?since=yesterday')).status, 400);
  });

  it('downloads the same bytes; a recording of another host is a 409 naming it', async () => {
    const got = await new Promise<{ status: number; type: string | undefined; bytes: Buffer }>((resolve, reject) => {
      request({ host: '127.0.0.1', port: gw.apiPort, path: '/porthole/v1/recordings/rec-a/file', headers: { 'X-Auth-Token': 'admin' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], bytes: Buffer.concat(chunks) }));
      }).on('error', reject).end();
    });
    assert.equal(got.status, 200);
    assert.equal(got.type, 'application/octet-stream');
    assert.ok(got.bytes.equals(readFileSync(rows[0]!.path)), 'the same bytes as the file');
    const elsewhere = await admin('GET', '/porthole/v1/recordings/rec-elsewhere/file');
    assert.equal(elsewhere.status, 409);
    assert.match(elsewhere.text, /another-host/);
  });

  it('mints a playback link on the noVNC listener', async () => {
    const r = await admin('POST', '/porthole/v1/recordings/rec-a/playback');
    assert.equal(r.status, 200, r.text);
    const url = new URL(r.body.url);
    assert.equal(url.pathname, '/porthole/playback.html');
    assert.equal(url.port, String(gw.port));
    assert.ok(Date.parse(r.body.expires_at) > Date.now());
    const found = await gw.gateway.stores.tokens.lookup(url.searchParams.get('token')!);
    assert.equal(found.status, 'valid');
    assert.equal(found.status === 'valid' && found.token.consoleType, 'rfb-recording');
    assert.equal(found.status === 'valid' && found.token.internalAccessPath, 'rec-a');
    const page = await new Promise<{ status: number; csp: string | undefined; cache: string | undefined }>((resolve, reject) => {
      request({ host: '127.0.0.1', port: gw.port, path: `${url.pathname}${url.search}` }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, csp: res.headers['content-security-policy'] as string | undefined, cache: res.headers['cache-control'] as string | undefined }));
      }).on('error', reject).end();
    });
    assert.deepEqual([page.status, page.cache], [200, 'no-store']);
    assert.match(page.csp ?? '', /default-src 'self'/);
  });

  it('the CLI lists and downloads as the API does', async () => {
    const db = ['--database-connection', `sqlite:///${gw.dbPath}`];
    const listed = await porthole(['recordings', 'list', '--server', SERVER, '--json', ...db]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).recordings.map((r: { id: string }) => r.id).sort(), ['rec-a', 'rec-elsewhere', 'rec-live']);
    const out = join(dir, 'copy.rfbrec');
    const dl = await porthole(['recordings', 'download', 'rec-a', '-o', out, '--json', ...db]);
    assert.equal(dl.code, 0, dl.stderr);
    assert.ok(readFileSync(out).equals(readFileSync(rows[0]!.path)));
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const idx = await porthole(['recordings', 'index', 'rec-a', '--json', ...db]);
    assert.equal(idx.code, 0, idx.stderr);
    assert.ok(existsSync(`${rows[0]!.path}.keys`));
  });

  it('deletes file, sidecar and listing (recording.deleted in the audit trail); a live one is a 409', async () => {
    assert.equal((await admin('DELETE', '/porthole/v1/recordings/rec-live')).status, 409);
    writeFileSync(`${rows[0]!.path}.keys`, 'x');
    const r = await admin('DELETE', '/porthole/v1/recordings/rec-a');
    assert.equal(r.status, 204, r.text);
    assert.equal(existsSync(rows[0]!.path), false);
    assert.equal(existsSync(`${rows[0]!.path}.keys`), false);
    assert.equal((await admin('GET', '/porthole/v1/recordings/rec-a')).status, 404);
    // the trail writes to the store in batches
    const event = await eventually('recording.deleted in the events API', async () => (await admin('GET', '/porthole/v1/events?event=recording.deleted')).body?.events?.[0], 15_000);
    assert.equal(event.recording, 'rec-a');
    assert.equal(event.server, SERVER);
  });

  it('retention: deletes by age, then the oldest finished past the total size; other hosts\' and live ones stay', async () => {
    const store = gw.gateway.stores.recordings!;
    const day = 86_400_000;
    const big = (id: string, ageDays: number, extra: Partial<RecordingRecord> = {}) => fileRow(id, { bytes: Buffer.alloc(400 * 1024, 1), startedAt: Date.now() - ageDays * day, endedAt: Date.now() - ageDays * day + 1000, ...extra });
    const made = [big('old-1', 40), big('mid-1', 5), big('mid-2', 4), big('new-1', 1), big('old-other', 40, { proxyHost: 'another-host' }), big('live-1', 3, { endedAt: null })];
    for (const r of made) await store.add(r);
    const deleted = await sweepRecordings(store, hostname(), { retentionDays: 30, maxTotalMiB: 1 });
    // age: old-1 (40 days); then this host's 1.6 MiB (mid-1, mid-2, new-1, live-1 and the small ones): the oldest
    // finished go until 1 MiB is not passed: mid-1 (5 days), mid-2 (4 days); live-1 is under way, old-other elsewhere
    assert.deepEqual(deleted, ['old-1', 'mid-1', 'mid-2']);
    for (const id of deleted) {
      assert.equal(await store.get(id), undefined);
      assert.equal(existsSync(join(dir, `${id}.rfbrec`)), false);
    }
    assert.ok(existsSync(join(dir, 'old-other.rfbrec')));
    // nothing more to do: the sweep is idempotent
    assert.deepEqual(await sweepRecordings(store, hostname(), { retentionDays: 30, maxTotalMiB: 1 }), []);
  });
});
