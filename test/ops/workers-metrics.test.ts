/**
 * `/metrics` with `[porthole] workers = 2`: a real `porthole serve` daemon (bin/porthole.js) whose
 * two workers share the ports, on a fresh SQLite file, with an RFB echo backend. Consoles are
 * opened until both workers hold some; then every scrape of the `metrics_listen` port (which the
 * workers share), whichever worker the connection lands on, answers the sum of both workers: two
 * processes, every console opened, every byte relayed.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { call, tokenOfUrl } from '../support/api.ts';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { startDaemon, stopDaemon, type Daemon } from '../support/daemon.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { echo } from '../support/live.ts';
import { freePort } from '../support/xvnc.ts';
import { scrape, total, value } from './prom-text.ts';

const SERVER = '8e2f3041-5b6c-4d7e-8f90-a1b2c3d4e5f6';
const ADMIN = 'admin:admin';

describe('two workers, one scrape', () => {
  let dir: string;
  let backend: TestBackend;
  let daemon: Daemon;
  let metricsPort: number;
  const open: WebSocket[] = [];

  before(async () => {
    dir = tempDir('porthole-workers-metrics-');
    backend = await echoBackend();
    metricsPort = await freePort();
    daemon = await startDaemon('workers metrics', await freePort(), await freePort(), [
      '--database-connection', `sqlite:///${join(dir, 'porthole.db')}`,
      '--porthole-workers', '2',
      '--porthole-session_heartbeat_interval', '0.5',
      '--porthole-metrics_listen', `127.0.0.1:${metricsPort}`,
      '--porthole-log_level', 'info',
    ]);
    const r = await call(daemon.apiPort, 'PUT', `/porthole/v1/servers/${SERVER}`, { token: ADMIN, body: { name: 'vm-metrics', project_id: 'p1', vnc: { host: '127.0.0.1', port: backend.port } } });
    assert.equal(r.status, 200, r.text);
  });
  after(async () => {
    for (const ws of open) ws.terminate();
    await stopDaemon(daemon);
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers the sum of both workers on any worker', async () => {
    const proxies = async () => {
      const r = await call(daemon.apiPort, 'GET', '/porthole/v1/sessions', { token: ADMIN });
      assert.equal(r.status, 200, r.text);
      return r.body.proxies as Array<{ id: string; sessions: number }>;
    };
    await eventually('two workers in the registry', async () => (await proxies()).length === 2, 10_000);
    let sent = 0;
    // node:cluster hands connections out in turn, but may skip a busy worker: open until both hold some
    for (let i = 0; i < 24; i++) {
      const r = await call(daemon.apiPort, 'POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: ADMIN, headers: { 'X-OpenStack-Nova-API-Version': '2.6' }, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
      assert.equal(r.status, 200, r.text);
      const { ws } = await openRfbConsole(`ws://127.0.0.1:${daemon.consolePort}/websockify?token=${encodeURIComponent(tokenOfUrl(r.body.remote_console.url as string))}`);
      open.push(ws);
      const text = `console ${i}`;
      await echo(ws, text);
      sent += text.length;
      const count = open.length;
      const listed = await eventually(`${count} sessions in the registry`, async () => {
        const p = await proxies();
        return p.reduce((n, x) => n + x.sessions, 0) === count ? p : undefined;
      }, 10_000);
      if (open.length >= 3 && listed.every((p) => p.sessions > 0)) break;
    }
    assert.ok((await proxies()).every((p) => p.sessions > 0), 'the consoles did not land on both workers');

    // the metrics_listen port is shared by the workers as the others are: several scrapes land on
    // both in turn, and each is the whole
    for (const port of Array.from({ length: 6 }, () => metricsPort)) {
      const { families: f } = await scrape(port);
      assert.equal(total(f, 'porthole_process_info'), 2, `port ${port}`);
      assert.equal(value(f, 'porthole_console_sessions', { kind: 'novnc' }), open.length, `port ${port}`);
      assert.equal(value(f, 'porthole_console_sessions_started_total', { kind: 'novnc' }), open.length, `port ${port}`);
      assert.equal(value(f, 'porthole_token_lookups_total', { kind: 'novnc', result: 'valid', store: 'sqlite' }), open.length, `port ${port}`);
      assert.equal(value(f, 'porthole_console_bytes_total', { kind: 'novnc', direction: 'client_to_backend' }), sent, `port ${port}`);
      assert.equal(value(f, 'porthole_console_handshake_seconds_count', { kind: 'novnc', step: 'session_started' }), open.length, `port ${port}`);
    }
  });
});
