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
