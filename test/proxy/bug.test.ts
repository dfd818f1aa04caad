/**
 * An error that is not a GatewayError during an upgrade is a bug in Porthole: the client gets a
 * 500 with an empty body, the log an error line with the stack, and it is never reported as a
 * store outage (issue 12, item 4). The process and other connections go on.
 */
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Inventory } from '../../src/inventory/types.ts';
import type { ConsoleSession } from '../../src/proxy/relay.ts';
import { createUpgradeHandler, type UpgradeListener } from '../../src/proxy/upgrade.ts';
import type { TokenStore } from '../../src/store/types.ts';

describe('a bug during an upgrade', () => {
  const lines: Record<string, unknown>[] = [];
  const server = createServer();
  let upgrades: UpgradeListener;
  let port = 0;

  before(async () => {
    const log = pino({ level: 'debug' }, new Writable({ write(chunk: Buffer, _e, cb) { for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } }));
    // a token store whose lookup breaks the way a bug does (not a store outage: the guard turns those into STORE_UNAVAILABLE)
    const tokens = { lookup: async () => { throw new TypeError("Cannot read properties of undefined (reading 'instanceUuid')"); } } as unknown as TokenStore;
    upgrades = createUpgradeHandler(
      { consoleTypes: ['novnc'], endpoint: (s) => s.vnc, paths: ['/'], allowedOrigins: [], maxMessageSize: 1 << 20, setupTimeoutMs: 5000, connectTimeoutMs: 1000, handshakeTimeoutMs: 1000 },
      { tokens, inventory: {} as Inventory, log, sessions: new Set<ConsoleSession>() },
    );
    server.on('upgrade', upgrades.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    upgrades.close(1001, 'test over');
    await new Promise((r) => server.close(r));
  });

  it('answers 500 with an empty body and logs the stack as a bug, not as STORE_UNAVAILABLE', async () => {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/?token=abc', headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' } })
        .on('response', resolve)
        .on('upgrade', () => reject(new Error('upgraded')))
        .on('error', reject)
        .end();
    });
    assert.equal(res.statusCode, 500);
    assert.equal(res.headers['content-length'], '0');
    res.resume();
    const bug = lines.find((l) => l.event === 'bug');
    assert.ok(bug, JSON.stringify(lines));
    assert.equal(bug.level, 50);
    assert.equal(bug.code, 'INTERNAL');
    assert.match(String(bug.stack), /TypeError: Cannot read properties of undefined[\s\S]*at /);
    assert.equal(lines.filter((l) => l.code === 'STORE_UNAVAILABLE').length, 0);
    assert.equal(upgrades.connections.size, 0);
  });
});
