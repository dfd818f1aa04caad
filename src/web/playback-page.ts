/**
 * @module web/playback-page
 * The recording playback page, `/porthole/playback.html?token=<playback token>` on the noVNC
 * listener (`static/playback.html`, `playback.js`, `playback.css`; the proxy's playback
 * WebSocket is `proxy/playback.ts`). Served as the console page is: no caching (its URL holds a
 * token), no Referer, Porthole's page CSP; its script and style come from `/porthole/` as the
 * console page's do.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { frameAncestors, pageCsp, setResponsePolicy } from './page-policy.ts';

export const PLAYBACK_PAGE_PATH = '/porthole/playback.html';
const FILE = join(dirname(fileURLToPath(import.meta.url)), 'static', 'playback.html');

/** A handler that answers the playback page's path (true) and leaves every other request (false). */
export function playbackPage(opts: { readonly frameAncestors?: readonly string[] } = {}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const html = readFileSync(FILE);
  const ancestors = frameAncestors(opts.frameAncestors ?? []);
  return (req, res) => {
    const rawUrl = req.url ?? '/';
    if (rawUrl.split('?', 1)[0] !== PLAYBACK_PAGE_PATH) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    setResponsePolicy(req, res);
    if (ancestors !== "'none'") res.removeHeader('X-Frame-Options');
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': html.length,
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': pageCsp(req, rawUrl, ancestors),
    });
    res.end(req.method === 'HEAD' ? undefined : html);
    return true;
  };
}
