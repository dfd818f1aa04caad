/**
 * @module test/support/live
 * What a test does with a console that is open: send bytes through it and get them back from an
 * echo backend, and wait for the proxy to close it (the close code and reason a browser sees).
 */
import type { WebSocket } from 'ws';

/** Resolves with the close code and reason of a console WebSocket, or fails after `ms`. */
export function closeOf(ws: WebSocket, ms = 10_000): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the console was not closed within ${ms} ms`)), ms);
    ws.once('close', (code: number, reason: Buffer) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

/** Sends `text` through an open console (echo backend) and resolves when it came back. */
export function echo(ws: WebSocket, text: string): Promise<void> {
  const bytes = Buffer.from(text);
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error(`no echo within 5 s (${got.length} of ${bytes.length} bytes)`)), 5000);
    const onMessage = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= bytes.length) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        if (got.equals(bytes)) resolve();
        else reject(new Error('the echo differs from what was sent'));
      }
    };
    ws.on('message', onMessage);
    ws.send(bytes);
  });
}
