/**
 * The security proxy inside the upgrade decision: the backend is authenticated before the 101;
 * a backend that cannot be authenticated gives the browser an RFB failure with a plain reason
 * and one log line with the code and the exact detail; a browser that breaks or stalls its side
 * of the handshake is closed; a gateway that shuts down ends handshakes in progress at once.
 * Backends here are scripted (test/support/rfb-script.ts) to misbehave on demand; the real
 * servers are in test/rfb/vnc-servers.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { hashToken } from '../../src/store/types.ts';
import { bannerBackend, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { RfbClient } from '../support/rfb-client.ts';
import { scriptedServer, type ScriptedServer } from '../support/rfb-script.ts';

describe('console upgrade with the RFB security proxy', () => {
  let gw: TestGateway;
  let backend: TestBackend;
  const scripted: ScriptedServer[] = [];

  before(async () => {
    gw = await startGateway({ 'DEFAULT.osapi_compute_listen': '127.0.0.1', 'DEFAULT.osapi_compute_listen_port': '0', 'porthole.rfb_handshake_timeout': '0.5' });
    backend = await bannerBackend();
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
    for (const s of scripted) await s.close();
  });

  const open = (token: string) => new WebSocket(`ws://127.0.0.1:${gw.port}/?token=${token}`, ['binary'], { perMessageDeflate: false });
  const closeOf = (ws: WebSocket) => new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));

  it('authenticates the backend before the 101: a server that offers only VncAuth, with auth_schemes none, is refused in RFB words', async () => {
    const server = await scriptedServer(async (io) => {
      await io.write('RFB 003.008\n');
      await io.read(12);
      await io.write([1, 2]);
      await io.closed();
    });
    scripted.push(server);
    const { token } = await gw.mint({ host: '127.0.0.1', port: server.port });
    const ws = open(token);
    const client = RfbClient.overWebSocket(ws);
    await assert.rejects(client.handshake(), /security failed: The console could not be authenticated/);
    const lines = gw.logs.filter((l) => l.tokenHash === hashToken(token).slice(0, 8));
    assert.equal(lines.length, 1, JSON.stringify(lines));
    const line = lines[0]!;
    assert.equal(line.event, 'refused');
    assert.equal(line.code, 'BACKEND_AUTH_NO_SCHEME');
    assert.equal(line.msg, `backend 127.0.0.1:${server.port}: no common security type: the server offers VncAuth(2); auth_schemes = none`);
    assert.equal(line.backend, `127.0.0.1:${server.port}`);
    assert.equal(line.status, undefined, 'after the 101 there is no HTTP status to log');
    await client.waitForClose();
  });

  it('refuses in RFB words a server that stalls, within rfb_handshake_timeout', async () => {
    const server = await scriptedServer(async (io) => io.closed());
    scripted.push(server);
    const { token } = await gw.mint({ host: '127.0.0.1', port: server.port });
    const client = RfbClient.overWebSocket(open(token));
    await assert.rejects(client.handshake({ timeoutMs: 5000 }), /security failed: The console could not be authenticated/);
    const line = await eventually('refusal', () => gw.logs.find((l) => l.tokenHash === hashToken(token).slice(0, 8)));
    assert.equal(line.code, 'BACKEND_TIMEOUT');
    assert.match(line.msg, /waiting for ProtocolVersion/);
  });

  it('closes a browser that does not speak RFB, and one that stalls, and logs why', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const ws = open(token);
    const closed = closeOf(ws);
    ws.once('message', () => ws.send(Buffer.from('GET / HTTP/1.1\r\n')));
    assert.equal((await closed).code, 1002);
    const line = await eventually('protocol line', () => gw.logs.find((l) => l.tokenHash === hashToken(token).slice(0, 8) && l.code === 'CLIENT_PROTOCOL'));
    assert.match(line.msg, /client sent no RFB 3\.3\/3\.7\/3\.8 version: "GET \/ HTTP\/1"$/);

    const stall = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const ws2 = open(stall.token);
    const closed2 = closeOf(ws2);
    assert.equal((await closed2).code, 1008);
    await eventually('timeout line', () => gw.logs.find((l) => l.tokenHash === hashToken(stall.token).slice(0, 8) && l.code === 'CLIENT_TIMEOUT'));
  });

  it('ends handshakes in progress at once when the gateway shuts down', async () => {
    const g = await startGateway({ 'DEFAULT.osapi_compute_listen': '127.0.0.1', 'DEFAULT.osapi_compute_listen_port': '0', 'porthole.rfb_handshake_timeout': '60' });
    try {
      const { token } = await g.mint({ host: '127.0.0.1', port: backend.port });
      const ws = new WebSocket(`ws://127.0.0.1:${g.port}/?token=${token}`, ['binary']);
      // the browser takes the version and says nothing: the handshake waits for it
      await new Promise((resolve) => ws.once('message', resolve));
      const closed = closeOf(ws);
      await g.close();
      assert.equal((await closed).code, 1001);
    } finally {
      await g.close();
    }
  });
});
