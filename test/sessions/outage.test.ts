/**
 * The live-sessions registry through a store outage, for real: a PostgreSQL cluster of the
 * test's own (initdb + pg_ctl on a free port) under two gateways, stopped and started again. The
 * open console keeps running meanwhile; once PostgreSQL is back, each proxy's LISTEN connection
 * comes back by itself, and a revocation made on one proxy closes the console held by the other
 * as it did before. Heartbeats are set far apart here, so that only the event can close it in
 * time (the heartbeat's own check would too, later).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { closeOf, echo } from '../support/live.ts';
import { privatePostgres, type PrivatePostgres } from '../support/stores.ts';

describe('live sessions registry: PostgreSQL stopped and restarted', () => {
  let cluster: PrivatePostgres;
  let backend: TestBackend;
  let a: TestGateway;
  let b: TestGateway;

  before(async () => {
    cluster = await privatePostgres();
    backend = await echoBackend();
    const settings = {
      'database.connection': cluster.url,
      'porthole.session_heartbeat_interval': '60',
      'porthole.store_connect_timeout': '1',
      'porthole.store_query_timeout': '2',
      'porthole.store_reconnect_max_delay': '0.5',
    };
    a = await startGateway(settings);
    b = await startGateway(settings);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await backend?.close();
    await cluster?.remove();
  });

  /** The LISTEN connections the proxies hold (application_name `porthole-sessions`). */
  const listeners = async () => {
    const c = new pg.Client({ connectionString: cluster.url });
    try {
      await c.connect();
      const r = await c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'porthole-sessions'");
      return (r.rows[0] as { n: number }).n;
    } catch {
      return -1;
    } finally {
      await c.end().catch(() => {});
    }
  };

  it('closes a console on the other proxy after the outage, as before it', async () => {
    assert.equal(await listeners(), 2);
    const { token } = await a.mint({ host: '127.0.0.1', port: backend.port });
    const { ws } = await openRfbConsole(`ws://127.0.0.1:${b.port}/websockify?token=${token}`);
    await echo(ws, 'before the outage');
    await cluster.stop();
    await eventually('the lost LISTEN connection noticed', () => b.logs.some((l) => l.event === 'sessions_registry' && l['kind'] === 'events'), 10_000);
    await echo(ws, 'during the outage');
    await cluster.start();
    await eventually('both proxies LISTENing again', async () => (await listeners()) === 2, 10_000);
    const closing = closeOf(ws, 15_000);
    // the first revocations may still meet a pool connection that died with the server
    await eventually('a revocation to go through', async () => {
      try {
        return await a.gateway.stores.tokens.revoke(token);
      } catch {
        return false;
      }
    }, 10_000);
    assert.deepEqual(await closing, { code: 1008, reason: 'console access revoked' });
  });
});
