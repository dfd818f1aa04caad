/**
 * The token's extras on the console path (`proxy/extras-gate.ts`, `upgrade.ts`): where no
 * feature needs them, a plain noVNC console costs the store no read more than before (the extras
 * are not read; whether any token is recorded is asked at most once a second per proxy, not per
 * console); where recording may apply they are read, and the viewer's name (the token's label,
 * else its minter) is in the session's record in the registry. The gate's rules on their own:
 * `[DEFAULT] record` and a recorded server always read, the store's answer is kept for its
 * maximum age and asked once for every console that waits on it, a store that fails reads.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { ExtrasGate } from '../../src/proxy/extras-gate.ts';
import type { TokenExtrasStore } from '../../src/store/token-extras.ts';
import { hashToken } from '../../src/store/types.ts';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, tempDir, type TestGateway } from '../support/gateway.ts';

const SERVER = '11111111-2222-4333-8444-555555555555';

describe('token extras on the console path', () => {
  let gw: TestGateway;
  let backend: TestBackend;
  const open: WebSocket[] = [];
  const calls = { get: 0, anyRecorded: 0 };
  let recorded = false;

  before(async () => {
    backend = await echoBackend();
    gw = await startGateway({ 'porthole.recording_dir': tempDir('porthole-rec-'), 'porthole.session_heartbeat_interval': '0.5' });
    // count what the console path asks of the extras store (the same object the listeners hold)
    const extras = gw.gateway.stores.tokenExtras! as TokenExtrasStore;
    const get = extras.get.bind(extras);
    extras.get = (h) => (calls.get++, get(h));
    extras.anyRecorded = async () => (calls.anyRecorded++, recorded);
  });
  after(async () => {
    for (const ws of open) ws.terminate();
    await gw?.close();
    await backend?.close();
  });

  const console_ = async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port, instanceUuid: SERVER });
    await gw.gateway.stores.tokenExtras!.put(hashToken(token), { label: 'Ops on call', mintedBy: 'alice', control: false, record: false }, Math.floor(Date.now() / 1000) + 600);
    const { ws } = await openRfbConsole(`ws://127.0.0.1:${gw.port}/websockify?token=${token}`);
    open.push(ws);
    return eventually('the session in the registry', async () => (await gw.gateway.registry.list()).sessions.find((s) => s.tokenLogId === hashToken(token).slice(0, 8)));
  };

  it('reads no token extras for plain consoles when nothing is recorded, and asks about recorded tokens once a second at most', async () => {
    const first = await console_();
    const second = await console_();
    const third = await console_();
    assert.equal(calls.get, 0, 'no extras read');
    assert.ok(calls.anyRecorded >= 1 && calls.anyRecorded <= 3, `asked ${calls.anyRecorded} time(s) for 3 consoles`);
    for (const s of [first, second, third]) assert.equal(s.viewer, undefined);
  });

  it('reads them where a recorded token exists, and lists the viewer by the token\'s label', async () => {
    recorded = true;
    await new Promise((r) => setTimeout(r, 1100));
    // the recorder is told no: this token's record flag is false and nothing else records
    const s = await console_();
    assert.equal(calls.get, 1, 'one extras read for one console');
    assert.equal(s.viewer, 'Ops on call');
  });
});

describe('the extras gate', () => {
  const store = (answers: Array<boolean | Error>) => {
    const asked = { n: 0 };
    return {
      asked,
      anyRecorded: async () => {
        const a = answers[Math.min(asked.n++, answers.length - 1)]!;
        if (a instanceof Error) throw a;
        return a;
      },
    };
  };

  it('reads where [DEFAULT] record or the server records, without asking the store', async () => {
    const s = store([false]);
    assert.equal(await new ExtrasGate(s, { recordAll: true }).wanted(undefined), true);
    assert.equal(await new ExtrasGate(s, { recordAll: false }).wanted({ record: true }), true);
    assert.equal(s.asked.n, 0);
  });

  it('keeps the store\'s answer for its maximum age, one question for consoles that wait together', async () => {
    let now = 1000;
    const s = store([false, true]);
    const gate = new ExtrasGate(s, { recordAll: false, maxAgeMs: 1000, now: () => now });
    assert.deepEqual(await Promise.all([gate.wanted(undefined), gate.wanted({ record: null }), gate.wanted({ record: false })]), [false, false, false]);
    assert.equal(s.asked.n, 1);
    now += 999;
    assert.equal(await gate.wanted(undefined), false);
    assert.equal(s.asked.n, 1);
    now += 1;
    assert.equal(await gate.wanted(undefined), true);
    assert.equal(s.asked.n, 2);
  });

  it('reads when the store cannot answer, and asks again next time', async () => {
    const s = store([new Error('down'), false]);
    const gate = new ExtrasGate(s, { recordAll: false });
    assert.equal(await gate.wanted(undefined), true);
    assert.equal(await gate.wanted(undefined), false);
    assert.equal(s.asked.n, 2);
  });
});
