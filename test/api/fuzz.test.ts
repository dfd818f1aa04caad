/**
 * Property-based fuzz (issue 15, item 6) of the compute and admin APIs' JSON bodies and headers:
 * the API as `porthole serve` builds it (`createApi` over a SQLite store, one server in the
 * inventory), driven with Fastify's `inject` so a run can take many inputs. Requests: the
 * remote-consoles route, the legacy `os-get*Console` actions, the admin routes, the token routes,
 * unknown routes; bodies that are arbitrary JSON, near-valid console requests with any value in
 * any field, raw text and bytes, and bodies just under, at and over `[porthole] api_max_body_size`;
 * any microversion header (either form), any X-Auth-Token, any Content-Type.
 *
 * Properties: every request gets an answer (no throw, no unhandled rejection); the status is a
 * success or a 4xx (501 where Nova's is), never a 500; every error is Nova's body
 * (`{"<faultName>": {"code": N, "message": "..."}}`); no log line holds a console token, neither
 * one the API minted nor one a caller put in a URL.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { createApi } from '../../src/api/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import { openStores, storeSettings, type OpenedStores } from '../../src/database/index.ts';
import { crashRecorder, InputCount, memoryFigure, params, residentAfterGc, RSS_TOLERANCE, runs, SEED } from '../support/fuzz-runs.ts';
import { flags, tempDir } from '../support/gateway.ts';

const SERVER = 'f7f7f7f7-0000-4000-8000-000000000001';
const OTHER = 'f7f7f7f7-0000-4000-8000-000000000002';
const LIMIT = 16 * 1024;

const counted = new InputCount();
const rec = crashRecorder();
let app: FastifyInstance;
let stores: OpenedStores;
let rssBefore = 0;
/**
 * Console tokens the API minted in this run: none may be logged. Tokens callers put in URLs all
 * start with URL_TOKEN_MARK, so a line holding one is found without a list of them. The log is
 * scanned as it is written and only a window of it kept (a long run writes millions of lines).
 */
const minted = new Set<string>();
const URL_TOKEN_MARK = 'zqzq';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const recentLines: string[] = [];
const leakedLines: string[] = [];
let logLineCount = 0;
function scanLine(line: string): void {
  if (leakedLines.length >= 3) return;
  if (line.includes(URL_TOKEN_MARK) || (line.match(UUID) ?? []).some((u) => minted.has(u))) leakedLines.push(line.slice(0, 300));
}
const statuses = new Map<number, number>();

before(async () => {
  const dir = tempDir('porthole-api-fuzz-');
  const loaded = loadConfig({ flags: flags({ 'database.connection': `sqlite:///${dir}/porthole.db`, 'porthole.api_max_body_size': String(LIMIT) }) });
  stores = await openStores(loaded.config.database.connection!, { migrate: true, ...storeSettings(loaded.config) });
  await stores.inventory.put({ id: SERVER, name: 'web1', projectId: 'p1', status: 'ACTIVE', vnc: { host: '127.0.0.1', port: 5901 }, serial: { host: '127.0.0.1', port: 7001 } } as never);
  await stores.inventory.put({ id: OTHER, name: 'off', projectId: 'p1', status: 'SHUTOFF', vnc: null } as never);
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const line = chunk.toString();
      logLineCount++;
      scanLine(line);
      recentLines.push(line);
      if (recentLines.length > 200) recentLines.shift();
      cb();
    },
  });
  app = await createApi({ config: loaded.config, stores, consoleBaseUrl: (kind) => `http://127.0.0.1:6080/${kind.name === 'novnc' ? 'vnc_auto.html' : ''}` }, pino({ level: 'debug' }, sink));
  await app.ready();
  rssBefore = await residentAfterGc();
});

after(async () => {
  await app?.close();
  await stores?.close();
  rec.stop();
  const rssAfter = await residentAfterGc();
  console.log(`# api fuzz (seed ${SEED}): ${counted}; answers ${[...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', ')}; ${memoryFigure(rssBefore, rssAfter)}; ${rec.crashes.length} crashes`);
  assert.deepEqual(rec.crashes, []);
  assert.ok(rssAfter - rssBefore < RSS_TOLERANCE, memoryFigure(rssBefore, rssAfter));
});

/** Header values a client can send (inject, like an HTTP client, refuses CR, LF and NUL). */
const headerText = (max: number) => fc.oneof(fc.string({ unit: 'grapheme-ascii', maxLength: max }), fc.string({ unit: 'binary', maxLength: max }).map((s) => [...s].map((c) => String.fromCharCode(c.charCodeAt(0) & 0xff)).join(''))).map((s) => s.replace(/[\r\n\0]/g, ''));
const microversion = fc.oneof(
  fc.constantFrom('2.1', '2.5', '2.6', '2.8', '2.31', '2.99', '2.100', 'latest', 'LATEST', '3.0', '1.9', '2.01', ' 2.6 ', '2.', '.6', '2.6.1', '-2.6', '99999999999999999999.1', ''),
  headerText(20),
);
const versionHeaders = fc.oneof(
  fc.constant({}),
  microversion.map((v) => ({ 'X-OpenStack-Nova-API-Version': v })),
  fc.tuple(fc.constantFrom('compute ', 'COMPUTE ', 'volume ', '', 'compute'), microversion, fc.constantFrom('', ', identity 3.0', ', compute 2.1')).map(([a, v, c]) => ({ 'OpenStack-API-Version': `${a}${v}${c}` })),
);
const authToken = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('admin', 'admin:p1', 'u1:p1', 'u2:p2', 'u1', ':', ':p1', 'admin:') }, headerText(300));
const authHeaders = fc.oneof(
  { weight: 6, arbitrary: authToken.map((t) => ({ 'X-Auth-Token': t })) },
  fc.constant({}),
  authToken.map((t) => ({ Authorization: `Bearer ${t}` })),
  headerText(40).map((t) => ({ Authorization: t })),
);
const contentType = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(undefined, 'application/json', 'text/plain', 'application/json; charset=utf-8') },
  fc.constantFrom('application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/jsonx', 'APPLICATION/JSON', 'application/json; charset=latin1', '*/*', ''),
  headerText(30),
);

/** Anything in a field: the right words, wrong types, objects, huge strings. */
const fieldValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('vnc', 'novnc', 'spice', 'spice-html5', 'spice-direct', 'serial', 'rdp', 'rdp-html5', 'mks', 'webmks', 'xvpvnc') },
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ maxLength: 300 }),
);
const consoleBody = fc.record({ protocol: fieldValue, type: fieldValue }, { requiredKeys: [] }).chain((rc) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant({ remote_console: rc }) },
    fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 }).map((extra) => ({ remote_console: { ...rc, ...extra } })),
    fc.jsonValue({ maxDepth: 2 }).map((v) => ({ remote_console: rc, [String(JSON.stringify(v)).slice(0, 10)]: v })),
  ),
);
const actionBody = fc.tuple(fc.oneof({ weight: 4, arbitrary: fc.constantFrom('os-getVNCConsole', 'os-getSPICEConsole', 'os-getSerialConsole', 'os-getRDPConsole', 'os-getMKSConsole') }, fc.string({ maxLength: 20 })), fieldValue).map(([name, type]) => ({ [name]: { type } }));
const adminBody = fc.record(
  {
    id: fc.oneof(fc.uuid(), fc.string({ maxLength: 40 })),
    name: fc.oneof(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 1 })),
    project_id: fc.oneof(fc.constant(null), fc.string({ maxLength: 10 })),
    status: fc.oneof(fc.constantFrom('ACTIVE', 'SHUTOFF'), fc.jsonValue({ maxDepth: 1 })),
    vnc: fc.oneof(fc.constant(null), fc.record({ host: fc.oneof(fc.constant('127.0.0.1'), fc.string({ maxLength: 20 })), port: fc.oneof(fc.integer({ min: -1, max: 70000 }), fc.jsonValue({ maxDepth: 1 })) }, { requiredKeys: [] })),
    backend_auth: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);
/** Bodies near the size bound: valid JSON padded to the limit - 1, the limit, the limit + 1 bytes. */
const nearLimit = fc.tuple(consoleBody, fc.constantFrom(-1, 0, 1, -64, 64)).map(([b, delta]) => {
  const base = JSON.stringify({ ...b, pad: '' });
  return JSON.stringify({ ...b, pad: 'x'.repeat(Math.max(0, LIMIT + delta - base.length)) });
});
const body = fc.oneof(
  { weight: 4, arbitrary: consoleBody.map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: actionBody.map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: adminBody.map((b) => JSON.stringify(b)) },
  fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  nearLimit,
  fc.constant(undefined),
);

const serverId = fc.oneof({ weight: 4, arbitrary: fc.constant(SERVER) }, fc.constantFrom(OTHER, 'f7f7f7f7-0000-4000-8000-00000000dead', '', '%zz', '..', 'x'.repeat(300)), fc.uuid(), fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map(encodeURIComponent));
/** A console token a caller puts in a URL: unique and long enough to be found in a log line. */
const urlToken = fc.oneof(fc.uuid(), fc.stringMatching(/^[A-Za-z0-9_-]{20,60}$/)).map((t) => `${URL_TOKEN_MARK}${t}`);
type Target = { method: string; url: string };
const target: fc.Arbitrary<Target> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom('', '/p1', '/p2'), serverId).map(([p, id]) => ({ method: 'POST', url: `/v2.1${p}/servers/${id}/remote-consoles` })) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom('', '/p1'), serverId).map(([p, id]) => ({ method: 'POST', url: `/v2.1${p}/servers/${id}/action` })) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('POST', 'PUT', 'GET', 'DELETE', 'PATCH'), fc.oneof(fc.constant(''), fc.uuid().map((u) => `/${u}`), fc.string({ unit: 'grapheme-ascii', maxLength: 20 }).map((s) => `/${encodeURIComponent(s)}`))).map(([method, tail]) => ({ method, url: `/porthole/v1/servers${tail}` })) },
  urlToken.map((t) => ({ method: 'GET', url: `/v2.1/os-console-auth-tokens/${t}` })),
  urlToken.map((t) => ({ method: 'DELETE', url: `/porthole/v1/tokens/${t}` })),
  fc.tuple(fc.constantFrom('GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT'), fc.constantFrom('/', '/v2.1', '/v2.1/', '/v2.1/servers', '/v2.1/servers/detail?name=x&status=ACTIVE&limit=-1', '/porthole/v1/sessions', '/nope', '/v2.1/servers/%', '/v2.1/servers?status=%zz')).map(([method, url]) => ({ method, url })),
);

/** Mostly anything; sometimes a request that mints a console, so the log is searched for minted tokens too. */
const request = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(target, body, contentType, versionHeaders, authHeaders) },
  {
    weight: 1,
    arbitrary: fc.tuple(
      fc.constant<Target>({ method: 'POST', url: `/v2.1/servers/${SERVER}/remote-consoles` }),
      fc.constantFrom(JSON.stringify({ remote_console: { protocol: 'vnc', type: 'novnc' } }), JSON.stringify({ remote_console: { protocol: 'serial', type: 'serial' } })),
      fc.constantFrom(undefined, 'application/json'),
      fc.constantFrom({ 'X-OpenStack-Nova-API-Version': '2.6' }, { 'OpenStack-API-Version': 'compute 2.8' }),
      fc.constantFrom({ 'X-Auth-Token': 'u1:p1' }, { 'X-Auth-Token': 'admin:p1' }),
    ),
  },
);

const FAULT_NAMES: Record<number, string> = { 400: 'badRequest', 401: 'unauthorized', 403: 'forbidden', 404: 'itemNotFound', 405: 'badMethod', 409: 'conflictingRequest', 413: 'overLimit', 415: 'badMediaType', 429: 'overLimit', 501: 'notImplemented' };

/** Nova's fault body: one key, the fault's name, holding the code and a message (and Nova's retryAfter on an overLimit). */
function assertNovaFault(status: number, type: string, text: string): void {
  assert.match(type, /^application\/json/, `${status} answered as ${type}`);
  const body = JSON.parse(text) as Record<string, Record<string, unknown>>;
  const name = FAULT_NAMES[status] ?? 'computeFault';
  assert.deepEqual(Object.keys(body), [name], text);
  const fault = body[name]!;
  assert.equal(fault.code, status, text);
  assert.equal(typeof fault.message, 'string', text);
  const allowed = name === 'overLimit' ? ['code', 'message', 'retryAfter'] : ['code', 'message'];
  for (const k of Object.keys(fault)) assert.ok(allowed.includes(k), `${name} carries ${k}: ${text}`);
}

const MINTED = /token(?:%3D|=)([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/;

describe('fuzz: the API\'s bodies and headers (src/api/)', () => {
  it('answers every request with a success or Nova\'s 4xx body, never a 500, and logs no console token', async (t) => {
    const n = runs(1500, 150_000);
    await fc.assert(
      fc.asyncProperty(request, async ([tg, payload, type, version, auth]) => {
        const headers = { ...version, ...auth } as Record<string, string>;
        if (type !== undefined && payload !== undefined) headers['content-type'] = type;
        const r = await app.inject({ method: tg.method as 'GET', url: tg.url, headers, ...(payload === undefined || tg.method === 'GET' || tg.method === 'HEAD' ? {} : { payload }) });
        statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
        assert.ok(r.statusCode < 500 || r.statusCode === 501, `${tg.method} ${tg.url} answered ${r.statusCode}: ${r.body.slice(0, 300)}`);
        if (r.statusCode >= 400 && tg.method !== 'HEAD') assertNovaFault(r.statusCode, String(r.headers['content-type']), r.body);
        const token = MINTED.exec(r.body)?.[1];
        if (token) {
          minted.add(token);
          // a line written before the token was known (in the handler) is still in the window
          for (const line of recentLines) if (line.includes(token)) leakedLines.push(line.slice(0, 300));
        }
      }),
      params(n),
    );
    counted.add('API requests', n);
    t.diagnostic(`${minted.size} console tokens minted, ${logLineCount} log lines scanned`);
    assert.deepEqual(leakedLines.slice(0, 3), [], 'a console token in the log');
    // the run must have reached the routes and the errors both, or it tested less than it says
    assert.ok((statuses.get(200) ?? 0) > 0, 'no console was minted');
    for (const s of [400, 401, 404, 413, 415]) assert.ok((statuses.get(s) ?? 0) > 0, `no ${s} answer`);
  });
});
