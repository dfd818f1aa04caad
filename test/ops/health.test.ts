/**
 * Readiness as a balancer or Kubernetes sees it: `/readyz` 503 while the store is down (a
 * PostgreSQL cluster of the test's own, stopped and started again: the machine's shared one is
 * not touched) on every port, with a reason that names no address, and 200 again once the store
 * is back, without a restart; 503 from the first moment of a drain, on the `metrics_listen`
 * listener that stays open through it, while `/healthz` says the process answers; and the store
 * asked at most once a second however many probes come.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { closeOf } from '../support/live.ts';
import { privatePostgres, type PrivatePostgres } from '../support/stores.ts';
import { Health, STORE_CHECK_TTL_MS, tokenLookupCheck } from '../../src/ops/health.ts';
import { get } from './prom-text.ts';

describe('/readyz while the store is down', () => {
  let pg: PrivatePostgres;
  let gw: TestGateway;

  before(async () => {
    pg = await privatePostgres();
    gw = await startGateway({
      'database.connection': pg.url,
      'porthole.store_connect_timeout': '1',
      'porthole.store_query_timeout': '1',
      'porthole.metrics_listen': '127.0.0.1:0',
    });
  });
  after(async () => {
    await gw?.close();
    await pg?.remove();
  });

  it('is 503 on every port while PostgreSQL is stopped, and 200 again once it is back', async () => {
    const ports = [gw.port, gw.gateway.api!.port, gw.gateway.metricsListener!.port];
    for (const port of ports) assert.equal((await get(port, '/readyz')).status, 200);

    await pg.stop();
    const down = await eventually('/readyz 503', async () => {
      const r = await get(gw.port, '/readyz');
      return r.status === 503 ? r : undefined;
    }, 10_000);
    assert.equal(down.text, 'not ready\nstore unavailable\n');
    assert.equal(down.contentType, 'text/plain; charset=utf-8');
    for (const port of ports) {
      const r = await get(port, '/readyz');
      assert.equal(r.status, 503, `port ${port}`);
      // the address and the driver's words are for the log
      assert.ok(!r.text.includes(String(pg.port)), r.text);
      // the process itself still answers
      assert.equal((await get(port, '/healthz')).status, 200);
    }
    const said = gw.logs.filter((l) => l.event === 'readiness');
    assert.ok(said.some((l) => l.code === 'STORE_UNAVAILABLE' && l.msg.includes(String(pg.port))), JSON.stringify(said));

    await pg.start();
    await eventually('/readyz 200 again', async () => (await get(gw.port, '/readyz')).status === 200, 15_000);
    for (const port of ports) assert.equal((await get(port, '/readyz')).text, 'ready\n');
    assert.ok(gw.logs.some((l) => l.event === 'readiness' && l.ready === true));
  });
});

describe('/readyz during a drain', () => {
  let backend: TestBackend;
  let gw: TestGateway;

  before(async () => {
    backend = await echoBackend();
    gw = await startGateway({ 'porthole.metrics_listen': '127.0.0.1:0' });
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  it('is 503 from the first moment of the drain, while a live console runs on', async () => {
    const own = gw.gateway.metricsListener!.port;
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const { ws } = await openRfbConsole(`ws://127.0.0.1:${gw.port}/websockify?token=${token}`);
    assert.equal((await get(own, '/readyz')).status, 200);

    const closing = gw.gateway.close({ drainMs: 20_000 });
    const r = await get(own, '/readyz');
    assert.equal(r.status, 503);
    assert.match(r.text, /^not ready\ndraining\n/);
    // the console listeners stopped taking connections: readiness says so too
    await eventually('the listeners named', async () => (await get(own, '/readyz')).text.includes('listener novnc not listening'));
    assert.equal((await get(own, '/healthz')).status, 200);
    assert.equal(gw.gateway.sessions.size, 1, 'the live console runs on through the drain');

    const ended = closeOf(ws);
    ws.close(1000);
    await ended;
    await closing;
  });
});

describe('the store check behind /readyz', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw?.close();
  });

  it('asks the store once per second however many probes come', async () => {
    let clock = 1_000_000;
    let asked = 0;
    const lookup = tokenLookupCheck(gw.gateway.stores.tokens);
    const health = new Health({ storeCheck: () => (asked++, lookup()), log: gw.gateway.log, now: () => clock });
    const answers = await Promise.all(Array.from({ length: 50 }, () => health.readiness()));
    assert.ok(answers.every((a) => a.ready));
    assert.equal(asked, 1);
    clock += STORE_CHECK_TTL_MS - 1;
    await health.readiness();
    assert.equal(asked, 1);
    clock += 1;
    await health.readiness();
    assert.equal(asked, 2);
  });
});
