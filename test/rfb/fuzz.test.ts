/**
 * Property-based fuzz (issue 15, item 6) of the RFB side of Porthole against a hostile backend:
 * the resumable reader (`src/rfb/reader.ts`) against a model of the byte stream, and the
 * security proxy's backend negotiation (`src/rfb/security-proxy.ts`, `src/rfb/auth/*`) against a
 * loopback TCP server that sends a generated handshake: ProtocolVersions of every shape, security
 * type lists that lie about their length, failure reasons with huge lengths, VNC challenges and
 * VeNCrypt answers cut short or wrong, SecurityResults, ServerInits with desktop name lengths up
 * to 2^32-1, bytes flipped, cut anywhere, in chunks of any size, then a close, a reset or a stall.
 * A mock server by design: no real VNC server misbehaves on demand (the real ones are in
 * security-proxy.test.ts and vnc-servers.test.ts).
 *
 * Properties: a read gives exactly the stream's next bytes, however the stream was chunked, or
 * fails as the model says (peer gone, out-of-bounds length, bytes over the bound); the
 * negotiation resolves only with a scheme the settings allow, or rejects with a backend
 * `GatewayError` (502, the browser told only that the console could not be authenticated) whose
 * log message holds no raw control or bidirectional character, and its socket is closed; the
 * browser's side then gets the server's ServerInit whole, or a close saying the console closed.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createSecureContext } from 'node:tls';
import fc from 'fast-check';
import { GatewayError } from '../../src/errors.ts';
import { escapeUnsafe } from '../../src/log/escape.ts';
import { Subtype } from '../../src/rfb/auth/vencrypt.ts';
import { MAX_READ, RfbReader, type ReaderErrors } from '../../src/rfb/reader.ts';
import { BACKEND_GONE_REASON, MAX_DESKTOP_NAME, MAX_REASON, negotiateBackend, serveClient } from '../../src/rfb/security-proxy.ts';
import type { AuthSchemeName, BackendAuthSettings } from '../../src/rfb/types.ts';
import { eventually } from '../support/gateway.ts';
import { fuzzFile, params, runs } from '../support/fuzz-runs.ts';
import { FakeClient, scriptedServer } from '../support/rfb-script.ts';

const { counted } = fuzzFile('rfb fuzz');

// ---------------------------------------------------------------------------------------------
// the reader

const ERRORS: ReaderErrors = {
  closed: (step) => new GatewayError('BACKEND_CLOSED', `closed at ${step}`),
  timeout: (step) => new GatewayError('BACKEND_TIMEOUT', `timeout at ${step}`),
  protocol: (step) => new GatewayError('BACKEND_PROTOCOL', `protocol at ${step}`),
};

type Op = { kind: 'read'; n: number } | { kind: 'u8' | 'u16' | 'u32' } | { kind: 'lp'; max: number };
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('read' as const), n: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }) }, fc.constantFrom(MAX_READ + 1, -1, 1.5, 2 ** 32, Number.NaN)) }) },
  fc.record({ kind: fc.constantFrom('u8' as const, 'u16' as const, 'u32' as const) }),
  fc.record({ kind: fc.constant('lp' as const), max: fc.integer({ min: 0, max: 64 }) }),
);

/** Chunk boundaries of `data`: cut at these offsets (sorted, deduplicated). */
function chunks(data: Uint8Array, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (data.length ? c % data.length : 0)))].filter((c) => c > 0).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, data.length]) {
    out.push(Buffer.from(data.subarray(prev, c)));
    prev = c;
  }
  return out;
}

type Outcome = { ok: string } | { err: string };

/** What the reader must answer, from the whole stream: reads in order, the peer gone after the last byte. */
function model(data: Uint8Array, ops: readonly Op[]): Outcome[] {
  let pos = 0;
  let ended = false;
  let stuck = false;
  const out: Outcome[] = [];
  const take = (n: number): Buffer | 'closed' | 'protocol' => {
    if (stuck) return 'protocol';
    if (!Number.isInteger(n) || n < 0 || n > MAX_READ) {
      // a bad length fails every later read, unless the peer had already gone (its bytes still count then)
      if (!ended) stuck = true;
      return 'protocol';
    }
    if (data.length - pos >= n) {
      const b = Buffer.from(data.subarray(pos, pos + n));
      pos += n;
      return b;
    }
    ended = true;
    return 'closed';
  };
  for (const o of ops) {
    const n = o.kind === 'read' ? o.n : o.kind === 'u8' ? 1 : o.kind === 'u16' ? 2 : 4;
    const b = take(n);
    if (typeof b === 'string') {
      out.push({ err: b });
      continue;
    }
    if (o.kind !== 'lp') {
      out.push({ ok: o.kind === 'read' ? b.toString('hex') : String(b.readUIntBE(0, n)) });
      continue;
    }
    const len = b.readUInt32BE(0);
    if (len > o.max) {
      if (!ended) stuck = true;
      out.push({ err: 'protocol' });
      continue;
    }
    const body = take(len);
    out.push(typeof body === 'string' ? { err: body } : { ok: body.toString('hex') });
  }
  return out;
}

async function runReader(data: Uint8Array, cuts: number[], ops: readonly Op[]): Promise<Outcome[]> {
  const r = new RfbReader({ timeoutMs: 60_000, errors: ERRORS });
  const out: Outcome[] = [];
  const codeOf = (e: unknown) => {
    assert.ok(e instanceof GatewayError, `not a GatewayError: ${String(e)}`);
    return e.code === 'BACKEND_CLOSED' ? 'closed' : e.code === 'BACKEND_PROTOCOL' ? 'protocol' : e.code;
  };
  const consumer = (async () => {
    for (const o of ops) {
      try {
        if (o.kind === 'read') out.push({ ok: (await r.read(o.n, 'read')).toString('hex') });
        else if (o.kind === 'lp') out.push({ ok: (await r.lengthPrefixed('lp', o.max)).toString('hex') });
        else out.push({ ok: String(await r[o.kind](o.kind)) });
      } catch (e) {
        out.push({ err: codeOf(e) });
      }
    }
  })();
  for (const c of chunks(data, cuts)) {
    r.push(c);
    await new Promise((res) => setImmediate(res));
  }
  r.end('the peer closed the connection');
  await consumer;
  r.finish();
  return out;
}

describe('fuzz: the RFB reader (src/rfb/reader.ts)', () => {
  it('reads exactly the stream\'s next bytes however it is chunked, and fails as the model says', async () => {
    const n = runs(2000, 100_000);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(400), { maxLength: 12 }), fc.array(op, { maxLength: 25 }), async (data, cuts, ops) => {
        assert.deepEqual(await runReader(data, cuts, ops), model(data, ops));
      }),
      params(n),
    );
    counted.add('reader against the model', n);
  });

  it('fails, and holds no more, once a peer sends more than the bound unread', async () => {
    const n = runs(2000, 50_000);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4096 }), fc.array(fc.integer({ min: 0, max: 2048 }), { maxLength: 12 }), async (bound, sizes) => {
        const r = new RfbReader({ timeoutMs: 60_000, errors: ERRORS, maxBuffered: bound });
        let total = 0;
        for (const s of sizes) {
          if (r.failed === null) total += s;
          r.push(Buffer.alloc(s));
        }
        assert.equal(r.failed !== null, total > bound, `${total} bytes pushed, bound ${bound}`);
        if (r.failed) {
          assert.equal(r.failed.code, 'BACKEND_PROTOCOL');
          // what arrives after the failure is not kept
          assert.ok(r.available <= total);
          await assert.rejects(r.read(1, 'after'), (e: GatewayError) => e.code === 'BACKEND_PROTOCOL');
        }
        r.finish();
      }),
      params(n),
    );
    counted.add('reader bound', n);
  });
});

// ---------------------------------------------------------------------------------------------
// a hostile backend

/** `arb` once in `oneIn` cases, else null. */
const rarely = <T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> => fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
/** A U32 length that may lie: the real one, far more, just over a bound, or 2^32-1. */
const lengthFor = (actual: number, bound: number) => fc.oneof({ weight: 5, arbitrary: fc.constant(actual) }, fc.constantFrom(0xffffffff, bound + 1, bound, actual + 7, 0x7fffffff), fc.nat());
const withLength = (body: Buffer, bound: number) => lengthFor(body.length, bound).map((n) => Buffer.concat([u32(n), body]));
const reason = (bound: number) => fc.oneof(fc.constant(Buffer.from('Authentication failure')), fc.string({ unit: 'binary', maxLength: 60 }).map((s) => Buffer.from(s)), bytes(80)).chain((b) => withLength(b, bound));

const version = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('RFB 003.008\n', 'RFB 003.007\n', 'RFB 003.003\n', 'RFB 003.889\n') },
  fc.constantFrom('RFB 004.001\n', 'RFB 003.005\n', 'RFB 000.000\n', 'RFB 003.008', 'RFB 003.00\n\n', 'RFB 003.008\r\n', 'rfb 003.008\n', 'RFB 003.010\n', 'RFB 999.999\n'),
  fc.string({ unit: 'binary-ascii', minLength: 12, maxLength: 12 }),
).map((v) => Buffer.from(v, 'latin1'));

const securityTypes = fc.array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(1, 2, 19) }, fc.integer({ min: 0, max: 255 })), { maxLength: 12 });
/** 3.7/3.8: a count and that many types (or a count that lies), or 0 and a reason. */
const security78 = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(securityTypes, rarely(fc.integer({ min: 0, max: 255 }), 5)).map(([types, lie]) => Buffer.from([lie ?? types.length, ...types])) },
  reason(MAX_REASON).map((r) => Buffer.concat([Buffer.from([0]), r])),
);
/** 3.3: the type as a U32, 0 and a reason. */
const security33 = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(1, 2, 19, 0xffffffff, 7, 256 + 1).map(u32) },
  reason(MAX_REASON).map((r) => Buffer.concat([u32(0), r])),
);
const subtypes = fc.array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...Object.values(Subtype)) }, fc.nat()), { maxLength: 8 });
/** VeNCrypt: version, ack, subtypes (count may lie), acceptance, then bytes where TLS should be. */
const vencrypt = fc
  .tuple(fc.oneof({ weight: 4, arbitrary: fc.constant([0, 2]) }, fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }))), fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: 0, max: 255 })), subtypes, rarely(fc.integer({ min: 0, max: 255 }), 5), fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, fc.integer({ min: 0, max: 255 })), bytes(40))
  .map(([v, ack, list, lie, accept, tls]) => Buffer.concat([Buffer.from([...v, ack, lie ?? list.length]), ...list.map(u32), Buffer.from([accept]), tls]));
const challenge = bytes(20);
const securityResult = fc.oneof({ weight: 4, arbitrary: fc.constant(u32(0)) }, fc.tuple(fc.constantFrom(1, 2, 0xffffffff), reason(MAX_REASON)).map(([r, why]) => Buffer.concat([u32(r), why])));
/** ServerInit: the pixel format head, then a desktop name whose length may be anything up to 2^32-1. */
const serverInit = fc.tuple(bytes(20).map((b) => Buffer.concat([b, Buffer.alloc(20 - Math.min(20, b.length))]).subarray(0, 20)), fc.string({ unit: 'binary', maxLength: 40 }).map((s) => Buffer.from(s)))
  .chain(([head, name]) => lengthFor(name.length, MAX_DESKTOP_NAME).map((n) => Buffer.concat([head, u32(n), name])));

interface Script {
  readonly chunks: Buffer[];
  readonly ending: 'end' | 'destroy' | 'stall';
}

const SCHEME_OF: Record<number, AuthSchemeName> = { 1: 'none', 2: 'vnc', 19: 'vencrypt' };

/**
 * A whole handshake in the order a server sends it: mostly coherent (a version, a type list with
 * the type the plan picked, that type's exchange, a result, a ServerInit) so the deep steps are
 * reached, sometimes not; then damaged (bits flipped, cut short), chunked, and ended.
 */
const handshake = fc
  .record({
    v: version,
    type: fc.constantFrom(1, 2, 19),
    first: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, fc.constant(false)),
    others: securityTypes,
    lie: rarely(fc.integer({ min: 0, max: 255 }), 8),
    refuse: rarely(reason(MAX_REASON), 8),
    coherent: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, fc.constant(false)),
    s78: security78,
    s33: security33,
    challenge: fc.oneof({ weight: 5, arbitrary: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)) }, challenge),
    venc: vencrypt,
    result: securityResult,
    init: serverInit,
    trailing: fc.oneof({ weight: 3, arbitrary: fc.constant(Buffer.alloc(0)) }, bytes(100)),
  })
  .map((p) => {
    const minor = p.v.toString('latin1').startsWith('RFB 003.003') ? 3 : 8;
    let sec: Buffer;
    if (!p.coherent) sec = minor === 3 ? p.s78 : p.s33;
    else if (p.refuse) sec = Buffer.concat([minor === 3 ? u32(0) : Buffer.from([0]), p.refuse]);
    else if (minor === 3) sec = u32(p.type);
    else {
      const types = p.first ? [p.type, ...p.others] : [...p.others, p.type];
      sec = Buffer.from([p.lie ?? types.length, ...types]);
    }
    const auth = p.type === 1 ? Buffer.alloc(0) : p.type === 2 ? p.challenge : p.venc;
    return { bytes: Buffer.concat([p.v, sec, auth, p.result, p.init, p.trailing]), type: p.type };
  });

const damage = fc.record({
  flips: rarely(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 3 }), 5),
  cut: rarely(fc.nat(), 8),
  cuts: fc.array(fc.nat(), { maxLength: 6 }),
});

function damaged(all: Buffer, d: { flips: Array<[number, number]> | null; cut: number | null; cuts: number[] }, ending: Script['ending']): Script {
  const b = Buffer.from(all);
  if (b.length) for (const [at, bit] of d.flips ?? []) b[at % b.length]! ^= 1 << bit;
  return { chunks: chunks(d.cut === null || b.length === 0 ? b : b.subarray(0, d.cut % b.length), d.cuts), ending };
}

const schemeList = fc.uniqueArray(fc.constantFrom<AuthSchemeName>('none', 'vnc', 'vencrypt'), { minLength: 1, maxLength: 3 });
const CONTEXT = createSecureContext();
const settings: fc.Arbitrary<BackendAuthSettings> = fc.record({
  schemes: schemeList,
  password: fc.option(fc.constantFrom('secret', 'p'), { nil: null }),
  username: fc.option(fc.constant('user'), { nil: null }),
  tls: fc.option(fc.constant({ context: () => CONTEXT, missing: null }), { nil: null }),
  tlsServerName: fc.constant(null),
  allowInsecureTls: fc.boolean(),
});

/** A loopback server whose next connection plays the next script; counts what it holds open. */
class HostileBackend {
  private readonly queue: Script[] = [];
  readonly open = new Set<Socket>();
  private constructor(private readonly server: Server, readonly port: number) {}
  static async start(): Promise<HostileBackend> {
    let self!: HostileBackend;
    const server = createServer((s) => self.play(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    self = new HostileBackend(server, (server.address() as { port: number }).port);
    return self;
  }
  async connect(s: Script): Promise<Socket> {
    this.queue.push(s);
    const socket = connect({ port: this.port, host: '127.0.0.1', noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    // as connectBackend leaves it: not flowing until someone reads
    socket.pause();
    return socket;
  }
  private async play(s: Socket): Promise<void> {
    const sc = this.queue.shift()!;
    this.open.add(s);
    s.on('error', () => {});
    s.once('close', () => this.open.delete(s));
    s.resume();
    for (const c of sc.chunks) {
      if (s.destroyed) return;
      if (c.length) s.write(c);
      await new Promise((r) => setImmediate(r));
    }
    if (sc.ending === 'end') s.end();
    else if (sc.ending === 'destroy') s.resetAndDestroy();
  }
  close(): Promise<void> {
    for (const s of this.open) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** A handshake and settings that, most of the time, allow the type the handshake picked. */
const hostileCase = (endings: fc.Arbitrary<Script['ending']>) =>
  fc.tuple(handshake, damage, endings, settings, fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, fc.constant(false))).map(([h, d, ending, s, fit]) => {
    const scheme = SCHEME_OF[h.type]!;
    const fitted: BackendAuthSettings = fit ? { ...s, schemes: s.schemes.includes(scheme) ? s.schemes : [scheme, ...s.schemes], password: s.password ?? 'secret' } : s;
    return { script: damaged(h.bytes, d, ending), settings: fitted };
  });

const AUTH_FAILED = 'The console could not be authenticated';
const USED: Record<string, AuthSchemeName> = { None: 'none', VncAuth: 'vnc' };

describe('fuzz: the security proxy against a hostile backend (src/rfb/security-proxy.ts, src/rfb/auth/*)', () => {
  let backend: HostileBackend;
  before(async () => {
    backend = await HostileBackend.start();
  });
  after(() => backend?.close());

  /** One hostile handshake against the proxy's backend side, then the browser's side when it got that far. */
  async function oneCase(sc: Script, s: BackendAuthSettings, timeoutMs: number, outcomes: Map<string, number>): Promise<void> {
    const socket = await backend.connect(sc);
    let negotiated;
    try {
      negotiated = await negotiateBackend(socket, s, { timeoutMs, address: '127.0.0.1:5900' });
    } catch (err) {
      assert.ok(err instanceof GatewayError, `not a GatewayError: ${(err as Error)?.stack ?? err}`);
      assert.match(err.code, /^BACKEND_(AUTH_FAILED|AUTH_NO_SCHEME|TLS_FAILED|PROTOCOL|CLOSED|TIMEOUT)$/);
      assert.equal(err.status, 502);
      assert.equal(err.clientMessage, AUTH_FAILED);
      assert.equal(escapeUnsafe(err.message), err.message, `a raw control character in the log message: ${JSON.stringify(err.message)}`);
      assert.ok(socket.destroyed, 'the backend socket is left open after a failed negotiation');
      outcomes.set(err.code, (outcomes.get(err.code) ?? 0) + 1);
      return;
    }
    try {
      const scheme = USED[negotiated.auth];
      assert.ok(scheme && s.schemes.includes(scheme), `authenticated with ${negotiated.auth}; auth_schemes = ${s.schemes}`);
      if (scheme === 'vnc') assert.ok(s.password !== null);
      const client = new FakeClient(timeoutMs);
      client.say('RFB 003.008\n');
      client.say([1]);
      client.say([1]);
      try {
        await serveClient(client, Promise.resolve(negotiated), { timeoutMs });
        const init = client.messages[3]!;
        assert.ok(init.length >= 24, 'a ServerInit shorter than its head');
        const nameLength = init.readUInt32BE(20);
        assert.ok(nameLength <= MAX_DESKTOP_NAME);
        assert.equal(init.length, 24 + nameLength, 'the ServerInit went to the browser cut or padded');
        outcomes.set('ServerInit relayed', (outcomes.get('ServerInit relayed') ?? 0) + 1);
      } catch (err) {
        assert.ok(err instanceof GatewayError, `not a GatewayError: ${(err as Error)?.stack ?? err}`);
        assert.equal(err.clientMessage, BACKEND_GONE_REASON);
        assert.equal(escapeUnsafe(err.message), err.message);
        assert.equal(client.messages.length, 3, 'the browser got more than version, None and OK before the close');
        outcomes.set(`after OK: ${err.code}`, (outcomes.get(`after OK: ${err.code}`) ?? 0) + 1);
      }
    } finally {
      negotiated.socket.destroy();
    }
  }

  it('authenticates only as the settings allow or refuses with a backend error, and the browser gets a whole ServerInit or a close', async (t) => {
    const n = runs(1500, 100_000);
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(hostileCase(fc.constantFrom<Script['ending']>('end', 'end', 'end', 'destroy')), ({ script: sc, settings: s }) => oneCase(sc, s, 2000, outcomes)),
      params(n),
    );
    counted.add('hostile backend handshakes', n);
    t.diagnostic(`outcomes: ${[...outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    // the generator must reach the deep steps, or the fuzz tests less than it says
    assert.ok((outcomes.get('ServerInit relayed') ?? 0) > 0, 'no handshake reached ServerInit');
    assert.ok([...outcomes.keys()].some((k) => k.startsWith('after OK')), 'no ServerInit was refused');
    await eventually('the hostile backend\'s connections closed', () => backend.open.size === 0, 5000);
  });

  it('ends a handshake whose backend stalls anywhere at the deadline, with its socket closed', async (t) => {
    const n = runs(30, 1000);
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(hostileCase(fc.constant<Script['ending']>('stall')), ({ script: sc, settings: s }) => oneCase(sc, s, 100, outcomes)),
      params(n),
    );
    counted.add('stalling backends', n);
    t.diagnostic(`outcomes: ${[...outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    assert.ok((outcomes.get('BACKEND_TIMEOUT') ?? 0) > 0, 'no stall reached the deadline');
    await eventually('the hostile backend\'s connections closed', () => backend.open.size === 0, 5000);
  });
});

describe('what the fuzz found, by example', () => {
  it('logs a VeNCrypt server that answers the ClientHello with plain text on one line (OpenSSL\'s message ends in a newline)', async () => {
    const server = await scriptedServer(async (io) => {
      await io.write('RFB 003.008\n');
      await io.read(12);
      await io.write([1, 19]);
      await io.read(1);
      await io.write([0, 2]);
      await io.read(2);
      await io.write(Buffer.concat([Buffer.from([0, 1]), u32(Subtype.X509None)]));
      await io.read(4);
      await io.write([1]);
      // a ClientHello: a TLS handshake record
      await io.read(5);
      await io.write('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    try {
      const s: BackendAuthSettings = { schemes: ['vencrypt'], password: null, username: null, tls: { context: () => CONTEXT, missing: null }, tlsServerName: null, allowInsecureTls: false };
      await assert.rejects(negotiateBackend(await server.connect(), s, { timeoutMs: 2000, address: '127.0.0.1:5900' }), (err: GatewayError) => {
        assert.equal(err.code, 'BACKEND_TLS_FAILED', err.message);
        assert.match(err.message, /VeNCrypt TLS failed: /);
        assert.equal(escapeUnsafe(err.message), err.message, `a raw control character in ${JSON.stringify(err.message)}`);
        return true;
      });
    } finally {
      await server.close();
    }
  });
});
