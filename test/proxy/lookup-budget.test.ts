/**
 * The budget of failed console token lookups per client address (`src/proxy/lookup-budget.ts`):
 * its logic with a clock of the test's own (budget, window roll-over, /64 keying, memory bound,
 * one log line per address and window); its count shared by two processes' worth of budgets on
 * one store, on the real SQLite, PostgreSQL, MariaDB and Redis of this machine; and through the
 * gateway over HTTP and in Chromium: `/porthole/token-state` and the console page answer 429
 * once an address used up its budget, to a valid token too, while other addresses go on.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { pino, type Logger } from 'pino';
import { clientKey, DEFAULT_MAX_CLIENTS, FailedLookupBudget, openLookupBudget, overBudget } from '../../src/proxy/lookup-budget.ts';
import { openStores, type OpenedStores as Stores } from '../../src/database/index.ts';
import type { LookupFailureCounter } from '../../src/store/lookup-failures.ts';
import { launchBrowser, waitForConsoleState } from '../support/browser.ts';
import { eventually, startGateway, type LogLine, type TestGateway } from '../support/gateway.ts';
import { freshMariadb, freshPostgres, freshRedis } from '../support/stores.ts';

const WINDOW = 60;
/** A moment 30 s into a window that starts in the future, so Redis keys (EXPIREAT its end) live through the test. */
const T0 = (Math.floor(Date.now() / 1000 / WINDOW) + 5) * WINDOW * 1000 + 30_000;

function captureLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

const budgetLines = (lines: LogLine[]) => lines.filter((l) => l.event === 'lookup_budget' && l.client !== undefined);

function clock(start = T0): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('lookup budget', () => {
  it('refuses a client once it used up its budget, until the window ends, and no other client', async () => {
    const c = clock();
    const b = new FailedLookupBudget({ budget: 3, windowSeconds: WINDOW, now: c.now });
    for (let i = 0; i < 3; i++) {
      assert.equal(b.allows('192.0.2.1'), true, `before failure ${i + 1}`);
      await b.failed('192.0.2.1');
    }
    assert.equal(b.allows('192.0.2.1'), false);
    assert.equal(b.retryAfter('192.0.2.1'), 30);
    assert.equal(b.allows('192.0.2.2'), true);
    assert.equal(b.retryAfter('192.0.2.2'), 0);
    c.advance(29_500);
    assert.equal(b.retryAfter('192.0.2.1'), 1);
    c.advance(500);
    assert.equal(b.allows('192.0.2.1'), true, 'a new window');
  });

  it('counts again from zero in a new window', async () => {
    const c = clock();
    const b = new FailedLookupBudget({ budget: 3, windowSeconds: WINDOW, now: c.now });
    await b.failed('192.0.2.1');
    await b.failed('192.0.2.1');
    c.advance(30_000);
    await b.failed('192.0.2.1');
    await b.failed('192.0.2.1');
    assert.equal(b.allows('192.0.2.1'), true, 'two failures in each of two windows');
    await b.failed('192.0.2.1');
    assert.equal(b.allows('192.0.2.1'), false);
  });

  it('limits loopback like any address', async () => {
    const b = new FailedLookupBudget({ budget: 2, windowSeconds: WINDOW, now: clock().now });
    await b.failed('127.0.0.1');
    await b.failed('::ffff:127.0.0.1');
    assert.equal(b.allows('127.0.0.1'), false);
    await b.failed('::1');
    await b.failed('::1');
    assert.equal(b.allows('::1'), false);
  });

  it('keys IPv6 clients by their /64 and IPv4-mapped addresses as IPv4', async () => {
    assert.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:DB8:0001:0002::9'), '2001:db8:1:2::/64');
    assert.equal(clientKey('[2001:db8::1]'), '2001:db8:0:0::/64');
    assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
    assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('::ffff:c000:207'), '192.0.2.7');
    assert.equal(clientKey('64:ff9b::192.0.2.7'), '64:ff9b:0:0::/64');
    assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('unknown'), 'unknown');
    assert.equal(clientKey('x'.repeat(100)).length, 64);

    const b = new FailedLookupBudget({ budget: 3, windowSeconds: WINDOW, now: clock().now });
    await b.failed('2001:db8:1:2::1');
    await b.failed('2001:db8:1:2::2');
    await b.failed('2001:db8:1:2:ffff:ffff:ffff:ffff');
    assert.equal(b.allows('2001:db8:1:2:abcd::9'), false, 'another address of the same /64');
    assert.equal(b.allows('2001:db8:1:3::1'), true, 'the next /64');
    await b.failed('::ffff:198.51.100.1');
    await b.failed('198.51.100.1');
    await b.failed('::ffff:c633:6401');
    assert.equal(b.allows('198.51.100.1'), false);
  });

  it('remembers at most maxClients addresses under 100 000 distinct ones, keeping a blocked client that keeps knocking', async () => {
    const b = new FailedLookupBudget({ budget: 2, windowSeconds: WINDOW, now: clock().now });
    await b.failed('203.0.113.9');
    await b.failed('203.0.113.9');
    for (let i = 0; i < 100_000; i++) {
      await b.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      if (i % 1000 === 0) assert.equal(b.allows('203.0.113.9'), false, `still refused after ${i} other addresses`);
      assert.ok(b.size <= DEFAULT_MAX_CLIENTS);
    }
    assert.equal(b.size, DEFAULT_MAX_CLIENTS);
    assert.equal(b.allows('203.0.113.9'), false);
    // the addresses that went quiet were forgotten first
    assert.equal(b.allows('10.0.0.1'), true);

    const small = new FailedLookupBudget({ budget: 2, windowSeconds: WINDOW, maxClients: 100, now: clock().now });
    for (let i = 0; i < 100_000; i++) await small.failed(`2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`);
    assert.equal(small.size, 100);
  });

  it('logs one line per address and window, without a token', async () => {
    const c = clock();
    const { log, lines } = captureLog();
    const b = new FailedLookupBudget({ budget: 3, windowSeconds: WINDOW, now: c.now, log });
    for (let i = 0; i < 10; i++) await b.failed('192.0.2.1');
    for (let i = 0; i < 2; i++) await b.failed('192.0.2.2');
    assert.deepEqual(budgetLines(lines).map((l) => [l.client, l.failures, l.windowSeconds, l.level]), [['192.0.2.1', 3, WINDOW, 40]]);
    c.advance(WINDOW * 1000);
    for (let i = 0; i < 10; i++) await b.failed('192.0.2.1');
    await b.failed('2001:db8::1');
    await b.failed('2001:db8::2');
    await b.failed('2001:db8::3');
    assert.deepEqual(budgetLines(lines).map((l) => l.client), ['192.0.2.1', '192.0.2.1', '2001:db8:0:0::/64']);
  });

  it('has no limit with a budget of 0 and then never asks the store', async () => {
    let asked = 0;
    const counter: LookupFailureCounter = { description: 'test', add: async () => ++asked, sweep: async () => {} };
    const b = new FailedLookupBudget({ budget: 0, windowSeconds: WINDOW, now: clock().now }, counter);
    for (let i = 0; i < 1000; i++) await b.failed('192.0.2.1');
    assert.equal(b.allows('192.0.2.1'), true);
    assert.equal(asked, 0);
  });

  it('counts in this process when the store fails, never rejects, and says so once a minute', async () => {
    const c = clock();
    const { log, lines } = captureLog();
    const counter: LookupFailureCounter = { description: 'broken', add: () => Promise.reject(new Error('connection refused')), sweep: async () => {} };
    const b = new FailedLookupBudget({ budget: 3, windowSeconds: WINDOW, now: c.now, log }, counter);
    for (let i = 0; i < 5; i++) await b.failed('192.0.2.1');
    assert.equal(b.allows('192.0.2.1'), false);
    const storeLines = lines.filter((l) => l.event === 'lookup_budget' && l.client === undefined);
    assert.equal(storeLines.length, 1);
    assert.match(storeLines[0]!.msg, /connection refused/);
    assert.equal(budgetLines(lines).length, 1, 'the crossing is logged from the local count');
  });

  it('learns from the shared count that a client is over budget', async () => {
    const counter: LookupFailureCounter = { description: 'test', add: async () => 50, sweep: async () => {} };
    const { log, lines } = captureLog();
    const b = new FailedLookupBudget({ budget: 20, windowSeconds: WINDOW, now: clock().now, log }, counter);
    await b.failed('192.0.2.1');
    assert.equal(b.allows('192.0.2.1'), false);
    assert.equal(budgetLines(lines).length, 0, 'another process logged the crossing');
  });

  it('refuses with HTTP 429', () => {
    const e = overBudget('192.0.2.1');
    assert.equal(e.code, 'TOO_MANY_FAILED_LOOKUPS');
    assert.equal(e.status, 429);
  });
});

/** Two budgets on one store (two processes' worth) share one count per client and window. */
function sharedCounting(name: string, open: () => Promise<{ url: string; settings?: { redisKeyPrefix: string }; drop(): Promise<void> }>, kind: 'sql' | 'redis') {
  describe(`lookup budget shared through ${name}`, () => {
    let place: Awaited<ReturnType<typeof open>>;
    let stores: Stores[] = [];
    before(async () => {
      place = await open();
      stores = [await openStores(place.url, { migrate: true, ...place.settings }), await openStores(place.url, { migrate: false, ...place.settings })];
    });
    after(async () => {
      for (const s of stores) await s.close();
      await place?.drop();
    });

    it('refuses a client in each process once the shared count reaches the budget, and logs it once in all', async () => {
      const c = clock();
      const logs = [captureLog(), captureLog()];
      const [a, b] = await Promise.all(stores.map((s, i) => openLookupBudget(s, { budget: 5, windowSeconds: WINDOW, now: c.now, log: logs[i]!.log })));
      assert.equal((a as FailedLookupBudget).isShared, true);
      const client = '198.51.100.20';
      for (let i = 0; i < 3; i++) await a!.failed(client);
      assert.equal(b!.allows(client), true);
      await b!.failed(client);
      await b!.failed(client);
      assert.equal(b!.allows(client), false, 'the shared count reached the budget');
      assert.equal(a!.allows(client), true, 'a has not looked since');
      await a!.failed(client);
      assert.equal(a!.allows(client), false, 'a learnt the shared count with its next failure');
      assert.equal(a!.allows('198.51.100.21'), true);
      const lines = [...budgetLines(logs[0]!.lines), ...budgetLines(logs[1]!.lines)];
      assert.deepEqual(lines.map((l) => [l.client, l.failures]), [[client, 5]]);

      // the next window starts again, in both
      c.advance(WINDOW * 1000);
      assert.equal(a!.allows(client), true);
      await a!.failed(client);
      await b!.failed(client);
      assert.equal(b!.allows(client), true);
      await Promise.all([a!.close(), b!.close()]);
    });

    it('keeps one count per client: concurrent failures from both processes are all counted', async () => {
      const c = clock(T0 + 2 * WINDOW * 1000);
      const [a, b] = await Promise.all(stores.map((s) => openLookupBudget(s, { budget: 1000, windowSeconds: WINDOW, now: c.now })));
      const client = '2001:db8:77::1';
      await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a! : b!).failed(client)));
      const counter = (await import('../../src/database/index.ts'));
      const own = stores[0]!.handles!.own!;
      const probe = own.kind === 'redis' ? new counter.RedisLookupFailures(own.redis) : new counter.SqlLookupFailures(own.database);
      const windowStart = Math.floor(c.now() / 1000 / WINDOW) * WINDOW;
      assert.equal(await probe.add(clientKey(client), windowStart, windowStart + WINDOW), 41);
      await Promise.all([a!.close(), b!.close()]);
    });

    if (kind === 'sql') {
      it('deletes the counts of past windows', async () => {
        const c = clock(T0 + 4 * WINDOW * 1000);
        const a = await openLookupBudget(stores[0]!, { budget: 5, windowSeconds: WINDOW, now: c.now });
        await a.failed('192.0.2.50');
        await a.failed('192.0.2.51');
        const own = stores[0]!.handles!.own!;
        assert.equal(own.kind, 'sql');
        const db = own.kind === 'sql' ? own.database.db : undefined!;
        const rows = async (before: number) => Number((await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM porthole_lookup_failures WHERE window_start < ${before}`.execute(db)).rows[0]!.n);
        const next = Math.floor(c.now() / 1000 / WINDOW) * WINDOW + WINDOW;
        assert.ok((await rows(next)) >= 2);
        c.advance(WINDOW * 1000);
        await a.failed('192.0.2.52');
        await eventually('rows of past windows to be deleted', async () => (await rows(next)) === 0);
        await a.close();
      });
    } else {
      it('lets Redis expire the counts at the end of their window', async () => {
        const c = clock(T0 + 6 * WINDOW * 1000);
        const a = await openLookupBudget(stores[0]!, { budget: 5, windowSeconds: WINDOW, now: c.now });
        await a.failed('192.0.2.60');
        const own = stores[0]!.handles!.own!;
        assert.equal(own.kind, 'redis');
        if (own.kind !== 'redis') return;
        const windowStart = Math.floor(c.now() / 1000 / WINDOW) * WINDOW;
        const key = `${own.redis.prefix}lookup-failures:${windowStart}:192.0.2.60`;
        assert.equal(await own.redis.redis.get(key), '1');
        assert.equal(await own.redis.redis.expiretime(key), windowStart + WINDOW);
        await a.close();
      });
    }
  });
}

sharedCounting('SQLite (one file, two connections)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-budget-'));
  return { url: `sqlite:///${join(dir, 'porthole.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
}, 'sql');
sharedCounting('PostgreSQL', freshPostgres, 'sql');
sharedCounting('MariaDB', freshMariadb, 'sql');
sharedCounting('Redis', async () => {
  const r = await freshRedis();
  return { url: r.url, settings: { redisKeyPrefix: r.prefix }, drop: () => r.drop() };
}, 'redis');

/** The HTTP status a console WebSocket upgrade gets (101 when it is upgraded). */
function upgradeStatus(port: number, token: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: `/?token=${token}`,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), 'Sec-WebSocket-Protocol': 'binary', ...headers },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve(101);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('lookup budget through the gateway', () => {
  let gw: TestGateway;
  // 127.0.0.1 is the balancer: X-Forwarded-For names the client (as HAProxy's `option forwardfor`)
  const from = (ip: string) => ({ headers: { 'X-Forwarded-For': ip } });
  before(async () => {
    gw = await startGateway({ 'porthole.failed_lookup_budget': '3', 'porthole.trusted_proxies': '127.0.0.1' });
  });
  after(async () => {
    await gw?.close();
  });

  it('answers 429 to token-state after the budget of failed lookups, to a valid token too, and other addresses go on', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: 1 });
    const guesser = '198.51.100.7';
    const guesses = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000003'];
    for (const guess of guesses) {
      const res = await fetch(`${gw.origin}/porthole/token-state?token=${guess}`, from(guesser));
      assert.equal(res.status, 200);
      assert.equal((await res.json()).state, 'unknown');
    }
    const refused = await fetch(`${gw.origin}/porthole/token-state?token=${guesses[0]}`, from(guesser));
    assert.equal(refused.status, 429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal(refused.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await refused.json(), { state: 'limited', server: null, expiresAt: null, retryAfter });

    // the point: while refused, a right guess teaches the guesser nothing
    const valid = await fetch(`${gw.origin}/porthole/token-state?token=${token}`, from(guesser));
    assert.equal(valid.status, 429);
    assert.equal((await valid.json()).state, 'limited');
    const page = await fetch(`${gw.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}`, from(guesser));
    assert.equal(page.status, 429);
    assert.ok(Number(page.headers.get('retry-after')) >= 1);
    const html = await page.text();
    assert.match(html, /"state":"limited"/);
    assert.doesNotMatch(html, /"state":"valid"/);

    // another address, and the balancer itself, are not refused
    const other = await fetch(`${gw.origin}/porthole/token-state?token=${token}`, from('198.51.100.8'));
    assert.equal(other.status, 200);
    assert.equal((await other.json()).state, 'valid');
    assert.equal((await fetch(`${gw.origin}/porthole/token-state?token=${token}`)).status, 200);

    const lines = gw.logs.filter((l) => l.event === 'lookup_budget');
    assert.deepEqual(lines.map((l) => [l.client, l.failures, l.windowSeconds]), [[guesser, 3, 60]]);
    for (const t of [token, ...guesses]) assert.ok(!gw.rawLog.some((l) => l.includes(t)), 'no token in the log');
  });

  it('counts the console page and expired tokens against the same budget, and only the right-most untrusted forwarded address', async () => {
    const { token: expired } = await gw.mint({ host: '127.0.0.1', port: 1, ttl: -60 });
    const client = '2001:db8:5:6::10';
    // what the client wrote itself (the left part) is not read
    const spoofed = (claim: string) => ({ headers: { 'X-Forwarded-For': `${claim}, ${client}` } });
    const page = await fetch(`${gw.origin}/vnc.html?token=${expired}`, spoofed('192.0.2.1'));
    assert.equal(page.status, 200);
    assert.match(await page.text(), /"state":"expired"/);
    assert.equal((await fetch(`${gw.origin}/porthole/token-state?token=nope`, spoofed('192.0.2.2'))).status, 200);
    // another address of the same /64
    assert.equal((await fetch(`${gw.origin}/porthole/token-state?token=${expired}`, from('2001:db8:5:6::11'))).status, 200);
    assert.equal((await fetch(`${gw.origin}/porthole/token-state?token=nope`, from('2001:db8:5:6::12'))).status, 429);
    assert.equal((await fetch(`${gw.origin}/porthole/token-state?token=nope`, from('2001:db8:5:7::1'))).status, 200);
    // no token in the request: nothing was looked up, nothing counted or refused
    const missing = await fetch(`${gw.origin}/porthole/token-state`, from('203.0.113.77'));
    assert.equal((await missing.json()).state, 'missing');
  });

  it('shares the budget with the WebSocket upgrade, which answers 429 before the upgrade and logs it once', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: 1 });
    const guesser = { 'X-Forwarded-For': '198.51.100.30' };
    assert.equal(await upgradeStatus(gw.port, 'nope-1', guesser), 403);
    assert.equal(await upgradeStatus(gw.port, 'nope-2', guesser), 403);
    assert.equal((await fetch(`${gw.origin}/porthole/token-state?token=nope-3`, from('198.51.100.30'))).status, 200);
    assert.equal(await upgradeStatus(gw.port, token, guesser), 429, 'a valid token from that address too');
    assert.equal(await upgradeStatus(gw.port, 'nope-4', guesser), 429);
    assert.equal((await fetch(`${gw.origin}/porthole/token-state?token=${token}`, from('198.51.100.30'))).status, 429);
    // another address gets past the budget to the token (whose backend, port 1, is not there)
    assert.notEqual(await upgradeStatus(gw.port, token, { 'X-Forwarded-For': '198.51.100.31' }), 429);
    assert.equal(gw.logs.filter((l) => l.event === 'lookup_budget' && l.client === '198.51.100.30').length, 1);
    assert.equal(gw.logs.filter((l) => l.code === 'TOO_MANY_FAILED_LOOKUPS').length, 0, 'no line per refused attempt');
  });
});

describe('lookup budget without trusted proxies', () => {
  let gw: TestGateway;
  before(async () => {
    // windows are fixed periods of the clock: with the default minute, the budget the first test
    // uses up could end while the second starts its browser (seen: the page then never refused)
    gw = await startGateway({ 'porthole.failed_lookup_budget': '2', 'porthole.failed_lookup_window': '86400' });
  });
  after(async () => {
    await gw?.close();
  });

  it('ignores X-Forwarded-For, so a guesser cannot pick a fresh address per request', async () => {
    for (let i = 0; i < 2; i++) {
      assert.equal((await fetch(`${gw.origin}/porthole/token-state?token=nope${i}`, { headers: { 'X-Forwarded-For': `192.0.2.${i}` } })).status, 200);
    }
    assert.equal((await fetch(`${gw.origin}/porthole/token-state?token=nope`, { headers: { 'X-Forwarded-For': '192.0.2.99' } })).status, 429);
    assert.deepEqual(gw.logs.filter((l) => l.event === 'lookup_budget').map((l) => l.client), ['127.0.0.1']);
  });

  it('shows the person at the console why, in words', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: 1 });
    const browser = await launchBrowser();
    try {
      for (const [lang, words] of [
        ['en', 'Too many failed attempts from your address; try again in a minute.'],
        ['de', 'Zu viele fehlgeschlagene Versuche von Ihrer Adresse; versuchen Sie es in einer Minute erneut.'],
      ] as const) {
        const page = await browser.newPage();
        try {
          await page.goto(`${gw.origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}&lang=${lang}`);
          await waitForConsoleState(page, 'refused');
          assert.equal(await page.textContent('#status'), words);
        } finally {
          await page.close();
        }
      }
    } finally {
      await browser.close();
    }
  });
});
