/**
 * @module demo/keysym-name
 * The label the demo desktop shows for a pressed key: an X11 keysym as a short readable name.
 */

/** Short names for the keysyms people press most (X11 keysymdef.h); the rest shown in hex. */
const KEYSYM_NAMES: Record<number, string> = {
  0x20: 'space', 0xff08: 'BackSpace', 0xff09: 'Tab', 0xff0d: 'Return', 0xff1b: 'Escape',
  0xff50: 'Home', 0xff51: 'Left', 0xff52: 'Up', 0xff53: 'Right', 0xff54: 'Down', 0xff55: 'Page_Up',
  0xff56: 'Page_Down', 0xff57: 'End', 0xff63: 'Insert', 0xffff: 'Delete', 0xffe1: 'Shift_L',
  0xffe2: 'Shift_R', 0xffe3: 'Control_L', 0xffe4: 'Control_R', 0xffe9: 'Alt_L', 0xffea: 'Alt_R',
  0xffeb: 'Super_L', 0xffec: 'Super_R',
};

export function keysymName(keysym: number): string {
  const hex = `0x${keysym.toString(16).padStart(4, '0')}`;
  if (KEYSYM_NAMES[keysym]) return KEYSYM_NAMES[keysym];
  if (keysym > 0x20 && keysym < 0x7f) return String.fromCharCode(keysym);
  // Latin-1 keysyms equal their code points; the font has no glyph for them, so add the hex.
  if (keysym >= 0xa0 && keysym <= 0xff) return `${String.fromCharCode(keysym)} (${hex})`;
  if (keysym >= 0xffbe && keysym <= 0xffc9) return `F${keysym - 0xffbe + 1}`;
  return hex;
}
