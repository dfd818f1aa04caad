/**
 * @module log
 * The process logger: pino, JSON lines on stdout. Tokens never reach it (callers log
 * `tokenLogId`), and request URLs are not logged because a console URL carries its token.
 */
import { pino, type Logger } from 'pino';
import type { Config } from './config/options.ts';

export function createLogger(config: Config, destination?: NodeJS.WritableStream): Logger {
  const level = config.DEFAULT.debug ? 'debug' : config.porthole.log_level;
  return pino({ level, base: { service: 'porthole' } }, destination ?? pino.destination({ dest: 1, sync: false }));
}

/**
 * A peer's words for a log message: quoted, at most `max` characters, and every character that
 * could disguise a log line escaped as `\uXXXX` (controls, line and paragraph separators, and the
 * bidirectional overrides and isolates that reorder what a terminal shows, CVE-2021-42574).
 */
export function printable(text: string, max = 200): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  const quoted = JSON.stringify(cut).replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return text.length > max ? `${quoted}…` : quoted;
}

// C0 and C1 controls, DEL, ALM, LRM/RLM, LS/PS, LRE..RLO, LRI..PDI, BOM and other invisible formatting
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;
