/**
 * What idle consoles cost the store (issue 20), on PostgreSQL and Redis: a proxy's tracker holds
 * N consoles that move no bytes (sessions with no sockets behind them, their tokens real rows or
 * keys of the store) and beats its heart every 300 ms; every SQL statement the registry and the
 * token check run is counted through a Kysely plugin, every Redis command under the test's key
 * prefix through MONITOR. Over several heartbeats the sessions' rows and keys are not written
 * once, and a heartbeat asks the same number of statements or commands of the store with 300
 * consoles as with 30. A console that ends costs one write.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { openStores, type OpenedStores } from '../../src/database/index.ts';
import { SqlRegistry } from '../../src/database/sql/registry.ts';
import { SqlTokenPresence } from '../../src/database/sql/token-presence.ts';
import { RedisRegistry } from '../../src/database/redis/registry.ts';
import { SessionTracker } from '../../src/sessions/tracker.ts';
import type { RegistryBackend, TokenPresence } from '../../src/sessions/types.ts';
import { hashToken } from '../../src/store/types.ts';
import { eventually } from '../support/gateway.ts';
import { fakeSession, RedisMonitor, SqlCounter, withoutEvents } from '../support/store-ops.ts';
import { freshPostgres, freshRedis } from '../support/stores.ts';

const HEARTBEAT_MS = 300;
const log = pino({ level: 'silent' });

interface Store {
  readonly stores: OpenedStores;
  readonly registry: RegistryBackend;
  readonly presence: TokenPresence;
  /** Marks where the window starts; answers the operations since, split by heartbeat, and the writes to sessions. */
  mark(proxyId: string): () => { perHeartbeat: number[]; sessionWrites: number };
}

/** Starts a tracker holding `n` idle consoles, waits until they are written, then counts over `beats` heartbeats. */
async function idleWindow(store: Store, n: number, beats: number) {
  const sessions = [];
  for (let i = 0; i < n; i++) {
    const { token } = await store.stores.tokens.create({ consoleType: 'novnc', host: '127.0.0.1', port: 5900, instanceUuid: '7a1b2c3d-4e5f-4a6b-8c7d-1e2f3a4b5c6d', accessUrlBase: null, ttl: 3600 });
    sessions.push(fakeSession(hashToken(token), i));
  }
  const tracker = new SessionTracker(withoutEvents(store.registry), store.presence, { heartbeatMs: HEARTBEAT_MS, address: '127.0.0.1:6080', log });
  await tracker.start();
  for (const s of sessions) tracker.started(s);
  await eventually(`${n} sessions written`, async () => (await store.registry.list()).sessions.filter((s) => s.proxyId === tracker.proxy.id).length === n);
  await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS));
  const stop = store.mark(tracker.proxy.id);
  await new Promise((r) => setTimeout(r, (beats + 1.5) * HEARTBEAT_MS));
  const window = stop();
  // and a console that ends: one write
  const end = store.mark(tracker.proxy.id);
  tracker.ended(sessions[0]!);
  await eventually('the ended session removed', async () => end().sessionWrites > 0);
  const ended = end();
  await tracker.stop();
  assert.equal(sessions.some((s) => s.closed), false, 'no console closed: every token is there');
  return { ...window, endWrites: ended.sessionWrites };
}

function idleCost(name: string, open: () => Promise<Store & { cleanup(): Promise<void> }>): void {
  describe(`idle consoles on ${name}`, { timeout: 60_000 }, () => {
    let store: Store & { cleanup(): Promise<void> };
    before(async () => {
      store = await open();
    });
    after(() => store?.cleanup());

    it('write nothing while they run, and a heartbeat costs the same with 300 as with 30', async () => {
      const few = await idleWindow(store, 30, 5);
      const many = await idleWindow(store, 300, 5);
      for (const w of [few, many]) {
        assert.ok(w.perHeartbeat.length >= 3, `several whole heartbeats counted (${w.perHeartbeat.length})`);
        assert.equal(w.sessionWrites, 0, 'no session written while idle');
        assert.equal(new Set(w.perHeartbeat).size, 1, `every heartbeat the same: ${w.perHeartbeat.join(', ')}`);
        // one row deleted; on Redis one MULTI: the session's hash and its proxy's set
        assert.ok(w.endWrites >= 1 && w.endWrites <= 2, `one write when a console ends (${w.endWrites})`);
      }
      assert.equal(many.perHeartbeat[0], few.perHeartbeat[0], 'store operations per heartbeat do not grow with the consoles');
    });
  });
}

/** Splits operations into heartbeats by the first operation of each; only whole ones are kept. */
function perHeartbeat<T>(ops: readonly T[], starts: (op: T) => boolean): number[] {
  const counts: number[] = [];
  let current = -1;
  for (const op of ops) {
    if (starts(op)) {
      if (current >= 0) counts.push(current);
      current = 0;
    }
    if (current >= 0) current++;
  }
  return counts;
}

idleCost('PostgreSQL', async () => {
  const db = await freshPostgres();
  const stores = await openStores(db.url, { migrate: true });
  const own = stores.handles.own!;
  assert.equal(own.kind, 'sql');
  const database = own.kind === 'sql' ? own.database : (undefined as never);
  const counter = new SqlCounter(database.db);
  const counted = { ...database, db: database.db.withPlugin(counter) };
  return {
    stores,
    registry: new SqlRegistry(counted, { pollMs: 500, idlePollMs: 1000 }),
    presence: new SqlTokenPresence(counted),
    mark() {
      const from = counter.statements.length;
      return () => {
        const { statements, rowsWritten } = counter.since(from, 'porthole_sessions');
        return { perHeartbeat: perHeartbeat(statements, (s) => s.sql.startsWith('update "porthole_proxies" set "address"')), sessionWrites: rowsWritten };
      };
    },
    async cleanup() {
      await stores.close();
      await db.drop();
    },
  };
});

idleCost('Redis', async () => {
  const r = await freshRedis();
  const stores = await openStores(r.url, { migrate: true, redisKeyPrefix: r.prefix });
  const own = stores.handles.own!;
  assert.equal(own.kind, 'redis');
  const monitor = await RedisMonitor.start(r.url, r.prefix);
  return {
    stores,
    registry: new RedisRegistry(own.kind === 'redis' ? own.redis : (undefined as never)),
    presence: stores.presence!,
    mark(proxyId) {
      const from = monitor.commands.length;
      return () => {
        const sent = monitor.commands.slice(from).filter((c) => !c.inScript);
        const writes = sent.filter((c) => /^(hset|del|sadd|srem|pexpire)$/i.test(c.args[0]!) && c.args.slice(1).some((a) => a.startsWith(`${r.prefix}session:`) || a.startsWith(`${r.prefix}proxy-sessions:`)));
        return { perHeartbeat: perHeartbeat(sent, (c) => c.args[0]!.toLowerCase() === 'exists' && c.args[1] === `${r.prefix}proxy:${proxyId}`), sessionWrites: writes.length };
      };
    },
    async cleanup() {
      await monitor.stop();
      await stores.close();
      await r.drop();
    },
  };
});
