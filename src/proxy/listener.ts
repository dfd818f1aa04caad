/**
 * @module proxy/listener
 * One TCP listener per console proxy, serving HTTP and WebSocket, with TLS as websockify does
 * it for Nova: when `[DEFAULT] cert` names an existing file, each connection is looked at and a
 * TLS ClientHello (first byte 0x16) goes to the TLS server, anything else to the plain one;
 * `ssl_only` refuses the plain ones. A connection that sends nothing within the handshake
 * timeout is dropped. TLS follows Mozilla's "intermediate" profile unless `[console]
 * ssl_ciphers` / `ssl_minimum_version` say otherwise.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { SecureVersion } from 'node:tls';
import { GatewayError } from '../errors.ts';
import { writeRefusal } from './refusal.ts';

/** Nova's `[console] ssl_minimum_version` choices. */
export type SslMinimumVersion = 'default' | 'tlsv1_1' | 'tlsv1_2' | 'tlsv1_3';

export interface ListenerOptions {
  readonly sslOnly: boolean;
  readonly cert: string | null;
  readonly key: string | null;
  /** `[console] ssl_ciphers`: an OpenSSL cipher string; null: Mozilla's intermediate list. */
  readonly sslCiphers: string | null;
  /** `[console] ssl_minimum_version`; `default` is TLS 1.2. */
  readonly sslMinimumVersion: SslMinimumVersion;
  readonly handshakeTimeoutMs: number;
  readonly maxHeaderSize: number;
}

export interface Handlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

const TLS_HANDSHAKE = 0x16;

/**
 * Mozilla's "intermediate" server-side TLS profile (guidelines 6.0, ssl-config.mozilla.org): TLS
 * 1.2 with forward-secret AEAD suites only (Node's default list also has `HIGH`, which lets in
 * RSA key exchange and CBC: AES128-SHA, AES256-SHA256), and TLS 1.3's three suites. 6.0 dropped
 * the DHE suites of 5.7; Node sets no DH parameters anyway, so they could not be chosen.
 */
export const INTERMEDIATE_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
const TLS13_SUITES = INTERMEDIATE_CIPHERS.split(':').filter((c) => c.startsWith('TLS_')).join(':');

const MINIMUM_VERSIONS: Record<SslMinimumVersion, SecureVersion> = {
  // Nova's `default` is whatever the system's OpenSSL allows; Porthole's is the profile's
  default: 'TLSv1.2',
  tlsv1_1: 'TLSv1.1',
  tlsv1_2: 'TLSv1.2',
  tlsv1_3: 'TLSv1.3',
};

/** The `ciphers` Node is given: TLS 1.3 suites are named `TLS_*` and set apart by Node. */
export function tlsCiphers(sslCiphers: string | null): string {
  if (sslCiphers === null || sslCiphers.trim() === '') return INTERMEDIATE_CIPHERS;
  // Nova's ssl_ciphers (Python's set_ciphers) governs TLS 1.2 and below only; Node would turn
  // TLS 1.3 off for a list without TLS 1.3 suites, so the profile's are kept for it
  return /(^|:)TLS_/.test(sslCiphers) ? sslCiphers : `${TLS13_SUITES}:${sslCiphers}`;
}

/** The options a listener's address comes from, as messages name them (`[vnc] novncproxy_port`). */
export interface ListenOptionNames {
  readonly host: string;
  readonly port: string;
}

/**
 * A failure to listen as one line naming the option to change (no stack: nothing is wrong with
 * Porthole); an error that is no such failure as it is.
 */
export function listenFailure(err: unknown, host: string, port: number, names: ListenOptionNames): unknown {
  const code = (err as { code?: string })?.code;
  const at = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return new GatewayError('CONFIG_INVALID', `cannot listen on ${at} (${names.port}): address already in use; change ${names.port} or stop the process using it`, { cause: err });
    case 'EACCES':
      return new GatewayError('CONFIG_INVALID', `cannot listen on ${at} (${names.port}): permission denied${port < 1024 ? ' (a port below 1024 needs root or CAP_NET_BIND_SERVICE)' : ''}; change ${names.port}`, { cause: err });
    case 'EADDRNOTAVAIL':
      return new GatewayError('CONFIG_INVALID', `cannot listen on ${at} (${names.host}): address not available on this host; change ${names.host} to one of its addresses, or 0.0.0.0 for all`, { cause: err });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new GatewayError('CONFIG_INVALID', `cannot listen on ${at} (${names.host}): host name ${host} not found; change ${names.host}`, { cause: err });
  }
  return err;
}

export function createListener(opts: ListenerOptions, handlers: Handlers): { server: NetServer; tls: boolean } {
  // Node checks header timeouts on an interval (30 s by default): check often enough to bound them
  const checkEvery = Math.max(100, Math.min(1000, opts.handshakeTimeoutMs / 2));
  const plain = configure(createHttpServer({ maxHeaderSize: opts.maxHeaderSize, connectionsCheckingInterval: checkEvery }), opts, handlers);
  const certExists = opts.cert !== null && existsSync(opts.cert);
  if (opts.sslOnly && !certExists) {
    throw new GatewayError('CONFIG_INVALID', `[DEFAULT] ssl_only is set but the certificate file ${opts.cert ?? '(none)'} does not exist`);
  }
  // Without TLS the HTTP server listens itself: Node enforces headersTimeout only on servers that listen
  if (!certExists) return { server: plain, tls: false };
  const cert = readPem(opts.cert!, '[DEFAULT] cert');
  const key = opts.key ? readPem(opts.key, '[DEFAULT] key') : cert;
  const secure = configure(createSecureServer(opts, cert, key), opts, handlers);
  // Behind the detecting front the HTTP servers do not listen, so Node's header timeout does not
  // run: each connection serves one request, which must arrive within the handshake timeout
  for (const s of [plain, secure]) {
    s.maxRequestsPerSocket = 1;
    s.on('request', requestArrived);
    s.on('upgrade', requestArrived);
  }
  const server = createNetServer({ pauseOnConnect: true, noDelay: true }, (socket) => route(socket, plain, secure, opts));
  return { server, tls: true };
}

/** A certificate or key file, or one line naming its option and the OS's reason. */
function readPem(file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', `${option} = ${file}: cannot read it: ${(err as Error).message}`, { cause: err });
  }
}

function createSecureServer(opts: ListenerOptions, cert: Buffer, key: Buffer): HttpServer {
  const ciphers = tlsCiphers(opts.sslCiphers);
  try {
    return createHttpsServer({ cert, key, maxHeaderSize: opts.maxHeaderSize, ciphers, minVersion: MINIMUM_VERSIONS[opts.sslMinimumVersion] });
  } catch (err) {
    const message = (err as Error).message;
    if (opts.sslCiphers !== null && /cipher/i.test(message)) {
      throw new GatewayError('CONFIG_INVALID', `[console] ssl_ciphers = ${opts.sslCiphers}: ${message} (expected an OpenSSL cipher string, see openssl ciphers -v)`, { cause: err });
    }
    // OpenSSL's words for a file that is no PEM certificate or key, or a key of another certificate
    if (/PEM|key values mismatch|no start line|bad decrypt|ASN1|DECODER|certificate/i.test(message)) {
      const files = opts.key ? `[DEFAULT] cert = ${opts.cert}, [DEFAULT] key = ${opts.key}` : `[DEFAULT] cert = ${opts.cert} (with its key, [DEFAULT] key unset)`;
      throw new GatewayError('CONFIG_INVALID', `${files}: not a usable PEM certificate and private key: ${message}`, { cause: err });
    }
    throw err;
  }
}

const deadlines = new WeakMap<object, NodeJS.Timeout>();

function requestArrived(req: IncomingMessage): void {
  // the TLS socket wraps the TCP socket the deadline was set on
  const parent = (req.socket as { _parent?: { _peer?: object } })._parent;
  const raw = parent?._peer ?? parent ?? req.socket;
  clearTimeout(deadlines.get(raw));
}

function configure<S extends HttpServer>(server: S, opts: ListenerOptions, handlers: Handlers): S {
  server.headersTimeout = opts.handshakeTimeoutMs;
  server.requestTimeout = opts.handshakeTimeoutMs * 3;
  server.keepAliveTimeout = 5000;
  server.on('request', handlers.request);
  server.on('upgrade', handlers.upgrade);
  server.on('clientError', (_err, socket) => writeRefusal(socket, 400));
  return server;
}

function route(socket: Socket, plain: HttpServer, secure: HttpServer, opts: ListenerOptions): void {
  socket.on('error', () => socket.destroy());
  deadlines.set(socket, setTimeout(() => socket.destroy(), opts.handshakeTimeoutMs));
  socket.once('data', (chunk: Buffer) => {
    socket.pause();
    if (chunk[0] === TLS_HANDSHAKE) {
      secure.emit('connection', replayingStream(socket, chunk));
      return;
    }
    if (opts.sslOnly) {
      writeRefusal(socket, 400);
      return;
    }
    socket.unshift(chunk);
    plain.emit('connection', socket);
    socket.resume();
  });
  socket.resume();
}

/**
 * The socket as a plain stream that first replays the bytes already read. TLS reads a TCP
 * socket's handle directly, below the JS buffer where `unshift` puts them, so the ClientHello
 * would be lost; a non-socket stream makes it read through the stream API instead.
 */
function replayingStream(socket: Socket, first: Buffer): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  Object.defineProperties(stream, {
    remoteAddress: { get: () => socket.remoteAddress },
    remotePort: { get: () => socket.remotePort },
    _peer: { value: socket },
  });
  stream.push(first);
  socket.on('data', (c: Buffer) => {
    if (!stream.push(c)) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('close', () => stream.destroy());
  return stream;
}
