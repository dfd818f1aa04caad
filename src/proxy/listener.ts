/**
 * @module proxy/listener
 * One TCP listener per console proxy, serving HTTP and WebSocket, with TLS as websockify does
 * it for Nova: when `[DEFAULT] cert` names an existing file, each connection is looked at and a
 * TLS ClientHello (first byte 0x16) goes to the TLS server, anything else to the plain one;
 * `ssl_only` refuses the plain ones. A connection that sends nothing within the handshake
 * timeout is dropped.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { GatewayError } from '../errors.ts';

export interface ListenerOptions {
  readonly sslOnly: boolean;
  readonly cert: string | null;
  readonly key: string | null;
  readonly handshakeTimeoutMs: number;
  readonly maxHeaderSize: number;
}

export interface Handlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

const TLS_HANDSHAKE = 0x16;

export function createListener(opts: ListenerOptions, handlers: Handlers): { server: NetServer; tls: boolean } {
  const plain = configure(createHttpServer({ maxHeaderSize: opts.maxHeaderSize }), opts, handlers);
  const certExists = opts.cert !== null && existsSync(opts.cert);
  if (opts.sslOnly && !certExists) {
    throw new GatewayError('CONFIG_INVALID', `[DEFAULT] ssl_only is set but the certificate file ${opts.cert ?? '(none)'} does not exist`);
  }
  let secure: HttpServer | undefined;
  if (certExists) {
    const cert = readFileSync(opts.cert!);
    const key = opts.key ? readFileSync(opts.key) : cert;
    secure = configure(createHttpsServer({ cert, key, maxHeaderSize: opts.maxHeaderSize }), opts, handlers);
  }
  const server = createNetServer({ pauseOnConnect: true, noDelay: true }, (socket) => route(socket, plain, secure, opts));
  return { server, tls: secure !== undefined };
}

function configure<S extends HttpServer>(server: S, opts: ListenerOptions, handlers: Handlers): S {
  server.headersTimeout = opts.handshakeTimeoutMs;
  server.requestTimeout = opts.handshakeTimeoutMs * 3;
  server.keepAliveTimeout = 5000;
  server.on('request', handlers.request);
  server.on('upgrade', handlers.upgrade);
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    socket.destroy();
  });
  return server;
}

function route(socket: Socket, plain: HttpServer, secure: HttpServer | undefined, opts: ListenerOptions): void {
  socket.on('error', () => socket.destroy());
  if (!secure) {
    plain.emit('connection', socket);
    socket.resume();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), opts.handshakeTimeoutMs);
  socket.once('data', (chunk: Buffer) => {
    clearTimeout(timer);
    socket.pause();
    socket.unshift(chunk);
    if (chunk[0] === TLS_HANDSHAKE) secure.emit('connection', socket);
    else if (opts.sslOnly) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    } else plain.emit('connection', socket);
    socket.resume();
  });
  socket.resume();
}
