/**
 * @module test/support/fuzz-inputs
 * Deterministic hostile inputs for the proxy fuzz (`test/proxy/fuzz.test.ts`): from a seed, one
 * case at a time, either an upgrade request mutated at the HTTP level (request line, headers
 * duplicated, huge, missing or badly encoded, bodies with Content-Length or chunked, odd paths
 * carrying the token, bytes flipped, cut short) or a good upgrade followed by WebSocket frames
 * built field by field (any opcode, fragments, lengths in every encoding including 64-bit lies,
 * masks missing, oversized or fragmented control frames, invalid close payloads) around the
 * browser's side of the RFB handshake and RFB client messages. Case `i` of seed `s` is always
 * the same bytes, so a finding is replayed by its numbers; what the server answers is not part
 * of the case. Nothing here talks to the network.
 */
import { clientFrame, OP, WS_KEY } from './raw-ws.ts';

/** mulberry32: small, fast, good enough to pick mutations; the same numbers on every machine. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** [0, 1) */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)]!;
  }
  /** `n` random bytes; past 4 KiB a random 4 KiB block repeated (what matters there is the size). */
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    const m = Math.min(n, 4096);
    for (let i = 0; i < m; i++) b[i] = Math.floor(this.next() * 256);
    for (let i = m; i < n; i += m) b.copy(b, i, 0, Math.min(m, n - i));
    return b;
  }
}

/** The seed of case `i`: cases are independent, so any one can be generated alone. */
export function caseRng(seed: number, i: number): Rng {
  return new Rng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
}

export interface FuzzTarget {
  readonly port: number;
  /** A valid, multi-use console token. */
  readonly token: string;
}

/** What the client does once its request is written. */
export type AfterRequest = 'wait' | 'drop' | 'half-close' | 'rfb';
/** How a frames case ends. */
export type Ending = 'close-frame' | 'destroy' | 'half-close' | 'linger';

export interface RequestCase {
  readonly kind: 'request';
  /** Written in this many pieces, a turn of the event loop apart. */
  readonly chunks: Buffer[];
  readonly after: AfterRequest;
}

export interface FramesCase {
  readonly kind: 'frames';
  readonly request: Buffer;
  /** Wait for the 101 before the frames (else they follow the request at once). */
  readonly waitFor101: boolean;
  /** Each entry one write; most hold one frame, some several, some a frame cut in two. */
  readonly writes: Buffer[];
  /** Frames in `writes` (the fuzz counts each as an input). */
  readonly frameCount: number;
  readonly ending: Ending;
}

export type FuzzCase = RequestCase | FramesCase;

export function fuzzCase(r: Rng, t: FuzzTarget): FuzzCase {
  return r.chance(0.5) ? requestCase(r, t) : framesCase(r, t);
}

// ---------------------------------------------------------------------------------------------
// upgrade requests

type Header = [name: string, value: string];

function goodHeaders(t: FuzzTarget): Header[] {
  return [
    ['Host', `127.0.0.1:${t.port}`],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', WS_KEY],
    ['Sec-WebSocket-Version', '13'],
    ['Sec-WebSocket-Protocol', 'binary'],
  ];
}

/** Request targets that carry the token the ways clients do. */
function goodTarget(r: Rng, t: FuzzTarget, headers: Header[]): string {
  switch (r.int(0, 4)) {
    case 0:
      return `/?token=${t.token}`;
    case 1:
      return `/websockify?token=${t.token}`;
    case 2:
      return `/websockify?path=${encodeURIComponent(`?token=${t.token}`)}`;
    case 3:
      headers.push(['Cookie', `token=${t.token}`]);
      return '/websockify';
    default:
      headers.push(['Cookie', `path=%3Ftoken%3D${t.token}`]);
      return '/';
  }
}

/** Targets no client should send, many with the token where it must not be logged from. */
function oddTarget(r: Rng, t: FuzzTarget): string {
  const k = t.token;
  return r.pick([
    `/websockify/${k}`,
    `/${k}`,
    `/websockify;token=${k}`,
    `//${k}`,
    `//evil.example/websockify?token=${k}`,
    `/websockify?token=${k}%zz`,
    `/websockify?token=${k.slice(0, r.int(0, k.length - 1))}`,
    `/websockify?token=${k}&token=`,
    `/websockify?token=&token=${k}&token=${k.toUpperCase()}`,
    `/websockify?path=%3Ftoken%3D${k}%E0%A4%A`,
    `/websockify?${'a=b&'.repeat(r.int(100, 2000))}token=${k}`,
    `/websockify?token=${k}${'x'.repeat(r.int(200, 300))}`,
    `http://127.0.0.1:${t.port}/websockify?token=${k}`,
    `*`,
    ``,
    `/websockify#token=${k}`,
    `/%2e%2e/websockify?token=${k}`,
    `/websockify\x00?token=${k}`,
    `/websockify?token=${k}\xff\xfe`,
    `/${'a'.repeat(r.int(1000, 20_000))}?token=${k}`,
    `/vnc.html?token=${k}`,
    `/porthole/token-state?token=${k}`,
  ]);
}

function requestCase(r: Rng, t: FuzzTarget): RequestCase {
  const headers = goodHeaders(t);
  let method = 'GET';
  let target = r.chance(0.6) ? goodTarget(r, t, headers) : oddTarget(r, t);
  let version = 'HTTP/1.1';
  let eol = '\r\n';
  let body: Buffer = Buffer.alloc(0);
  let tail: Buffer = Buffer.alloc(0);
  const setHeader = (name: string, value: string | null) => {
    const i = headers.findIndex(([n]) => n.toLowerCase() === name.toLowerCase());
    if (value === null) {
      if (i >= 0) headers.splice(i, 1);
    } else if (i >= 0) headers[i] = [name, value];
    else headers.push([name, value]);
  };
  const mutations = r.int(0, 3);
  for (let m = 0; m < mutations; m++) {
    switch (r.int(0, 21)) {
      case 0:
        method = r.pick(['POST', 'get', 'G ET', 'CONNECT', 'PUT', 'HEAD', 'OPTIONS', '', 'PRI', 'GET GET', t.token]);
        break;
      case 1:
        version = r.pick(['', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x', 'HTTP/9.9', 'http/1.1', 'HTTP/1.1 extra', 'HTTP/01.1']);
        break;
      case 2:
        if (headers.length) headers.splice(r.int(0, headers.length - 1), 1);
        break;
      case 3: {
        if (!headers.length) break;
        const h = r.pick(headers);
        headers.splice(r.int(0, headers.length), 0, [r.chance(0.5) ? h[0] : h[0].toUpperCase(), r.chance(0.5) ? h[1] : r.pick(['', 'x', t.token, `${h[1]}, ${h[1]}`])]);
        break;
      }
      case 4:
        headers.push([r.pick(['X-Big', 'Cookie', 'Origin', 'Sec-WebSocket-Protocol', 'User-Agent']), 'a'.repeat(r.pick([1000, 8000, 17_000, 40_000]))]);
        break;
      case 5:
        for (let i = r.int(100, 400); i > 0; i--) headers.push([`X-H${i}`, String(i)]);
        break;
      case 6:
        headers.push([r.pick(['X-Bin', 'Cookie', 'Origin', 'Host', 'Sec-WebSocket-Protocol']), r.pick(['\x00', '\x7f', '\xe9\xff', 'a\rb', 'a\nb', '\x1b[31m', '\u202e'])]);
        break;
      case 7:
        // obs-fold: a header continued on the next line
        headers.push(['X-Folded', `start${eol} continued`]);
        break;
      case 8:
        eol = r.pick(['\n', '\r', '\r\n\r', '\n\r']);
        break;
      case 9: {
        body = r.bytes(r.int(0, 200));
        const cl = r.pick([String(body.length), String(body.length + 10), '-1', '99999999999999999999', `${body.length}, ${body.length}`, 'abc']);
        headers.push(['Content-Length', cl]);
        if (r.chance(0.2)) headers.push(['Content-Length', '0']);
        break;
      }
      case 10: {
        const data = r.bytes(r.int(1, 100));
        headers.push(['Transfer-Encoding', r.pick(['chunked', 'chunked, gzip', 'gzip, chunked', 'identity', 'Chunked'])]);
        if (r.chance(0.3)) headers.push(['Content-Length', String(data.length)]);
        body = Buffer.concat([Buffer.from(`${r.chance(0.8) ? data.length.toString(16) : 'zz'}\r\n`), data, Buffer.from(r.chance(0.8) ? '\r\n0\r\n\r\n' : '\r\n')]);
        break;
      }
      case 11:
        setHeader('Sec-WebSocket-Protocol', r.pick(['bin ary, ,', '', ',', 'binary,binary', 'binary, chat', 'chat', 'x'.repeat(1000), 'binary,', ' binary ', 'base64', t.token]));
        break;
      case 12:
        setHeader('Sec-WebSocket-Version', r.pick(['7', '8', '14', '', '13, 8', '013', '-13', '13\x00']));
        break;
      case 13:
        setHeader('Sec-WebSocket-Key', r.pick(['', 'short', `${WS_KEY}=`, WS_KEY.toLowerCase(), 'dGhlIHNhbXBsZSBub25jZQ', '!!!!!!!!!!!!!!!!!!!!!!==', t.token]));
        break;
      case 14:
        setHeader('Upgrade', r.pick(['WebSocket', 'websocket, h2c', 'h2c', 'TLS/1.0', '', null]));
        break;
      case 15:
        setHeader('Connection', r.pick(['keep-alive', 'Upgrade, keep-alive', 'close', 'upgrade', '', null]));
        break;
      case 16:
        setHeader('Origin', r.pick([`http://127.0.0.1:${t.port}`, 'http://evil.example', 'null', 'file://', 'https://127.0.0.1', `http://${t.token}.example`, '::::', 'http://[::1', '']));
        break;
      case 17:
        setHeader('Cookie', r.pick([`token=${t.token}%zz`, `token="${t.token}`, `=; ;; token=`, `path=%3Ftoken%3D${t.token}; token=bad`, `token=${'x'.repeat(300)}`, `a=b; token=${t.token}; token=`]));
        break;
      case 18:
        setHeader('Host', r.pick([null, '', 'evil.example', `127.0.0.1:${t.port}, evil.example`, '[::1', t.token]));
        if (r.chance(0.3)) headers.push(['Host', 'second.example']);
        break;
      case 19:
        setHeader('X-Forwarded-For', r.pick(['10.0.0.1', 'garbage', `${t.token}, 127.0.0.1`, '::1, ::ffff:10.0.0.1']));
        if (r.chance(0.5)) setHeader('X-Forwarded-Proto', r.pick(['https', 'http', 'wss', t.token]));
        break;
      case 20:
        tail = r.chance(0.5) ? r.bytes(r.int(1, 64)) : Buffer.from(`GET /websockify?token=${t.token} HTTP/1.1\r\nHost: x\r\n\r\n`);
        break;
      default:
        target = oddTarget(r, t);
    }
  }
  const head = Buffer.from(`${method} ${target}${version ? ` ${version}` : ''}${eol}${headers.map(([n, v]) => `${n}: ${v}${eol}`).join('')}${eol}`, 'latin1');
  let bytes: Buffer = Buffer.concat([head, body, tail]);
  // byte-level damage: a few flipped bytes, a cut, garbage or a TLS record type in front
  if (r.chance(0.1)) {
    bytes = Buffer.from(bytes);
    for (let n = r.int(1, 4); n > 0; n--) {
      const i = r.int(0, bytes.length - 1);
      bytes[i] = bytes[i]! ^ (1 << r.int(0, 7));
    }
  }
  if (r.chance(0.05)) bytes = bytes.subarray(0, r.int(0, bytes.length - 1));
  if (r.chance(0.03)) bytes = Buffer.concat([r.chance(0.5) ? Buffer.from([0x16, 0x03, 0x01]) : r.bytes(r.int(1, 16)), bytes]);
  return { kind: 'request', chunks: split(r, bytes), after: r.pick(['wait', 'wait', 'wait', 'drop', 'half-close', 'rfb'] as const) };
}

function split(r: Rng, bytes: Buffer): Buffer[] {
  if (bytes.length < 2 || r.chance(0.7)) return [bytes];
  const cuts = new Set<number>();
  for (let n = r.int(1, 4); n > 0; n--) cuts.add(r.int(1, bytes.length - 1));
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    out.push(bytes.subarray(at, c));
    at = c;
  }
  out.push(bytes.subarray(at));
  return out;
}

// ---------------------------------------------------------------------------------------------
// frames after a good upgrade

/** The browser's side of the RFB handshake: version, security type None, ClientInit; sometimes wrong. */
function rfbHandshake(r: Rng): Buffer[] {
  const version = r.chance(0.8) ? 'RFB 003.008\n' : r.pick(['RFB 003.003\n', 'RFB 003.007\n', 'RFB 004.000\n', 'RFB 003.889\n', 'RFB 003.008', 'rfb 003.008\n', 'GET / HTTP/1.1\n', '\x00'.repeat(12)]);
  const security = r.chance(0.85) ? 1 : r.pick([0, 2, 19, 255]);
  const shared = r.pick([0, 1, 2, 255]);
  const msgs = [Buffer.from(version, 'latin1'), Buffer.from([security]), Buffer.from([shared])];
  switch (r.int(0, 3)) {
    case 0:
      return [Buffer.concat(msgs)];
    case 1: {
      // byte by byte
      const all = Buffer.concat(msgs);
      return [...all].map((b) => Buffer.from([b]));
    }
    default:
      return msgs;
  }
}

/** An RFB client message (RFC 6143 §7.5), sometimes truncated or with lengths that lie. */
function rfbMessage(r: Rng): Buffer {
  switch (r.int(0, 7)) {
    case 0: {
      const b = Buffer.alloc(20);
      b[0] = 0;
      b.set([r.pick([8, 16, 32, 0, 255]), 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0], 4);
      return b;
    }
    case 1: {
      const n = r.pick([0, 1, 5, 100, 65535]);
      const b = Buffer.alloc(4 + 4 * Math.min(n, 200));
      b[0] = 2;
      b.writeUInt16BE(n, 2);
      for (let i = 0; i < Math.min(n, 200); i++) b.writeInt32BE(r.pick([0, 1, 2, 5, 7, 16, -223, -239, -314, 0x7fffffff]), 4 + 4 * i);
      return b;
    }
    case 2: {
      const b = Buffer.alloc(10);
      b[0] = 3;
      b[1] = r.int(0, 1);
      b.writeUInt16BE(r.int(0, 65535), 6);
      b.writeUInt16BE(r.int(0, 65535), 8);
      return b;
    }
    case 3: {
      const b = Buffer.alloc(8);
      b[0] = 4;
      b[1] = r.int(0, 1);
      b.writeUInt32BE(r.int(0, 0xffff), 4);
      return b;
    }
    case 4: {
      const b = Buffer.alloc(6);
      b[0] = 5;
      b[1] = r.int(0, 255);
      return b;
    }
    case 5: {
      // ClientCutText whose length may exceed what follows
      const text = r.bytes(r.int(0, 64));
      const b = Buffer.alloc(8);
      b[0] = 6;
      b.writeUInt32BE(r.chance(0.7) ? text.length : r.pick([0xffffffff, 0x7fffffff, text.length + 1000]), 4);
      return Buffer.concat([b, text]);
    }
    case 6:
      return r.bytes(r.int(1, 32));
    default:
      return r.bytes(r.pick([0, 1, 125, 126, 127, 65535, 65536, 200_000]));
  }
}

/** One frame, usually a good binary one, otherwise broken in one of the ways RFC 6455 forbids. */
function frame(r: Rng, payload: Buffer): Buffer {
  if (r.chance(0.8)) return clientFrame({ opcode: OP.binary, payload, lengthForm: r.chance(0.05) ? r.pick([16, 64] as const) : undefined });
  switch (r.int(0, 12)) {
    case 0:
      return clientFrame({ opcode: r.int(0, 15), payload });
    case 1:
      // a fragmented message, maybe never finished
      return Buffer.concat([
        clientFrame({ opcode: r.pick([OP.binary, OP.text]), payload, fin: false }),
        ...Array.from({ length: r.int(0, 3) }, () => clientFrame({ opcode: OP.continuation, payload: r.bytes(r.int(0, 50)), fin: r.chance(0.5) })),
      ]);
    case 2:
      return clientFrame({ opcode: OP.binary, payload, rsv: r.int(1, 7) });
    case 3:
      return clientFrame({ opcode: OP.binary, payload, mask: false });
    case 4:
      // a length that lies: longer than what follows (the rest never comes) or absurd
      return clientFrame({ opcode: OP.binary, payload, declaredLength: r.pick([BigInt(payload.length + r.int(1, 100)), 2n ** 63n, 2n ** 64n - 1n, 2n ** 53n, 2n ** 32n, 4n * 1024n * 1024n + 1n]), lengthForm: 64 });
    case 5:
      return clientFrame({ opcode: r.pick([OP.ping, OP.pong]), payload: r.bytes(r.int(126, 1000)) });
    case 6:
      return clientFrame({ opcode: OP.ping, payload: r.bytes(r.int(0, 20)), fin: false });
    case 7:
      return clientFrame({ opcode: r.pick([OP.ping, OP.pong]), payload: r.bytes(r.int(0, 125)) });
    case 8: {
      // close payloads RFC 6455 §5.5.1/§7.4 forbids
      const p = r.pick([
        Buffer.from([0x03]),
        Buffer.from([0x00, 0x00]),
        Buffer.from([0x03, 0xe7]), // 999
        Buffer.from([0x03, 0xed]), // 1005
        Buffer.from([0x03, 0xee]), // 1006
        Buffer.from([0x03, 0xf7]), // 1015
        Buffer.from([0x13, 0x88]), // 5000
        Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from([0xff, 0xfe, 0xc0])]),
        Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.alloc(124, 0x61)]),
      ]);
      return clientFrame({ opcode: OP.close, payload: p });
    }
    case 9:
      return clientFrame({ opcode: OP.text, payload: Buffer.from([0xc3, 0x28, 0xff, 0xfe]) });
    case 10:
      return clientFrame({ opcode: OP.continuation, payload });
    case 11:
      return clientFrame({ opcode: OP.binary, payload: Buffer.alloc(0) });
    default:
      // random bytes where a frame header should be
      return r.bytes(r.int(1, 16));
  }
}

function framesCase(r: Rng, t: FuzzTarget): FramesCase {
  const headers = goodHeaders(t);
  const target = goodTarget(r, t, headers);
  const request = Buffer.from(`GET ${target} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`, 'latin1');
  const payloads: Buffer[] = r.chance(0.9) ? rfbHandshake(r) : [r.bytes(r.int(1, 40))];
  for (let n = r.int(5, 70); n > 0; n--) payloads.push(rfbMessage(r));
  const frames = payloads.map((p) => frame(r, p));
  // writes: one frame each, several together, or a frame cut across two writes
  const writes: Buffer[] = [];
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    const roll = r.next();
    if (roll < 0.15 && i + 1 < frames.length) {
      writes.push(Buffer.concat([f, frames[++i]!]));
    } else if (roll < 0.25 && f.length > 2) {
      const c = r.int(1, f.length - 1);
      writes.push(f.subarray(0, c), f.subarray(c));
    } else writes.push(f);
  }
  return { kind: 'frames', request, waitFor101: r.chance(0.5), writes, frameCount: frames.length, ending: r.pick(['close-frame', 'destroy', 'half-close', 'linger'] as const) };
}
