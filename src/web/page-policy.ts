/**
 * @module web/page-policy
 * The security headers of the console proxy's HTTP side. Every response: `X-Frame-Options: DENY`
 * and, when it came over TLS, `Strict-Transport-Security`. The console page: a
 * Content-Security-Policy built per request, whose `connect-src` is the page's own origin plus,
 * only when the page URL's query names another WebSocket host or port (console.js
 * `websocketTarget`: `host`, `port`, `encrypt`), exactly that one origin; and whose
 * `frame-ancestors` is `'none'` unless sites allowed to embed the page are given.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { GatewayError } from '../errors.ts';

/** One year; no includeSubDomains: the proxy's name may share a domain with sites without TLS. */
export const HSTS = 'max-age=31536000';

// LDH labels, which is all a CSP host-source can hold (no IPv6 literal, no other character:
// a value that reaches the header unchecked could add directives of its own)
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const PORT = /^[1-9]\d{0,4}$/;
const ORIGIN = /^(https?):\/\/(\*\.)?([^:/]+)(?::([^/]*))?\/?$/i;

/** Whether the request came over TLS (also through the listener's ClientHello-detecting front). */
export function overTls(req: IncomingMessage): boolean {
  return (req.socket as Partial<TLSSocket>).encrypted === true;
}

/** Headers every response of the console listener's HTTP side carries. */
export function setResponsePolicy(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('X-Frame-Options', 'DENY');
  if (overTls(req)) res.setHeader('Strict-Transport-Security', HSTS);
}

/**
 * The `frame-ancestors` source list for `origins` (`https://portal.example.com[:port]`,
 * `https://*.example.com`, `'self'`); `'none'` for an empty list. Checked once, at start.
 */
export function frameAncestors(origins: readonly string[]): string {
  if (origins.length === 0) return "'none'";
  return origins
    .map((o) => {
      if (o === "'self'") return o;
      const m = ORIGIN.exec(o);
      if (!m || !HOSTNAME.test(m[3]!) || (m[4] !== undefined && !validPort(m[4]))) {
        throw new GatewayError('CONFIG_INVALID', `frame ancestor "${o}": expected 'self' or an origin such as https://portal.example.com or https://*.example.com:8443`);
      }
      return `${m[1]!.toLowerCase()}://${m[2] ?? ''}${m[3]!.toLowerCase()}${m[4] ? `:${m[4]}` : ''}`;
    })
    .join(' ');
}

/** The console page's Content-Security-Policy for this request. */
export function pageCsp(req: IncomingMessage, rawUrl: string, ancestors: string, inlineStyles = false): string {
  const other = websocketOrigin(req, rawUrl);
  // inline styles only for a page whose library writes them (xterm.js's <style> elements and
  // colour attributes); a style cannot run script, and scripts stay 'self'
  return `default-src 'self'; connect-src 'self'${other ? ` ${other}` : ''}; img-src 'self' data:; style-src 'self'${inlineStyles ? " 'unsafe-inline'" : ''}; object-src 'none'; base-uri 'none'; frame-ancestors ${ancestors}`;
}

/**
 * The Content-Security-Policy of a console client page served from `[DEFAULT] web`
 * (spice-html5, `client-page.ts`): Porthole's page policy with three differences the client
 * needs. Scripts: its own files, and its inline scripts and event handlers each by hash
 * (`'unsafe-hashes'` is what lets a hash name an `onclick` attribute). Styles: `'unsafe-inline'`,
 * because the client writes style attributes with setAttribute (display.js positions a video
 * stream's element so) and its markup has style attributes; a style cannot run script. Images and
 * media: `data:` (JPEG and cursor images) and `blob:` (video streams, audio).
 */
export function clientPageCsp(req: IncomingMessage, rawUrl: string, ancestors: string, inline: { readonly scripts: readonly string[]; readonly handlers: readonly string[] }): string {
  const other = websocketOrigin(req, rawUrl);
  const hashes = [...inline.scripts, ...inline.handlers];
  const script = `'self'${inline.handlers.length ? " 'unsafe-hashes'" : ''}${hashes.length ? ` ${hashes.join(' ')}` : ''}`;
  return `default-src 'self'; script-src ${script}; connect-src 'self'${other ? ` ${other}` : ''}; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors ${ancestors}`;
}

/**
 * The WebSocket origin the page will connect to when its query names a `host` or `port` (else
 * null: CSP3's 'self' covers ws: and wss: to the page's own host and port), computed as
 * console.js does: `host` or the page's hostname (the Host header), `port` or the page's port,
 * wss when the page came over TLS or `encrypt` is true. A `ws:` source also matches `wss:`
 * (CSP3 scheme-part match), so a page served as http by a balancer that terminates TLS still
 * connects. Anything but a hostname or IPv4 address and a port number is not added: the page
 * then cannot connect there. Parameters in the URL's #fragment (console.js prefers them) never
 * reach the server, so they cannot widen the policy either.
 */
export function websocketOrigin(req: IncomingMessage, rawUrl: string): string | null {
  const q = rawUrl.indexOf('?');
  if (q === -1) return null;
  const params = new URLSearchParams(rawUrl.slice(q + 1));
  const host = last(params, 'host');
  const port = last(params, 'port');
  if (host === null && port === null) return null;
  const own = hostHeader(req.headers.host);
  const h = host ?? own?.host;
  const p = port ?? own?.port ?? '';
  if (h === undefined || !HOSTNAME.test(h) || (p !== '' && !validPort(p))) return null;
  const secure = overTls(req) || /^(1|true|yes|on)$/i.test(last(params, 'encrypt') ?? '');
  return `${secure ? 'wss' : 'ws'}://${h.toLowerCase()}${p ? `:${p}` : ''}`;
}

// console.js reads the last of repeated parameters, as Nova's proxy takes the last `token`
function last(params: URLSearchParams, name: string): string | null {
  const values = params.getAll(name);
  return values.length === 0 ? null : values[values.length - 1]!;
}

function hostHeader(value: string | undefined): { host: string; port: string } | undefined {
  const m = value === undefined ? null : /^([^:[\]]+)(?::(\d*))?$/.exec(value);
  return m ? { host: m[1]!, port: m[2] ?? '' } : undefined;
}

function validPort(p: string): boolean {
  return PORT.test(p) && Number(p) <= 65535;
}
