/**
 * @module proxy/client-address
 * Who the client of a request is. Behind a `[porthole] trusted_proxies` balancer every TCP peer
 * is the balancer, so the client is the right-most X-Forwarded-For address that is not a trusted
 * proxy itself (the left part of the header is whatever the client claimed, so it is never read).
 * Pure functions of the request: the console connection computes its client once and keeps it.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export interface ClientAddress {
  /** The IP address, without port: the key of single-use reconnects and of the failed-lookup budget. */
  readonly host: string;
  /** For logs and the sessions registry: `ip:port`, or the forwarded IP alone (balancers do not forward ports). */
  readonly display: string;
}

export function clientAddressOf(req: IncomingMessage, trusted: ReadonlySet<string>): ClientAddress {
  const peer = socketPeer(req);
  const forwarded = trusted.size > 0 ? forwardedClient(req, peer.host, trusted) : undefined;
  if (forwarded !== undefined) return { host: forwarded, display: forwarded };
  const host = peer.host ?? 'unknown';
  return { host, display: peer.host ? `${peer.host}:${peer.port}` : 'unknown' };
}

/** The client's IP address (through a trusted balancer: the one it forwarded). */
export function clientHost(req: IncomingMessage, trusted: ReadonlySet<string>): string {
  return clientAddressOf(req, trusted).host;
}

function forwardedClient(req: IncomingMessage, peer: string | undefined, trusted: ReadonlySet<string>): string | undefined {
  const header = req.headers['x-forwarded-for'];
  if (peer === undefined || !trusted.has(normalizeIp(peer)) || header === undefined) return undefined;
  const hops = (Array.isArray(header) ? header.join(',') : header).split(',').map((h) => normalizeIp(h.trim())).filter((h) => h !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trusted.has(hops[i]!)) return isIP(hops[i]!) ? hops[i]! : undefined;
  }
  return undefined;
}

export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

function socketPeer(req: IncomingMessage): { host?: string; port?: number } {
  // a TLS socket over the listener's replaying stream knows its peer only through that stream
  const s = req.socket as { remoteAddress?: string; remotePort?: number; _parent?: { remoteAddress?: string; remotePort?: number } };
  const peer = s.remoteAddress ? s : s._parent;
  return { host: peer?.remoteAddress, port: peer?.remotePort };
}
