/**
 * `[porthole] api_console_requests_per_minute`: a project's remote-console requests past the rate
 * get 429 with Retry-After and Nova's fault body; another project is not concerned; two API
 * gateways on one Redis store count together.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApi, type TestApi } from '../support/api.ts';
import { freshRedis, type FreshRedis } from '../support/stores.ts';
import { ConsoleRequestLimit } from '../../src/api/rate-limit.ts';

const SERVER = '5e7e7e7e-0000-4000-8000-000000000001';
const VNC = { host: '192.0.2.1', port: 5900 };
const body = { remote_console: { protocol: 'vnc', type: 'novnc' } };

function create(gw: TestApi, project: string) {
  return gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: `admin:${project}`, headers: { 'X-OpenStack-Nova-API-Version': '2.6' }, body });
}

function legacy(gw: TestApi, project: string) {
  return gw.call('POST', `/v2.1/servers/${SERVER}/action`, { token: `admin:${project}`, body: { 'os-getVNCConsole': { type: 'novnc' } } });
}

function assertRateLimited(r: { status: number; headers: Record<string, unknown>; body: unknown }): void {
  assert.equal(r.status, 429);
  const retryAfter = r.headers['retry-after'];
  assert.match(String(retryAfter), /^\d+$/);
  assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, `Retry-After ${retryAfter}`);
  assert.deepEqual(r.body, { overLimit: { code: 429, message: 'This request was rate-limited.', retryAfter: String(retryAfter) } });
}

describe('remote-console requests per project per minute', { timeout: 60_000 }, () => {
  let gw: TestApi;
  before(async () => {
    gw = await startApi({ 'porthole.api_console_requests_per_minute': '3' });
    await gw.addServer({ id: SERVER, vnc: VNC });
  });
  after(() => gw.close());

  it('answers the request past the rate with 429, Retry-After and Nova overLimit body, the legacy actions counted too, other projects not', async () => {
    // the counts are per clock minute: start right after a minute's end, so the test never straddles one
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 100));
    assert.equal((await create(gw, 'p1')).status, 200);
    assert.equal((await legacy(gw, 'p1')).status, 200);
    assert.equal((await create(gw, 'p1')).status, 200);
    assertRateLimited(await create(gw, 'p1'));
    assertRateLimited(await legacy(gw, 'p1'));
    assert.equal((await create(gw, 'p2')).status, 200, 'another project has its own count');
    const warnings = gw.logs.filter((l) => l.event === 'api_rate_limit');
    assert.equal(warnings.length, 1, 'one warning per project and minute');
    // other routes are not counted
    assert.equal((await gw.call('GET', '/v2.1', { token: 'admin:p1' })).status, 200);
  });
});

describe('remote-console requests counted across two API gateways on Redis', { timeout: 60_000 }, () => {
  let redis: FreshRedis;
  const gws: TestApi[] = [];
  before(async () => {
    redis = await freshRedis();
  });
  after(async () => {
    for (const g of gws) await g.close();
    await redis.drop();
  });

  it('refuses on one gateway the request past the rate made partly on the other', async () => {
    const settings = { 'database.connection': redis.url, 'porthole.redis_key_prefix': redis.prefix, 'porthole.api_console_requests_per_minute': '4' };
    const a = await startApi(settings);
    gws.push(a);
    const b = await startApi(settings);
    gws.push(b);
    await a.addServer({ id: SERVER, vnc: VNC });
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 100));
    assert.equal((await create(a, 'shared')).status, 200);
    assert.equal((await create(a, 'shared')).status, 200);
    assert.equal((await create(b, 'shared')).status, 200);
    assert.equal((await create(b, 'shared')).status, 200);
    assertRateLimited(await create(a, 'shared'));
    assertRateLimited(await create(b, 'shared'));
    assert.equal((await create(b, 'other')).status, 200);
  });
});

describe('the limit in memory', () => {
  it('remembers at most maxProjects projects, forgetting the longest untouched', async () => {
    const limit = new ConsoleRequestLimit({ perMinute: 1, shared: null, maxProjects: 2, now: () => 120_000 });
    await limit.count('a');
    await limit.count('b');
    await limit.count('c');
    assert.equal(limit.size, 2);
    await assert.rejects(limit.count('c'), (e: { status?: number; retryAfter?: number }) => e.status === 429 && e.retryAfter === 60);
    // `a` was forgotten: a new count (the bound costs precision, never memory)
    await limit.count('a');
  });
});
