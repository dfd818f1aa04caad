/**
 * @module test/support/storm
 * What a leak test throws at a proxy and what it keeps beside it: RFB 3.8 backends that take
 * their time at the step the test names (ServerInit late, a SecurityResult failure after a pause,
 * a banner late), each counting the connections it holds; a pool that runs hundreds of attempts
 * a few at a time and counts how far each got; and the good console that a storm must not touch
 * (an echo through it while the storm runs, and after). A mock of a VNC server by design: a real
 * one cannot be told to answer late; the tests also run the same shapes against Xvnc.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { RFB_BANNER, TEST_DESKTOP_NAME, openRfbConsole } from './backends.ts';
import { countingServer, type CountingServer } from './leak-meter.ts';
import { echo } from './live.ts';

export interface ScriptedRfb {
  /** Before the ProtocolVersion: the proxy's backend negotiation waits this long. */
  readonly bannerDelayMs?: number;
  /** After the security type choice: a SecurityResult failure with `reason`, then the server hangs up. */
  readonly refuseAfterMs?: number;
  readonly reason?: string;
  /** After ClientInit: the ServerInit comes this late, then every byte is echoed. */
  readonly serverInitDelayMs?: number;
}

/** An RFB 3.8 server with security type None whose steps take the time `s` says, counting its connections. */
export function scriptedRfbBackend(s: ScriptedRfb): Promise<CountingServer> {
  return countingServer((sock) => {
    const timers: NodeJS.Timeout[] = [];
    const later = (ms: number, fn: () => void) => (ms > 0 ? timers.push(setTimeout(fn, ms)) : fn());
    sock.once('close', () => timers.forEach(clearTimeout));
    later(s.bannerDelayMs ?? 0, () => {
      if (sock.destroyed) return;
      sock.write(RFB_BANNER);
      readSteps(sock, s, later);
    });
  });
}

function readSteps(sock: Socket, s: ScriptedRfb, later: (ms: number, fn: () => void) => void): void {
  let buf = Buffer.alloc(0);
  let stage = 0;
  const onData = (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const need = stage === 0 ? 12 : 1;
      if (buf.length < need || stage > 2) return;
      buf = buf.subarray(need);
      if (stage === 0) sock.write(Buffer.from([1, 1]));
      else if (stage === 1) {
        if (s.refuseAfterMs !== undefined) {
          stage = 3;
          later(s.refuseAfterMs, () => {
            const reason = Buffer.from(s.reason ?? 'Authentication failure');
            const head = Buffer.alloc(8);
            head.writeUInt32BE(1, 0);
            head.writeUInt32BE(reason.length, 4);
            sock.end(Buffer.concat([head, reason]));
          });
          return;
        }
        sock.write(Buffer.alloc(4));
      } else {
        sock.off('data', onData);
        const rest = buf;
        stage = 3;
        later(s.serverInitDelayMs ?? 0, () => {
          if (sock.destroyed) return;
          sock.write(serverInit());
          if (rest.length > 0) sock.write(rest);
          sock.pipe(sock);
        });
        return;
      }
      stage++;
    }
  };
  sock.on('data', onData);
}

function serverInit(): Buffer {
  const name = Buffer.from(TEST_DESKTOP_NAME);
  const init = Buffer.alloc(24);
  init.writeUInt16BE(64, 0);
  init.writeUInt16BE(48, 2);
  init.set([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0], 4);
  init.writeUInt32BE(name.length, 20);
  return Buffer.concat([init, name]);
}

/**
 * Runs `attempt(i)` for i in 0..n-1, `concurrency` at a time. An attempt resolves with whether it
 * reached the step the shape is about; one that throws counts as an error (the message of the
 * first few kept), never ends the storm.
 */
export async function pool(n: number, concurrency: number, attempt: (i: number) => Promise<boolean>): Promise<{ reached: number; errors: number; firstErrors: string[] }> {
  let next = 0;
  let reached = 0;
  let errors = 0;
  const firstErrors: string[] = [];
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try {
        if (await attempt(i)) reached++;
      } catch (err) {
        errors++;
        if (firstErrors.length < 3) firstErrors.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { reached, errors, firstErrors };
}

/** A console opened before a storm: echoes through it must keep working during and after. */
export interface GoodConsole {
  readonly ws: WebSocket;
  /** One echo round trip; rejects with why it failed. */
  echo(): Promise<void>;
  /** Echoes every `everyMs` until `stop()`; resolves with the failures seen (none is the point). */
  keepEchoing(everyMs?: number): { stop(): Promise<string[]> };
  close(): void;
}

/** Opens a console through the proxy (RFB handshake as a browser) to an echo backend. */
export async function goodConsole(wsUrl: string): Promise<GoodConsole> {
  const { ws } = await openRfbConsole(wsUrl);
  let n = 0;
  const once = () => echo(ws, `good console ${++n}`);
  return {
    ws,
    echo: once,
    keepEchoing(everyMs = 200) {
      const failures: string[] = [];
      let running = true;
      const loop = (async () => {
        while (running) {
          await once().catch((err: Error) => failures.push(err.message));
          await new Promise((r) => setTimeout(r, everyMs));
        }
      })();
      return {
        async stop() {
          running = false;
          await loop;
          return failures;
        },
      };
    },
    close: () => ws.terminate(),
  };
}
