/**
 * The metrics a scraper reads after a known sequence of consoles, from the real `/metrics` text
 * of a gateway (SQLite store, an RFB echo backend): three noVNC consoles opened, bytes sent
 * through them, closed by the browser; one closed by a revocation; one unknown token; one
 * foreign Origin; a few API requests. The counts are exact, the live figures (sessions open,
 * bytes of live sessions) are seen while the consoles are open, and no token, token id, server
 * id or address appears anywhere in the text. Then where `/metrics` is served: every console
 * port and the API port; with `[porthole] metrics_listen` only its own listener (the probes stay
 * everywhere); with `metrics_enabled = false` nowhere.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { call, startApi, type TestApi } from '../support/api.ts';
import { echoBackend, openConsole, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { closeOf, echo } from '../support/live.ts';
import { tokenLogId } from '../../src/store/types.ts';
import { endReason } from '../../src/ops/metrics.ts';
import { get, scrape, total, value } from './prom-text.ts';

const SERVER = '7d1e2f30-4a5b-4c6d-8e7f-90a1b2c3d4e5';

describe('metrics after a known sequence of consoles', () => {
  let gw: TestApi;
  let backend: TestBackend;
  const tokens: string[] = [];

  before(async () => {
    backend = await echoBackend();
    gw = await startApi();
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  const wsUrl = (token: string) => `ws://127.0.0.1:${gw.port}/websockify?token=${encodeURIComponent(token)}`;
  const mint = async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: SERVER });
    tokens.push(token);
    return token;
  };

  it('counts sessions, bytes, lookups, refusals and handshakes exactly, live and after', async () => {
    const before = await scrape(gw.port);
    assert.equal(value(before.families, 'porthole_console_sessions', { kind: 'novnc' }), 0);
    assert.equal(value(before.families, 'porthole_process_info', { consoles: 'novnc,serial,spice', api: 'true', store: 'sqlite' }), 1);

    const open: WebSocket[] = [];
    const payloads = ['first console', 'the second one says more', 'three'];
    for (const text of payloads) {
      const { ws } = await openRfbConsole(wsUrl(await mint()));
      await echo(ws, text);
      open.push(ws);
    }
    const sent = payloads.reduce((n, t) => n + Buffer.byteLength(t), 0);

    // live: three open, and their bytes so far without any of them having ended
    const live = await scrape(gw.port);
    assert.equal(value(live.families, 'porthole_console_sessions', { kind: 'novnc' }), 3);
    assert.equal(value(live.families, 'porthole_console_sessions_started_total', { kind: 'novnc' }), 3);
    assert.equal(value(live.families, 'porthole_console_bytes_total', { kind: 'novnc', direction: 'client_to_backend' }), sent);
    assert.equal(value(live.families, 'porthole_console_bytes_total', { kind: 'novnc', direction: 'backend_to_client' }), sent);
    assert.equal(total(live.families, 'porthole_console_sessions_ended_total'), 0);

    // closed by the browser: the bytes stay, counted once
    for (const ws of open) {
      const closed = closeOf(ws);
      ws.close(1000);
      await closed;
    }
    await eventually('no live session', () => gw.gateway.sessions.size === 0);

    // a fourth, closed by a revocation of its token
    const revoked = await mint();
    const fourth = await openRfbConsole(wsUrl(revoked));
    const closed = closeOf(fourth.ws);
    assert.equal(await gw.gateway.stores.tokens.revoke(revoked), true);
    assert.equal((await closed).reason, 'console access revoked');
    await eventually('no live session', () => gw.gateway.sessions.size === 0);

    // refused: an unknown token (looked up), a foreign Origin (refused before any lookup)
    assert.equal((await openConsole(wsUrl('a-token-no-one-minted'))).status, 403);
    assert.equal((await openConsole(wsUrl(await mint()), { origin: 'http://elsewhere.example' })).status, 403);

    // the API: the version document, a route with a parameter, and no route at all
    assert.equal((await call(gw.apiPort, 'GET', '/')).status, 200);
    assert.equal((await call(gw.apiPort, 'GET', `/porthole/v1/servers/${SERVER}`, { token: 'admin:admin' })).status, 404);
    // no route (a token in its URL): credentials first, as Nova's auth middleware
    assert.equal((await call(gw.apiPort, 'GET', `/no/such/${tokens[0]}`)).status, 401);

    const { families: f, text } = await scrape(gw.port);
    assert.equal(value(f, 'porthole_console_sessions', { kind: 'novnc' }), 0);
    assert.equal(value(f, 'porthole_console_sessions_started_total', { kind: 'novnc' }), 4);
    assert.equal(value(f, 'porthole_console_sessions_ended_total', { kind: 'novnc', reason: 'client' }), 3);
    assert.equal(value(f, 'porthole_console_sessions_ended_total', { kind: 'novnc', reason: 'revoked' }), 1);
    assert.equal(total(f, 'porthole_console_sessions_ended_total'), 4);
    assert.equal(value(f, 'porthole_console_bytes_total', { kind: 'novnc', direction: 'client_to_backend' }), sent);
    assert.equal(value(f, 'porthole_console_bytes_total', { kind: 'novnc', direction: 'backend_to_client' }), sent);
    assert.equal(value(f, 'porthole_console_session_duration_seconds_count', { kind: 'novnc' }), 4);

    assert.equal(value(f, 'porthole_token_lookups_total', { kind: 'novnc', result: 'valid', store: 'sqlite' }), 4);
    assert.equal(value(f, 'porthole_token_lookups_total', { kind: 'novnc', result: 'unknown', store: 'sqlite' }), 1);
    assert.equal(total(f, 'porthole_token_lookups_total'), 5);
    assert.equal(value(f, 'porthole_token_lookup_seconds_count', { store: 'sqlite' }), 5);
    assert.equal(value(f, 'porthole_token_lookup_seconds_bucket', { store: 'sqlite', le: '+Inf' }), 5);

    assert.equal(value(f, 'porthole_console_refusals_total', { kind: 'novnc', code: 'TOKEN_UNKNOWN', status: '403' }), 1);
    assert.equal(value(f, 'porthole_console_refusals_total', { kind: 'novnc', code: 'ORIGIN_MISMATCH', status: '403' }), 1);
    assert.equal(total(f, 'porthole_console_refusals_total'), 2);

    assert.equal(value(f, 'porthole_console_handshake_seconds_count', { kind: 'novnc', step: 'backend_connected' }), 4);
    assert.equal(value(f, 'porthole_console_handshake_seconds_count', { kind: 'novnc', step: 'session_started' }), 4);
    // a histogram's buckets are cumulative, ending at the count
    const buckets = f.get('porthole_console_handshake_seconds')!.samples.filter((s) => s.name.endsWith('_bucket') && s.labels.step === 'session_started');
    assert.ok(buckets.length > 5);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value);
    assert.equal(buckets.at(-1)!.labels.le, '+Inf');

    // by route pattern, never by URL
    assert.equal(value(f, 'porthole_api_requests_total', { route: '/', method: 'GET', status: '200' }), 1);
    assert.equal(value(f, 'porthole_api_requests_total', { route: '/porthole/v1/servers/:id', method: 'GET', status: '404' }), 1);
    assert.equal(value(f, 'porthole_api_requests_total', { route: 'unmatched', method: 'GET', status: '401' }), 1);
    assert.equal(value(f, 'porthole_api_request_duration_seconds_count', { route: '/', method: 'GET' }), 1);

    // Node's own figures, event-loop delay among them
    assert.equal(f.get('nodejs_eventloop_lag_p99_seconds')?.type, 'gauge');
    assert.equal(f.get('process_resident_memory_bytes')?.type, 'gauge');

    // nothing that names a console: tokens, their log ids, the server, the backend, the client
    for (const t of tokens) {
      assert.ok(!text.includes(t), 'a token in /metrics');
      assert.ok(!text.includes(tokenLogId(t)), 'a token log id in /metrics');
    }
    assert.ok(!text.includes(SERVER), 'the server id in /metrics');
    assert.ok(!text.includes(String(backend.port)), 'the backend port in /metrics');
    assert.ok(!text.includes('127.0.0.1'), 'an address in /metrics');
  });

  it('says the same on every port: each console listener and the API', async () => {
    const ports = [...gw.gateway.proxies.values()].map((p) => p.port).concat(gw.apiPort);
    assert.equal(ports.length, 4);
    for (const port of ports) {
      const { families } = await scrape(port);
      assert.equal(value(families, 'porthole_console_sessions_started_total', { kind: 'novnc' }), 4, `port ${port}`);
    }
  });

  it('maps every way a session ends to a small fixed set of reasons', () => {
    assert.equal(endReason('client closed (1000)'), 'client');
    assert.equal(endReason('client error: read ECONNRESET'), 'error');
    assert.equal(endReason('backend closed'), 'backend');
    assert.equal(endReason('backend error: ECONNRESET'), 'error');
    assert.equal(endReason('console access revoked'), 'revoked');
    assert.equal(endReason('console session killed by an administrator'), 'killed');
    assert.equal(endReason('console session expired'), 'expired');
    assert.equal(endReason('console idle timeout'), 'idle');
    assert.equal(endReason('console session reached its maximum duration'), 'duration');
    assert.equal(endReason('proxy shutting down'), 'shutdown');
    assert.equal(endReason('The console viewer fell behind'), 'other');
  });
});

describe('where /metrics is served', () => {
  let listen: TestGateway | undefined;
  let off: TestGateway | undefined;
  after(async () => {
    await listen?.close();
    await off?.close();
  });

  it('[porthole] metrics_listen: /metrics on its own listener only, the probes on every port', async () => {
    listen = await startGateway({ 'porthole.metrics_listen': '127.0.0.1:0' });
    const own = listen.gateway.metricsListener;
    assert.ok(own && own.port > 0);
    const { families } = await scrape(own.port);
    assert.equal(value(families, 'porthole_process_info', { consoles: 'novnc,serial,spice', api: 'true', store: 'sqlite' }), 1);
    assert.equal((await get(own.port, '/healthz')).text, 'ok\n');
    assert.equal((await get(own.port, '/readyz')).status, 200);
    assert.equal((await get(own.port, '/vnc.html')).status, 404);
    assert.equal((await get(own.port, '/metrics', 'POST')).status, 405);
    const head = await get(own.port, '/metrics', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    const others = [...listen.gateway.proxies.values()].map((p) => p.port).concat(listen.gateway.api!.port);
    for (const port of others) {
      assert.equal((await get(port, '/metrics')).status, port === listen.gateway.api!.port ? 401 : 404, `port ${port}`);
      assert.equal((await get(port, '/healthz')).status, 200, `port ${port}`);
      const ready = await get(port, '/readyz?full');
      assert.equal(ready.status, 200, `port ${port}`);
      assert.equal(ready.text, 'ready\n');
    }
  });

  it('[porthole] metrics_enabled = false: no /metrics anywhere, the probes stay', async () => {
    off = await startGateway({ 'porthole.metrics_enabled': 'false' });
    const ports = [...off.gateway.proxies.values()].map((p) => p.port).concat(off.gateway.api!.port);
    for (const port of ports) {
      // no such route: the API asks for credentials first, as Nova's auth middleware does
      assert.equal((await get(port, '/metrics')).status, port === off.gateway.api!.port ? 401 : 404, `port ${port}`);
      assert.equal((await get(port, '/healthz')).status, 200, `port ${port}`);
      assert.equal((await get(port, '/readyz')).status, 200, `port ${port}`);
    }
  });

  it('refuses a metrics_listen that is no HOST:PORT, naming the option', async () => {
    await assert.rejects(startGateway({ 'porthole.metrics_listen': '9180' }), /\[porthole\] metrics_listen = 9180: expected HOST:PORT/);
  });
});
