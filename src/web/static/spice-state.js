/**
 * @module porthole/spice-state
 *
 * Porthole's addition to the spice-html5 pages (web/spice-page.ts): says in words what the token
 * state the server injected (`#porthole-state`) means, and, once a console ends, why: the
 * gateway's close reason when it gave one for good (the token expired), else the token's state
 * asked again (`/porthole/token-state`: an expired or revoked token), else "Disconnected".
 * spice-html5 opens one WebSocket per SPICE channel; the first one is its main channel, whose
 * end is the console's end. `document.body.dataset.consoleState` is `loading`, `connected`,
 * `refused` or `disconnected`, as on the noVNC page. A classic deferred script: it runs before
 * spice-html5's module (document order), so it sees every WebSocket the client opens.
 */
(function () {
  'use strict';
  var WORDS = {
    connected: 'Connected',
    disconnected: 'Disconnected',
    expired: 'This console link has expired. Ask for a new console URL.',
    sessionExpired: 'The console session expired. Ask for a new console URL.',
    unknown: 'This console link is not valid (unknown or revoked token).',
    missing: 'No console token in this URL.',
    limited: 'Too many failed attempts from your address; try again in a minute.',
    idleTimeout: 'The console was closed after a time without input. Reload the page to open it again.',
    maxDuration: 'The console session reached its maximum duration. Reload the page to open it again.',
    total: 'The console service is full: too many consoles are open. Try again in a moment.',
    server: 'Too many consoles are open on this machine. Close one, or try again in a moment.',
    project: 'Too many consoles are open in this project. Close one, or try again in a moment.',
    client: 'Too many consoles are open from your address. Close one, or try again in a moment.',
    unreachable: 'The console could not be reached (the machine may be off or its host down).',
  };
  var stateElement = document.getElementById('porthole-state');
  var state = { state: 'missing' };
  try {
    if (stateElement) state = JSON.parse(stateElement.textContent);
    // a valid token whose last console from here failed (the machine's console refused it) or a
    // store that did not answer: spice-html5 tries, and the disconnect says what went wrong
    if (state.state === 'unreachable' || state.state === 'unavailable') state.state = 'valid';
  } catch (e) {
    // a page without the block says nothing more than spice-html5 does
  }
  var params = new URLSearchParams(window.location.search);
  var tokens = params.getAll('token').filter(function (t) { return t !== ''; });
  var token = tokens.length ? tokens[tokens.length - 1] : null;

  var status = document.createElement('div');
  status.id = 'porthole-status';
  status.setAttribute('role', 'status');
  status.setAttribute('aria-live', 'polite');
  // CSSOM, not a style attribute: allowed by any style policy
  var s = status.style;
  s.position = 'fixed'; s.top = '0'; s.right = '0'; s.zIndex = '1000'; s.padding = '0.3em 0.8em';
  s.font = '14px sans-serif'; s.background = '#222'; s.color = '#fff';
  document.body.appendChild(status);

  function show(consoleState, words) {
    document.body.dataset.consoleState = consoleState;
    status.textContent = words;
  }

  document.body.dataset.consoleState = 'loading';
  // the page comes with the state it was asked with; spice-html5 connects anyway and is refused
  // `limit`: the console is refused, and the check after its close says which limit
  if (state.state !== 'valid' && state.state !== 'limit') show('refused', WORDS[state.state] || WORDS.unknown);

  var ended = false;
  function mainChannelClosed(event) {
    if (ended) return;
    ended = true;
    // the gateway's final closes (src/proxy/relay.ts): token expired, idle, maximum duration
    var finals = { 'console session expired': 'sessionExpired', 'console idle timeout': 'idleTimeout', 'console session reached its maximum duration': 'maxDuration' };
    if (event.code === 1008 && Object.prototype.hasOwnProperty.call(finals, event.reason)) {
      show('disconnected', WORDS[finals[event.reason]]);
      return;
    }
    var url = '/porthole/token-state' + (token ? '?token=' + encodeURIComponent(token) : '');
    fetch(url, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (now) {
        if (now.state === 'valid' || now.state === 'unavailable') show('disconnected', event.wasClean ? WORDS.disconnected : WORDS.unreachable);
        else if (now.state === 'unreachable') show('disconnected', WORDS.unreachable);
        // refused by a concurrent-console limit (the WebSocket never sees the HTTP status): which one
        else if (now.state === 'limit') show('disconnected', WORDS[now.limit] || WORDS.total);
        else show(state.state === 'valid' ? 'disconnected' : 'refused', WORDS[now.state] || WORDS.unknown);
      })
      .catch(function () { show('disconnected', WORDS.disconnected); });
  }

  var Native = window.WebSocket;
  var opened = 0;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      var main = opened++ === 0;
      if (!main) return;
      this.addEventListener('open', function () {
        if (!ended) show('connected', WORDS.connected);
      });
      this.addEventListener('close', mainChannelClosed);
    }
  };
})();
