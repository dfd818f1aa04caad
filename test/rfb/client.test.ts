/**
 * Porthole's RFB client against a real TigerVNC Xvnc (root painted a known colour): the
 * handshake through the security proxy's negotiation, Raw updates decoded to the painted colour,
 * `frame()` for a whole fresh screen, `'end'` and the socket closed on `close()`, on the server
 * going away and on a deadline with a server that never speaks.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isGatewayError } from '../../src/errors.ts';
import { openRfbClient } from '../../src/rfb/client.ts';
import type { BackendAuthSettings } from '../../src/rfb/types.ts';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

const NONE: BackendAuthSettings = { schemes: ['none'], password: null, username: null, tls: null, tlsServerName: null, allowInsecureTls: false };

async function dial(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

describe('openRfbClient', { skip: !haveXvnc && 'Xvnc not installed' }, () => {
  let xvnc: Xvnc;
  before(async () => {
    xvnc = await startXvnc({ colour: '#3366cc', geometry: '320x240' });
  });
  after(async () => {
    await xvnc?.stop();
  });

  it('decodes a whole frame of Raw from Xvnc as the painted colour', async () => {
    const socket = await dial(xvnc.port);
    const client = await openRfbClient(socket, NONE, { timeoutMs: 10_000, address: `127.0.0.1:${xvnc.port}`, shared: true, encodings: [0, -223] });
    try {
      assert.equal(client.serverInit.readUInt16BE(0), 320);
      const fb = await client.frame(15_000);
      assert.deepEqual([fb.width, fb.height], [320, 240]);
      const counts = new Map<string, number>();
      for (let i = 0; i < fb.pixels.length; i += 4) {
        const k = `${fb.pixels[i]},${fb.pixels[i + 1]},${fb.pixels[i + 2]},${fb.pixels[i + 3]}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      assert.deepEqual([...counts], [['51,102,204,255', 320 * 240]]);
    } finally {
      client.close();
    }
    assert.equal(await client.ended, null);
    assert.equal(client.socket.destroyed, true);
  });

  it('says end with BACKEND_CLOSED when the server goes away', async () => {
    const x2 = await startXvnc({ colour: '#000000', geometry: '64x48' });
    const socket = await dial(x2.port);
    const client = await openRfbClient(socket, NONE, { timeoutMs: 10_000, address: 'x2', shared: true, encodings: [0] });
    const ends: unknown[] = [];
    client.on('end', (e) => ends.push(e));
    await client.frame(15_000);
    await x2.stop();
    const err = await client.ended;
    assert.ok(isGatewayError(err) && err.code === 'BACKEND_CLOSED', String(err));
    assert.equal(ends.length, 1);
    assert.equal(socket.destroyed, true);
    await assert.rejects(client.frame(1000), (e) => isGatewayError(e) && e.code === 'BACKEND_CLOSED');
  });

  it('gives up on a server that never speaks at the deadline, and closes the socket', async () => {
    const held: Socket[] = [];
    const silent = createServer((s) => held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const socket = await dial((silent.address() as { port: number }).port);
    try {
      await assert.rejects(openRfbClient(socket, NONE, { timeoutMs: 300, address: 'silent', shared: true }), (e) => isGatewayError(e) && e.code === 'BACKEND_TIMEOUT');
      assert.equal(socket.destroyed, true);
    } finally {
      for (const s of held) s.destroy();
      silent.close();
    }
  });

  it('closes the socket when the server sends garbage after ServerInit', async () => {
    const garbage = createServer((s) => {
      s.write('RFB 003.008\n');
      s.once('data', () => {
        s.write(Buffer.from([1, 1]));
        s.once('data', () => {
          s.write(Buffer.from([0, 0, 0, 0]));
          s.once('data', () => {
            const init = Buffer.alloc(24);
            init.writeUInt16BE(8, 0);
            init.writeUInt16BE(8, 2);
            Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0]).copy(init, 4);
            s.write(init);
            setTimeout(() => s.write(Buffer.from([99, 1, 2, 3])), 50);
          });
        });
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
    const socket = await dial((garbage.address() as { port: number }).port);
    try {
      const client = await openRfbClient(socket, NONE, { timeoutMs: 5000, address: 'garbage', shared: true });
      const err = await client.ended;
      assert.ok(isGatewayError(err) && err.code === 'BACKEND_PROTOCOL' && /message type 99/.test(err.message), String(err));
      assert.equal(socket.destroyed, true);
    } finally {
      garbage.close();
    }
  });
});
