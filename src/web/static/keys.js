/**
 * @module porthole/keys
 *
 * The Keys menu of Porthole's VNC console page (console.html): a "Keys" button in the bar opens a
 * panel of keys and combinations a browser keeps for itself or the local system takes before the
 * page sees them (Ctrl-Alt-Del, Ctrl-Alt-F1..F12, Alt-Tab, the Windows key, PrintScreen, Esc,
 * Tab), sent with noVNC's `rfb.sendKey(keysym, code, down)`: the keysym for servers that go by
 * symbols, the KeyboardEvent code for those that take QEMU's extended key events (scancodes).
 *
 * Sticky Ctrl, Alt and Super (aria-pressed toggles) are held for the next key: the next key of
 * the menu, or the next key typed on the machine's screen. They go down only when that key does
 * and up right after it, so a modifier never stays pressed on the machine while nobody types.
 *
 * Its one tie to console.js, as clipboard.js: the `porthole:rfb` event (and `window.porthole.rfb`)
 * for the current RFB object, `document.body.dataset.consoleState` for whether it takes keys.
 * Not offered on a final page (`refused`) nor when view-only: no button that cannot work.
 */
import { pickText, format, make } from './panel-kit.js';

// ===== Keys =====

// X keysyms (noVNC core/input/keysym.js) and the KeyboardEvent codes of the same keys
const KEY = {
  ctrl: [0xffe3, 'ControlLeft'],
  alt: [0xffe9, 'AltLeft'],
  super: [0xffeb, 'MetaLeft'],
  del: [0xffff, 'Delete'],
  tab: [0xff09, 'Tab'],
  esc: [0xff1b, 'Escape'],
  print: [0xff61, 'PrintScreen'],
};
const fKey = (n) => [0xffbe + n - 1, `F${n}`];

const MODIFIERS = ['ctrl', 'alt', 'super'];

/** The menu: [id, message key or literal label, modifiers held, key]. */
const COMBOS = [
  ['ctrl-alt-del', 'ctrlAltDel', ['ctrl', 'alt'], KEY.del],
  ['alt-tab', 'altTab', ['alt'], KEY.tab],
  ['super', 'superKey', [], KEY.super],
  ['print', 'printScreen', [], KEY.print],
  ['esc', 'esc', [], KEY.esc],
  ['tab', 'tab', [], KEY.tab],
  ...Array.from({ length: 12 }, (_, i) => [`ctrl-alt-f${i + 1}`, 'ctrlAltF', ['ctrl', 'alt'], fKey(i + 1), { n: i + 1 }]),
];

// ===== Messages =====

const MESSAGES = {
  en: {
    button: 'Keys', buttonTitle: 'Send keys the browser keeps for itself', panel: 'Keys',
    ctrlAltDel: 'Ctrl-Alt-Del', altTab: 'Alt-Tab', superKey: 'Windows key', printScreen: 'Print Screen',
    esc: 'Esc', tab: 'Tab', ctrlAltF: 'Ctrl-Alt-F{n}',
    sticky: 'Hold for the next key', ctrl: 'Ctrl', alt: 'Alt', super: 'Windows',
    close: 'Close',
  },
  de: {
    button: 'Tasten', buttonTitle: 'Tasten senden, die der Browser für sich behält', panel: 'Tasten',
    ctrlAltDel: 'Strg-Alt-Entf', altTab: 'Alt-Tab', superKey: 'Windows-Taste', printScreen: 'Druck',
    esc: 'Esc', tab: 'Tab', ctrlAltF: 'Strg-Alt-F{n}',
    sticky: 'Für die nächste Taste festhalten', ctrl: 'Strg', alt: 'Alt', super: 'Windows',
    close: 'Schließen',
  },
  fr: {
    button: 'Touches', buttonTitle: 'Envoyer les touches que le navigateur garde pour lui', panel: 'Touches',
    ctrlAltDel: 'Ctrl-Alt-Suppr', altTab: 'Alt-Tab', superKey: 'Touche Windows', printScreen: 'Impr. écran',
    esc: 'Échap', tab: 'Tab', ctrlAltF: 'Ctrl-Alt-F{n}',
    sticky: 'Maintenir pour la touche suivante', ctrl: 'Ctrl', alt: 'Alt', super: 'Windows',
    close: 'Fermer',
  },
  es: {
    button: 'Teclas', buttonTitle: 'Enviar teclas que el navegador se reserva', panel: 'Teclas',
    ctrlAltDel: 'Ctrl-Alt-Supr', altTab: 'Alt-Tab', superKey: 'Tecla Windows', printScreen: 'Impr Pant',
    esc: 'Esc', tab: 'Tab', ctrlAltF: 'Ctrl-Alt-F{n}',
    sticky: 'Mantener para la siguiente tecla', ctrl: 'Ctrl', alt: 'Alt', super: 'Windows',
    close: 'Cerrar',
  },
  ja: {
    button: 'キー', buttonTitle: 'ブラウザーが横取りするキーを送信', panel: 'キー',
    ctrlAltDel: 'Ctrl-Alt-Del', altTab: 'Alt-Tab', superKey: 'Windows キー', printScreen: 'PrintScreen',
    esc: 'Esc', tab: 'Tab', ctrlAltF: 'Ctrl-Alt-F{n}',
    sticky: '次のキーまで押したままにする', ctrl: 'Ctrl', alt: 'Alt', super: 'Windows',
    close: '閉じる',
  },
  'zh-CN': {
    button: '按键', buttonTitle: '发送被浏览器截留的按键', panel: '按键',
    ctrlAltDel: 'Ctrl-Alt-Del', altTab: 'Alt-Tab', superKey: 'Windows 键', printScreen: 'PrintScreen',
    esc: 'Esc', tab: 'Tab', ctrlAltF: 'Ctrl-Alt-F{n}',
    sticky: '为下一个按键保持按下', ctrl: 'Ctrl', alt: 'Alt', super: 'Windows',
    close: '关闭',
  },
};

// ===== State =====

const menu = {
  text: MESSAGES.en,
  rfb: null,
  /** Sticky modifiers chosen for the next key. */
  held: new Set(),
  /** Sticky modifiers sent down for a key typed on the screen, released when it goes up. */
  down: [],
  elements: {},
};



// ===== Elements =====


function build() {
  const t = menu.text;
  const e = menu.elements;
  e.toggle = make('button', { id: 'keys-toggle', type: 'button', textContent: t.button, title: t.buttonTitle, hidden: true, 'aria-expanded': 'false', 'aria-controls': 'keys-panel' });
  e.combos = COMBOS.map(([id, label, mods, key, values]) => {
    const button = make('button', { id: `keys-${id}`, type: 'button', textContent: format(t[label], values) });
    button.addEventListener('click', () => sendCombo(mods, key));
    return button;
  });
  e.sticky = MODIFIERS.map((name) => {
    const button = make('button', { id: `keys-sticky-${name}`, type: 'button', textContent: t[name], 'aria-pressed': 'false' });
    button.addEventListener('click', () => toggleSticky(name));
    return button;
  });
  e.close = make('button', { id: 'keys-close', type: 'button', textContent: t.close });
  e.panel = make('aside', { id: 'keys-panel', hidden: true, 'aria-label': t.panel }, [
    make('div', { className: 'keys-grid' }, e.combos.slice(0, 6)),
    make('div', { className: 'keys-grid keys-f' }, e.combos.slice(6)),
    make('div', { role: 'group', 'aria-labelledby': 'keys-sticky-label' }, [
      make('p', { id: 'keys-sticky-label', textContent: t.sticky }),
      make('div', { className: 'keys-grid' }, e.sticky),
    ]),
    make('div', { className: 'keys-actions' }, [e.close]),
  ]);

  const bar = document.getElementById('bar');
  bar.insertBefore(e.toggle, document.getElementById('fullscreen'));
  document.body.insertBefore(e.panel, document.getElementById('screen'));

  e.toggle.addEventListener('click', () => show(e.panel.hidden));
  e.close.addEventListener('click', () => show(false));
  e.panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') show(false);
  });
  // a key typed on the machine's screen takes the sticky modifiers (capture: before noVNC,
  // which stops the event on its canvas)
  document.addEventListener('keydown', screenOnKeyDown, true);
  document.addEventListener('keyup', screenOnKeyUp, true);
}

// ===== Behaviour =====

function takesKeys() {
  return menu.rfb !== null && document.body.dataset.consoleState === 'connected' && menu.rfb.viewOnly !== true;
}

function update() {
  const e = menu.elements;
  // not on a final page, not while view-only; shown disabled while a live console is set up
  const state = document.body.dataset.consoleState;
  const live = state === 'connecting' || state === 'connected' || state === 'reconnecting';
  const offered = live && menu.rfb !== null && menu.rfb.viewOnly !== true;
  e.toggle.hidden = !offered;
  e.toggle.disabled = !takesKeys();
  if (!takesKeys()) {
    if (!e.panel.hidden) show(false);
    // the machine's side was let go with the session; the page's choice goes with it
    menu.down = [];
    setHeld(new Set());
  }
}

function show(open) {
  const e = menu.elements;
  // one panel at a time: the others close before this one takes the focus
  if (open) document.dispatchEvent(new CustomEvent('porthole:panel', { detail: 'keys' }));
  e.panel.hidden = !open;
  e.toggle.setAttribute('aria-expanded', String(open));
  if (open) e.combos[0].focus();
  else menu.rfb?.focus({ preventScroll: true });
}

function setHeld(held) {
  menu.held = held;
  for (const [i, name] of MODIFIERS.entries()) {
    menu.elements.sticky[i].setAttribute('aria-pressed', String(held.has(name)));
  }
  menu.elements.toggle.classList.toggle('keys-held', held.size > 0);
}

function toggleSticky(name) {
  const held = new Set(menu.held);
  if (held.has(name)) held.delete(name);
  else held.add(name);
  setHeld(held);
}

/** Presses `mods` (with the sticky ones) and `key`, then lets all go in the reverse order. */
function sendCombo(mods, key) {
  if (!takesKeys()) return;
  const rfb = menu.rfb;
  const all = [...new Set([...MODIFIERS.filter((m) => menu.held.has(m)), ...mods])].map((m) => KEY[m]);
  for (const [keysym, code] of all) rfb.sendKey(keysym, code, true);
  rfb.sendKey(key[0], key[1], true);
  rfb.sendKey(key[0], key[1], false);
  for (const [keysym, code] of all.reverse()) rfb.sendKey(keysym, code, false);
  setHeld(new Set());
}

const MODIFIER_KEYS = new Set(['Control', 'Alt', 'AltGraph', 'Meta', 'Shift', 'OS', 'CapsLock']);

function onScreen(event) {
  return event.target instanceof Node && document.getElementById('screen').contains(event.target);
}

function screenOnKeyDown(event) {
  if (menu.held.size === 0 || menu.down.length > 0 || !onScreen(event) || !takesKeys()) return;
  if (MODIFIER_KEYS.has(event.key)) return; // Shift etc. join the held ones; the next other key takes them
  menu.down = MODIFIERS.filter((m) => menu.held.has(m)).map((m) => KEY[m]);
  for (const [keysym, code] of menu.down) menu.rfb.sendKey(keysym, code, true);
  setHeld(new Set());
}

function screenOnKeyUp(event) {
  if (menu.down.length === 0 || !onScreen(event) || MODIFIER_KEYS.has(event.key)) return;
  const rfb = menu.rfb;
  const down = menu.down;
  menu.down = [];
  // after noVNC has sent this key's release (its handler on the canvas runs after this one)
  setTimeout(() => {
    if (rfb !== menu.rfb) return;
    for (const [keysym, code] of down.reverse()) rfb.sendKey(keysym, code, false);
  }, 0);
}

/** console.js made `rfb`: the menu follows it from now on. */
function adopt(rfb) {
  if (rfb === menu.rfb || rfb === null || rfb === undefined) return;
  menu.rfb = rfb;
  menu.down = [];
  update();
}

function main() {
  menu.text = pickText(MESSAGES);
  build();
  document.addEventListener('porthole:rfb', (event) => adopt(event.detail));
  adopt(window.porthole?.rfb);
  new MutationObserver(update).observe(document.body, { attributes: true, attributeFilter: ['data-console-state', 'data-view-only'] });
  // a click outside the open menu closes it, as menus do
  document.addEventListener('pointerdown', (event) => {
    const e = menu.elements;
    if (!e.panel.hidden && !e.panel.contains(event.target) && !e.toggle.contains(event.target)) {
      e.panel.hidden = true;
      e.toggle.setAttribute('aria-expanded', 'false');
    }
  });
  update();
  document.addEventListener('porthole:panel', (event) => {
    if (event.detail !== 'keys' && !menu.elements.panel.hidden) show(false);
  });
}

main();
