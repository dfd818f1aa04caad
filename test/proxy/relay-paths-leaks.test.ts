/**
 * The relay paths this round added (the clipboard policy's filters on both directions, the idle
 * timeout, the maximum duration) own their sockets as the plain relay does: whichever way a
 * session ends (the browser closes, a message the filter cannot frame, the backend goes, no
 * input for the idle timeout, the maximum duration), the gateway's descriptors, its connections
 * to the backend and its live sessions are back at their baseline. The gateway runs in this
 * process, so its descriptors are this process's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { connectionsTo, leakMeter, openDescriptors, settled, type Counts, type LeakMeter } from '../support/leak-meter.ts';

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe('relay paths with filters and deadlines: nothing left open on any end', { timeout: 90_000 }, () => {
  let backend: TestBackend;
  let filtered: TestGateway;
  let limited: TestGateway;
  let meter: LeakMeter;
  let baseline: Counts;

  before(async () => {
    backend = await echoBackend();
    // clipboard off: both directions go through the RFB framers; idle after 1 s without input
    filtered = await startGateway({ 'porthole.clipboard': 'off', 'porthole.console_idle_timeout': '1' });
    limited = await startGateway({ 'porthole.max_console_duration': '1' });
    meter = leakMeter({
      descriptors: () => openDescriptors(),
      backendConnections: () => connectionsTo(backend.port),
      sessions: () => filtered.gateway.sessions.size + limited.gateway.sessions.size,
    });
    // one console through each first, so that what the first use allocates for good is in the baseline
    for (const gw of [filtered, limited]) {
      const { ws } = await open(gw);
      const end = closed(ws);
      ws.close();
      await end;
    }
    await eventually('no live session', () => filtered.gateway.sessions.size + limited.gateway.sessions.size === 0);
    baseline = await meter.read();
  });
  after(async () => {
    await filtered?.close();
    await limited?.close();
    await backend?.close();
  });

  async function open(gw: TestGateway): Promise<{ ws: WebSocket }> {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    return openRfbConsole(`ws://127.0.0.1:${gw.port}/websockify?token=${token}`);
  }

  it('ends each way, 5 consoles each, and every count returns to its baseline', async () => {
    const ends: Array<[string, Promise<{ code: number; reason: string }>]> = [];
    for (let i = 0; i < 5; i++) {
      const byClient = await open(filtered);
      ends.push(['the browser closes', closed(byClient.ws)]);
      byClient.ws.close();

      const unframed = await open(filtered);
      ends.push(['a message the filter cannot frame', closed(unframed.ws)]);
      unframed.ws.send(Buffer.from([99, 0, 0, 0]));

      const backendGone = await open(filtered);
      ends.push(['the backend goes', closed(backendGone.ws)]);
      backend.sockets.at(-1)!.destroy();

      const idle = await open(filtered);
      ends.push(['no input', closed(idle.ws)]);

      const long = await open(limited);
      ends.push(['the maximum duration', closed(long.ws)]);
    }
    const results = await Promise.all(ends.map(async ([how, end]) => [how, await end] as const));
    const codes = new Map<string, Set<string>>();
    for (const [how, end] of results) codes.set(how, (codes.get(how) ?? new Set()).add(`${end.code} ${end.reason}`));
    assert.deepEqual(codes.get('a message the filter cannot frame'), new Set(['1002 the console client sent a message the proxy cannot check']));
    assert.deepEqual(codes.get('no input'), new Set(['1008 console idle timeout']));
    assert.deepEqual(codes.get('the maximum duration'), new Set(['1008 console session reached its maximum duration']));
    await settled(meter, baseline, 15_000);
  });
});
