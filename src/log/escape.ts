/**
 * @module log/escape
 * Text from elsewhere (a peer, a message that quotes one) made safe to print inside one log line:
 * nothing in it can start a new line or disguise the line on a terminal.
 */

// C0 and C1 controls, DEL, ALM, LRM/RLM, LS/PS, LRE..RLO, LRI..PDI, BOM and other invisible formatting
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;

const asEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** `text` with every character that could end or disguise a log line written as `\uXXXX`. */
export function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE, asEscape);
}

/**
 * A peer's words for a log message: quoted, at most `max` characters, and every character that
 * could disguise a log line escaped as `\uXXXX` (controls, line and paragraph separators, and the
 * bidirectional overrides and isolates that reorder what a terminal shows, CVE-2021-42574).
 */
export function printable(text: string, max = 200): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  const quoted = escapeUnsafe(JSON.stringify(cut));
  return text.length > max ? `${quoted}…` : quoted;
}
