/**
 * What the sessions registry shows of a shared console's viewers and of recordings (issue 18), on
 * every store of this machine (an SQLite file, PostgreSQL, MariaDB, Redis, each fresh) and on the
 * in-memory registry: a session's viewer, shared console, role and recording are written when it
 * opens, its role again when control moves (one write, `roleChanged`), nothing of them at a
 * heartbeat; a proxy that rejoins writes the role it has now. Sessions without them list none
 * (null in the JSON), and `porthole sessions list` shows them.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { openStores, type OpenedStores } from '../../src/database/index.ts';
import { SqlRegistry } from '../../src/database/sql/registry.ts';
import { LocalRegistry } from '../../src/sessions/local-registry.ts';
import { listingJson, listingText } from '../../src/sessions/format.ts';
import { SessionTracker } from '../../src/sessions/tracker.ts';
import type { LiveSession, RegistryBackend } from '../../src/sessions/types.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { fakeSession, SqlCounter, withoutEvents } from '../support/store-ops.ts';
import { freshMariadb, freshPostgres, freshRedis } from '../support/stores.ts';

const HEARTBEAT_MS = 200;
const log = pino({ level: 'silent' });
const CONSOLE = 'c0ffee00-1111-4111-8111-111111111111';
const REGISTRY_OPTIONS = { pollMs: 200, idlePollMs: 1000, connectTimeoutMs: 5000, reconnectMaxDelayMs: 1000 };

function viewer(n: number, facts: Partial<LiveSession['info']>): LiveSession {
  const s = fakeSession('ab'.repeat(32), n);
  return { ...s, info: { ...s.info, ...facts } };
}

interface Target {
  readonly registry: RegistryBackend;
  /** Rows written into porthole_sessions so far (SQL counted stores only). */
  readonly sessionWrites?: () => number;
  cleanup(): Promise<void>;
}

function sharedFacts(name: string, open: () => Promise<Target>): void {
  describe(`shared-console facts in the sessions registry on ${name}`, { timeout: 60_000 }, () => {
    let target: Target;
    let tracker: SessionTracker;
    const watcher = viewer(1, { viewer: 'bob', sharedConsole: CONSOLE, role: 'view' });
    const owner = viewer(2, { viewer: 'Ops on call', sharedConsole: CONSOLE, role: 'control', recording: 'r-0001' });
    const plain = viewer(3, {});
    const mine = async () => (await target.registry.list()).sessions.filter((s) => s.proxyId === tracker.proxy.id);
    const byId = async (id: string) => (await mine()).find((s) => s.id === id);

    before(async () => {
      target = await open();
      tracker = new SessionTracker(withoutEvents(target.registry), null, { heartbeatMs: HEARTBEAT_MS, address: '127.0.0.1:6080', log });
      await tracker.start();
      for (const s of [watcher, owner, plain]) tracker.started(s);
      await eventually('three sessions written', async () => (await mine()).length === 3);
    });
    after(async () => {
      await tracker?.stop();
      await target?.cleanup();
    });

    it('lists each viewer, its shared console, role and recording as written when it opened; none for a plain console', async () => {
      const w = await byId(watcher.info.id);
      assert.deepEqual([w?.viewer, w?.sharedConsole, w?.role, w?.recording], ['bob', CONSOLE, 'view', undefined]);
      const o = await byId(owner.info.id);
      assert.deepEqual([o?.viewer, o?.sharedConsole, o?.role, o?.recording], ['Ops on call', CONSOLE, 'control', 'r-0001']);
      const p = await byId(plain.info.id);
      assert.deepEqual([p?.viewer, p?.sharedConsole, p?.role, p?.recording], [undefined, undefined, undefined, undefined]);
      const json = listingJson(await target.registry.list());
      const pj = json.sessions.find((s) => s.id === plain.info.id)!;
      assert.deepEqual([pj.viewer, pj.shared_console, pj.role, pj.recording], [null, null, null, null]);
      const oj = json.sessions.find((s) => s.id === owner.info.id)!;
      assert.deepEqual([oj.viewer, oj.shared_console, oj.role, oj.recording], ['Ops on call', CONSOLE, 'control', 'r-0001']);
      const text = listingText(await target.registry.list());
      assert.match(text, /VIEWER\s+ROLE/);
      // one line for the shared console, its viewers on the lines under it (H4b's grouping)
      assert.match(text, /^shared console c0ffee00 .*2 viewers/m);
      assert.match(text, /\n {2}\S+\s+Ops on call\s+control\s/);
      assert.match(text, /\n {2}\S+\s+bob\s+watching\s/);
    });

    it('writes a role when control moves, once, and nothing of it at the heartbeats', async () => {
      const before = target.sessionWrites?.();
      tracker.roleChanged(owner, 'view');
      tracker.roleChanged(watcher, 'control');
      tracker.roleChanged(watcher, 'control'); // no change: no write
      await eventually('the roles moved', async () => (await byId(watcher.info.id))?.role === 'control' && (await byId(owner.info.id))?.role === 'view');
      await new Promise((r) => setTimeout(r, 4 * HEARTBEAT_MS));
      if (before !== undefined) assert.equal(target.sessionWrites!() - before, 2, 'one row written per role change, none per heartbeat');
      const w = await byId(watcher.info.id);
      assert.deepEqual([w?.viewer, w?.sharedConsole], ['bob', CONSOLE], 'the rest of the record unchanged');
    });

    it('writes the role a session has now when its proxy rejoins (its record was swept)', async () => {
      await target.registry.removeProxy(tracker.proxy.id);
      await eventually('the sessions written again', async () => (await mine()).length === 3, 20_000);
      assert.equal((await byId(watcher.info.id))?.role, 'control');
      assert.equal((await byId(owner.info.id))?.role, 'view');
      assert.equal((await byId(owner.info.id))?.recording, 'r-0001');
    });

    it('forgets an ended session: a role change after its end writes nothing', async () => {
      tracker.ended(plain);
      await eventually('the plain session removed', async () => (await byId(plain.info.id)) === undefined);
      tracker.roleChanged(plain, 'control');
      await target.registry.setRole(plain.info.id, 'control');
      await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS));
      assert.equal(await byId(plain.info.id), undefined, 'setRole makes no record of a session that is not there');
    });
  });
}

async function sqlTarget(stores: OpenedStores, cleanup: () => Promise<void>): Promise<Target> {
  const own = stores.handles.own!;
  const database = own.kind === 'sql' ? own.database : (undefined as never);
  const counter = new SqlCounter(database.db);
  const registry = new SqlRegistry({ ...database, db: database.db.withPlugin(counter) }, { pollMs: 200, idlePollMs: 1000 });
  return {
    registry,
    // the counter reads PostgreSQL's and SQLite's quoting (MySQL's backticks are not matched)
    ...(database.dialect !== 'mysql' ? { sessionWrites: () => counter.since(0, 'porthole_sessions').rowsWritten } : {}),
    async cleanup() {
      await registry.close();
      await stores.close();
      await cleanup();
    },
  };
}

sharedFacts('SQLite', async () => {
  const dir = tempDir('porthole-shared-facts-');
  const stores = await openStores(`sqlite:///${join(dir, 'p.db')}`, { migrate: true });
  return sqlTarget(stores, async () => rmSync(dir, { recursive: true, force: true }));
});

sharedFacts('PostgreSQL', async () => {
  const db = await freshPostgres();
  return sqlTarget(await openStores(db.url, { migrate: true }), () => db.drop());
});

sharedFacts('MariaDB', async () => {
  const db = await freshMariadb();
  return sqlTarget(await openStores(db.url, { migrate: true }), () => db.drop());
});

sharedFacts('Redis', async () => {
  const r = await freshRedis();
  const stores = await openStores(r.url, { migrate: true, redisKeyPrefix: r.prefix });
  const registry = (await stores.openRegistry!(REGISTRY_OPTIONS))!;
  return {
    registry,
    async cleanup() {
      await registry.close();
      await stores.close();
      await r.drop();
    },
  };
});

sharedFacts('the in-memory registry', async () => {
  const registry = new LocalRegistry();
  return { registry, cleanup: () => registry.close() };
});
