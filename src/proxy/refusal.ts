/**
 * @module proxy/refusal
 * The one way a console listener refuses a connection before any WebSocket byte: an HTTP status
 * with an empty body and `Connection: close` (tempest's `test_novnc_bad_token` wants no data byte;
 * the person at the console reads the reason on the console page), then the socket is destroyed
 * once written, or after a second for a client that does not read.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

export function writeRefusal(socket: Duplex, status: number, headers: Readonly<Record<string, string | number>> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  let extra = '';
  for (const [name, value] of Object.entries(headers)) extra += `${name}: ${value}\r\n`;
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\n${extra}Content-Length: 0\r\n\r\n`);
  setTimeout(() => socket.destroy(), 1000).unref();
}
