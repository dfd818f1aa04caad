/**
 * @module proxy/origin
 * The Origin check of Nova's console proxy (CVE-2015-0259, cross-site WebSocket hijacking): a
 * browser's Origin hostname must equal the Host header's hostname (port dropped) or be one of
 * `[console] allowed_origins`, and its scheme (or `X-Forwarded-Proto` when a TLS-terminating
 * balancer is in front) must match the scheme of the token's `access_url_base` (ws~http,
 * wss~https). No Origin header means a non-browser client, which Nova lets through.
 * As in Nova, the refusals do not quote the client's headers: a client can put anything there,
 * a console token included, and the log must never hold one.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from '../errors.ts';

export interface OriginFacts {
  /** Lowercased hostname of the Origin header, or undefined when there is none. */
  readonly hostname: string | undefined;
  readonly scheme: string | undefined;
}

export function checkOriginHost(headers: IncomingHttpHeaders, allowedOrigins: readonly string[]): OriginFacts {
  const origin = headers.origin;
  if (origin === undefined) return { hostname: undefined, scheme: undefined };
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw refuse('ORIGIN_INVALID', 'Origin header not valid');
  }
  const hostname = stripBrackets(url.hostname.toLowerCase());
  const forwarded = firstValue(headers['x-forwarded-proto']);
  const scheme = (forwarded ?? url.protocol.replace(/:$/, '')).toLowerCase();
  if (hostname === '' || scheme === '') throw refuse('ORIGIN_INVALID', 'Origin header not valid');
  const expected = new Set(allowedOrigins.map((o) => o.toLowerCase()));
  const host = hostOf(headers.host);
  if (host !== undefined) expected.add(host);
  if (!expected.has(hostname)) {
    throw refuse('ORIGIN_MISMATCH', 'Origin header does not match this host nor [console] allowed_origins');
  }
  return { hostname, scheme };
}

/** Nova's `verify_origin_proto`, run once the token (and its access_url_base) is known. */
export function checkOriginScheme(facts: OriginFacts, accessUrlBase: string | null): void {
  if (facts.scheme === undefined) return;
  if (!accessUrlBase) throw refuse('ORIGIN_PROTO_MISMATCH', 'token has no access_url_base: cannot validate the Origin protocol');
  let base: string;
  try {
    base = new URL(accessUrlBase).protocol.replace(/:$/, '');
  } catch {
    throw refuse('ORIGIN_PROTO_MISMATCH', 'token access_url_base is not a URL: cannot validate the Origin protocol');
  }
  const expected = [base];
  if (base === 'ws') expected.push('http');
  if (base === 'wss') expected.push('https');
  if (!expected.includes(facts.scheme)) {
    throw refuse('ORIGIN_PROTO_MISMATCH', `Origin header protocol (or X-Forwarded-Proto) does not match the console's (${base})`);
  }
}

/** Host header → hostname without port, `[v6]` brackets removed, lowercased. */
export function hostOf(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(1, end) : undefined;
  }
  const colon = h.indexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

function stripBrackets(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

function firstValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s?.split(',')[0]?.trim() || undefined;
}

function refuse(code: 'ORIGIN_INVALID' | 'ORIGIN_MISMATCH' | 'ORIGIN_PROTO_MISMATCH', log: string): GatewayError {
  return new GatewayError(code, log, { status: 403, clientMessage: 'Origin not allowed' });
}
