/**
 * @module rfb/security-proxy
 * The RFB security proxy, as Nova's `RFBSecurityProxy` (nova/console/securityproxy/rfb.py): it
 * speaks the client role of the RFB handshake (RFC 6143 §7.1–7.3) to the VM's VNC server and
 * authenticates with what Porthole holds (VNC password, VeNCrypt with a client certificate),
 * and speaks the server role to the browser, offering exactly security type None, so the browser
 * never sees a backend secret. After ServerInit both sides are plain RFB and the relay takes
 * over byte for byte.
 *
 * In two halves that run at the same time once the backend's TCP connection is up and the
 * WebSocket accepted: `negotiateBackend` runs ProtocolVersion, Security, the scheme and
 * SecurityResult with the VNC server while `serveClient` gives the browser version 3.8, reads its
 * answer and (3.8) offers security types [None] and reads its choice; then, with the backend
 * authenticated, `serveClient` sends SecurityResult OK, forwards the browser's ClientInit (the
 * shared flag is the browser's to choose) and answers with the server's ServerInit. If the backend
 * could not be authenticated, the browser gets an RFB failure instead (see `serveClient`).
 * Overlapping the two halves saves the browser the backend's round trips before its first byte
 * (measured: 0.3 ms of 1.6 at p50); offering the types at once overlaps its choice with them too.
 * Each message to the browser is one `send`, which the caller makes one WebSocket message:
 * clients such as tempest's `test_novnc` read one RFB message per frame.
 *
 * As Nova: the first of the *server's* offered types that `auth_schemes` allows wins, and the
 * browser is never told what failed (information leakage: host names, certificate subjects,
 * server messages), only that the console could not be authenticated; the log says exactly what.
 * Beyond Nova: 3.3 and 3.7 servers (Nova requires 3.8), security type 2 with a password held per
 * server, VeNCrypt X509Vnc and X509Plain, and a deadline on every step.
 */
import type { Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { GatewayError, isGatewayError } from '../errors.ts';
import { escapeUnsafe, printable as printableText } from '../log/escape.ts';
import { noneAuth } from './auth/none.ts';
import { vencryptAuth } from './auth/vencrypt.ts';
import { vncAuth } from './auth/vnc.ts';
import { RfbReader, type ReaderErrors } from './reader.ts';
import { AUTH_FAILED_CLIENT_MESSAGE, backendAuthError, SecurityType, securityTypeName, type AuthScheme, type BackendAuthSettings, type BackendTransport } from './types.ts';

export type RfbMinor = 3 | 7 | 8;

const VERSION_LENGTH = 12;
/** Bound on a reason string from a server; real ones are a sentence. */
export const MAX_REASON = 4096;
/** Bound on the desktop name in ServerInit; noVNC shows it as a title. */
export const MAX_DESKTOP_NAME = 64 * 1024;
const SERVER_INIT_HEAD = 24;

const SCHEMES: readonly AuthScheme[] = [noneAuth, vncAuth, vencryptAuth];

/** The backend after SecurityResult: the socket to use from now on and the reader still fed by it. */
export interface BackendHandshake {
  readonly socket: Socket;
  readonly minor: RfbMinor;
  /** What authenticated the connection, for the log: `None`, `VncAuth`, `VeNCrypt X509None`. */
  readonly auth: string;
  /** @internal */
  readonly transport: Transport;
  /** The ServerInit the browser was given (`serveClient`): the pixel format a framer of the updates starts from. */
  readonly serverInit?: Buffer;
  /** With `holdEarly`: what the browser sent after ClientInit before the relay, not yet written to the backend. */
  readonly early?: Buffer;
}

/** The browser's side as the RFB code sees it: one `send` is one RFB message (one WebSocket message). */
export interface ClientSeam {
  send(message: Buffer): void;
  readonly reader: RfbReader;
}

// ---------------------------------------------------------------------------------------------
// backend

export interface NegotiateOptions {
  readonly timeoutMs: number;
  /** `host:port`, for log messages. */
  readonly address: string;
}

/** Runs the handshake with the VNC server up to and including SecurityResult. */
export async function negotiateBackend(socket: Socket, settings: BackendAuthSettings, opts: NegotiateOptions): Promise<BackendHandshake> {
  const transport = new Transport(socket, opts.address, opts.timeoutMs);
  const r = transport.reader;
  try {
    const version = await r.read(VERSION_LENGTH, 'ProtocolVersion');
    const minor = parseVersion(version);
    if (minor === undefined) throw protocol(transport, 'ProtocolVersion', `not an RFB 3.x server: ${printable(version)}`);
    transport.write(versionMessage(minor));

    let type: number;
    if (minor === 3) {
      // §7.1.2 (3.3): the server decides, as a U32; 0 is a failure with a reason
      type = await r.u32('Security');
      if (type === SecurityType.Invalid) throw await serverRefused(transport, 'Security', minor);
      const scheme = SCHEMES.find((s) => s.securityType === type);
      const why = scheme ? whyNot(scheme, settings) : 'not supported by Porthole';
      if (!scheme || why) throw backendAuthError('BACKEND_AUTH_NO_SCHEME', `backend ${opts.address}: RFB 3.3 server chose security type ${securityTypeName(type)}, which Porthole may not use: ${why}`);
    } else {
      const count = await r.u8('Security');
      if (count === 0) throw await serverRefused(transport, 'Security', minor);
      const offered = [...(await r.read(count, 'Security'))];
      const chosen = chooseScheme(offered, settings);
      if (!chosen.scheme) throw backendAuthError('BACKEND_AUTH_NO_SCHEME', `backend ${opts.address}: no common security type: the server offers ${offered.map(securityTypeName).join(', ')}; auth_schemes = ${settings.schemes.join(',')}${chosen.why.length ? ` (${chosen.why.join('; ')})` : ''}`);
      type = chosen.scheme.securityType;
      transport.write([type]);
    }
    const scheme = SCHEMES.find((s) => s.securityType === type)!;
    const auth = await scheme.handshake(transport, settings);

    // §7.1.3: a 3.3 or 3.7 server sends no SecurityResult for None; a 3.8 one always does
    if (!(minor < 8 && type === SecurityType.None)) {
      const result = await r.u32('SecurityResult');
      if (result !== 0) {
        const reason = minor === 8 ? await r.lengthPrefixed('SecurityResult reason', MAX_REASON) : undefined;
        throw backendAuthError('BACKEND_AUTH_FAILED', `backend ${opts.address}: the server refused ${auth} (SecurityResult ${result}${reason ? `: ${printable(reason)}` : ''})`);
      }
    }
    // the browser may take its time to answer; the backend's next step gets a deadline of its own
    r.pauseDeadline();
    return { socket: transport.socket, minor, auth, transport };
  } catch (err) {
    const e = transport.explain(asGatewayError(err, transport));
    transport.destroy();
    r.fail(e);
    r.finish();
    throw e;
  }
}

/** The first of the server's types that the settings allow and can use (Nova's `find_scheme`). */
export function chooseScheme(offered: readonly number[], settings: BackendAuthSettings): { scheme: AuthScheme | undefined; why: string[] } {
  const why: string[] = [];
  for (const type of offered) {
    const scheme = SCHEMES.find((s) => s.securityType === type);
    if (!scheme || !settings.schemes.includes(scheme.name)) continue;
    const reason = scheme.unusable(settings);
    if (reason === null) return { scheme, why };
    why.push(`${scheme.name}: ${reason}`);
  }
  return { scheme: undefined, why };
}

function whyNot(scheme: AuthScheme, settings: BackendAuthSettings): string | null {
  if (!settings.schemes.includes(scheme.name)) return `auth_schemes = ${settings.schemes.join(',')}`;
  return scheme.unusable(settings);
}

async function serverRefused(t: Transport, step: string, minor: RfbMinor): Promise<GatewayError> {
  // §7.1.2: no security types (or type 0 in 3.3) is followed by a reason string
  const reason = await t.reader.lengthPrefixed(`${step} failure reason`, MAX_REASON);
  return backendAuthError('BACKEND_AUTH_FAILED', `backend ${t.address}: the RFB 3.${minor} server refused the connection: ${printable(reason)}`);
}

// ---------------------------------------------------------------------------------------------
// browser

/** How the WebSocket closes once the browser was told, in RFB, that its console could not be authenticated. */
export const REFUSED_CLOSE = { code: 1000, reason: 'console could not be authenticated' } as const;
/** How it closes when the backend fails after SecurityResult OK, where RFB has no way left to give a reason. */
export const BACKEND_GONE_REASON = 'The console closed during the connection';

/**
 * The server role toward the browser: version 3.8 and (to a 3.8 browser) security types [None]
 * while the backend's negotiation (`backend`) runs; once it is authenticated, OK (3.7: the types
 * then), then ClientInit to the backend and its ServerInit back. On return the backend socket is
 * paused with any bytes after ServerInit put back in it, for the relay, which takes it at once. A failed negotiation rejects with the backend's failure (its code and log
 * message), after the browser was told in RFB; the close it asks for is `REFUSED_CLOSE`. A backend
 * that fails after SecurityResult OK rejects with a close reason saying only that it closed.
 */
export async function serveClient(client: ClientSeam, negotiation: Promise<BackendHandshake>, opts: { timeoutMs: number; holdEarly?: boolean }): Promise<BackendHandshake> {
  const r = client.reader;
  // whatever happens to the browser, the negotiation's failure is handled here or by the caller
  negotiation.catch(() => {});
  const minor = await clientVersion(client);
  // 3.8 (noVNC, tempest): the types offered are [None] whatever the backend does, and the
  // SecurityResult after the browser's choice can still carry the backend's failure, so the
  // browser chooses while the backend's handshake runs. Measured with a backend 1.25 ms a step
  // away: open -> ServerInit 7.13 vs 7.32 ms at p50 (one browser round trip); on loopback no
  // difference, the proxy's one thread doing both halves (the wait moves to the SecurityResult).
  // In 3.7 and 3.3 only the types can say that the backend failed: they wait for it.
  let choice: number | undefined;
  let clientFailure: unknown;
  if (minor === 8) {
    client.send(TYPES_NONE);
    try {
      choice = await r.u8('Security');
    } catch (err) {
      // decided as if the backend had been awaited first: its failure, if it fails, wins
      clientFailure = err;
    }
  }
  // the backend has the next move; the browser's deadline starts again when it has one
  r.pauseDeadline();
  let backend: BackendHandshake;
  try {
    backend = await negotiation;
    r.resumeDeadline(opts.timeoutMs);
  } catch (err) {
    r.resumeDeadline(opts.timeoutMs);
    const failure = isGatewayError(err) ? err : new GatewayError('BACKEND_PROTOCOL', `RFB handshake with the backend failed: ${(err as Error)?.message ?? err}`, { status: 502, closeCode: 1011 });
    // 3.8: after the browser's choice, whichever it was (the backend's failure is what it is told)
    if (minor !== 8 || choice !== undefined) refuse(client, minor, failure.clientMessage);
    throw new GatewayError(failure.code, failure.message, { status: failure.status, closeCode: REFUSED_CLOSE.code, clientMessage: REFUSED_CLOSE.reason, cause: failure });
  }
  if (clientFailure !== undefined) throw clientFailure;
  const t = backend.transport;
  if (minor === 3) {
    client.send(u32(SecurityType.None));
  } else {
    if (minor === 7) {
      client.send(TYPES_NONE);
      choice = await r.u8('Security');
    }
    if (choice !== SecurityType.None) {
      if (minor === 8) client.send(failureResult(`Only the security type None (${SecurityType.None}) is supported`));
      throw new GatewayError('CLIENT_PROTOCOL', `client chose security type ${securityTypeName(choice!)}; only None was offered`, { closeCode: 1002 });
    }
    if (minor === 8) client.send(RESULT_OK);
  }
  const clientInit = await r.read(1, 'ClientInit');
  t.write(clientInit);
  const init = await serverInit(t, opts.timeoutMs);
  client.send(init);
  // a client may pipeline its first messages; they go to the backend before the relay starts, or
  // to the caller when it filters them (the clipboard policy: they may hold a ClientCutText)
  const early = r.finish();
  if (opts.holdEarly) {
    t.handOff(true);
    return { ...backend, serverInit: init, early };
  }
  if (early.length > 0) t.write(early);
  t.handOff(true);
  return { ...backend, serverInit: init };
}

/**
 * Porthole as the RFB client itself (`client.ts`) ends the handshake: ClientInit with the shared
 * flag, the backend's ServerInit (bounded, with a deadline); then the socket is handed off paused,
 * any bytes after ServerInit put back in it. On failure the socket is destroyed.
 */
export async function initBackend(backend: BackendHandshake, shared: boolean, timeoutMs: number): Promise<Buffer> {
  const t = backend.transport;
  try {
    t.write([shared ? 1 : 0]);
    const init = await serverInit(t, timeoutMs);
    t.handOff();
    return init;
  } catch (err) {
    t.destroy();
    t.reader.finish();
    throw err;
  }
}

/** The backend's ServerInit, after the browser's ClientInit went to it. */
async function serverInit(t: Transport, timeoutMs: number): Promise<Buffer> {
  try {
    t.reader.resumeDeadline(timeoutMs);
    const head = await t.reader.read(SERVER_INIT_HEAD, 'ServerInit');
    const nameLength = head.readUInt32BE(20);
    if (nameLength > MAX_DESKTOP_NAME) throw protocol(t, 'ServerInit', `desktop name length ${nameLength} exceeds ${MAX_DESKTOP_NAME}`);
    const name = await t.reader.read(nameLength, 'ServerInit name');
    return Buffer.concat([head, name]);
  } catch (err) {
    // past SecurityResult OK, RFB has no way left to give a reason: the close frame says only this
    const e = asGatewayError(err, t);
    throw new GatewayError(e.code, e.message, { status: e.status, closeCode: e.closeCode, clientMessage: BACKEND_GONE_REASON, cause: e });
  }
}

/**
 * The browser's side of a failed backend authentication, where RFB can carry a reason, with the
 * words of `clientMessage` only: in 3.3 and 3.7 instead of the security types (type 0; no
 * types), in 3.8 in the SecurityResult after the browser's choice (as Nova). A browser that is
 * gone by then gets nothing: the failure is the backend's all the same.
 */
function refuse(client: ClientSeam, minor: RfbMinor, clientMessage: string = AUTH_FAILED_CLIENT_MESSAGE): void {
  try {
    client.send(minor === 8 ? failureResult(clientMessage) : Buffer.concat([minor === 3 ? u32(0) : Buffer.from([0]), reasonString(clientMessage)]));
  } catch {
    // the failure to report is the backend's
  }
  client.reader.finish();
}

async function clientVersion(client: ClientSeam): Promise<RfbMinor> {
  client.send(versionMessage(8));
  const v = await client.reader.read(VERSION_LENGTH, 'ProtocolVersion');
  // §7.1.1: the client answers with a version no higher than the server's
  const m = /^RFB 003\.00([378])\n$/.exec(v.toString('latin1'));
  if (!m) throw new GatewayError('CLIENT_PROTOCOL', `client sent no RFB 3.3/3.7/3.8 version: ${printable(v)}`, { closeCode: 1002 });
  return Number(m[1]) as RfbMinor;
}

export function clientReader(timeoutMs: number): RfbReader {
  return new RfbReader({ timeoutMs, errors: CLIENT_ERRORS });
}

const CLIENT_ERRORS: ReaderErrors = {
  closed: (step, detail) => new GatewayError('CLIENT_CLOSED', `client went away during the RFB handshake (${step}): ${detail}`),
  timeout: (step) => new GatewayError('CLIENT_TIMEOUT', `client did not send ${step} in time`, { closeCode: 1008 }),
  protocol: (step, detail) => new GatewayError('CLIENT_PROTOCOL', `client broke the RFB handshake at ${step}: ${detail}`, { closeCode: 1002 }),
};

// ---------------------------------------------------------------------------------------------
// messages

/**
 * §7.1.1: `RFB 003.00x\n`. Other minors map as the spec says: 3.4–3.6 (and unknown ones below 7)
 * are 3.3, 3.889 (Apple) and anything above 8 is 3.8; major versions other than 3 are not RFB.
 */
export function parseVersion(v: Buffer): RfbMinor | undefined {
  const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(v.toString('latin1'));
  if (!m || Number(m[1]) !== 3) return undefined;
  const minor = Number(m[2]);
  return minor >= 8 ? 8 : minor === 7 ? 7 : minor >= 3 ? 3 : undefined;
}

/** Security types [None] (§7.1.2, 3.7 and 3.8) and SecurityResult OK (§7.1.3): the same bytes for every browser; nothing writes into a message sent. */
const TYPES_NONE = Buffer.from([1, SecurityType.None]);
const RESULT_OK = Buffer.alloc(4);

function versionMessage(minor: RfbMinor): Buffer {
  return Buffer.from(`RFB 003.00${minor}\n`, 'latin1');
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function reasonString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([u32(bytes.length), bytes]);
}

/** SecurityResult "failed" (1) and its reason, one message (§7.1.3, 3.8). */
function failureResult(text: string): Buffer {
  return Buffer.concat([u32(1), reasonString(text)]);
}

/** A peer's words for the log: bounded, controls and bidirectional overrides escaped. */
function printable(b: Buffer | undefined): string {
  if (!b) return '""';
  return printableText(b.subarray(0, 200).toString('utf8')) + (b.length > 200 ? '…' : '');
}

function protocol(t: Transport, step: string, detail: string): GatewayError {
  return backendAuthError('BACKEND_PROTOCOL', `backend ${t.address}: broke the RFB handshake at ${step}: ${detail}`);
}

function asGatewayError(err: unknown, t: Transport): GatewayError {
  if (isGatewayError(err)) return err;
  return backendAuthError('BACKEND_PROTOCOL', `backend ${t.address}: RFB handshake failed: ${(err as Error)?.message ?? String(err)}`, err);
}

// ---------------------------------------------------------------------------------------------
// transport

/** The backend connection during the handshake: the socket (TCP, then maybe TLS) and its reader. */
class Transport implements BackendTransport {
  readonly reader: RfbReader;
  socket: Socket;
  private readonly raw: Socket;
  private detach: (keepReading?: boolean) => void;
  /** Set once TLS is up: what the proxy presented, for explaining a server that hangs up. */
  private tlsClient: string | null = null;

  constructor(socket: Socket, readonly address: string, timeoutMs: number) {
    this.raw = socket;
    this.socket = socket;
    this.reader = new RfbReader({ timeoutMs, errors: backendErrors(address), onTimeout: () => this.destroy() });
    this.detach = this.reader.attach(socket);
  }

  write(bytes: Buffer | Uint8Array | readonly number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes as Uint8Array));
  }

  async startTls(options: ConnectionOptions): Promise<void> {
    this.detach();
    // the client speaks first in TLS: a server that sent more is not speaking VeNCrypt
    if (this.reader.available > 0) throw protocol(this, 'VeNCrypt', `${this.reader.available} unexpected bytes before the TLS handshake`);
    let secure: TLSSocket;
    try {
      secure = tlsConnect({ ...options, socket: this.raw });
    } catch (err) {
      throw tlsError(this.address, err as NodeJS.ErrnoException);
    }
    this.socket = secure;
    const handshake = new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    try {
      await this.reader.guard(handshake);
    } catch (err) {
      if (isGatewayError(err)) throw err;
      throw tlsError(this.address, err as NodeJS.ErrnoException);
    }
    secure.removeAllListeners('error');
    const own = secure.getCertificate();
    this.tlsClient = own && 'subject' in own && own.subject ? `the client certificate ${JSON.stringify(own.subject.CN ?? '')} issued by ${JSON.stringify(own.issuer?.CN ?? '')}` : 'no client certificate ([vnc] vencrypt_client_cert is not set)';
    this.detach = this.reader.attach(secure, (err) => tlsError(this.address, err));
  }

  /**
   * In TLS 1.3 the server checks the client certificate after the client has finished its side
   * of the handshake, so a refused certificate shows up as a server that hangs up (or sends an
   * alert) right after it: say so in the log instead of "closed".
   */
  explain(err: GatewayError): GatewayError {
    if (this.tlsClient === null || err.code !== 'BACKEND_CLOSED') return err;
    return backendAuthError('BACKEND_TLS_FAILED', `${err.message}; the server hung up after the TLS handshake, as a VNC server that refuses the client certificate does (the proxy presented ${this.tlsClient})`, err);
  }

  /**
   * Pauses the socket with the bytes read past ServerInit put back, for the relay; `relayNext`:
   * the relay takes it in this same turn (`serveClient`'s caller), so its reads need not stop.
   */
  handOff(relayNext = false): void {
    const rest = this.reader.finish();
    this.detach(relayNext);
    if (rest.length > 0) this.socket.unshift(rest);
  }

  destroy(): void {
    this.socket.destroy();
    this.raw.destroy();
  }
}

function backendErrors(address: string): ReaderErrors {
  return {
    closed: (step, detail) => backendAuthError('BACKEND_CLOSED', `backend ${address} closed the connection during the RFB handshake (${step}): ${detail}`),
    timeout: (step) => backendAuthError('BACKEND_TIMEOUT', `backend ${address} did not complete the RFB handshake in time (waiting for ${step})`),
    protocol: (step, detail) => backendAuthError('BACKEND_PROTOCOL', `backend ${address}: broke the RFB handshake at ${step}: ${detail}`),
  };
}

function tlsError(address: string, err: NodeJS.ErrnoException): GatewayError {
  // OpenSSL's message ends in a newline (found by the fuzz): the log message stays one line, escaped as a peer's words are
  const what = escapeUnsafe((err.code ? `${err.code}: ${err.message}` : err.message).trim());
  return backendAuthError('BACKEND_TLS_FAILED', `backend ${address}: VeNCrypt TLS failed: ${what}`, err);
}
