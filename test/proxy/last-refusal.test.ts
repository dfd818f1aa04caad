/**
 * The memory of why a token's last console from a client failed before its 101 (what the console
 * page reads through /porthole/token-state): only the refusals the page can act on, per token
 * hash and client, forgotten when a session starts, after its TTL, and beyond its bound.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../src/errors.ts';
import type { ConnectionFacts } from '../../src/proxy/events.ts';
import { LastRefusals } from '../../src/proxy/last-refusal.ts';
import { hashToken } from '../../src/store/types.ts';

const TOKEN = '6f1e2d3c-1111-4000-8000-000000000001';
const HASH = hashToken(TOKEN);

function facts(client: string, tokenHash: string | undefined = HASH): ConnectionFacts {
  return { kind: 'novnc', client: { host: client, display: client }, ms: 1, tokenLogId: tokenHash?.slice(0, 8), tokenHash };
}

describe('last refusals', () => {
  it('tells why a token\'s last attempt from a client failed: backend, used, store; nothing else', () => {
    const m = new LastRefusals();
    m.refused(facts('192.0.2.1'), new GatewayError('BACKEND_UNREACHABLE', 'backend 127.0.0.1:5900: ECONNREFUSED', { status: 502 }));
    m.refused(facts('192.0.2.2'), new GatewayError('TOKEN_CONSUMED', 'used', { status: 403 }));
    m.refused(facts('192.0.2.3'), new GatewayError('STORE_UNAVAILABLE', 'down', { status: 503 }));
    m.refused(facts('192.0.2.4'), new GatewayError('TOKEN_UNKNOWN', 'unknown', { status: 403 }));
    m.refused({ ...facts('192.0.2.5'), tokenHash: undefined }, new GatewayError('BACKEND_UNREACHABLE', 'no token named', { status: 502 }));
    assert.equal(m.reason(HASH, '192.0.2.1'), 'unreachable');
    assert.equal(m.reason(HASH, '192.0.2.2'), 'used');
    assert.equal(m.reason(HASH, '192.0.2.3'), 'unavailable');
    assert.equal(m.reason(HASH, '192.0.2.4'), null, 'the store says unknown itself');
    // another client's attempts are not this client's to read
    assert.equal(m.reason(HASH, '192.0.2.9'), null);
    assert.equal(m.size, 3);
    // the token itself is never a key
    assert.ok(![...(m as unknown as { entries: Map<string, unknown> }).entries.keys()].some((k) => k.includes(TOKEN)));
  });

  it('forgets when a session starts, after its TTL, and the oldest beyond its bound', async () => {
    const m = new LastRefusals({ ttlMs: 50, maxEntries: 3 });
    const refused = new GatewayError('BACKEND_UNREACHABLE', 'refused', { status: 502 });
    m.refused(facts('192.0.2.1'), refused);
    m.sessionStarted(facts('192.0.2.1'));
    assert.equal(m.reason(HASH, '192.0.2.1'), null);
    for (let i = 0; i < 10; i += 1) m.refused(facts(`192.0.2.${10 + i}`), refused);
    assert.equal(m.size, 3);
    assert.equal(m.reason(HASH, '192.0.2.10'), null);
    assert.equal(m.reason(HASH, '192.0.2.19'), 'unreachable');
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(m.reason(HASH, '192.0.2.19'), null);
  });
});
