/**
 * Many console handshakes at once leave no listener behind on anything they share: 64 WebSocket
 * upgrades with valid tokens, all in flight together, through the RFB security proxy to the
 * built-in demo VNC server, emit no process warning (a MaxListenersExceededWarning is what an
 * emitter that gains a listener per connection prints past 10), and once they are closed the
 * listener counts of the shared emitters (the process, the demo server, the console listener's
 * server) are back at their baseline.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import type { Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DEMO_SERVER_ID } from '../../src/gateway.ts';
import { openRfbConsole } from '../support/backends.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';

const HANDSHAKES = 64;

function listenerCounts(emitter: EventEmitter): Record<string, number> {
  return Object.fromEntries(emitter.eventNames().map((e) => [String(e), emitter.listenerCount(e)]));
}

/** The servers listening on `port` in this process (the console listener), found among the active handles. */
function serversOn(port: number): Server[] {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h): h is Server => typeof (h as Server)?.address === 'function' && typeof (h as Server).listening === 'boolean' && ((h as Server).address() as { port?: number } | null)?.port === port);
}

describe('concurrent console handshakes', () => {
  let gw: TestGateway;
  before(async () => {
    // all 64 consoles are of the demo server: past max_consoles_per_server's default of 50
    gw = await startGateway({ 'porthole.demo': 'true', 'porthole.max_consoles_per_server': '0' });
  });
  after(() => gw?.close());

  it(`runs ${HANDSHAKES} handshakes at once with no warning, and the shared emitters' listeners return to their baseline`, async () => {
    const demo = gw.gateway.demo!;
    const servers = serversOn(gw.port);
    assert.equal(servers.length, 1, 'the console listener is found');
    const shared: Array<[string, EventEmitter]> = [['process', process], ['demo server', demo as unknown as EventEmitter], ['console listener', servers[0]!]];
    // one warm-up console, so that lazily added listeners (the first of their kind) are in the baseline
    const first = await gw.mint({ host: demo.host, port: demo.port, instanceUuid: DEMO_SERVER_ID });
    const warm = await openRfbConsole(`ws://127.0.0.1:${gw.port}/?token=${first.token}`);
    warm.ws.close();
    await eventually('the warm-up session to end', () => gw.gateway.sessions.size === 0);
    const baseline = shared.map(([name, e]) => [name, listenerCounts(e)]);

    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const urls: string[] = [];
      for (let i = 0; i < HANDSHAKES; i++) {
        const { token } = await gw.mint({ host: demo.host, port: demo.port, instanceUuid: DEMO_SERVER_ID });
        urls.push(`ws://127.0.0.1:${gw.port}/?token=${token}`);
      }
      const consoles = await Promise.all(urls.map((u) => openRfbConsole(u)));
      assert.equal(gw.gateway.sessions.size, HANDSHAKES);
      for (const c of consoles) c.ws.close();
      await eventually('every session to end', () => gw.gateway.sessions.size === 0, 10_000);
      // warnings are emitted on the next tick
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings.map((w) => `${w.name}: ${w.message}`), []);
    assert.deepEqual(shared.map(([name, e]) => [name, listenerCounts(e)]), baseline);
  });
});
