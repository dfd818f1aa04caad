/**
 * The events table of the SQL registry as its readers see it, on an SQLite file: every event is
 * handed over once, in id order; an id that shows up below ones already read (an insert that
 * committed late, which PostgreSQL's and MariaDB's ids allow) is still handed over; while ids
 * that never come are waited for, nothing is handed over twice; a reader starts after the events
 * already there.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqlRegistry } from '../../src/database/sql/registry.ts';
import type { SessionEvent, Subscription } from '../../src/sessions/types.ts';
import { openStores, type OpenedStores as Stores } from '../../src/database/index.ts';
import { eventually, tempDir } from '../support/gateway.ts';

describe('SQL registry events', () => {
  let dir: string;
  let stores: Stores;
  let registry: SqlRegistry;
  let sub: Subscription;
  const got: SessionEvent[] = [];

  const insert = (id: number, target: string) => stores.handles!.own!.kind === 'sql' && stores.handles!.own!.database.db.insertInto('porthole_session_events').values({ id, kind: 'session', target, created_at: Date.now() }).execute();

  before(async () => {
    dir = tempDir('porthole-events-');
    stores = await openStores(`sqlite:///${join(dir, 'p.db')}`, { migrate: true });
    const own = stores.handles!.own!;
    assert.equal(own.kind, 'sql');
    registry = new SqlRegistry(own.kind === 'sql' ? own.database : (undefined as never), { pollMs: 50, idlePollMs: 1000 });
    await registry.publish({ kind: 'token', target: 'from before the reader' });
    sub = await registry.subscribe((e) => got.push(e), (err) => assert.fail(err));
  });
  after(async () => {
    await sub?.close();
    await stores?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('hands over what is published from now on, once each, in order', async () => {
    await registry.publish({ kind: 'token', target: 'a' });
    await registry.publish({ kind: 'instance', target: 'b' });
    await registry.publish({ kind: 'session', target: 'c' });
    await eventually('three events', () => got.length >= 3);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(got.splice(0), [{ kind: 'token', target: 'a' }, { kind: 'instance', target: 'b' }, { kind: 'session', target: 'c' }]);
  });

  it('still hands over an id that committed after a higher one was read', async () => {
    await insert(102, 'second');
    await eventually('the higher id', () => got.length === 1);
    await insert(101, 'first, late');
    await eventually('the late one', () => got.length === 2);
    await registry.publish({ kind: 'session', target: 'next' });
    await eventually('the next one', () => got.length === 3);
    assert.deepEqual(got.splice(0).map((e) => e.target), ['second', 'first, late', 'next']);
  });

  it('hands nothing over twice while it waits for ids that never come, then goes past them', async () => {
    await insert(201, 'after a hole');
    await eventually('the event after the hole', () => got.length === 1);
    // 103..200 never come: the reader reads from 102 on for a few seconds (every 50 ms here),
    // then from 201 on
    await new Promise((r) => setTimeout(r, 3500));
    await registry.publish({ kind: 'session', target: 'later' });
    await eventually('the next one', () => got.length === 2);
    assert.deepEqual(got.splice(0).map((e) => e.target), ['after a hole', 'later']);
  });
});
