/**
 * @module porthole/keystrokes
 *
 * Paste as keystrokes: a text typed into the machine key by key, for consoles without a clipboard
 * agent (BIOS, boot loaders, login prompts, installers). Over VNC a key event carries a keysym, and
 * with QEMU's extended key events (which noVNC uses where the server offers them: QEMU, TigerVNC)
 * also the physical key's scancode, which the machine reads with *its own* keyboard layout. So each
 * character is mapped to the key (KeyboardEvent.code) and modifiers (Shift, AltGr) that type it on
 * the layout the machine uses, chosen by the person at the console. Characters the layout cannot
 * type (dead-key compositions such as ê on a German layout, emoji, other scripts) are refused before
 * anything is sent, so that nothing half-typed reaches a password prompt.
 *
 * Pure functions and tables, no DOM: `plan(text, layout)` gives the keys or the refused characters;
 * `typeKeys(rfb, keys)` sends them at a pace slow firmware keeps up with.
 */

// The keys of the four rows, by KeyboardEvent.code; Backslash is the key left of Enter on ISO
// keyboards (code Backslash whatever its row), IntlBackslash the one right of left Shift.
const ROW_E = ['Backquote', 'Digit1', 'Digit2', 'Digit3', 'Digit4', 'Digit5', 'Digit6', 'Digit7', 'Digit8', 'Digit9', 'Digit0', 'Minus', 'Equal', 'IntlYen'];
const ROW_D = ['KeyQ', 'KeyW', 'KeyE', 'KeyR', 'KeyT', 'KeyY', 'KeyU', 'KeyI', 'KeyO', 'KeyP', 'BracketLeft', 'BracketRight'];
const ROW_C = ['KeyA', 'KeyS', 'KeyD', 'KeyF', 'KeyG', 'KeyH', 'KeyJ', 'KeyK', 'KeyL', 'Semicolon', 'Quote', 'Backslash'];
const ROW_B = ['IntlBackslash', 'KeyZ', 'KeyX', 'KeyC', 'KeyV', 'KeyB', 'KeyN', 'KeyM', 'Comma', 'Period', 'Slash', 'IntlRo'];
const ROWS = [ROW_E, ROW_D, ROW_C, ROW_B];

// Per layout and row: [plain, Shift, AltGr] characters in the rows' key order; `_` marks a key
// that types nothing at that level, or a dead key (composition is not typed: refused instead).
// Every character is checked against xkb's layout of the same name (test/web/keystrokes.test.ts);
// a character left out is refused, never mistyped.
const _ = '\u0000';
const LAYOUTS = {
  us: [
    ['`1234567890-=', '~!@#$%^&*()_+', ''],
    ['qwertyuiop[]', 'QWERTYUIOP{}', ''],
    ['asdfghjkl;\'\\', 'ASDFGHJKL:"|', ''],
    [`${_}zxcvbnm,./`, `${_}ZXCVBNM<>?`, ''],
  ],
  uk: [
    ['`1234567890-=', '¬!"£$%^&*()_+', `${_}${_}${_}${_}€`],
    ['qwertyuiop[]', 'QWERTYUIOP{}', ''],
    ['asdfghjkl;\'#', 'ASDFGHJKL:@~', ''],
    ['\\zxcvbnm,./', '|ZXCVBNM<>?', ''],
  ],
  de: [
    [`${_}1234567890ß${_}`, `°!"§$%&/()=?${_}`, `${_}${_}²³${_}${_}${_}{[]}\\`],
    ['qwertzuiopü+', 'QWERTZUIOPÜ*', `@${_}€${_}${_}${_}${_}${_}${_}${_}${_}~`],
    ['asdfghjklöä#', 'ASDFGHJKLÖÄ\'', ''],
    ['<yxcvbnm,.-', '>YXCVBNM;:_', `|${_}${_}${_}${_}${_}${_}µ`],
  ],
  fr: [
    ['²&é"\'(-è_çà)=', `${_}1234567890°+`, `${_}${_}${_}#{[|${_}\\${_}@]}`],
    [`azertyuiop${_}$`, `AZERTYUIOP${_}£`, `${_}${_}€${_}${_}${_}${_}${_}${_}${_}${_}¤`],
    ['qsdfghjklmù*', 'QSDFGHJKLM%µ', ''],
    ['<wxcvbn,;:!', '>WXCVBN?./§', ''],
  ],
  es: [
    ['º1234567890\'¡', 'ª!"·$%&/()=?¿', `\\|@#${_}${_}¬`],
    [`qwertyuiop${_}+`, `QWERTYUIOP${_}*`, `${_}${_}€${_}${_}${_}${_}${_}${_}${_}[]`],
    [`asdfghjklñ${_}ç`, `ASDFGHJKLÑ${_}Ç`, `${_}${_}${_}${_}${_}${_}${_}${_}${_}${_}{}`],
    ['<zxcvbnm,.-', '>ZXCVBNM;:_', ''],
  ],
  it: [
    ['\\1234567890\'ì', '|!"£$%&/()=?^', ''],
    ['qwertyuiopè+', 'QWERTYUIOPé*', `${_}${_}€${_}${_}${_}${_}${_}${_}${_}[]`],
    ['asdfghjklòàù', 'ASDFGHJKLç°§', `${_}${_}${_}${_}${_}${_}${_}${_}${_}@#`],
    ['<zxcvbnm,.-', '>ZXCVBNM;:_', ''],
  ],
  // JIS (jp106): the Yen key and the Ro key both type a backslash in xkb's jp
  jp: [
    [`${_}1234567890-^\\`, `${_}!"#$%&'()${_}=~|`, ''],
    ['qwertyuiop@[', 'QWERTYUIOP`{', ''],
    ['asdfghjkl;:]', 'ASDFGHJKL+*}', ''],
    [`${_}zxcvbnm,./\\`, `${_}ZXCVBNM<>?_`, ''],
  ],
};

/** The layouts, each named in its own language (the same words in every page language). */
export const LAYOUT_NAMES = {
  us: 'English (US)',
  uk: 'English (UK)',
  de: 'Deutsch',
  fr: 'Français',
  es: 'Español',
  it: 'Italiano',
  jp: '日本語',
};

const SHIFT = { keysym: 0xffe1, code: 'ShiftLeft' };
// ISO_Level3_Shift, the AltGr of xkb's layouts
const ALTGR = { keysym: 0xfe03, code: 'AltRight' };
const SPECIAL = {
  ' ': { keysym: 0x20, code: 'Space' },
  '\n': { keysym: 0xff0d, code: 'Enter' },
  '\t': { keysym: 0xff09, code: 'Tab' },
};

// Between two characters: slow enough for firmware and serial gettys that drop fast keys,
// fast enough for a long password (50 characters a second).
export const KEY_PACE_MS = 20;

const maps = new Map();

/** char → { code, shift, altgr } of `layout`; the first key found wins. */
function layoutMap(layout) {
  let map = maps.get(layout);
  if (map) return map;
  map = new Map();
  LAYOUTS[layout].forEach((levels, row) => {
    levels.forEach((chars, level) => {
      [...chars].forEach((char, i) => {
        const code = ROWS[row][i];
        if (char === _ || code === undefined || map.has(char)) return;
        map.set(char, { code, shift: level === 1, altgr: level === 2 });
      });
    });
  });
  maps.set(layout, map);
  return map;
}

/** Every character `layout` types and its key, for tests: `[char, { code, shift, altgr }]`. */
export function layoutKeys(layout) {
  return [...layoutMap(layout)];
}

/** X keysym of a character: Latin-1 as it is, others in the Unicode keysym range. */
function keysymOf(char) {
  const cp = char.codePointAt(0);
  return cp <= 0xff ? cp : 0x01000000 + cp;
}

/**
 * What typing `text` on `layout` takes: `{ keys }` (each `{ keysym, code, shift, altgr }`) or,
 * when some characters cannot be typed, `{ refused }` (those characters, once each, in order).
 * Line ends (CRLF, CR) are typed as Enter.
 */
export function plan(text, layout) {
  if (!Object.hasOwn(LAYOUTS, layout)) throw new Error(`unknown layout ${layout}`);
  const map = layoutMap(layout);
  const keys = [];
  const refused = [];
  for (const char of text.replace(/\r\n?/g, '\n')) {
    const special = SPECIAL[char];
    if (special) {
      keys.push({ ...special, shift: false, altgr: false });
      continue;
    }
    const key = map.get(char);
    if (key) keys.push({ keysym: keysymOf(char), ...key });
    else if (!refused.includes(char)) refused.push(char);
  }
  return refused.length > 0 ? { refused } : { keys };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends `keys` through noVNC's `rfb.sendKey(keysym, code, down)`, modifiers around each key, one
 * character every `KEY_PACE_MS`. Stops early (returning the count typed) when `stillOn()` says
 * the console went away.
 */
export async function typeKeys(rfb, keys, stillOn = () => true) {
  let typed = 0;
  for (const key of keys) {
    if (!stillOn()) break;
    if (key.shift) rfb.sendKey(SHIFT.keysym, SHIFT.code, true);
    if (key.altgr) rfb.sendKey(ALTGR.keysym, ALTGR.code, true);
    rfb.sendKey(key.keysym, key.code, true);
    rfb.sendKey(key.keysym, key.code, false);
    if (key.altgr) rfb.sendKey(ALTGR.keysym, ALTGR.code, false);
    if (key.shift) rfb.sendKey(SHIFT.keysym, SHIFT.code, false);
    typed++;
    await sleep(KEY_PACE_MS);
  }
  return typed;
}
