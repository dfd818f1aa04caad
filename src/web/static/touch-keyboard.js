/**
 * @module porthole/touch-keyboard
 *
 * The on-screen keyboard of Porthole's VNC console page (console.html) on touch devices: a phone
 * has no keys of its own, and its system keyboard opens only for a focused text field, never for
 * noVNC's canvas. So a "Keyboard" button in the bar focuses a textarea that is kept out of sight
 * but focusable, the phone's keyboard opens, and what it types there (its `input` events) is sent
 * to the machine as key presses with noVNC's `rfb.sendKey`, as noVNC's own app does (app/ui.js
 * `showVirtualKeyboard`, `keyboardinputReset`, `keyInput` on `#noVNC_keyboardinput`).
 *
 * Why input events and not keydown: phone keyboards (Android's above all) send keydown with key
 * "Unidentified" and keyCode 229 while composing; only the text that changed is dependable. The
 * textarea is kept filled with a padding of "_" so a deletion always has something to delete, and
 * each change is compared with the text before it: characters removed become Backspace, added
 * ones become their keysym (noVNC's keysymdef `lookup`), a line break becomes Return.
 *
 * Its one tie to console.js, as keys.js: the `porthole:rfb` event (and `window.porthole.rfb`) for
 * the current RFB object, `document.body.dataset.consoleState` for whether it takes keys. Offered
 * only on a touch device, and not on a final page (`refused`), when not connected, nor when
 * view-only: no button that cannot work.
 */
import { pickText, make } from './panel-kit.js';

// noVNC's own modules, served by the gateway at /novnc/ (as console.js loads rfb.js)
const NOVNC_KEYSYMDEF = '/novnc/core/input/keysymdef.js';

// X keysyms (noVNC core/input/keysym.js) and KeyboardEvent codes of the keys made from edits
const BACKSPACE = [0xff08, 'Backspace'];
const RETURN = [0xff0d, 'Enter'];

/** The padding kept in the textarea: deletions eat it; refilled when short or long. */
const PAD_LENGTH = 100;

// ===== Messages =====

const MESSAGES = {
  en: { button: 'Keyboard', buttonTitle: 'Show the on-screen keyboard to type on the machine', input: 'Text typed on the machine' },
  de: { button: 'Tastatur', buttonTitle: 'Bildschirmtastatur zeigen, um auf der Maschine zu tippen', input: 'Auf der Maschine getippter Text' },
  fr: { button: 'Clavier', buttonTitle: 'Afficher le clavier à l’écran pour taper sur la machine', input: 'Texte tapé sur la machine' },
  es: { button: 'Teclado', buttonTitle: 'Mostrar el teclado en pantalla para escribir en la máquina', input: 'Texto escrito en la máquina' },
  ja: { button: 'キーボード', buttonTitle: '画面キーボードを表示してマシンに入力', input: 'マシンに入力するテキスト' },
  'zh-CN': { button: '键盘', buttonTitle: '显示屏幕键盘以在机器上输入', input: '在机器上输入的文字' },
};

// ===== State =====

const pad = {
  text: MESSAGES.en,
  rfb: null,
  /** noVNC's keysymdef module once loaded. */
  keysyms: null,
  /** The textarea's value after the last input event handled. */
  last: '',
  elements: {},
};


/** A touch screen: a coarse pointer (a finger) or touch events. */
function isTouchDevice() {
  return window.matchMedia('(pointer: coarse)').matches || 'ontouchstart' in window;
}

// ===== Elements =====


function build() {
  const t = pad.text;
  const e = pad.elements;
  e.toggle = make('button', { id: 'touch-keyboard-toggle', type: 'button', textContent: t.button, title: t.buttonTitle, hidden: true, 'aria-pressed': 'false' });
  // out of sight but focusable (display:none or visibility:hidden could not take the focus);
  // tabindex -1: reached by the button, not by Tab
  e.input = make('textarea', {
    id: 'touch-keyboard-input', tabIndex: -1, spellcheck: false, autocomplete: 'off',
    autocapitalize: 'off', autocorrect: 'off', 'aria-label': t.input,
  });
  // first of the bar's buttons: at a phone's width the bar is wider than the screen and its last
  // buttons fall off the right edge; this one is what a phone most needs
  document.getElementById('bar').insertBefore(e.toggle, document.getElementById('ctrl-alt-del'));
  document.body.append(e.input);
  reset();

  e.toggle.addEventListener('click', () => show(document.activeElement !== e.input));
  e.input.addEventListener('input', onInput);
  e.input.addEventListener('focus', () => opened(true));
  e.input.addEventListener('blur', () => opened(false));
  // a tap on the screen or on the button while the keyboard is open must not take the focus
  // from the textarea (the phone would close its keyboard); the tap still reaches noVNC
  document.documentElement.addEventListener('mousedown', keepOpen, true);
}

// ===== Behaviour =====

function takesKeys() {
  return pad.rfb !== null && document.body.dataset.consoleState === 'connected' && pad.rfb.viewOnly !== true;
}

function update() {
  const e = pad.elements;
  e.toggle.hidden = !isTouchDevice() || !takesKeys();
  if (e.toggle.hidden && document.activeElement === e.input) e.input.blur();
}

function reset() {
  pad.elements.input.value = '_'.repeat(PAD_LENGTH);
  pad.last = pad.elements.input.value;
}

function show(open) {
  const input = pad.elements.input;
  if (open && takesKeys()) {
    input.focus({ preventScroll: true });
    const end = input.value.length;
    input.setSelectionRange(end, end);
  } else if (!open) {
    input.blur();
  }
}

function opened(open) {
  pad.elements.toggle.setAttribute('aria-pressed', String(open));
  // noVNC takes the focus back to its canvas on a click unless told not to
  if (pad.rfb) pad.rfb.focusOnClick = !open;
}

function keepOpen(event) {
  const e = pad.elements;
  if (document.activeElement !== e.input) return;
  if (e.toggle.contains(event.target) || document.getElementById('screen').contains(event.target)) event.preventDefault();
}

/** What changed in the textarea, as Backspaces then the characters added, sent to the machine. */
function onInput() {
  const input = pad.elements.input;
  const now = input.value;
  const before = pad.last;
  if (!takesKeys() || pad.keysyms === null) {
    reset();
    return;
  }
  // the first place they differ: everything after it in `before` was deleted, in `now` added
  let same = 0;
  while (same < before.length && same < now.length && before[same] === now[same]) same++;
  const deleted = [...before.slice(same)].length;
  const added = now.slice(same);
  const rfb = pad.rfb;
  for (let i = 0; i < deleted; i++) rfb.sendKey(...BACKSPACE);
  for (const char of added) {
    if (char === '\n' || char === '\r') rfb.sendKey(...RETURN);
    else rfb.sendKey(pad.keysyms.lookup(char.codePointAt(0)));
  }
  // keep something to delete, and not an ever longer text
  if (now.length < 1 || now.length > 2 * PAD_LENGTH) reset();
  else pad.last = now;
}

/** console.js made `rfb`: the keyboard follows it from now on. */
function adopt(rfb) {
  if (rfb === pad.rfb || rfb === null || rfb === undefined) return;
  pad.rfb = rfb;
  update();
}

async function main() {
  pad.text = pickText(MESSAGES);
  build();
  document.addEventListener('porthole:rfb', (event) => adopt(event.detail));
  adopt(window.porthole?.rfb);
  new MutationObserver(update).observe(document.body, { attributes: true, attributeFilter: ['data-console-state', 'data-view-only'] });
  window.matchMedia('(pointer: coarse)').addEventListener('change', update);
  update();
  pad.keysyms = (await import(NOVNC_KEYSYMDEF)).default;
}

main();
