/**
 * @module test/log/support
 * Helpers of the log tests: a config from flags, a Writable that keeps what it gets, a bound
 * Unix datagram socket (the journal's or syslog's, played by the test: no journald or syslog
 * daemon runs here) and a parser of the journal's native protocol.
 */
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/options.ts';
import { flags } from '../support/gateway.ts';

export function configOf(settings: Record<string, string> = {}): Config {
  return loadConfig({ flags: flags(settings) }).config;
}

export interface Capture extends Writable {
  readonly text: () => string;
}

export function capture(): Capture {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  }) as Capture;
  Object.defineProperty(w, 'text', { value: () => chunks.join('') });
  return w;
}

interface DgramSocket {
  bind(path: string): void;
  on(event: 'message', cb: (buf: Buffer) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  close(): void;
}

export interface BoundSocket {
  readonly received: Buffer[];
  close(): void;
}

/** A Unix datagram socket bound at `path`, keeping every datagram it receives. */
export function bindDatagram(path: string): BoundSocket {
  const unix = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): DgramSocket };
  const s = unix.createSocket('unix_dgram');
  const received: Buffer[] = [];
  s.on('message', (buf) => received.push(buf));
  s.on('error', (err) => {
    throw err;
  });
  s.bind(path);
  return { received, close: () => s.close() };
}

/** The fields of one datagram of the journal's native protocol (both forms of a field). */
export function parseJournal(buf: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let i = 0;
  while (i < buf.length) {
    const nl = buf.indexOf(0x0a, i);
    if (nl < 0) throw new Error(`truncated field at ${i}`);
    const line = buf.subarray(i, nl).toString('utf8');
    const eq = line.indexOf('=');
    if (eq >= 0) {
      fields.set(line.slice(0, eq), line.slice(eq + 1));
      i = nl + 1;
      continue;
    }
    // NAME\n, 64-bit little-endian length, value, \n
    const length = Number(buf.readBigUInt64LE(nl + 1));
    const start = nl + 9;
    fields.set(line, buf.subarray(start, start + length).toString('utf8'));
    if (buf[start + length] !== 0x0a) throw new Error(`no newline after the binary field ${line}`);
    i = start + length + 1;
  }
  return fields;
}

/** oslo.log's default text line: time.msecs pid LEVEL logger [-] message. */
export const OSLO_LINE = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\.(\d{3}) (\d+) (TRACE|DEBUG|INFO|WARNING|ERROR|CRITICAL) (porthole(?:\.[a-z_]+)*) \[-\] (.*)$/;
