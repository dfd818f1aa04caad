/**
 * Property-based fuzz (issue 15, item 6) of what a console listener reads from an HTTP request
 * before it acts: the request checks (`src/http/request-checks.ts`) and the token sources
 * (`src/http/token-source.ts`: query, noVNC `path`, cookie, a `path` cookie). Requests are real
 * `IncomingMessage`s whose `headers` Node computes from the raw header list, as its parser does.
 *
 * Properties: nothing throws; a request check answers nothing or a 400 `GatewayError`; what
 * smuggling needs (two Host headers, a body on an upgrade, HTTP/1.0, a method other than GET)
 * is always refused, and a well-formed upgrade never is; a token taken from a request is either
 * undefined or a non-empty string of at most 255 characters that is one of the request's own
 * values, and for requests built from known parts it is exactly the one Nova's order names.
 * Sizes: `test/support/fuzz-runs.ts` (npm test: a few thousand; npm run fuzz: 10^5 per property).
 */
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { GatewayError } from '../../src/errors.ts';
import { requestProblem, upgradeProblem } from '../../src/http/request-checks.ts';
import { parseCookies, tokenFromPageUrl, tokenFromRequest } from '../../src/http/token-source.ts';
import { fuzzFile, runs } from '../support/fuzz-runs.ts';

const { check, counted } = fuzzFile('http fuzz', runs(3000, 100_000));

/** A request as Node's parser hands it over: `headers` is computed by Node from `rawHeaders`. */
function request(method: string, major: number, minor: number, raw: ReadonlyArray<readonly [string, string]>, url = '/websockify'): IncomingMessage {
  const req = new IncomingMessage({} as Socket);
  req.method = method;
  req.url = url;
  req.httpVersionMajor = major;
  req.httpVersionMinor = minor;
  req.httpVersion = `${major}.${minor}`;
  // as the parser does: the raw list and its length; `headers` is then built from it on first read
  const flat = raw.flatMap(([n, v]) => [n, v]);
  (req as unknown as { _addHeaderLines(h: string[], n: number): void })._addHeaderLines(flat, flat.length);
  return req;
}

// ---------------------------------------------------------------------------------------------
// request checks

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const headerName = fc.oneof(
  fc.constantFrom('Host', 'host', 'HOST', 'Upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Protocol', 'Content-Length', 'Transfer-Encoding', 'Cookie', 'Origin', 'X-Forwarded-For'),
  fc.string({ minLength: 1, maxLength: 20 }),
);
const headerValue = fc.oneof(
  fc.constantFrom('', '0', '1', '13', '8', 'websocket', 'WebSocket', 'binary', 'binary, base64', 'binary,binary', 'chunked', KEY, '127.0.0.1:6080', 'h2c', ' ', 'a\tb'),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);
const goodUpgrade: Array<[string, string]> = [
  ['Host', '127.0.0.1:6080'],
  ['Upgrade', 'websocket'],
  ['Connection', 'Upgrade'],
  ['Sec-WebSocket-Key', KEY],
  ['Sec-WebSocket-Version', '13'],
];
/** The good upgrade's headers, some dropped or changed, arbitrary ones inserted. */
const headerList = fc
  .tuple(
    fc.array(fc.boolean(), { minLength: goodUpgrade.length, maxLength: goodUpgrade.length }),
    fc.array(fc.tuple(fc.nat(20), headerName, headerValue), { maxLength: 8 }),
  )
  .map(([keep, extra]) => {
    const list: Array<[string, string]> = goodUpgrade.filter((_, i) => keep[i]).map(([n, v]) => [n, v]);
    for (const [at, n, v] of extra) list.splice(at % (list.length + 1), 0, [n, v]);
    return list;
  });
const method = fc.oneof(fc.constantFrom('GET', 'get', 'POST', 'HEAD', 'CONNECT', 'PUT'), fc.string({ maxLength: 8 }));
const version = fc.constantFrom([1, 1], [1, 0], [0, 9], [2, 0], [1, 2], [3, 1]);

const rawCount = (list: ReadonlyArray<readonly [string, string]>, name: string) => list.filter(([n]) => n.toLowerCase() === name).length;

function assertRefusal(p: GatewayError | undefined): void {
  if (p === undefined) return;
  assert.ok(p instanceof GatewayError, `not a GatewayError: ${String(p)}`);
  assert.equal(p.status, 400);
  assert.equal(p.code, 'BAD_REQUEST');
}

describe('fuzz: request checks (src/http/request-checks.ts)', () => {
  it('answers any request with nothing or a 400, and refuses what smuggling needs', () => {
    check('request checks', fc.property(method, version, headerList, (m, [major, minor], list) => {
      const req = request(m, major!, minor!, list);
      const general = requestProblem(req);
      const upgrade = upgradeProblem(req);
      assertRefusal(general);
      assertRefusal(upgrade);
      const hosts = rawCount(list, 'host');
      if (major !== 1 || hosts > 1 || (hosts === 0 && minor! >= 1)) assert.ok(general, 'an HTTP/1.x request with exactly one Host (or none in 1.0) is all requestProblem may let through');
      if (general) assert.ok(upgrade, 'what every request must meet, an upgrade must meet too');
      if (upgrade === undefined) {
        // RFC 6455 §4.1 and the smuggling rules, read from the raw request, not from Node's header map
        assert.equal(m, 'GET');
        assert.ok(major === 1 && minor! >= 1);
        assert.equal(hosts, 1);
        assert.equal(rawCount(list, 'transfer-encoding'), 0, 'a chunked upgrade passed');
        for (const [n, v] of list) if (n.toLowerCase() === 'content-length') assert.equal(v.trim(), '0', 'an upgrade with a body passed');
        assert.ok(list.some(([n, v]) => n.toLowerCase() === 'sec-websocket-key' && v === KEY) || list.some(([n]) => n.toLowerCase() === 'sec-websocket-key'));
      }
    }));
  });

  it('lets every well-formed upgrade through, whatever harmless headers come with it', () => {
    const harmless = fc.array(fc.tuple(fc.constantFrom('Origin', 'Cookie', 'User-Agent', 'X-Forwarded-For', 'Accept', 'Pragma'), fc.string({ unit: 'grapheme-ascii', maxLength: 60 }).map((s) => s.replace(/[\r\n\0]/g, ''))), { maxLength: 6 });
    const protocols = fc.option(fc.uniqueArray(fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/), { minLength: 1, maxLength: 4 }).map((l) => l.join(', ')), { nil: undefined });
    check('well-formed upgrades', fc.property(harmless, protocols, fc.constantFrom('13', '8'), fc.boolean(), (extra, proto, v, zeroLength) => {
      const list: Array<[string, string]> = [...goodUpgrade.slice(0, 4), ['Sec-WebSocket-Version', v], ...extra];
      if (proto !== undefined) list.push(['Sec-WebSocket-Protocol', proto]);
      if (zeroLength) list.push(['Content-Length', '0']);
      const p = upgradeProblem(request('GET', 1, 1, list));
      assert.equal(p, undefined, p?.message);
    }));
  });
});

// ---------------------------------------------------------------------------------------------
// token sources

/** Every value the request carries, under any name, decoded once or (inside a value) twice. */
function valuesOf(url: string, cookie: string | undefined): Set<string> {
  const out = new Set<string>();
  const fromQuery = (q: string) => {
    for (const [, v] of new URLSearchParams(q)) {
      out.add(v);
      const i = v.indexOf('?');
      for (const [, inner] of new URLSearchParams(i >= 0 ? v.slice(i + 1) : v)) out.add(inner);
    }
  };
  const q = url.indexOf('?');
  if (q >= 0) fromQuery(url.slice(q + 1));
  for (const part of (cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    let decoded = v;
    try {
      decoded = decodeURIComponent(v);
    } catch {
      // kept raw, as a lenient parser keeps it
    }
    out.add(decoded);
    const i = decoded.indexOf('?');
    for (const [, inner] of new URLSearchParams(i >= 0 ? decoded.slice(i + 1) : decoded)) out.add(inner);
  }
  return out;
}

function assertTokenContract(token: string | undefined, url: string, cookie: string | undefined): void {
  if (token === undefined) return;
  assert.equal(typeof token, 'string');
  assert.ok(token.length > 0 && token.length <= 255, `token of length ${token.length}`);
  assert.ok(valuesOf(url, cookie).has(token), `${JSON.stringify(token)} is not a value of the request`);
}

const tokenValue = fc.oneof(
  fc.uuid(),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,60}$/),
  fc.constant(''),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'grapheme-ascii', minLength: 250, maxLength: 300 }),
);
const name = fc.constantFrom('token', 'path', 'a', 'Token', 'tokens', 'token ');
type Pair = [string, string];
const pairs = (values: fc.Arbitrary<string>) => fc.array(fc.tuple(name, values), { maxLength: 6 });
/** A noVNC `path` value: `?token=...` or `websockify?token=...&...`, its pairs known. */
const pathValue = fc.tuple(fc.constantFrom('', 'websockify', '/websockify'), pairs(tokenValue)).map(([prefix, inner]) => ({ inner, text: `${prefix}?${encodePairs(inner)}` }));
const encodePairs = (list: readonly Pair[]) => list.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

/** Nova's order over known parts: last `token` query value, `path`'s token, `token` cookie, `path` cookie's token. */
function expectedToken(query: readonly Pair[], paths: ReadonlyMap<number, readonly Pair[]>, cookies: readonly Pair[], cookiePaths: ReadonlyMap<number, readonly Pair[]>): string | undefined {
  const ok = (v: string | undefined) => (v === undefined || v === '' || v.length > 255 ? undefined : v);
  const lastOf = (list: readonly Pair[], key: string) => list.filter(([k]) => k === key).at(-1)?.[1];
  const lastIndex = (list: readonly Pair[], key: string) => list.map(([k], i) => (k === key ? i : -1)).filter((i) => i >= 0).at(-1);
  const fromQuery = ok(lastOf(query, 'token'));
  if (fromQuery !== undefined) return fromQuery;
  const p = lastIndex(query, 'path');
  const fromPath = p === undefined || query[p]![1] === '' ? undefined : ok(lastOf(paths.get(p) ?? [], 'token'));
  if (fromPath !== undefined) return fromPath;
  // cookie names are trimmed; the last cookie of a name wins
  const trimmed = cookies.map(([k, v]) => [k.trim(), v] as Pair);
  const fromCookie = ok(lastOf(trimmed, 'token'));
  if (fromCookie !== undefined) return fromCookie;
  const c = lastIndex(trimmed, 'path');
  return c === undefined ? undefined : ok(lastOf(cookiePaths.get(c) ?? [], 'token'));
}

/** Query pairs and cookie pairs where each `path` value is a noVNC path with known inner pairs. */
const carriers = fc
  .tuple(fc.array(fc.tuple(name, fc.oneof(tokenValue, pathValue)), { maxLength: 6 }), fc.array(fc.tuple(name, fc.oneof(tokenValue, pathValue)), { maxLength: 6 }), fc.boolean())
  .map(([q, c, quoted]) => {
    const split = (list: ReadonlyArray<[string, string | { inner: Pair[]; text: string }]>) => {
      const flat: Pair[] = [];
      const inner = new Map<number, readonly Pair[]>();
      list.forEach(([k, v], i) => {
        if (typeof v === 'string') {
          flat.push([k, v]);
          const q = v.indexOf('?');
          inner.set(i, [...new URLSearchParams(q >= 0 ? v.slice(q + 1) : v)]);
        } else {
          flat.push([k, v.text]);
          inner.set(i, v.inner);
        }
      });
      return { flat, inner };
    };
    const query = split(q);
    const cookies = split(c);
    // a value's inner pairs count only under the name `path`; elsewhere they are just text
    const url = `/websockify?${encodePairs(query.flat)}`;
    const cookie = cookies.flat.length === 0 ? undefined : cookies.flat.map(([k, v]) => `${k}=${quoted ? `"${encodeURIComponent(v)}"` : encodeURIComponent(v)}`).join('; ');
    return { url, cookie, query, cookies };
  });

describe('fuzz: token sources (src/http/token-source.ts)', () => {
  it('takes exactly the token Nova\'s order names from requests built of known parts', () => {
    check('token from known parts', fc.property(carriers, ({ url, cookie, query, cookies }) => {
      const got = tokenFromRequest(url, cookie);
      assert.equal(got, expectedToken(query.flat, query.inner, cookies.flat, cookies.inner));
      assertTokenContract(got, url, cookie);
    }));
  });

  it('never throws on any URL and Cookie header, and any token it gives is one of the request\'s values', () => {
    const anyUrl = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.tuple(fc.constantFrom('/?', '/websockify?', '/vnc_auto.html?', '?', ''), fc.string({ unit: 'binary', maxLength: 200 })).map(([a, b]) => a + b),
      fc.array(fc.tuple(fc.constantFrom('token', 'path', 'x', '%74oken', 'to%6Ben'), fc.string({ unit: 'binary', maxLength: 30 }), fc.constantFrom('=', '', '=='), fc.constantFrom('&', ';', '&&', '#')), { maxLength: 8 }).map((l) => `/websockify?${l.map(([k, v, eq, sep]) => k + eq + v + sep).join('')}`),
    );
    const anyCookie = fc.option(fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.array(fc.tuple(fc.constantFrom('token', ' token', 'path', '', 'a'), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('=', '', '="', '=%'), fc.constantFrom(';', '; ', ';;', ',')), { maxLength: 6 }).map((l) => l.map(([k, eq, v, sep]) => k + eq + v + sep).join('')),
    ), { nil: undefined });
    check('token from any request', fc.property(anyUrl, anyCookie, (url, cookie) => {
      assertTokenContract(tokenFromRequest(url, cookie), url, cookie);
      const page = tokenFromPageUrl(url);
      if (page !== undefined) assertTokenContract(page, url, undefined);
      if (cookie !== undefined) for (const [k, v] of parseCookies(cookie)) assert.ok(typeof k === 'string' && typeof v === 'string');
    }));
  });

  it('reads a token of every form a client uses, whatever noise surrounds it', () => {
    const token = fc.uuid();
    const noise = pairs(fc.string({ unit: 'grapheme', maxLength: 20 }).filter((s) => s !== '')).map((l) => l.filter(([k]) => k !== 'token' && k !== 'path'));
    check('token in noise', fc.property(token, noise, noise, fc.constantFrom('query', 'path', 'cookie', 'cookie path', 'tempest'), (tk, before, afterPairs, form) => {
      const around = (middle: string) => [encodePairs(before), middle, encodePairs(afterPairs)].filter(Boolean).join('&');
      let url = `/websockify?${around('')}`;
      let cookie: string | undefined;
      if (form === 'query') url = `/websockify?${around(`token=${tk}`)}`;
      else if (form === 'path') url = `/websockify?${around(`path=${encodeURIComponent(`websockify?token=${tk}`)}`)}`;
      else if (form === 'cookie') cookie = `a=b; token=${tk}; c=d`;
      else if (form === 'cookie path') cookie = `path=${encodeURIComponent(`?token=${tk}`)}`;
      // tempest sends the console URL's query string as its Cookie header
      else cookie = `path=%3Ftoken%3D${tk}`;
      assert.equal(tokenFromRequest(url, cookie), tk);
    }));
  });
});
