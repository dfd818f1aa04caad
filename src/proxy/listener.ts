/**
 * @module proxy/listener
 * One TCP listener per console proxy, serving HTTP and WebSocket, with TLS as websockify does
 * it for Nova: when `[DEFAULT] cert` names an existing file, each connection is looked at and a
 * TLS ClientHello (first byte 0x16) goes to the TLS server, anything else to the plain one;
 * `ssl_only` refuses the plain ones. A connection that sends nothing within the handshake
 * timeout is dropped. TLS follows Mozilla's "intermediate" profile unless `[console]
 * ssl_ciphers` / `ssl_minimum_version` say otherwise (`http/tls.ts`, shared with the API); the
 * TLS server is handed back so that a renewed certificate can replace its context
 * (`http/cert-reload.ts`).
 */
import { existsSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { GatewayError } from '../errors.ts';
import { secureOptions, type SecureOptions, type SslMinimumVersion, type TlsSettings } from '../http/tls.ts';
import { writeRefusal } from './refusal.ts';

export { INTERMEDIATE_CIPHERS, tlsCiphers, type SslMinimumVersion } from '../http/tls.ts';

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

/** A listener's TLS side, for a certificate reload (`http/cert-reload.ts`). */
export interface ListenerTls {
  /** The files and policy it was built from. */
  readonly settings: TlsSettings;
  /** The TLS server behind the detecting front: it takes a new secure context. */
  readonly server: HttpsServer;
  /** What it was started with. */
  readonly served: SecureOptions;
}

const TLS_HANDSHAKE = 0x16;

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

export function createListener(opts: ListenerOptions, handlers: Handlers): { server: NetServer; tls: ListenerTls | undefined } {
  // Node checks header timeouts on an interval (30 s by default): check often enough to bound them
  const checkEvery = Math.max(100, Math.min(1000, opts.handshakeTimeoutMs / 2));
  const plain = configure(createHttpServer({ maxHeaderSize: opts.maxHeaderSize, connectionsCheckingInterval: checkEvery }), opts, handlers);
  const certExists = opts.cert !== null && existsSync(opts.cert);
  if (opts.sslOnly && !certExists) {
    throw new GatewayError('CONFIG_INVALID', `[DEFAULT] ssl_only is set but the certificate file ${opts.cert ?? '(none)'} does not exist`);
  }
  // Without TLS the HTTP server listens itself: Node enforces headersTimeout only on servers that listen
  if (!certExists) return { server: plain, tls: undefined };
  const settings: TlsSettings = {
    files: { cert: opts.cert!, key: opts.key || null, certOption: '[DEFAULT] cert', keyOption: '[DEFAULT] key' },
    policy: { sslCiphers: opts.sslCiphers, sslMinimumVersion: opts.sslMinimumVersion },
  };
  const served = secureOptions(settings);
  const secure = configure(createHttpsServer({ ...served, maxHeaderSize: opts.maxHeaderSize }), opts, handlers);
  // Behind the detecting front the HTTP servers do not listen, so Node's header timeout does not
  // run: each connection serves one request, which must arrive within the handshake timeout
  for (const s of [plain, secure]) {
    s.maxRequestsPerSocket = 1;
    s.on('request', requestArrived);
    s.on('upgrade', requestArrived);
  }
  const server = createNetServer({ pauseOnConnect: true, noDelay: true }, (socket) => route(socket, plain, secure, opts));
  return { server, tls: { settings, server: secure, served } };
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
