/**
 * A screenshot of a server whose shared console is live in the gateway's process comes from that
 * console's framebuffer: `X-Porthole-Screenshot-Source: live`, the painted pixels, and no second
 * connection to the VNC server (counted by a forwarder in front of a real TigerVNC Xvnc). What is
 * painted after the console opened shows in the next screenshot. A server with no live console
 * is still taken by a connection of the service's own.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { startApi, type TestApi } from '../support/api.ts';
import { eventually } from '../support/gateway.ts';
import { countingServer, type CountingServer } from '../support/leak-meter.ts';
import { compare, decodePng, painted, paintedXvnc } from '../support/painted-screen.ts';
import { RfbClient } from '../support/rfb-client.ts';
import { paintRoot } from '../support/x11-paint.ts';
import { haveXvnc, type Xvnc } from '../support/xvnc.ts';

const SHARED = '0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a11';
const PLAIN = '0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a22';

function shot(port: number, id: string): Promise<{ status: number; source: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/porthole/v1/servers/${id}/screenshot`, headers: { 'X-Auth-Token': 'admin:admin' }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, source: String(res.headers['x-porthole-screenshot-source']), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a screenshot of a live shared console', { skip: !haveXvnc && 'no Xvnc' }, () => {
  let xvnc: Xvnc;
  let front: CountingServer;
  let gw: TestApi;
  let viewer: WebSocket | undefined;

  before(async () => {
    xvnc = await paintedXvnc();
    // every connection to the VNC server goes through here, so the test can count them
    front = await countingServer((client) => {
      const backend = connect(xvnc.port, '127.0.0.1');
      backend.on('error', () => client.destroy());
      client.on('close', () => backend.destroy());
      backend.on('close', () => client.destroy());
      client.pipe(backend).pipe(client);
    });
    gw = await startApi();
    await gw.addServer({ id: SHARED, name: 'shared', projectId: 'p', vnc: { host: '127.0.0.1', port: front.port }, sharedConsoles: true });
    await gw.addServer({ id: PLAIN, name: 'plain', projectId: 'p', vnc: { host: '127.0.0.1', port: front.port } });
  });
  after(async () => {
    viewer?.terminate();
    await gw?.close();
    await front?.close();
    await xvnc?.stop();
  });

  it('comes from the console\'s framebuffer, with no connection of its own', async () => {
    assert.ok(gw.gateway.sharedConsoles, 'the gateway has no shared consoles');
    const { token } = await gw.mint({ host: '127.0.0.1', port: front.port, instanceUuid: SHARED });
    viewer = new WebSocket(`ws://127.0.0.1:${gw.port}/websockify?token=${encodeURIComponent(token)}`, 'binary', { headers: { Origin: gw.origin } });
    // listening before the upgrade completes: the ProtocolVersion may come with the 101
    const client = RfbClient.overWebSocket(viewer);
    await client.handshake({ shared: true, timeoutMs: 20_000 });
    await client.requestFramebuffer(undefined, 20_000);
    await eventually('the live framebuffer', () => gw.gateway.sharedConsoles!.liveFramebuffer(SHARED), 20_000);
    assert.equal(front.accepted(), 1, 'connections to the VNC server with the console open');

    const r = await shot(gw.apiPort, SHARED);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.source, 'live');
    const c = compare(decodePng(r.body), painted);
    assert.equal(c.differing, 0, `${c.differing} pixels differ; first ${c.first}`);
    assert.equal(front.accepted(), 1, 'the screenshot opened a connection of its own');
  });

  it('shows what was painted since, once the console has it', async () => {
    await paintRoot(xvnc.display, { x: 0, y: 0, width: 32, height: 32 }, () => [0, 255, 0]);
    await eventually('the new paint in a live screenshot', async () => {
      const r = await shot(gw.apiPort, SHARED);
      const png = decodePng(r.body);
      return r.source === 'live' && png.data[0] === 0 && png.data[1] === 255 && png.data[2] === 0;
    }, 20_000);
    assert.equal(front.accepted(), 1);
  });

  it('takes a server with no live console by a connection of its own', async () => {
    const r = await shot(gw.apiPort, PLAIN);
    assert.equal(r.status, 200);
    assert.equal(r.source, 'connection');
    assert.equal(front.accepted(), 2);
  });
});
