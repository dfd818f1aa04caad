/**
 * The layout tables of paste-as-keystrokes (src/web/static/keystrokes.js) checked against xkb's
 * own layouts, as a VM reads its keys: over VNC the page sends each key's position (the scancode
 * of QEMU's extended key events) with its keysym, and the VM types what its layout puts at that
 * position and level. Xvnc maps keysyms itself, so the positions are checked here against the
 * keymap xkb builds on a real Xvnc display for each layout (`setxkbmap -layout us|gb|de|fr|es|it|jp`,
 * read with `xmodmap -pk`): every character of a table must be the keysym xkb has at the key and
 * level (plain, Shift, AltGr) the table names. And `plan` refuses in words what a layout lacks.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { haveXvnc, startXvnc, type Xvnc } from '../support/xvnc.ts';

interface KeyPlace { code: string; shift: boolean; altgr: boolean }
interface Keystrokes {
  plan(text: string, layout: string): { keys?: Array<KeyPlace & { keysym: number }>; refused?: string[] };
  layoutKeys(layout: string): Array<[string, KeyPlace]>;
  LAYOUT_NAMES: Record<string, string>;
}
const XKB: Record<string, string> = { us: 'us', uk: 'gb', de: 'de', fr: 'fr', es: 'es', it: 'it', jp: 'jp' };
// evdev X keycodes of the KeyboardEvent codes the tables use (xkb's keycodes/evdev: TLDE, AE01.., AD01.., AC01.., BKSL, LSGT, AB01.., AB11, AE13)
const X_KEYCODES: Record<string, number> = {
  Backquote: 49, Digit1: 10, Digit2: 11, Digit3: 12, Digit4: 13, Digit5: 14, Digit6: 15, Digit7: 16, Digit8: 17, Digit9: 18, Digit0: 19, Minus: 20, Equal: 21, IntlYen: 132,
  KeyQ: 24, KeyW: 25, KeyE: 26, KeyR: 27, KeyT: 28, KeyY: 29, KeyU: 30, KeyI: 31, KeyO: 32, KeyP: 33, BracketLeft: 34, BracketRight: 35,
  KeyA: 38, KeyS: 39, KeyD: 40, KeyF: 41, KeyG: 42, KeyH: 43, KeyJ: 44, KeyK: 45, KeyL: 46, Semicolon: 47, Quote: 48, Backslash: 51,
  IntlBackslash: 94, KeyZ: 52, KeyX: 53, KeyC: 54, KeyV: 55, KeyB: 56, KeyN: 57, KeyM: 58, Comma: 59, Period: 60, Slash: 61, IntlRo: 97,
};

/** The character of an X keysym, or null (dead keys, functions): Latin-1, Unicode keysyms, EuroSign. */
function charOf(keysym: number): string | null {
  if (keysym >= 0x20 && keysym <= 0xff) return String.fromCodePoint(keysym);
  if (keysym >= 0x01000100) return String.fromCodePoint(keysym - 0x01000000);
  if (keysym === 0x20ac) return '€';
  return null;
}

describe('paste-as-keystrokes layouts', { skip: !haveXvnc && 'needs Xvnc', timeout: 60_000 }, () => {
  let xvnc: Xvnc;
  let ks: Keystrokes;
  before(async () => {
    xvnc = await startXvnc({ colour: '#202020' });
    ks = (await import(pathToFileURL(join(process.cwd(), 'src/web/static/keystrokes.js')).href)) as Keystrokes;
  });
  after(async () => xvnc?.stop());

  for (const layout of Object.keys(XKB)) {
    it(`${layout}: each character sits where xkb's ${XKB[layout]} layout has it`, () => {
      const env = { ...process.env, DISPLAY: xvnc.display };
      assert.equal(spawnSync('setxkbmap', ['-layout', XKB[layout]!], { env }).status, 0);
      const table = spawnSync('xmodmap', ['-pk'], { env, encoding: 'utf8' }).stdout;
      // "   24    \t0x0071 (q)\t0x0051 (Q)\t0x0071 (q)\t0x0051 (Q)\t0x0040 (at)\t..." : columns 1, 2 and 5 are plain, Shift and AltGr
      const keysyms = new Map<number, number[]>();
      for (const line of table.split('\n')) {
        const m = /^\s*(\d+)\s+(.*)$/.exec(line);
        if (m) keysyms.set(Number(m[1]), [...m[2]!.matchAll(/0x([0-9a-f]+)/g)].map((x) => parseInt(x[1]!, 16)));
      }
      const wrong: string[] = [];
      const entries = ks.layoutKeys(layout);
      for (const [char, place] of entries) {
        const column = place.altgr ? 4 : place.shift ? 1 : 0;
        const keysym = keysyms.get(X_KEYCODES[place.code]!)?.[column];
        const xkbChar = keysym === undefined ? null : charOf(keysym);
        if (xkbChar !== char) wrong.push(`${char} at ${place.code}${place.shift ? '+Shift' : ''}${place.altgr ? '+AltGr' : ''}: xkb has ${xkbChar === null ? `keysym 0x${keysym?.toString(16)}` : xkbChar}`);
      }
      assert.deepEqual(wrong, []);
      assert.ok(entries.length >= 90, `${entries.length} characters`);
    });
  }

  it('plans Enter, Tab and Space, and refuses what a layout cannot type, once each', () => {
    const p = ks.plan('a b\r\nc\td', 'us');
    assert.deepEqual(p.keys!.map((k) => k.code), ['KeyA', 'Space', 'KeyB', 'Enter', 'KeyC', 'Tab', 'KeyD']);
    assert.deepEqual(ks.plan('Zürich ü ê', 'de').refused, ['ê']);
    assert.deepEqual(ks.plan('Zürich', 'us').refused, ['ü']);
    assert.deepEqual(ks.plan('😀x😀', 'fr').refused, ['😀']);
    const de = ks.plan('z@', 'de').keys!;
    assert.deepEqual(de.map((k) => [k.code, k.shift, k.altgr]), [['KeyY', false, false], ['KeyQ', false, true]]);
    assert.deepEqual(Object.keys(ks.LAYOUT_NAMES), ['us', 'uk', 'de', 'fr', 'es', 'it', 'jp']);
  });
});
