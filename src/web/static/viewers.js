/**
 * @module porthole/viewers
 *
 * The Viewers panel of Porthole's VNC console page (console.html) on a shared console
 * (`[porthole] shared_consoles`, `server add --shared-consoles`): every viewer of the machine goes
 * through one backend connection that the proxy holds, one of them has control (keys, pointer,
 * clipboard) and the others watch. A "Viewers (N)" button in the bar opens a panel that lists who
 * is there and who has control, says in words what this viewer can do ("You are watching — Alice
 * has control"), and offers "Ask for control", "Give control to …" and "Release control". When
 * someone asks, the viewer in control is asked in a prompt (give or keep); the proxy hands control
 * over by itself when the prompt is not answered in time.
 *
 * It talks to the proxy over the control channel (`/porthole/shared?token=…&viewer=…`, JSON,
 * `src/proxy/shared-control.ts`), which console.js names for each RFB connection in
 * `window.porthole.shared` (`{ key, controlUrl }`: the random key is also on the RFB WebSocket's
 * URL, which is how the proxy pairs the two). noVNC's `viewOnly` is set while this viewer watches,
 * so its keys and pointer are not even sent (the proxy drops a watcher's input anyway). A
 * view-only link (a `novnc-view-only` token: a watcher, an admin's shadow) is never offered to ask.
 *
 * Its ties to console.js, as the other panels: the `porthole:rfb` event and `window.porthole`,
 * `document.body.dataset.consoleState`, the `porthole:panel` event (one panel open at a time),
 * `<html lang>` for its words. Names of viewers come from the server and are only ever set as
 * textContent.
 */
import { pickText, format, make } from './panel-kit.js';

// ===== Messages =====

const MESSAGES = {
  en: {
    button: 'Viewers ({n})', buttonTitle: 'Who is at this console, and who has control', panel: 'Viewers',
    you: '{name} (you)', unnamed: 'Viewer {n}',
    roleControl: 'has control', roleView: 'watching', roleViewOnly: 'watching, view only',
    youControl: 'You have control.', youWatch: 'You are watching — {name} has control.', youWatchNobody: 'You are watching — nobody has control.',
    viewOnlyNote: 'Your link is view only: you can watch, not take control.',
    ask: 'Ask for control', asked: 'Asked for control…', release: 'Release control', give: 'Give control', giveTo: 'Give control to {name}',
    close: 'Close', request: '{name} asks for control.', requestTimeout: 'Control goes to them in {seconds} s unless you keep it.',
    accept: 'Give control', deny: 'Keep control', denied: '{name} kept control.', requestLabel: 'Request for control',
  },
  de: {
    button: 'Zuschauer ({n})', buttonTitle: 'Wer an dieser Konsole ist und wer die Steuerung hat', panel: 'Zuschauer',
    you: '{name} (Sie)', unnamed: 'Zuschauer {n}',
    roleControl: 'hat die Steuerung', roleView: 'schaut zu', roleViewOnly: 'schaut zu, nur ansehen',
    youControl: 'Sie haben die Steuerung.', youWatch: 'Sie schauen zu – {name} hat die Steuerung.', youWatchNobody: 'Sie schauen zu – niemand hat die Steuerung.',
    viewOnlyNote: 'Ihr Link ist nur zum Ansehen: Sie können zuschauen, aber nicht die Steuerung übernehmen.',
    ask: 'Steuerung anfordern', asked: 'Steuerung angefordert…', release: 'Steuerung abgeben', give: 'Steuerung übergeben', giveTo: 'Steuerung an {name} übergeben',
    close: 'Schließen', request: '{name} bittet um die Steuerung.', requestTimeout: 'Die Steuerung geht in {seconds} s an diese Person, wenn Sie sie nicht behalten.',
    accept: 'Steuerung übergeben', deny: 'Steuerung behalten', denied: '{name} hat die Steuerung behalten.', requestLabel: 'Bitte um die Steuerung',
  },
  fr: {
    button: 'Spectateurs ({n})', buttonTitle: 'Qui est sur cette console, et qui en a le contrôle', panel: 'Spectateurs',
    you: '{name} (vous)', unnamed: 'Spectateur {n}',
    roleControl: 'a le contrôle', roleView: 'regarde', roleViewOnly: 'regarde, lecture seule',
    youControl: 'Vous avez le contrôle.', youWatch: 'Vous regardez — {name} a le contrôle.', youWatchNobody: 'Vous regardez — personne n’a le contrôle.',
    viewOnlyNote: 'Votre lien est en lecture seule\u00a0: vous pouvez regarder, pas prendre le contrôle.',
    ask: 'Demander le contrôle', asked: 'Contrôle demandé…', release: 'Rendre le contrôle', give: 'Donner le contrôle', giveTo: 'Donner le contrôle à {name}',
    close: 'Fermer', request: '{name} demande le contrôle.', requestTimeout: 'Le contrôle lui passe dans {seconds}\u00a0s si vous ne le gardez pas.',
    accept: 'Donner le contrôle', deny: 'Garder le contrôle', denied: '{name} a gardé le contrôle.', requestLabel: 'Demande de contrôle',
  },
  es: {
    button: 'Espectadores ({n})', buttonTitle: 'Quién está en esta consola y quién tiene el control', panel: 'Espectadores',
    you: '{name} (usted)', unnamed: 'Espectador {n}',
    roleControl: 'tiene el control', roleView: 'mirando', roleViewOnly: 'mirando, solo ver',
    youControl: 'Usted tiene el control.', youWatch: 'Está mirando — {name} tiene el control.', youWatchNobody: 'Está mirando — nadie tiene el control.',
    viewOnlyNote: 'Su enlace es solo para ver: puede mirar, no tomar el control.',
    ask: 'Pedir el control', asked: 'Control pedido…', release: 'Dejar el control', give: 'Dar el control', giveTo: 'Dar el control a {name}',
    close: 'Cerrar', request: '{name} pide el control.', requestTimeout: 'El control pasa a esa persona en {seconds} s si no lo conserva.',
    accept: 'Dar el control', deny: 'Conservar el control', denied: '{name} conservó el control.', requestLabel: 'Petición de control',
  },
  ja: {
    button: '閲覧者 ({n})', buttonTitle: 'このコンソールにいる人と操作権を持つ人', panel: '閲覧者',
    you: '{name} (あなた)', unnamed: '閲覧者 {n}',
    roleControl: '操作中', roleView: '閲覧中', roleViewOnly: '閲覧中 (閲覧専用)',
    youControl: 'あなたが操作権を持っています。', youWatch: '閲覧中です — {name} が操作権を持っています。', youWatchNobody: '閲覧中です — 操作権を持つ人はいません。',
    viewOnlyNote: 'このリンクは閲覧専用です。閲覧はできますが、操作権は取得できません。',
    ask: '操作権を要求', asked: '操作権を要求しました…', release: '操作権を手放す', give: '操作権を渡す', giveTo: '{name} に操作権を渡す',
    close: '閉じる', request: '{name} が操作権を要求しています。', requestTimeout: '保持しない場合、{seconds} 秒後に操作権が移ります。',
    accept: '操作権を渡す', deny: '操作権を保持', denied: '{name} が操作権を保持しました。', requestLabel: '操作権の要求',
  },
  'zh-CN': {
    button: '观看者 ({n})', buttonTitle: '谁在此控制台上，谁拥有控制权', panel: '观看者',
    you: '{name}（你）', unnamed: '观看者 {n}',
    roleControl: '拥有控制权', roleView: '正在观看', roleViewOnly: '正在观看（仅查看）',
    youControl: '你拥有控制权。', youWatch: '你正在观看 — {name} 拥有控制权。', youWatchNobody: '你正在观看 — 无人拥有控制权。',
    viewOnlyNote: '你的链接仅可查看：可以观看，不能获取控制权。',
    ask: '请求控制权', asked: '已请求控制权…', release: '释放控制权', give: '移交控制权', giveTo: '将控制权移交给 {name}',
    close: '关闭', request: '{name} 请求控制权。', requestTimeout: '如果你不保留，控制权将在 {seconds} 秒后移交。',
    accept: '移交控制权', deny: '保留控制权', denied: '{name} 保留了控制权。', requestLabel: '控制权请求',
  },
};

// The channel again after it closed while the console is live (a blip, or a refusal: another
// process of the proxy holds this console, see the README): from 3 s, doubling, at most every 60 s.
const REOPEN_FIRST_MS = 3000;
const REOPEN_MAX_MS = 60_000;
// How often the prompt's countdown is brought up to date.
const TICK_MS = 1000;

// ===== State =====

const panel = {
  text: MESSAGES.en,
  rfb: null,
  /** `window.porthole.shared` of the current RFB connection: `{ key, controlUrl }`, or null. */
  shared: null,
  channel: null,
  reopenTimer: null,
  reopenDelay: REOPEN_FIRST_MS,
  /** This viewer's id on the console, and everyone (the channel's last `viewers`). */
  you: null,
  viewers: [],
  /** The page's own view-only choice (Settings, a view-only link), which control does not undo. */
  baseViewOnly: false,
  asked: false,
  /** The pending request to this viewer, in control: `{ by, until }`. */
  request: null,
  tick: null,
  /** The words of the last `denied`, shown until the list changes. */
  note: null,
  elements: {},
};



// ===== Elements =====


function build() {
  const t = panel.text;
  const e = panel.elements;
  // the viewer's part, in the bar where it is always seen (and read out when it changes)
  e.role = make('span', { id: 'viewers-role', role: 'status', hidden: true });
  // a request for control, read out at once to the viewer in control (the prompt shows it)
  e.announce = make('span', { id: 'viewers-announce', className: 'viewers-unseen', 'aria-live': 'assertive' });
  e.toggle = make('button', { id: 'viewers-toggle', type: 'button', textContent: format(t.button, { n: 0 }), title: t.buttonTitle, hidden: true, 'aria-expanded': 'false', 'aria-controls': 'viewers-panel' });
  e.summary = make('p', { id: 'viewers-summary', role: 'status', 'aria-live': 'polite' });
  e.list = make('ul', { id: 'viewers-list', 'aria-label': t.panel });
  e.ask = make('button', { id: 'viewers-ask', type: 'button', textContent: t.ask });
  e.release = make('button', { id: 'viewers-release', type: 'button', textContent: t.release });
  e.close = make('button', { id: 'viewers-close', type: 'button', textContent: t.close });
  e.panel = make('aside', { id: 'viewers-panel', hidden: true, 'aria-label': t.panel }, [
    e.summary,
    e.list,
    make('div', { className: 'viewers-actions' }, [e.ask, e.release, e.close]),
  ]);
  e.requestText = make('p', { id: 'viewers-request-text' });
  e.requestTimeout = make('p', { id: 'viewers-request-timeout' });
  e.accept = make('button', { id: 'viewers-accept', type: 'button', textContent: t.accept });
  e.deny = make('button', { id: 'viewers-deny', type: 'button', textContent: t.deny });
  // not modal and never takes the focus: the person in control may be typing on the machine, and
  // a key meant for it must not answer the prompt; Tab reaches it
  e.request = make('div', { id: 'viewers-request', role: 'alertdialog', hidden: true, 'aria-label': t.requestLabel, 'aria-describedby': 'viewers-request-text viewers-request-timeout' }, [
    e.requestText,
    e.requestTimeout,
    make('div', { className: 'viewers-actions' }, [e.accept, e.deny]),
  ]);

  const bar = document.getElementById('bar');
  bar.insertBefore(e.role, document.getElementById('time-left'));
  bar.insertBefore(e.toggle, document.getElementById('fullscreen'));
  bar.append(e.announce);
  document.body.insertBefore(e.panel, document.getElementById('screen'));
  document.body.insertBefore(e.request, document.getElementById('screen'));

  e.toggle.addEventListener('click', () => show(e.panel.hidden));
  e.close.addEventListener('click', () => show(false));
  e.panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') show(false);
  });
  e.ask.addEventListener('click', askOnClick);
  e.release.addEventListener('click', () => send({ type: 'release-control' }));
  e.accept.addEventListener('click', () => answer(true));
  e.deny.addEventListener('click', () => answer(false));
  e.request.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') answer(false);
  });
}

// ===== The control channel =====

function openChannel() {
  closeChannel();
  const shared = panel.shared;
  if (shared === null || !live()) return;
  let ws;
  try {
    ws = new WebSocket(shared.controlUrl);
  } catch {
    return;
  }
  panel.channel = ws;
  ws.addEventListener('message', (event) => {
    if (panel.channel !== ws || typeof event.data !== 'string') return;
    panel.reopenDelay = REOPEN_FIRST_MS;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    received(message);
  });
  ws.addEventListener('close', () => {
    if (panel.channel !== ws) return;
    panel.channel = null;
    forget();
    // the console may still be live (a channel dropped alone): try again while it is
    if (live() && panel.shared === shared) {
      panel.reopenTimer = setTimeout(openChannel, panel.reopenDelay);
      panel.reopenDelay = Math.min(panel.reopenDelay * 2, REOPEN_MAX_MS);
    }
  });
}

function closeChannel() {
  clearTimeout(panel.reopenTimer);
  panel.reopenTimer = null;
  const ws = panel.channel;
  panel.channel = null;
  ws?.close();
  forget();
}

/** What the channel said is no longer known: no list, no prompt, the page's own view-only choice. */
function forget() {
  panel.you = null;
  panel.viewers = [];
  panel.asked = false;
  panel.note = null;
  setRequest(null);
  if (panel.rfb !== null) setViewOnly(panel.baseViewOnly);
  render();
}

function send(message) {
  const ws = panel.channel;
  if (ws !== null && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

/** Messages of types this page does not know are ignored (a newer proxy). */
function received(message) {
  if (message === null || typeof message !== 'object') return;
  switch (message.type) {
    case 'viewers':
      if (typeof message.you !== 'string' || !Array.isArray(message.viewers)) return;
      panel.you = message.you;
      panel.viewers = message.viewers.filter(isViewer).slice(0, 1000);
      if (me()?.role === 'control') panel.asked = false;
      // a request whose asker left, or that was settled, is over
      if (panel.request !== null && (me()?.role !== 'control' || !panel.viewers.some((v) => v.id === panel.request.by))) setRequest(null);
      followRole();
      render();
      return;
    case 'role':
      if (message.role !== 'control' && message.role !== 'view') return;
      if (panel.you !== null) panel.viewers = panel.viewers.map((v) => (v.id === panel.you ? { ...v, role: message.role } : v));
      if (message.role === 'control') panel.asked = false;
      else setRequest(null);
      followRole();
      render();
      return;
    case 'control-requested':
      if (typeof message.by !== 'string') return;
      setRequest({ by: message.by, until: Date.now() + (typeof message.timeoutMs === 'number' && message.timeoutMs > 0 ? message.timeoutMs : 10_000) });
      render();
      if (me()?.role === 'control') panel.elements.announce.textContent = format(panel.text.request, { name: nameOf(message.by) });
      return;
    case 'denied':
      panel.asked = false;
      panel.note = format(panel.text.denied, { name: nameOf(typeof message.by === 'string' ? message.by : null) });
      render();
      return;
  }
}

function isViewer(v) {
  return v !== null && typeof v === 'object' && typeof v.id === 'string' && (v.role === 'control' || v.role === 'view');
}

function me() {
  return panel.viewers.find((v) => v.id === panel.you) ?? null;
}

/** noVNC sends keys and pointer only while this viewer has control (and the page did not choose view-only). */
function followRole() {
  if (panel.rfb === null) return;
  setViewOnly(panel.baseViewOnly || me()?.role !== 'control');
}

/**
 * noVNC's view-only, told to the page (`data-view-only` on <body>) so that the bar's other
 * buttons that send input (Ctrl-Alt-Del, Keys, the on-screen keyboard, typing) go while this
 * viewer watches and come back with control: no button that cannot work.
 */
function setViewOnly(viewOnly) {
  panel.rfb.viewOnly = viewOnly;
  if (document.body.dataset.viewOnly !== String(viewOnly)) document.body.dataset.viewOnly = String(viewOnly);
}

// ===== Actions =====

function askOnClick() {
  panel.asked = true;
  panel.note = null;
  send({ type: 'request-control' });
  render();
}

function answer(give) {
  const request = panel.request;
  if (request === null) return;
  send(give ? { type: 'give-control', to: request.by } : { type: 'deny' });
  setRequest(null);
  render();
  panel.rfb?.focus({ preventScroll: true });
}

function setRequest(request) {
  panel.request = request;
  if (request === null) panel.elements.announce.textContent = '';
  clearInterval(panel.tick);
  panel.tick = null;
  if (request !== null) panel.tick = setInterval(renderRequest, TICK_MS);
}

// ===== Rendering =====

function nameOf(id) {
  const index = panel.viewers.findIndex((v) => v.id === id);
  const v = panel.viewers[index];
  if (v !== undefined && typeof v.name === 'string' && v.name !== '') return v.name;
  return format(panel.text.unnamed, { n: index === -1 ? '?' : index + 1 });
}

function live() {
  const state = document.body.dataset.consoleState;
  return state === 'connecting' || state === 'connected' || state === 'reconnecting';
}

function render() {
  const t = panel.text;
  const e = panel.elements;
  const mine = me();
  const offered = panel.shared !== null && live() && mine !== null;
  e.toggle.hidden = !offered;
  e.toggle.textContent = format(t.button, { n: panel.viewers.length });
  if (!offered) {
    if (!e.panel.hidden) show(false);
    e.request.hidden = true;
    e.role.hidden = true;
    return;
  }
  const controller = panel.viewers.find((v) => v.role === 'control');
  let summary = mine.role === 'control' ? t.youControl
    : controller !== undefined ? format(t.youWatch, { name: nameOf(controller.id) }) : t.youWatchNobody;
  if (mine.viewOnly) summary += ` ${t.viewOnlyNote}`;
  if (panel.note !== null) summary += ` ${panel.note}`;
  e.summary.textContent = summary;
  const bar = mine.role === 'control' ? t.youControl
    : controller !== undefined ? format(t.youWatch, { name: nameOf(controller.id) }) : t.youWatchNobody;
  // set only when it changes, so that it is read out once
  if (e.role.textContent !== bar) e.role.textContent = bar;
  e.role.title = bar;
  e.role.hidden = false;
  // the bar says it too, for whoever has the panel closed
  e.toggle.dataset.role = mine.role;

  e.list.replaceChildren(...panel.viewers.map((v) => {
    const name = nameOf(v.id);
    const role = v.role === 'control' ? t.roleControl : v.viewOnly ? t.roleViewOnly : t.roleView;
    const item = make('li', { 'data-viewer': v.id, 'data-role': v.role }, [
      make('span', { className: 'viewers-name', textContent: v.id === panel.you ? format(t.you, { name }) : name }),
      make('span', { className: 'viewers-role', textContent: role }),
    ]);
    if (mine.role === 'control' && v.id !== panel.you && !v.viewOnly) {
      const give = make('button', { type: 'button', className: 'viewers-give', textContent: t.give, 'aria-label': format(t.giveTo, { name }) });
      give.addEventListener('click', () => send({ type: 'give-control', to: v.id }));
      item.append(give);
    }
    return item;
  }));

  e.ask.hidden = mine.viewOnly || mine.role === 'control';
  e.ask.disabled = panel.asked;
  e.ask.textContent = panel.asked ? t.asked : t.ask;
  e.release.hidden = mine.role !== 'control';
  renderRequest();
}

function renderRequest() {
  const e = panel.elements;
  const request = panel.request;
  if (request === null || me()?.role !== 'control') {
    e.request.hidden = true;
    return;
  }
  const seconds = Math.max(0, Math.ceil((request.until - Date.now()) / 1000));
  e.requestText.textContent = format(panel.text.request, { name: nameOf(request.by) });
  e.requestTimeout.textContent = format(panel.text.requestTimeout, { seconds });
  e.request.hidden = false;
}

function show(open) {
  const e = panel.elements;
  // one panel at a time: the others close before this one takes the focus
  if (open) document.dispatchEvent(new CustomEvent('porthole:panel', { detail: 'viewers' }));
  e.panel.hidden = !open;
  e.toggle.setAttribute('aria-expanded', String(open));
  if (open) (e.panel.querySelector('button:not([hidden]):not(:disabled)') ?? e.close).focus();
  else panel.rfb?.focus({ preventScroll: true });
}

// ===== Following console.js =====

/** console.js made `rfb`: the channel follows its connection. */
function adopt(rfb) {
  if (rfb === panel.rfb || rfb === null || rfb === undefined) return;
  closeChannel();
  panel.rfb = rfb;
  panel.shared = window.porthole?.shared ?? null;
  panel.reopenDelay = REOPEN_FIRST_MS;
  // console.js sets noVNC's view-only after it tells of the RFB object: read it when it connects
  rfb.addEventListener('connect', () => {
    if (panel.rfb !== rfb) return;
    panel.baseViewOnly = rfb.viewOnly === true;
    // watching until the proxy says otherwise: a key typed before would be dropped anyway
    if (panel.shared !== null) setViewOnly(true);
    openChannel();
  });
  rfb.addEventListener('disconnect', () => {
    if (panel.rfb === rfb) closeChannel();
  });
  render();
}

function main() {
  panel.text = pickText(MESSAGES);
  build();
  document.addEventListener('porthole:rfb', (event) => adopt(event.detail));
  adopt(window.porthole?.rfb);
  new MutationObserver(render).observe(document.body, { attributes: true, attributeFilter: ['data-console-state'] });
  document.addEventListener('pointerdown', (event) => {
    const e = panel.elements;
    if (!e.panel.hidden && !e.panel.contains(event.target) && !e.toggle.contains(event.target)) {
      e.panel.hidden = true;
      e.toggle.setAttribute('aria-expanded', 'false');
    }
  });
  document.addEventListener('porthole:panel', (event) => {
    if (event.detail !== 'viewers' && !panel.elements.panel.hidden) show(false);
  });
  render();
}

main();
