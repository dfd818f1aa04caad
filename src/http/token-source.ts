/**
 * @module http/token-source
 * Where a console WebSocket carries its token, in Nova's order: the last `token` query value,
 * else the `token` inside a noVNC `path` query value (`?path=%3Ftoken%3D...`), else a `token`
 * cookie, else the `token` inside a `path` cookie (tempest sends the page URL's query string as
 * its Cookie header). Cookie parsing is lenient: a malformed pair is skipped, never fatal.
 * The console page reads its own URL by noVNC's rule (`tokenFromPageUrl`). Pure functions of a
 * URL and a Cookie header, in `src/http/` because the upgrade (`proxy/`) and the console pages
 * (`web/`) both read tokens so.
 */

const MAX_TOKEN_LENGTH = 255; // Nova's column is String(255); nothing longer can match

export function tokenFromRequest(rawUrl: string, cookieHeader: string | undefined): string | undefined {
  const query = new URLSearchParams(queryOf(rawUrl));
  return (
    lastNonEmpty(query.getAll('token')) ??
    tokenInPath(last(query.getAll('path'))) ??
    (cookieHeader === undefined ? undefined : tokenFromCookies(cookieHeader))
  );
}

/**
 * The token the console page was opened with, by noVNC's rule: the `token` inside `path`
 * (`?path=%3Ftoken%3D...`) when there is one, else the `token` parameter.
 */
export function tokenFromPageUrl(rawUrl: string): string | undefined {
  const query = new URLSearchParams(queryOf(rawUrl));
  return tokenInPath(last(query.getAll('path'))) ?? lastNonEmpty(query.getAll('token'));
}

function tokenFromCookies(header: string): string | undefined {
  const cookies = parseCookies(header);
  return bounded(cookies.get('token')) ?? tokenInPath(cookies.get('path'));
}

export function parseCookies(header: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    out.set(name, safeDecode(value));
  }
  return out;
}

/** `?token=abc` or `websockify?token=abc` → `abc` */
function tokenInPath(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  const q = path.indexOf('?');
  return lastNonEmpty(new URLSearchParams(q >= 0 ? path.slice(q + 1) : path).getAll('token'));
}

function queryOf(rawUrl: string): string {
  const q = rawUrl.indexOf('?');
  return q >= 0 ? rawUrl.slice(q + 1) : '';
}

function lastNonEmpty(values: string[]): string | undefined {
  return bounded(values[values.length - 1]);
}

/** The last `path` value: not bounded like a token, since it carries other parameters beside the token (the token inside it is). */
function last(values: string[]): string | undefined {
  return values[values.length - 1];
}

function bounded(v: string | undefined): string | undefined {
  return v === undefined || v === '' || v.length > MAX_TOKEN_LENGTH ? undefined : v;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
