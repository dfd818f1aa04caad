/**
 * @module porthole/serial
 *
 * The browser side of Porthole's serial console page (serial.html). It reads the token state the
 * server injected into the page, opens the serial listener's WebSocket on the page's own address
 * (`ws[s]://<host>/<page path>?token=<token>`: the listener takes a console WebSocket on any
 * path, as nova-serialproxy), and joins it to an xterm.js terminal byte for byte: what the port
 * sends is written to the terminal, what the person types or pastes goes to the port as UTF-8.
 * It says in words what is happening and reconnects by itself while the token is still valid,
 * as the noVNC page (console.js) does; the terminal keeps its scrollback across reconnects.
 *
 * Window size: a serial line has no channel for it (no NAWS, no SIGWINCH: the machine cannot
 * learn the browser's size from the bytes), so the page fits the terminal to the window, shows
 * the size in the bar, and tells how to give it to the machine's shell (`stty rows R cols C`);
 * it sends nothing the port would not understand.
 *
 * Copy and paste: select with the mouse, then the Copy button, Ctrl+Shift+C, or Ctrl+C while
 * there is a selection (without one Ctrl+C is ^C for the machine); paste with the Paste button,
 * Ctrl+Shift+V or the browser's paste. State for tests: `data-console-state` on <body>
 * (loading | connecting | connected | reconnecting | disconnected | refused) and
 * `window.porthole` ({ state, status, term }).
 *
 * Plain browser ES module, no build step: xterm.js is served at /xterm/ from its npm package.
 */

// ===== Messages =====

// Every string the person at the console can see; `{reason}` and `{size}` are filled in by
// format(), and anything from the server is only ever set as textContent.
const MESSAGES = {
  en: {
    loading: 'Loading…',
    connecting: 'Connecting…',
    connectingTo: 'Connecting to {name}…',
    connected: 'Connected',
    connectedTo: 'Connected to {name}',
    reconnecting: 'Connection lost, reconnecting…',
    retrying: 'Could not connect, retrying…',
    disconnected: 'Disconnected: {reason}',
    disconnectedByUser: 'Disconnected',
    expired: 'This console link has expired. Ask for a new console URL.',
    sessionExpired: 'The console session expired. Ask for a new console URL.',
    unknown: 'This console link is not valid (unknown or revoked token).',
    missing: 'No console token in this URL.',
    limited: 'Too many failed attempts from your address; try again in a minute.',
    idleTimeout: 'The console was closed after a time without input. Press Connect to open it again.',
    maxDuration: 'The console session reached its maximum duration. Press Connect to open it again.',
    limitTotal: 'The console service is full: too many consoles are open. Try again in a moment.',
    limitServer: 'Too many consoles are open on this machine. Close one, or try again in a moment.',
    limitProject: 'Too many consoles are open in this project. Close one, or try again in a moment.',
    limitClient: 'Too many consoles are open from your address. Close one, or try again in a moment.',
    unreachable: 'The console could not be reached (the machine may be off, its host down, or another viewer may hold its serial port).',
    loadFailed: 'The terminal could not be loaded.',
    badUrl: 'The console address in this URL is not valid.',
    connect: 'Connect',
    disconnect: 'Disconnect',
    copy: 'Copy',
    copyTitle: 'Copy the selected text (also Ctrl+Shift+C, or Ctrl+C while text is selected)',
    paste: 'Paste',
    pasteTitle: 'Send the clipboard to the machine (also Ctrl+Shift+V)',
    sizeTitle: 'The terminal is {cols} columns by {rows} rows. A serial line cannot tell the machine this size; to give it to its shell, type: stty rows {rows} cols {cols}',
    console: 'Serial console',
  },
};

// ===== Constants =====

// `limit`: the token is valid, but a console opened now would be refused by a concurrent-console
// limit (the browser's WebSocket never sees the HTTP status, so the page asks after a failure)
const TOKEN_STATES = new Set(['valid', 'expired', 'unknown', 'missing', 'limited', 'limit', 'unreachable', 'unavailable', 'malformed', 'used']);
// States of src/web/pages.ts that this page treats as one it has words for.
const SAME_AS = { unreachable: 'valid', unavailable: 'valid', malformed: 'unknown', used: 'unknown' };
const LIMIT_WORDS = { total: 'limitTotal', server: 'limitServer', project: 'limitProject', client: 'limitClient' };
const XTERM = '/xterm/lib/xterm.mjs';
const XTERM_FIT = '/xterm/addon-fit/addon-fit.mjs';
const TOKEN_STATE_ENDPOINT = '/porthole/token-state';
// Close reasons of the gateway that end a console for good (src/proxy/relay.ts CLOSE_EXPIRED:
// only a new URL helps; CLOSE_IDLE and CLOSE_MAX_DURATION: not reconnected by themselves, Connect
// opens it again); a revocation needs no entry: the token-state check after it reads `unknown`.
const FINAL_CLOSES = [
  { code: 1008, reason: 'console session expired', words: 'sessionExpired', state: 'refused' },
  { code: 1008, reason: 'console idle timeout', words: 'idleTimeout', state: 'disconnected' },
  { code: 1008, reason: 'console session reached its maximum duration', words: 'maxDuration', state: 'disconnected' },
];
// Reconnect backoff as the noVNC page's: 1 s doubling to 10 s, for up to two minutes.
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 10_000;
const GIVE_UP_AFTER_MS = 120_000;
const TOKEN_STATE_TIMEOUT_MS = 10_000;
// Lines kept above the screen; `?scrollback=N` changes it (0 to 100000).
const DEFAULT_SCROLLBACK = 10_000;

// ===== Page state =====

const page = {
  text: MESSAGES.en,
  state: 'loading',
  status: MESSAGES.en.loading,
  token: null, // never logged: see scrub()
  url: null,
  server: null,
  term: null,
  fit: null,
  ws: null,
  wasConnected: false,
  lostAt: 0,
  attempt: 0,
  retryTimer: null,
  retryAction: null,
  closeWords: null,
  limitWords: null, // key of the words of the concurrent-console limit the last check reported
  // bumped by every user action, so an answer that arrives after the user changed their mind is dropped
  generation: 0,
};

const elements = {};
const encoder = new TextEncoder();

// ===== URL parameters =====

/** noVNC's rule: a parameter in the #fragment wins over one in the ?query; of repeats the last. */
function readParams() {
  const query = new URLSearchParams(window.location.search);
  const hash = new URLSearchParams(window.location.hash.slice(1));
  const last = (params, name) => {
    const values = params.getAll(name);
    return values.length === 0 ? null : values[values.length - 1];
  };
  return { get: (name) => last(hash, name) ?? last(query, name) };
}

/** The token: `token`, or the one inside a noVNC-style `path` (`?path=%3Ftoken%3D...`). */
function readToken(params) {
  const path = params.get('path');
  if (path !== null && path.includes('?')) {
    const inPath = new URLSearchParams(path.slice(path.indexOf('?') + 1)).getAll('token');
    if (inPath.length > 0 && inPath[inPath.length - 1] !== '') return inPath[inPath.length - 1];
  }
  const token = params.get('token');
  return token === '' ? null : token;
}

/** The WebSocket on the page's own address and path: the serial listener takes any path. */
function websocketUrl(token) {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${window.location.host}${window.location.pathname}?token=${encodeURIComponent(token ?? '')}`;
}

// ===== Token state =====

function parseTokenState(value) {
  if (value === null || typeof value !== 'object' || !TOKEN_STATES.has(value.state)) {
    throw new Error('token state has an unexpected shape');
  }
  return {
    // a valid token whose last console failed before it began, or a store that did not answer:
    // retried as any failed attempt; a damaged or used link is not valid either
    state: SAME_AS[value.state] ?? value.state,
    server: typeof value.server === 'string' && value.server !== '' ? value.server : null,
    limit: typeof value.limit === 'string' && Object.hasOwn(LIMIT_WORDS, value.limit) ? value.limit : 'total',
  };
}

function readInjectedState() {
  const element = document.getElementById('porthole-state');
  if (element === null) return null;
  try {
    return parseTokenState(JSON.parse(element.textContent));
  } catch {
    return null;
  }
}

async function fetchTokenState() {
  const query = page.token === null ? '' : `?token=${encodeURIComponent(page.token)}`;
  const response = await fetch(`${TOKEN_STATE_ENDPOINT}${query}`, {
    cache: 'no-store',
    credentials: 'same-origin',
    signal: AbortSignal.timeout?.(TOKEN_STATE_TIMEOUT_MS),
  });
  if (!response.ok && response.status !== 429) throw new Error(`token state answered HTTP ${response.status}`);
  return parseTokenState(await response.json());
}

// ===== Status =====

function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, key) => values[key] ?? whole);
}

function withName(key) {
  return page.server === null || page.text[`${key}To`] === undefined ? page.text[key] : format(page.text[`${key}To`], { name: page.server });
}

function disconnectedBecause(reason) {
  return format(page.text.disconnected, { reason });
}

function setStatus(state, text) {
  page.state = state;
  page.status = text;
  elements.status.textContent = text;
  elements.status.title = text;
  elements.screen.dataset.message = text;
  document.body.dataset.consoleState = state;
  updateButtons();
}

function updateTitle() {
  document.title = page.server === null ? page.text.console : `${page.server} – ${page.text.console}`;
}

function updateButtons() {
  const live = page.state === 'connecting' || page.state === 'connected' || page.state === 'reconnecting';
  elements.connect.textContent = live ? page.text.disconnect : page.text.connect;
  elements.connect.disabled = page.term === null || page.state === 'refused';
  elements.copy.disabled = page.term === null || !page.term.hasSelection();
  elements.paste.disabled = page.state !== 'connected' || typeof navigator.clipboard?.readText !== 'function';
}

function showSize(cols, rows) {
  elements.size.textContent = `${cols}×${rows}`;
  elements.size.title = format(page.text.sizeTitle, { cols, rows });
}

// ===== Logging =====

/** Anything the page logs goes through here: the token is a credential. */
function scrub(text) {
  if (page.token === null || page.token === '') return text;
  return text.split(page.token).join('***').split(encodeURIComponent(page.token)).join('***');
}

function logError(what, error) {
  console.error(`porthole: ${what}: ${scrub(String(error?.message ?? error))}`);
}

// ===== Session =====

function connect() {
  clearRetry();
  page.closeWords = null;
  let ws;
  try {
    ws = new WebSocket(page.url, ['binary']);
  } catch (error) {
    logError('could not open the console', error);
    stop('disconnected', page.text.badUrl);
    return;
  }
  ws.binaryType = 'arraybuffer';
  page.ws = ws;
  ws.addEventListener('open', () => websocketOnOpen(ws));
  ws.addEventListener('message', (event) => websocketOnMessage(ws, event));
  ws.addEventListener('close', (event) => websocketOnClose(ws, event));
  if (page.state !== 'reconnecting') setStatus('connecting', withName('connecting'));
}

function websocketOnOpen(ws) {
  if (page.ws !== ws) return;
  page.wasConnected = true;
  page.limitWords = null;
  page.lostAt = 0;
  page.attempt = 0;
  setStatus('connected', withName('connected'));
  page.term.focus();
}

function websocketOnMessage(ws, event) {
  if (page.ws !== ws) return;
  // the port's bytes as they are: xterm.js decodes UTF-8 across chunk boundaries itself
  page.term.write(typeof event.data === 'string' ? event.data : new Uint8Array(event.data));
}

function websocketOnClose(ws, event) {
  if (page.ws !== ws) return; // the user pressed Disconnect, or a newer attempt replaced it
  page.ws = null;
  const final = FINAL_CLOSES.find((c) => c.code === event.code && c.reason === event.reason);
  if (final !== undefined) {
    stop(final.state, disconnectedBecause(page.text[final.words]));
    return;
  }
  recover();
}

/** Bytes for the port, when there is a session to take them. */
function send(bytes) {
  if (page.ws !== null && page.ws.readyState === WebSocket.OPEN) page.ws.send(bytes);
}

/** After a close nobody asked for: reconnect while the token is valid, else say why not. */
function recover() {
  const generation = page.generation;
  if (page.lostAt === 0) page.lostAt = Date.now();
  if (Date.now() - page.lostAt > GIVE_UP_AFTER_MS) {
    stop('disconnected', page.limitWords !== null ? page.text[page.limitWords] : disconnectedBecause(page.text.unreachable));
    return;
  }
  if (page.limitWords === null) setStatus('reconnecting', page.wasConnected ? page.text.reconnecting : page.text.retrying);
  fetchTokenState().then(
    (tokenState) => {
      if (generation !== page.generation) return;
      if (tokenState.state === 'limited') {
        setStatus('reconnecting', page.text.limited);
        retryAfterBackoff(recover);
        return;
      }
      if (tokenState.state === 'limit') {
        // refused by a concurrent-console limit: say which, and try again as a place may free up
        page.limitWords = LIMIT_WORDS[tokenState.limit];
        setStatus('reconnecting', page.text[page.limitWords]);
        retryAfterBackoff(connect);
        return;
      }
      page.limitWords = null;
      if (tokenState.state !== 'valid') {
        refuse(tokenState.state);
        return;
      }
      if (tokenState.server !== null) page.server = tokenState.server;
      retryAfterBackoff(connect);
    },
    () => {
      // the check failed too (network down, proxy restarting): the next attempt is as good a probe
      if (generation !== page.generation) return;
      retryAfterBackoff(connect);
    },
  );
}

function retryAfterBackoff(action) {
  clearRetry();
  const delay = Math.min(BACKOFF_FIRST_MS * 2 ** page.attempt, BACKOFF_MAX_MS);
  page.attempt += 1;
  page.retryAction = action;
  page.retryTimer = setTimeout(() => {
    page.retryTimer = null;
    page.retryAction = null;
    action();
  }, delay);
}

function clearRetry() {
  if (page.retryTimer !== null) clearTimeout(page.retryTimer);
  page.retryTimer = null;
  page.retryAction = null;
}

function refuse(tokenState) {
  const words = tokenState === 'expired' || tokenState === 'missing' || tokenState === 'limited'
    ? page.text[tokenState]
    : page.text.unknown;
  stop('refused', page.wasConnected ? disconnectedBecause(words) : words);
}

function stop(state, text) {
  clearRetry();
  page.generation += 1;
  setStatus(state, text);
}

// ===== Terminal =====

async function copySelection() {
  const text = page.term?.getSelection() ?? '';
  if (text === '') return;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // not a secure context, or no permission: the older way, which works inside a user gesture
    const area = document.createElement('textarea');
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  page.term.focus();
}

async function pasteClipboard() {
  try {
    const text = await navigator.clipboard.readText();
    // term.paste() puts the text through onData (with bracketed paste when the machine asked for it)
    if (text !== '') page.term.paste(text);
  } catch (error) {
    logError('could not read the clipboard', error);
  }
  page.term.focus();
}

/** Ctrl+Shift+C, and Ctrl+C over a selection, copy; Ctrl+Shift+V is left to the browser's paste. */
function terminalOnKey(event) {
  if (event.type !== 'keydown' || !event.ctrlKey || event.altKey || event.metaKey) return true;
  const key = event.key.toLowerCase();
  if (key === 'c' && (event.shiftKey || page.term.hasSelection())) {
    event.preventDefault();
    void copySelection().then(() => event.shiftKey || page.term.clearSelection());
    return false;
  }
  if (key === 'v' && event.shiftKey) return false; // the textarea's paste event follows
  return true;
}

function fitTerminal() {
  try {
    page.fit.fit();
  } catch {
    // a hidden or zero-sized container (an iframe not shown yet): fitted on the next resize
  }
}

async function startTerminal(params) {
  const [{ Terminal }, { FitAddon }] = await Promise.all([import(XTERM), import(XTERM_FIT)]);
  const asked = Number.parseInt(params.get('scrollback') ?? '', 10);
  const scrollback = Number.isFinite(asked) && asked >= 0 ? Math.min(asked, 100_000) : DEFAULT_SCROLLBACK;
  const term = new Terminal({
    scrollback,
    cursorBlink: true,
    fontFamily: '"DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace',
    fontSize: 14,
    theme: { background: '#000000' },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(elements.screen);
  page.term = term;
  page.fit = fit;
  term.onResize(({ cols, rows }) => showSize(cols, rows));
  term.onSelectionChange(updateButtons);
  term.onData((data) => send(encoder.encode(data)));
  // mouse reports in X10 form: one byte per character
  term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
  term.attachCustomKeyEventHandler(terminalOnKey);
  fitTerminal();
  showSize(term.cols, term.rows);
  let pending = false;
  new ResizeObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fitTerminal();
    });
  }).observe(elements.screen);
}

// ===== User actions =====

function connectOnClick() {
  if (page.state === 'connecting' || page.state === 'connected' || page.state === 'reconnecting') {
    const ws = page.ws;
    page.ws = null; // its close event is now ignored: this one was asked for
    ws?.close(1000, 'closed by the user');
    stop('disconnected', page.text.disconnectedByUser);
    return;
  }
  page.generation += 1;
  page.wasConnected = false;
  page.limitWords = null;
  page.lostAt = 0;
  page.attempt = 0;
  connect();
}

function windowOnOnline() {
  if (page.retryTimer === null) return;
  const action = page.retryAction;
  clearRetry();
  action();
}

// ===== Start =====

function setUpPage() {
  document.documentElement.lang = 'en';
  for (const id of ['status', 'size', 'screen', 'copy', 'paste', 'connect']) elements[id] = document.getElementById(id);
  elements.copy.textContent = page.text.copy;
  elements.copy.title = page.text.copyTitle;
  elements.paste.textContent = page.text.paste;
  elements.paste.title = page.text.pasteTitle;
  elements.copy.addEventListener('click', () => void copySelection());
  elements.paste.addEventListener('click', () => void pasteClipboard());
  elements.connect.addEventListener('click', connectOnClick);
  window.addEventListener('online', windowOnOnline);
  updateTitle();
  setStatus('loading', page.text.loading);
}

async function main() {
  const params = readParams();
  setUpPage();
  window.porthole = {
    get state() { return page.state; },
    get status() { return page.status; },
    get term() { return page.term; },
  };
  page.token = readToken(params);
  page.url = websocketUrl(page.token);

  let tokenState = readInjectedState();
  if (tokenState?.state === 'missing' && page.token !== null) {
    // a token the server could not see (in the #fragment): ask about it
    tokenState = await fetchTokenState().catch(() => null);
  }
  if (tokenState !== null) {
    page.server = tokenState.server;
    updateTitle();
    // `limit`: the connection is refused and the check after it says which limit, in words
    if (tokenState.state !== 'valid' && tokenState.state !== 'limit') {
      refuse(tokenState.state);
      return;
    }
  }
  try {
    await startTerminal(params);
  } catch (error) {
    logError('xterm.js could not be loaded', error);
    stop('disconnected', page.text.loadFailed);
    return;
  }
  connect();
}

main();
