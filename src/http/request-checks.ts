/**
 * @module http/request-checks
 * What a console listener requires of an HTTP request before it acts on it, beyond what Node's
 * parser enforces: HTTP/1.x (a request line without a version is HTTP/0.9 to llhttp, which still
 * hands over the headers that follow it), one Host (RFC 9112 §3.2: a server must answer 400 to
 * more than one, since two parts of a chain may each read a different one; HTTP/1.0 may send
 * none), and, for a WebSocket upgrade, HTTP/1.1, no body (a GET upgrade with Content-Length or chunked framing is how one
 * request is smuggled inside another through a proxy that reads it differently) and the
 * checks `ws` would make, done before the backend is dialled so a bad request costs nothing.
 * Pure functions of the request, in `src/http/` because both sides of a console listener use
 * them: the upgrade (`proxy/`) and the console pages (`web/`).
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.ts';

/** A problem with any request to a console listener, or undefined. */
export function requestProblem(req: IncomingMessage): GatewayError | undefined {
  if (req.httpVersionMajor !== 1) {
    return new GatewayError('BAD_REQUEST', `HTTP/${req.httpVersion} request: HTTP/1.x is required`, { status: 400, clientMessage: 'HTTP/1.1 is required' });
  }
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts++;
  // HTTP/1.0 may omit Host; nothing may send two
  if (hosts > 1 || (hosts === 0 && req.httpVersionMinor >= 1)) {
    return new GatewayError('BAD_REQUEST', `${hosts} Host headers: exactly one is required`, { status: 400, clientMessage: 'exactly one Host header is required' });
  }
  return undefined;
}

const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
/** `Sec-WebSocket-Protocol` as `ws` parses it (RFC 6455 §4.1: a list of RFC 7230 tokens). */
const PROTOCOL_LIST = new RegExp(`^${TOKEN}(?:[ \\t]*,[ \\t]*${TOKEN})*$`);
const KEY = /^[+/0-9A-Za-z]{22}==$/;

/** A problem with a WebSocket upgrade request (RFC 6455 §4.2.1), or undefined. */
export function upgradeProblem(req: IncomingMessage): GatewayError | undefined {
  const general = requestProblem(req);
  if (general) return general;
  // RFC 6455 §4.1: the opening handshake is an HTTP/1.1 (or later) GET
  if (req.httpVersionMinor < 1) return new GatewayError('BAD_REQUEST', `HTTP/${req.httpVersion} upgrade request: HTTP/1.1 is required`, { status: 400 });
  const h = req.headers;
  const key = h['sec-websocket-key'];
  const version = h['sec-websocket-version'];
  if (req.method !== 'GET' || h.upgrade?.toLowerCase() !== 'websocket' || !key || !KEY.test(key) || (version !== '13' && version !== '8')) {
    return new GatewayError('BAD_REQUEST', 'not a valid WebSocket upgrade request', { status: 400 });
  }
  const protocols = h['sec-websocket-protocol'];
  if (protocols !== undefined && !validProtocolList(protocols)) {
    return new GatewayError('BAD_REQUEST', 'invalid Sec-WebSocket-Protocol header', { status: 400 });
  }
  if (h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')) {
    return new GatewayError('BAD_REQUEST', 'a WebSocket upgrade request must not have a body', { status: 400 });
  }
  return undefined;
}

function validProtocolList(header: string): boolean {
  if (!PROTOCOL_LIST.test(header)) return false;
  const names = header.split(',').map((p) => p.trim());
  return new Set(names).size === names.length;
}
