/**
 * Porthole's RFB client against a real TigerVNC Xvnc (root painted a known colour): the
 * handshake through the security proxy's negotiation (None and VNC authentication), Raw and the
 * default encodings decoded to the painted colour, a viewer's KeyEvent reaching the X server,
 * `frame()` for a whole fresh screen, `'end'` and the socket closed on `close()`, on the server
 * going away and on a deadline with a server that never speaks.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isGatewayError } from '../../src/errors.ts';
import { openRfbClient } from '../../src/rfb/client.ts';
import { BACKEND_GONE_REASON } from '../../src/rfb/security-proxy.ts';
import type { BackendAuthSettings } from '../../src/rfb/types.ts';
import { haveXvnc, keycodeOf, startXvnc, type Xvnc } from '../support/xvnc.ts';

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

  it('decodes a whole frame in its default encodings through VNC authentication, and forwards a viewer\'s keys', async () => {
    const x2 = await startXvnc({ colour: '#c08040', geometry: '200x100', securityTypes: 'VncAuth', password: 'secret1' });
    try {
      await x2.watchKeys();
      const socket = await dial(x2.port);
      const seen = new Set<number>();
      const client = await openRfbClient(socket, { ...NONE, schemes: ['vnc'], password: 'secret1' }, { timeoutMs: 10_000, address: 'x2', shared: true, events: { rect: (_r, e) => seen.add(e) } });
      try {
        const fb = await client.frame(15_000);
        assert.ok([...seen].every((e) => e === 7), `Xvnc answers Porthole's default list in Tight: ${[...seen]}`);
        for (let i = 0; i < fb.pixels.length; i += 4) {
          if (fb.pixels[i] !== 0xc0 || fb.pixels[i + 1] !== 0x80 || fb.pixels[i + 2] !== 0x40 || fb.pixels[i + 3] !== 255) assert.fail(`pixel ${i / 4} is ${fb.pixels.subarray(i, i + 4)}`);
        }
        assert.throws(() => client.write(Buffer.alloc(20)), /client core's own/);
        const keysym = 0x61; // 'a'
        for (const down of [1, 0]) client.write(Buffer.from([4, down, 0, 0, 0, 0, 0, keysym]));
        const a = keycodeOf(x2.display, 'a');
        const deadline = Date.now() + 10_000;
        while (!x2.keycodes.includes(a!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.ok(x2.keycodes.includes(a!), `the X server saw keycodes ${x2.keycodes}, not ${a}`);
      } finally {
        client.close();
      }
    } finally {
      await x2.stop();
    }
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
    assert.ok(isGatewayError(err) && err.code === 'BACKEND_CLOSED' && err.clientMessage === BACKEND_GONE_REASON, String(err));
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
