import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Recorders } from '../../src/proxy/recorder.ts';
import { RecordingReader, RecordType } from '../../src/rfb/recording/format.ts';
import { MemoryRecordings } from '../support/memory-recordings.ts';
import { eventually } from '../support/gateway.ts';

const root = mkdtempSync(join(tmpdir(), 'porthole-rec-'));
after(() => rmSync(root, { recursive: true, force: true }));

function facts(id: string) {
  return { sessionId: id, serverId: 'srv-1', serverName: 'vm one', projectId: 'p1', viewer: 'alice', client: '127.0.0.1', serverInit: Buffer.from('serverinit') };
}

describe('recorder', () => {
  it('writes the tapped bytes both ways to a 0600 file in a 0700 directory, and finishes the listing', async () => {
    const store = new MemoryRecordings();
    const dir = join(root, 'a', 'recordings');
    const recorders = new Recorders({ place: { dir }, recordAll: false, store, log: pino({ level: 'silent' }), hostname: 'host-a' });
    const r = recorders.start(facts('s1'));
    const shared = Buffer.from('server bytes');
    r.fromBackend(shared);
    shared.fill(0); // the relay reuses its buffer: the recorder kept a copy
    r.fromClient(Buffer.from([3, 0, 0, 0]));
    await r.close();
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(r.path).mode & 0o777, 0o600);
    assert.equal(r.path, join(dir, 's1.rfbrec'));
    const reader = new RecordingReader();
    reader.push(readFileSync(r.path));
    assert.equal(reader.readHeader()?.viewer, 'alice');
    const records = [];
    for (let e; (e = reader.next()); ) records.push(e);
    assert.deepEqual(records.map((e) => [e.type, e.bytes.toString('latin1')]), [[RecordType.SERVER, 'server bytes'], [RecordType.CLIENT, '\x03\x00\x00\x00'], [RecordType.END, '']]);
    const listed = await store.get('s1');
    assert.equal(listed?.serverId, 'srv-1');
    assert.equal(listed?.proxyHost, 'host-a');
    assert.equal(listed?.sizeBytes, statSync(r.path).size);
    assert.ok(listed?.endedAt);
    assert.equal(recorders.active.size, 0);
  });

  it('names files by the [DEFAULT] record prefix', async () => {
    const store = new MemoryRecordings();
    const recorders = new Recorders({ place: { prefix: join(root, 'pre', 'rec'), dir: join(root, 'unused') }, recordAll: true, store, log: pino({ level: 'silent' }), hostname: 'h' });
    assert.equal(recorders.wants(undefined, null), true);
    const r = recorders.start(facts('s2'));
    await r.close();
    assert.equal(r.path, join(root, 'pre', 'rec.s2.rfbrec'));
    statSync(r.path);
  });

  it('cuts the recording, once, when the disk does not keep up; the caller never waits', async () => {
    const store = new MemoryRecordings();
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const recorders = new Recorders({ place: { dir: join(root, 'slow') }, recordAll: false, store, log, hostname: 'h', maxQueuedBytes: 200 * 1024, blockBytes: 16 * 1024 });
    const r = recorders.start(facts('s3'));
    const chunk = Buffer.alloc(8 * 1024, 1);
    // all in one turn: no write can have finished
    for (let i = 0; i < 100; i++) r.fromBackend(chunk);
    assert.equal(r.truncated, true);
    await r.close();
    assert.equal(warnings.filter((w) => w.includes('recording_truncated')).length, 1);
    const reader = new RecordingReader();
    reader.push(readFileSync(r.path));
    const types = [];
    for (let e; (e = reader.next()); ) types.push(e.type);
    assert.ok(types.filter((t) => t === RecordType.SERVER).length < 100);
    assert.deepEqual(types.slice(-2), [RecordType.TRUNCATED, RecordType.END]);
  });

  it('holds a chunk given with keep instead of copying it, and calls keep once when written, cut or closed', async () => {
    const store = new MemoryRecordings();
    const recorders = new Recorders({ place: { dir: join(root, 'keep') }, recordAll: false, store, log: pino({ level: 'silent' }), hostname: 'h', maxQueuedBytes: 64 * 1024 });
    const r = recorders.start(facts('s5'));
    const kept: string[] = [];
    const held = Buffer.from('held, not copied');
    r.fromBackend(held, () => kept.push('written'));
    assert.equal(kept.length, 0, 'not before its write');
    await eventually('the write', () => kept.length === 1);
    // past the bound: not held at all, given back at once
    r.fromBackend(Buffer.alloc(80 * 1024), () => kept.push('cut'));
    assert.equal(r.truncated, true);
    assert.deepEqual(kept, ['written', 'cut']);
    r.fromBackend(Buffer.from('after the cut'), () => kept.push('after'));
    await r.close();
    assert.deepEqual(kept, ['written', 'cut', 'after'], 'each keep exactly once');
    assert.ok(readFileSync(r.path).includes(Buffer.from('held, not copied')));
  });

  it('decides by the token, then the server, then [DEFAULT] record', () => {
    const recorders = new Recorders({ place: { dir: root }, recordAll: false, store: new MemoryRecordings(), log: pino({ level: 'silent' }), hostname: 'h' });
    assert.equal(recorders.wants(undefined, null), false);
    assert.equal(recorders.wants({ record: true }, false), true);
    assert.equal(recorders.wants({ record: null }, true), true);
    assert.equal(recorders.wants({ record: false }, false), false);
    const all = new Recorders({ place: { dir: root }, recordAll: true, store: new MemoryRecordings(), log: pino({ level: 'silent' }), hostname: 'h' });
    assert.equal(all.wants(undefined, null), true, '[DEFAULT] record: every session');
    assert.equal(all.wants({ record: null }, null), true);
    assert.equal(all.wants({ record: false }, null), false, 'a server with --no-record is never recorded');
    assert.equal(all.wants({ record: false }, true), true, 'unless its token asks');
  });
});
