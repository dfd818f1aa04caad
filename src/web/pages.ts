/**
 * @module web/pages
 * The console proxy's plain HTTP side: the console page at every path that clouds hand out
 * (`/vnc.html`, `/vnc_lite.html`, `/vnc_auto.html`, `/vnc.auto.html`), served with the state of
 * its token (valid, expired, unknown) so the page can say it in words before connecting; noVNC's
 * ES modules from `@novnc/novnc`; the page's script and style; `/porthole/token-state` for the
 * page to ask again after a disconnect; and, for other paths, files of `[DEFAULT] web` if that
 * directory exists (Nova's option). Pages carry `Referrer-Policy: no-referrer` because their URL
 * holds the token; every response says it may not be framed, and over TLS carries HSTS
 * (`page-policy.ts`).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isGatewayError } from '../errors.ts';
import { requestProblem } from '../http/request-checks.ts';
import { parseCookies, tokenFromPageUrl } from '../http/token-source.ts';
import type { Inventory } from '../inventory/types.ts';
import { hashToken, nowSeconds, type TokenStore } from '../store/types.ts';
import { NOVNC_VIEW_ONLY } from '../store/view-only.ts';
import { clientPage, type ClientPage } from './client-page.ts';
import { noVncPageFiles, type ConsolePageChoice } from './novnc-app.ts';
import { clientPageCsp, frameAncestors, pageCsp, setResponsePolicy } from './page-policy.ts';

const STATIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'static');
// the package exports only core/rfb.js; its directory holds core/ and vendor/
const NOVNC_DIR = dirname(dirname(createRequire(import.meta.url).resolve('@novnc/novnc')));
const STATE_MARKER = '<!--PORTHOLE_STATE-->';
const WEB_DIR_MARKER = '<!--PORTHOLE_WEB_DIR-->';

export const CONSOLE_PAGE_PATHS: readonly string[] = ['/vnc.html', '/vnc_lite.html', '/vnc_auto.html', '/vnc.auto.html'];

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

export interface TokenState {
  /**
   * `limited`: the client is over its budget of failed lookups, so nothing was looked up (HTTP
   * 429). `limit`: the token is valid, but a console opened with it now would be refused by a
   * concurrent-console limit (`limit` says which): what the console page shows after its
   * WebSocket was refused, since a browser's WebSocket never sees the HTTP status.
   */
  readonly state: 'valid' | 'expired' | 'unknown' | 'missing' | 'limited' | 'limit' | TokenProblem;
  readonly server: string | null;
  readonly expiresAt: number | null;
  /** With `limited`: seconds until the client may ask again (also the `Retry-After` header); with `limit`: until the counts are read again. */
  readonly retryAfter?: number;
  /** With `limit`: which one (`total`, `server`, `project`, `client`). */
  readonly limit?: string;
  /** `[porthole] new_link_url`: where to get a new console link, when the operator set one. */
  readonly newLinkUrl?: string;
  /** `[consoleauth] enforce_session_timeout`: a session closes at `expiresAt`. */
  readonly endsWithToken?: boolean;
  /** `[porthole] max_console_duration`, seconds: a session closes that long after it began. */
  readonly maxDuration?: number;
  /** The server's clock (epoch seconds) when it answered, so the page counts time left on it. */
  readonly now?: number;
  /** `[porthole] clipboard` when it is not `both`: the page's clipboard panel leaves out the ways it blocks. */
  readonly clipboard?: string;
  /** A valid token of a server whose noVNC console is shared: the page opens its Viewers panel (`viewers.js`). */
  readonly shared?: boolean;
  /** A view-only token (`novnc-view-only`): the page sends no input and never asks for control. */
  readonly viewOnly?: boolean;
}

/**
 * States beyond the store's answer, each with its own words on the page: `malformed` (not a
 * token's shape at all, and unknown: a link cut short when copied), and, for a valid token, why
 * this client's last console with it failed before its 101 (`RefusalMemory`): `unreachable` (the
 * backend refused or did not answer the dial: the machine is off or its console not listening),
 * `used` (a single-use token already consumed); `unavailable`: the token store did not answer.
 */
export type TokenProblem = 'malformed' | 'unreachable' | 'used' | 'unavailable';

/** Why the last console of a token from a client failed before its 101 (`proxy/last-refusal.ts` gives it). */
export interface RefusalMemory {
  /** `tokenHash`: the token's SHA-256 in hex; `client`: as the upgrade and the budget see it. */
  reason(tokenHash: string, client: string): 'unreachable' | 'used' | 'unavailable' | null;
}

// tokens are UUIDs (Nova's str(uuid.uuid4()), Porthole's randomUUID()): anything else is a damaged link
const TOKEN_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the pages need of the concurrent-console limits (`proxy/console-limits.ts` gives it). */
export interface ConsoleLimitCheck {
  /** The limit a new console of `instance` (of `project`) from `client` would be refused by now, or null; from memory. */
  refusal(facts: { readonly instance: string; readonly project: string | null; readonly client: string }): { readonly limit: string; readonly retryAfter: number } | null;
}

/** What the pages need of the proxy's budget of failed token lookups (`proxy/lookup-budget.ts` gives it). */
export interface FailedLookupBudget {
  /** Whole seconds until `client` may look a token up again; 0: it may now. */
  retryAfter(client: string): number;
  /** A lookup by `client` found no valid token. Never rejects. */
  failed(client: string): Promise<void>;
}

/** A console kind's page: the paths clouds hand out and the file under `src/web/static/` served at them. */
export interface ConsolePage {
  readonly paths: readonly string[];
  readonly file: string;
  /**
   * A client its own package installs (spice-html5), served from `[DEFAULT] web` with the token's
   * state and Porthole's `script` (under `src/web/static/`) added (`client-page.ts`); `file` is
   * then Porthole's page saying that the client is missing (naming its package and the option).
   */
  readonly client?: { readonly files: Readonly<Record<string, string>>; readonly script: string };
  /** Files of npm packages the page loads: URL prefix (`/xterm/lib/`) → the directory served below it. */
  readonly assets?: Readonly<Record<string, string>>;
  /** Its scripts write `<style>` elements and style attributes (xterm.js): its CSP allows inline styles, never inline script. */
  readonly inlineStyles?: boolean;
  /** noVNC's own app in `[DEFAULT] web` may answer at some of `paths` (`novnc-app.ts`). */
  readonly webApp?: boolean;
}

/** The noVNC console page, at every path that clouds hand out for it. */
export const NOVNC_PAGE: ConsolePage = { paths: CONSOLE_PAGE_PATHS, file: 'console.html', webApp: true };

export interface PagesDeps {
  /** The console page of the listener's kind; the noVNC page when not given. */
  readonly page?: ConsolePage;
  readonly tokens: TokenStore;
  readonly inventory: Inventory;
  /** `[DEFAULT] web`: extra static files, served when the directory exists. */
  readonly webDir: string | null;
  /**
   * Origins allowed to embed the console page in a frame (a portal, Horizon's console tab);
   * none by default: the page may not be framed at all (clickjacking).
   */
  readonly frameAncestors?: readonly string[];
  /**
   * `[porthole] failed_lookup_budget`: the page and `/porthole/token-state` look tokens up within
   * the client's budget, the one the WebSocket upgrade uses, so that neither is a free validity
   * oracle; `client` gives a request's client address as the upgrade sees it.
   */
  readonly budget?: { readonly lookups: FailedLookupBudget; client(req: IncomingMessage): string };
  /** The concurrent-console limits, so that a valid token's state says when a console would be refused by one. */
  readonly limits?: { readonly check: ConsoleLimitCheck; client(req: IncomingMessage): string };
  /** Why a valid token's last console from this client failed before its 101, so that the page says it at once. */
  readonly refusals?: { readonly memory: RefusalMemory; client(req: IncomingMessage): string };
  /** `[porthole] new_link_url` (an http or https URL), handed to the page. */
  readonly newLinkUrl?: string | null;
  /** What ends a session by the clock, for the page to show the time left. */
  readonly sessionEnd?: { readonly withToken: boolean; readonly maxDurationSeconds: number };
  /** `[porthole] console_page`: which page answers at Nova's paths when `[DEFAULT] web` holds noVNC's app. */
  readonly consolePage?: ConsolePageChoice;
  /** `[porthole] clipboard` (the proxy enforces it), handed to the page. */
  readonly clipboard?: string;
  /** `[porthole] shared_consoles`: a server's own setting (`Server.sharedConsoles`) wins. */
  readonly sharedConsoles?: boolean;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createPages(deps: PagesDeps): RequestHandler {
  const page = deps.page ?? NOVNC_PAGE;
  const consoleTemplate = readFileSync(join(STATIC_DIR, page.file), 'utf8');
  const webDir = deps.webDir && existsSync(deps.webDir) && statSync(deps.webDir).isDirectory() ? deps.webDir : null;
  const cache = new Map<string, Buffer>();
  /** A client's pages as last read, by file, with the mtime they were read at (a package upgrade is picked up). */
  const clientPages = new Map<string, { mtimeMs: number; page: ClientPage }>();

  async function readClientPage(pathname: string): Promise<ClientPage | undefined> {
    const name = page.client?.files[pathname];
    if (!name) return undefined;
    return readWebPage(name, `${STATE_MARKER}<script src="/porthole/${page.client!.script}" defer></script>`);
  }

  /** A page of `[DEFAULT] web` with `head` added, its inline scripts hashed (`client-page.ts`). */
  async function readWebPage(name: string, head: string): Promise<ClientPage | undefined> {
    if (!deps.webDir) return undefined;
    const file = join(deps.webDir, name);
    try {
      const { mtimeMs } = statSync(file);
      const known = clientPages.get(file);
      if (known && known.mtimeMs === mtimeMs) return known.page;
      const read = clientPage(await readFile(file, 'utf8'), head);
      clientPages.set(file, { mtimeMs, page: read });
      return read;
    } catch {
      return undefined;
    }
  }
  const ancestors = frameAncestors(deps.frameAncestors ?? []);
  // noVNC's app, where the operator's `[DEFAULT] web` holds it: the file it serves at each page path, or null for Porthole's
  const appFiles = page.webApp ? noVncPageFiles(page.paths, webDir, deps.consolePage ?? 'porthole') : new Map<string, string | null>();

  const extras = {
    ...(deps.newLinkUrl ? { newLinkUrl: deps.newLinkUrl } : {}),
    ...(deps.sessionEnd?.withToken ? { endsWithToken: true } : {}),
    ...(deps.sessionEnd?.maxDurationSeconds ? { maxDuration: deps.sessionEnd.maxDurationSeconds } : {}),
    ...(deps.clipboard && deps.clipboard !== 'both' ? { clipboard: deps.clipboard } : {}),
  };

  async function tokenState(token: string | undefined, req: IncomingMessage): Promise<TokenState> {
    const state = await lookupState(token, req);
    return { ...state, ...extras, ...(state.expiresAt !== null && (extras.endsWithToken || extras.maxDuration) ? { now: nowSeconds() } : {}) };
  }

  async function lookupState(token: string | undefined, req: IncomingMessage): Promise<TokenState> {
    if (token === undefined) return { state: 'missing', server: null, expiresAt: null };
    const budget = deps.budget;
    const client = budget?.client(req);
    if (budget && client !== undefined) {
      const retryAfter = budget.lookups.retryAfter(client);
      if (retryAfter > 0) return { state: 'limited', server: null, expiresAt: null, retryAfter };
    }
    let found: Awaited<ReturnType<TokenStore['lookup']>>;
    try {
      found = await deps.tokens.lookup(token);
    } catch (err) {
      // the page says so and tries again; anything else is the handler's 503
      if (isGatewayError(err) && err.code === 'STORE_UNAVAILABLE') return { state: 'unavailable', server: null, expiresAt: null, retryAfter: 5 };
      throw err;
    }
    // awaited so that the count, shared ones included, is in before the answer leaves; it never rejects
    if (found.status !== 'valid' && budget && client !== undefined) await budget.lookups.failed(client);
    // looked up (and counted) all the same, so that the shape tells nothing a lookup would not
    if (found.status === 'unknown') return { state: TOKEN_SHAPE.test(token) ? 'unknown' : 'malformed', server: null, expiresAt: null };
    const server = await deps.inventory.get(found.token.instanceUuid);
    // a valid token's lookup costs no budget: asking after a refused console is free
    const refusal = found.status === 'valid' && deps.limits ? deps.limits.check.refusal({ instance: found.token.instanceUuid, project: server?.projectId ?? null, client: deps.limits.client(req) }) : null;
    if (refusal) return { state: 'limit', server: server?.name ?? null, expiresAt: found.token.expires, limit: refusal.limit, retryAfter: refusal.retryAfter };
    // from memory, and only for a valid token: costs no lookup, and tells only this client of its own attempts
    const refused = found.status === 'valid' && deps.refusals ? deps.refusals.memory.reason(hashToken(token), deps.refusals.client(req)) : null;
    if (refused) return { state: refused, server: server?.name ?? null, expiresAt: found.token.expires };
    // as the proxy decides it (`proxy/shared-hub.ts` sharesConsoles): only a server of the inventory is shared
    const shared = found.status === 'valid' && server !== undefined && (server.sharedConsoles ?? deps.sharedConsoles ?? false);
    const viewOnly = found.token.consoleType === NOVNC_VIEW_ONLY;
    return { state: found.status, server: server?.name ?? null, expiresAt: found.token.expires, ...(shared ? { shared } : {}), ...(viewOnly ? { viewOnly } : {}) };
  }

  async function serveFile(res: ServerResponse, head: boolean, root: string, rel: string, maxAge: number): Promise<boolean> {
    const file = safeJoin(root, rel);
    if (!file) return false;
    let body = cache.get(file);
    if (!body) {
      try {
        if (!statSync(file).isFile()) return false;
        body = await readFile(file);
      } catch {
        return false;
      }
      if (root !== webDir) cache.set(file, body);
    }
    send(res, 200, CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', body, head, { 'Cache-Control': `public, max-age=${maxAge}` });
    return true;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const head = req.method === 'HEAD';
    // HTTP/0.9 or 1.0, two Host headers: refused as the console WebSocket refuses them
    const problem = requestProblem(req);
    if (problem) {
      res.shouldKeepAlive = false;
      send(res, 400, 'text/plain; charset=utf-8', `${problem.clientMessage}\n`, head);
      return;
    }
    if (req.method !== 'GET' && !head) {
      send(res, 405, 'text/plain; charset=utf-8', 'Method Not Allowed\n', head, { Allow: 'GET, HEAD' });
      return;
    }
    // CVE-2021-3654: browsers read `Location: //host` as another site
    if (rawUrl.startsWith('//')) {
      send(res, 400, 'text/plain; charset=utf-8', 'URI must not start with //\n', head);
      return;
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(rawUrl.split('?', 1)[0]!);
    } catch {
      send(res, 400, 'text/plain; charset=utf-8', 'Bad Request\n', head);
      return;
    }
    const appFile = appFiles.get(pathname);
    if (appFile) {
      // as websockify serves it, under the CSP of a client page (its inline script by hash, its style attributes)
      const app = await readWebPage(appFile, '');
      if (app) {
        if (ancestors !== "'none'") res.removeHeader('X-Frame-Options');
        send(res, 200, CONTENT_TYPES['.html']!, app.html, head, { 'Cache-Control': 'no-store', 'Content-Security-Policy': clientPageCsp(req, rawUrl, ancestors, app) });
        return;
      }
    }
    if (page.paths.includes(pathname)) {
      const state = await tokenState(tokenFromPageUrl(rawUrl), req);
      // over budget, the page still comes (429), so the person at the console reads why
      if (state.retryAfter) res.setHeader('Retry-After', String(state.retryAfter));
      // `<` escaped so a server name can never close the script element
      const json = JSON.stringify(state).replaceAll('<', '\\u003c');
      // X-Frame-Options cannot name origins; where frame-ancestors does, browsers follow it
      if (ancestors !== "'none'") res.removeHeader('X-Frame-Options');
      const stateScript = `<script id="porthole-state" type="application/json">${json}</script>`;
      const status = state.state === 'limited' ? 429 : state.state === 'unavailable' ? 503 : 200;
      if (page.client) {
        const client = await readClientPage(pathname);
        if (client) {
          send(res, status, CONTENT_TYPES['.html']!, client.html.replace(STATE_MARKER, () => stateScript), head, { 'Cache-Control': 'no-store', 'Content-Security-Policy': clientPageCsp(req, rawUrl, ancestors, client) });
          return;
        }
        // the client is not installed: Porthole's page names the package and the option (503: nothing here works)
        const missing = consoleTemplate.replace(STATE_MARKER, () => stateScript).replaceAll(WEB_DIR_MARKER, () => escapeHtml(deps.webDir ?? '(not set)'));
        send(res, 503, CONTENT_TYPES['.html']!, missing, head, { 'Cache-Control': 'no-store', 'Content-Security-Policy': pageCsp(req, rawUrl, ancestors) });
        return;
      }
      // a function, so that `$&` and the like in a server's name are not replacement patterns
      const html = consoleTemplate.replace(STATE_MARKER, () => stateScript);
      send(res, status, CONTENT_TYPES['.html']!, html, head, { 'Cache-Control': 'no-store', 'Content-Security-Policy': pageCsp(req, rawUrl, ancestors, page.inlineStyles) });
      return;
    }
    if (pathname === '/porthole/token-state') {
      const token = new URLSearchParams(rawUrl.slice(rawUrl.indexOf('?') + 1 || rawUrl.length)).get('token') || (req.headers.cookie ? parseCookies(req.headers.cookie).get('token') : undefined);
      const state = await tokenState(token || undefined, req);
      if (state.retryAfter) res.setHeader('Retry-After', String(state.retryAfter));
      send(res, state.state === 'limited' ? 429 : state.state === 'unavailable' ? 503 : 200, 'application/json', JSON.stringify(state), head, { 'Cache-Control': 'no-store' });
      return;
    }
    const asset = page.assets ? Object.keys(page.assets).find((prefix) => pathname.startsWith(prefix)) : undefined;
    if (asset !== undefined) {
      if (await serveFile(res, head, page.assets![asset]!, pathname.slice(asset.length), 3600)) return;
    } else if (pathname.startsWith('/novnc/core/') || pathname.startsWith('/novnc/vendor/')) {
      if (await serveFile(res, head, NOVNC_DIR, pathname.slice('/novnc/'.length), 3600)) return;
    } else if (pathname.startsWith('/porthole/')) {
      if (await serveFile(res, head, STATIC_DIR, pathname.slice('/porthole/'.length), 300)) return;
    } else if (webDir && pathname !== '/') {
      if (await serveFile(res, head, webDir, pathname.slice(1), 300)) return;
    }
    if (pathname === '/') {
      send(res, 200, 'text/plain; charset=utf-8', 'Porthole console proxy. Open the console URL that the API or `porthole token create` gave you.\n', head);
      return;
    }
    send(res, 404, 'text/plain; charset=utf-8', 'Not Found\n', head);
  }

  return (req, res) => {
    setResponsePolicy(req, res);
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 503, 'text/plain; charset=utf-8', 'Console token store unavailable\n', req.method === 'HEAD');
      else res.destroy(err as Error);
    });
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function safeJoin(root: string, rel: string): string | undefined {
  const file = normalize(join(root, rel));
  return file.startsWith(root + sep) ? file : undefined;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, head: boolean, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    ...extra,
  });
  res.end(head ? undefined : body);
}
