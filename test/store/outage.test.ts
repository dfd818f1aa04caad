/**
 * A store that goes away and comes back, for real: a PostgreSQL cluster of the test's own
 * (initdb + pg_ctl on a free port; the machine's shared PostgreSQL is not touched) behind a
 * gateway, stopped and started again while connections keep coming. New console connections get
 * a 503 with an empty body and a STORE_UNAVAILABLE log line, the API Nova's 503 body, every
 * attempt an answer within the store timeouts; the open console keeps relaying; and once
 * PostgreSQL is back, Porthole serves again by itself, with no restart. The same for Redis, with
 * a redis-server of the test's own: commands fail at once while it is away, and the client
 * reconnects by itself.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { assertFault, startApi, type TestApi } from '../support/api.ts';
import { echoBackend, openConsole, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually } from '../support/gateway.ts';
import { openStores } from '../../src/database/index.ts';
import { privatePostgres, type PrivatePostgres } from '../support/stores.ts';
import { freePort } from '../support/xvnc.ts';
import { spec } from './contract.ts';

const SERVER = '6c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5';
const API_HEADERS = { 'X-OpenStack-Nova-API-Version': '2.6' };

/** Sends `bytes` through an open console and resolves when the echo backend sent them back. */
function echo(ws: WebSocket, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error(`no echo within 5 s (got ${got.length} of ${bytes.length} bytes)`)), 5000);
    const onMessage = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= bytes.length) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        assert.ok(got.equals(bytes), 'echoed bytes differ');
        resolve();
      }
    };
    ws.on('message', onMessage);
    ws.send(bytes);
  });
}

describe('store outage: a private PostgreSQL stopped and restarted under traffic', () => {
  let pg: PrivatePostgres;
  let backend: TestBackend;
  let gw: TestApi;

  before(async () => {
    pg = await privatePostgres();
    backend = await echoBackend();
    gw = await startApi({
      'database.connection': pg.url,
      'porthole.store_connect_timeout': '1',
      'porthole.store_query_timeout': '2',
      'porthole.store_idle_timeout': '60',
    });
    await gw.addServer({ id: SERVER, projectId: 'p1', vnc: { host: '127.0.0.1', port: backend.port } });
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
    await pg?.remove();
  });

  it('refuses new connections with 503, keeps the live console, and recovers by itself', async () => {
    const console1 = await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'member:p1', headers: API_HEADERS, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(console1.status, 200, console1.text);
    const live = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: SERVER });
    const next = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: SERVER });
    const wsUrl = (token: string) => `ws://127.0.0.1:${gw.port}/websockify?token=${token}`;
    const session = await openRfbConsole(wsUrl(live.token));
    await echo(session.ws, Buffer.from('before the outage'));

    // traffic: a new connection every 100 ms for the whole test; each must get an answer
    const outcomes: Array<number | string> = [];
    let traffic = true;
    const load = (async () => {
      while (traffic) {
        const started = Date.now();
        try {
          const r = await openConsole(wsUrl(next.token));
          outcomes.push(r.status ?? 101);
          r.ws?.terminate();
        } catch (err) {
          outcomes.push(`error: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - started))));
      }
    })();

    await pg.stop();
    await eventually('a new console connection to be refused with 503', async () => (await openConsole(wsUrl(next.token))).status === 503, 10_000);
    const refused = gw.logs.filter((l) => l.event === 'refused' && l.code === 'STORE_UNAVAILABLE');
    assert.ok(refused.length > 0);
    assert.ok(refused.every((l) => l.status === 503));
    assertFault(
      await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'member:p1', headers: API_HEADERS, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } }),
      503,
      'console token store unavailable',
    );
    await echo(session.ws, Buffer.from('during the outage'));
    await eventually('several refusals under traffic', () => outcomes.filter((o) => o === 503).length >= 5, 10_000);

    await pg.start();
    const back = await eventually('a new console to open again', async () => {
      try {
        return await openRfbConsole(wsUrl(next.token));
      } catch {
        return undefined;
      }
    }, 15_000);
    back.ws.close();
    const console2 = await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'member:p1', headers: API_HEADERS, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(console2.status, 200, console2.text);
    await echo(session.ws, Buffer.from('after the outage'));
    assert.equal(gw.gateway.sessions.size >= 1, true);

    traffic = false;
    await load;
    const unexpected = outcomes.filter((o) => o !== 101 && o !== 503);
    assert.deepEqual(unexpected, [], `every attempt got a 101 or a 503: ${JSON.stringify(outcomes)}`);
    assert.ok(outcomes.includes(503) && outcomes.at(-1) === 101, JSON.stringify(outcomes));
    session.ws.close();
  });
});

describe('store outage: a private Redis stopped and restarted', () => {
  it('fails operations at once with STORE_UNAVAILABLE while it is away, and reconnects by itself', async () => {
    const port = await freePort();
    const start = async (): Promise<ChildProcess> => {
      const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      await eventually('redis-server to listen', async () => {
        try {
          const probe = await openStores(`redis://127.0.0.1:${port}/0`, { migrate: false, connectTimeoutMs: 200 });
          await probe.close();
          return true;
        } catch {
          return p.exitCode === null ? false : Promise.reject(new Error(`redis-server exited ${p.exitCode}`));
        }
      });
      return p;
    };
    let server = await start();
    const stores = await openStores(`redis://127.0.0.1:${port}/0`, { migrate: true, connectTimeoutMs: 500, queryTimeoutMs: 1000, reconnectMaxDelayMs: 200 });
    try {
      const { token } = await stores.tokens.create(spec());
      assert.equal((await stores.tokens.lookup(token)).status, 'valid');
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGKILL');
      await exited;
      await eventually('the store to be seen as away', async () => {
        const started = Date.now();
        const err = await stores.tokens.lookup(token).then(() => undefined, (e: unknown) => e as { code?: string; clientMessage?: string });
        return err?.code === 'STORE_UNAVAILABLE' && err.clientMessage === 'console token store unavailable' && Date.now() - started < 1500;
      });
      server = await start();
      // this redis-server keeps nothing on disk: a new token shows the store works again
      const back = await eventually('the store to work again', () => stores.tokens.create(spec()).catch(() => undefined), 10_000);
      assert.equal((await stores.tokens.lookup(back.token)).status, 'valid');
    } finally {
      await stores.close();
      server.kill('SIGKILL');
    }
  });
});
