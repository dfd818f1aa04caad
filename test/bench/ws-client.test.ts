import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { BenchWebSocket } from '../../bench/ws-client.ts';

// The benchmark's own WebSocket client counts every byte the figures are made of: it is checked
// here against `ws`'s server, which refuses unmasked client frames (RFC 6455 §5.1).
describe('bench/ws-client', () => {
  let http: Server;
  let wss: WebSocketServer;
  let url: string;
  const serverSide: WebSocket[] = [];

  before(async () => {
    http = createServer();
    wss = new WebSocketServer({ server: http, handleProtocols: (p) => (p.has('binary') ? 'binary' : false) });
    wss.on('connection', (ws) => serverSide.push(ws));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/?token=x`;
  });
  after(async () => {
    wss.close();
    await new Promise((r) => http.close(r));
  });

  function connect(): Promise<{ client: BenchWebSocket; server: WebSocket; received: Buffer[]; closed: Promise<number> }> {
    return new Promise((resolve, reject) => {
      const received: Buffer[] = [];
      let onClose!: (code: number) => void;
      const closed = new Promise<number>((r) => (onClose = r));
      const client: BenchWebSocket = new BenchWebSocket(url, 'binary', {
        open: () => {
          const wait = () => (serverSide.length ? resolve({ client, server: serverSide.shift()!, received, closed }) : setImmediate(wait));
          wait();
        },
        data: (d) => received.push(Buffer.from(d)),
        error: reject,
        close: (code) => onClose(code),
      });
    });
  }

  it('receives binary frames of every length encoding whole and in order', async () => {
    const { client, server, received } = await connect();
    const sizes = [0, 1, 125, 126, 65535, 65536, 3 * 1024 * 1024 + 7];
    const sent = sizes.map((n, k) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 13 + k) & 0xff)));
    for (const b of sent) server.send(b);
    const total = sent.reduce((a, b) => a + b.length, 0);
    while (received.reduce((a, b) => a + b.length, 0) < total) await new Promise((r) => setTimeout(r, 5));
    assert.ok(Buffer.concat(received).equals(Buffer.concat(sent)));
    client.terminate();
  });

  it('sends masked frames the server accepts, and answers a ping', async () => {
    const { client, server } = await connect();
    const got = new Promise<Buffer>((r) => server.once('message', (d: Buffer) => r(d)));
    client.send(Buffer.from('RFB 003.008\n'));
    assert.equal((await got).toString(), 'RFB 003.008\n');
    const pong = new Promise<Buffer>((r) => server.once('pong', (d: Buffer) => r(d)));
    server.ping(Buffer.from('are you there'));
    assert.equal((await pong).toString(), 'are you there');
    client.terminate();
  });

  it('reports the server close code, and closes with 1000 itself', async () => {
    const a = await connect();
    a.server.close(1008, 'console access revoked');
    assert.equal(await a.closed, 1008);
    const b = await connect();
    const code = new Promise<number>((r) => b.server.once('close', (c: number) => r(c)));
    b.client.close(1000);
    assert.equal(await code, 1000);
  });

  it('fails on a refused upgrade', async () => {
    await assert.rejects(
      new Promise<void>((resolve, reject) => new BenchWebSocket(url, 'base64', { open: () => resolve(), data: () => {}, error: reject, close: () => {} })),
      /subprotocol|upgrade refused/,
    );
  });
});
