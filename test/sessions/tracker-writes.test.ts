/**
 * When the tracker writes the sessions registry (issue 19): a console's open never waits for a
 * registry write nor shares its turn of the event loop with one; the sessions that start within
 * `WRITE_DELAY_MS` of each other go in one write; a session that ends before it was written costs
 * the registry nothing (no insert, no delete); one that ends after is removed once. The registry
 * here is the in-process one, with every call recorded.
 */
import assert from 'node:assert/strict';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { LocalRegistry } from '../../src/sessions/local-registry.ts';
import { SessionTracker, WRITE_DELAY_MS } from '../../src/sessions/tracker.ts';
import type { ProxyRecord, SessionRecord } from '../../src/sessions/types.ts';
import { eventually } from '../support/gateway.ts';
import { fakeSession } from '../support/store-ops.ts';

/** The in-process registry, remembering which sessions each write and each removal carried. */
class RecordingRegistry extends LocalRegistry {
  readonly adds: string[][] = [];
  readonly removes: string[][] = [];

  override async addSessions(sessions: readonly SessionRecord[], proxy: ProxyRecord): Promise<void> {
    this.adds.push(sessions.map((s) => s.id));
    return super.addSessions(sessions, proxy);
  }

  override async removeSessions(ids: readonly string[]): Promise<void> {
    this.removes.push([...ids]);
    return super.removeSessions(ids);
  }

  /** Every session id any write carried. */
  written(): string[] {
    return this.adds.flat();
  }
}

describe('when the sessions tracker writes the registry', () => {
  let registry: RecordingRegistry;
  let tracker: SessionTracker;
  let n = 0;
  const session = () => fakeSession('cd'.repeat(32), ++n);

  before(async () => {
    registry = new RecordingRegistry();
    // heartbeats far apart: every write seen here is one of started / ended
    tracker = new SessionTracker(registry, null, { heartbeatMs: 60_000, address: '127.0.0.1:6080', log: pino({ level: 'silent' }) });
    await tracker.start();
  });

  after(async () => {
    await tracker.stop();
  });

  it('writes nothing in the turn a console starts, nor in the next one; then the consoles of that time in one write', async () => {
    const [a, b] = [session(), session()];
    const writesBefore = registry.adds.length;
    tracker.started(a);
    tracker.started(b);
    await nextTurn();
    await nextTurn();
    assert.equal(registry.adds.length, writesBefore, 'no write yet');
    await eventually('the two sessions written', () => registry.written().includes(b.info.id));
    assert.deepEqual(registry.adds.slice(writesBefore), [[a.info.id, b.info.id]], 'one write with both');
    tracker.ended(a);
    tracker.ended(b);
    await eventually('the two sessions removed', () => registry.removes.some((r) => r.includes(b.info.id)));
    assert.deepEqual(registry.removes.at(-1), [a.info.id, b.info.id], 'one removal with both');
    assert.equal((await registry.list()).sessions.length, 0);
  });

  it('never writes nor removes a console that ends before its write', async () => {
    const short = session();
    const long = session();
    tracker.started(short);
    tracker.started(long);
    tracker.ended(short);
    await eventually('the longer session written', () => registry.written().includes(long.info.id));
    // past the time the short one would have been written and removed
    await sleep(WRITE_DELAY_MS * 3);
    assert.equal(registry.written().includes(short.info.id), false, 'not written');
    assert.equal(registry.removes.flat().includes(short.info.id), false, 'not removed');
    assert.deepEqual((await registry.list()).sessions.map((s) => s.id), [long.info.id]);
    tracker.ended(long);
    await eventually('the longer session removed', () => registry.removes.flat().includes(long.info.id));
    assert.equal(registry.removes.flat().filter((id) => id === long.info.id).length, 1, 'removed once');
  });
});
