/**
 * Property-based fuzz (issue 15, item 6) of the Origin check (`src/proxy/origin.ts`) and of the
 * client address behind trusted proxies (`src/proxy/client-address.ts`), with any header values
 * a client can send (Origin, Host, X-Forwarded-Proto, X-Forwarded-For, as strings or repeated).
 *
 * Properties: the Origin check either passes or throws a `GatewayError` with status 403 and the
 * client message "Origin not allowed", whose log message never quotes the client's headers (a
 * token put there must not reach the log); when it passes, the Origin's host is this host or an
 * allowed origin; an Origin naming this host (or an allowed one) with the console's scheme always
 * passes. The client address is an IP address; it is the TCP peer unless the peer is a trusted
 * proxy, and then exactly the right-most X-Forwarded-For hop that is not trusted when that hop is
 * an IP address (never a hop the client wrote left of it).
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { GatewayError } from '../../src/errors.ts';
import { clientAddressOf, normalizeIp } from '../../src/proxy/client-address.ts';
import { checkOriginHost, checkOriginScheme, hostOf } from '../../src/proxy/origin.ts';
import { fuzzFile, runs } from '../support/fuzz-runs.ts';

const { check, counted } = fuzzFile('origin and client address fuzz', runs(3000, 100_000));

// ---------------------------------------------------------------------------------------------
// Origin

const hostname = fc.oneof(fc.constantFrom('127.0.0.1', 'console.example.com', 'CONSOLE.example.com', '[::1]', 'portal.example.com', 'localhost', 'xn--nxasmq6b.example'), fc.domain(), fc.ipV4(), fc.ipV6().map((a) => `[${a}]`));
const port = fc.option(fc.integer({ min: 0, max: 70000 }), { nil: undefined });
const scheme = fc.constantFrom('http', 'https', 'ws', 'wss', 'file', 'HTTP', 'javascript', 'chrome-extension', '');
/** Origins of every shape: well-formed, null, opaque, garbage, a token where a host should be. */
const originValue = fc.oneof(
  fc.tuple(scheme, hostname, port).map(([s, h, p]) => `${s}://${h}${p === undefined ? '' : `:${p}`}`),
  fc.constantFrom('null', '', ' ', 'http://', 'http://[::1', 'http://a b', '::::', 'http://evil.example@127.0.0.1', 'http://127.0.0.1.evil.example', 'http://127.0.0.1%2f.evil', 'data:,x'),
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
);
const hostHeader = fc.option(fc.oneof(fc.tuple(hostname, port).map(([h, p]) => `${h}${p === undefined ? '' : `:${p}`}`), fc.string({ maxLength: 40 })), { nil: undefined });
const forwardedProto = fc.option(fc.oneof(fc.constantFrom('https', 'http', 'wss', 'HTTPS', 'https, http', ' , https', ''), fc.string({ maxLength: 20 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 })), { nil: undefined });
const allowed = fc.array(fc.oneof(hostname.map((h) => h.replace(/^\[|\]$/g, '')), fc.string({ maxLength: 20 })), { maxLength: 3 });
const accessBase = fc.oneof(fc.constantFrom('http://127.0.0.1:6080/vnc_auto.html', 'https://console.example.com/vnc_auto.html', 'ws://x/', 'wss://x/', '', 'not a url'), fc.webUrl(), fc.constant(null));

function assertOriginRefusal(err: unknown): void {
  assert.ok(err instanceof GatewayError, `not a GatewayError: ${String(err)}`);
  assert.equal(err.status, 403);
  assert.equal(err.clientMessage, 'Origin not allowed');
  assert.match(err.code, /^ORIGIN_(INVALID|MISMATCH|PROTO_MISMATCH)$/);
  // the log message is one of the code's own sentences: no header value in it (the console's own scheme at most)
  assert.ok(REFUSALS.some((r) => r.test(err.message)), `the refusal is not one of the fixed sentences: ${err.message}`);
}

const REFUSALS = [
  /^Origin header not valid$/,
  /^Origin header does not match this host nor \[console\] allowed_origins$/,
  /^token has no access_url_base: cannot validate the Origin protocol$/,
  /^token access_url_base is not a URL: cannot validate the Origin protocol$/,
  /^Origin header protocol \(or X-Forwarded-Proto\) does not match the console's \([a-z][a-z0-9+.-]*\)$/,
];

describe('fuzz: Origin (src/proxy/origin.ts)', () => {
  it('passes or refuses with a 403 that quotes nothing, and passes only this host or an allowed origin', () => {
    check('origin', fc.property(fc.option(originValue, { nil: undefined }), hostHeader, forwardedProto, allowed, accessBase, (origin, host, proto, allow, base) => {
      const headers: IncomingHttpHeaders = { origin, host, 'x-forwarded-proto': proto as string | undefined };
      let facts;
      try {
        facts = checkOriginHost(headers, allow);
      } catch (err) {
        assertOriginRefusal(err);
        return;
      }
      if (origin === undefined) {
        assert.deepEqual(facts, { hostname: undefined, scheme: undefined });
        checkOriginScheme(facts, base);
        return;
      }
      const expected = new Set([...allow.map((a) => a.toLowerCase()), hostOf(host)].filter((h): h is string => h !== undefined));
      assert.ok(facts.hostname !== undefined && expected.has(facts.hostname), `Origin ${JSON.stringify(origin)} passed as ${facts.hostname}; Host ${JSON.stringify(host)}, allowed ${JSON.stringify(allow)}`);
      try {
        checkOriginScheme(facts, base);
        // a pass means the schemes agree (ws~http, wss~https)
        const b = new URL(base!).protocol.replace(/:$/, '');
        const ok = [b, b === 'ws' ? 'http' : b === 'wss' ? 'https' : b];
        assert.ok(ok.includes(facts.scheme!), `scheme ${facts.scheme} passed for a console at ${base}`);
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        assertOriginRefusal(err);
      }
    }));
  });

  it('always passes a browser on this host, or on an allowed one, with the console\'s scheme', () => {
    const host = fc.oneof(fc.constantFrom('127.0.0.1', 'console.example.com', '[::1]'), fc.domain(), fc.ipV4());
    check('origin of this host', fc.property(host, port, fc.boolean(), fc.boolean(), (h, p, tls, viaAllowed) => {
      const origin = `${tls ? 'https' : 'http'}://${h}${p === undefined || p > 65535 ? '' : `:${p}`}`;
      const headers: IncomingHttpHeaders = viaAllowed ? { origin, host: 'proxy.internal:6080' } : { origin, host: `${h.toUpperCase()}:6080` };
      const allow = viaAllowed ? [new URL(origin).hostname.replace(/^\[|\]$/g, '')] : [];
      const facts = checkOriginHost(headers, allow);
      checkOriginScheme(facts, tls ? 'https://console.example.com/vnc_auto.html' : 'http://127.0.0.1:6080/vnc_auto.html');
    }));
  });
});

// ---------------------------------------------------------------------------------------------
// client address

const ip = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4().map((a) => `::ffff:${a}`));
const hop = fc.oneof({ weight: 4, arbitrary: ip }, fc.constantFrom('unknown', '', ' ', '_hidden', '1.2.3', '999.1.1.1', '::ffff:', '[::1]', '10.0.0.1:8080'), fc.string({ maxLength: 15 }));

function fakeRequest(peer: string | undefined, xff: string | string[] | undefined): IncomingMessage {
  return { headers: xff === undefined ? {} : { 'x-forwarded-for': xff }, socket: { remoteAddress: peer, remotePort: peer ? 40000 : undefined } } as unknown as IncomingMessage;
}

describe('fuzz: client address (src/proxy/client-address.ts)', () => {
  it('is the peer, or behind trusted proxies exactly the right-most untrusted hop when that is an IP', () => {
    check('client address', fc.property(ip, fc.array(hop, { maxLength: 6 }), fc.array(ip, { maxLength: 3 }), fc.boolean(), fc.constantFrom(', ', ',', ' ,  '), fc.boolean(), (peer, hops, trustedList, peerTrusted, sep, asArray) => {
      const trusted = new Set(trustedList.map(normalizeIp));
      if (peerTrusted) trusted.add(normalizeIp(peer));
      // a client may put trusted addresses in the header too
      const header = hops.length === 0 && !asArray ? undefined : asArray ? hops.map(String) : hops.join(sep);
      const got = clientAddressOf(fakeRequest(peer, header), trusted);
      assert.ok(isIP(got.host) !== 0, `client address ${JSON.stringify(got.host)} is not an IP`);
      let expected = peer;
      if (trusted.has(normalizeIp(peer)) && header !== undefined) {
        const list = hops.flatMap((h) => h.split(',')).map((h) => normalizeIp(h.trim())).filter((h) => h !== '');
        const rightmost = [...list].reverse().find((h) => !trusted.has(h));
        if (rightmost !== undefined && isIP(rightmost)) expected = rightmost;
      }
      assert.equal(got.host, expected);
      if (got.host !== peer) assert.equal(got.display, got.host);
    }));
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy, whatever it says', () => {
    check('spoofed X-Forwarded-For', fc.property(ip, fc.string({ unit: 'binary', maxLength: 80 }), fc.array(ip, { maxLength: 3 }), (peer, xff, trustedList) => {
      const trusted = new Set(trustedList.map(normalizeIp));
      fc.pre(!trusted.has(normalizeIp(peer)));
      const got = clientAddressOf(fakeRequest(peer, xff), trusted);
      assert.equal(got.host, peer);
      assert.equal(got.display, `${peer}:40000`);
    }));
  });
});
