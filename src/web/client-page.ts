/**
 * @module web/client-page
 * A console client that its own package installs (spice-html5 in `/usr/share/spice-html5`),
 * served from `[DEFAULT] web` as that package wrote it, with two additions in its `<head>`: the
 * token's state (the JSON block Porthole's own pages carry) and Porthole's script that turns that
 * state into words. Such pages run inline scripts and inline event handlers
 * (`onclick="open_nav()"`), so their Content-Security-Policy names each one by its SHA-256
 * (`'unsafe-hashes'` for the handlers) instead of allowing inline script at all: a script that
 * reaches the page some other way (spice_auto.html writes the URL's `title` with innerHTML) does
 * not run. The hashes are computed from the file itself, so an upgraded package keeps working.
 */
import { createHash } from 'node:crypto';

export interface ClientPage {
  /** The page with Porthole's additions. */
  readonly html: string;
  /** CSP hash sources of its inline scripts (`'sha256-...'`). */
  readonly scripts: readonly string[];
  /** CSP hash sources of its inline event handler attributes. */
  readonly handlers: readonly string[];
}

// an inline script: a <script> without src, up to its end tag (HTML has no nesting of them)
const INLINE_SCRIPT = /<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi;

function hashSource(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The inline scripts and handlers of `html`, as CSP hash sources. */
export function inlineSources(html: string): { scripts: string[]; handlers: string[] } {
  const scripts = new Set<string>();
  for (const m of html.matchAll(INLINE_SCRIPT)) {
    if (/\ssrc\s*=/i.test(m[1]!)) continue;
    // a JSON block is data, not script: CSP does not apply to it
    if (/\stype\s*=\s*["']?application\/json/i.test(m[1]!)) continue;
    scripts.add(hashSource(m[2]!));
  }
  const handlers = new Set<string>();
  // on<event>="..." or '...' inside a start tag
  for (const tag of html.matchAll(/<[a-z][^>]*>/gi)) {
    for (const m of tag[0].matchAll(/\son[a-z]+\s*=\s*("([^"]*)"|'([^']*)')/gi)) handlers.add(hashSource(decodeEntities(m[2] ?? m[3]!)));
  }
  return { scripts: [...scripts], handlers: [...handlers] };
}

/** The page `html` with `head` added right after its `<head>` start tag (or at its start when it has none). */
export function clientPage(html: string, head: string): ClientPage {
  const { scripts, handlers } = inlineSources(html);
  const at = /<head\b[^>]*>/i.exec(html);
  const out = at ? html.slice(0, at.index + at[0].length) + head + html.slice(at.index + at[0].length) : head + html;
  return { html: out, scripts, handlers };
}

// the browser hashes the attribute's value after character references are decoded
function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    const l = e.toLowerCase();
    if (l === 'amp') return '&';
    if (l === 'lt') return '<';
    if (l === 'gt') return '>';
    if (l === 'quot') return '"';
    if (l === 'apos') return "'";
    return String.fromCodePoint(l.startsWith('#x') ? parseInt(l.slice(2), 16) : parseInt(l.slice(1), 10));
  });
}
