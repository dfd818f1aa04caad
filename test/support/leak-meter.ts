/**
 * @module test/support/leak-meter
 * Counts what a connection that was not closed leaves behind, so a leak test can say "back where
 * it started" in numbers: the open file descriptors of a process (`/proc/<pid>/fd`), the open
 * TCP connections a process side holds towards a backend port (`/proc/net/tcp` and `tcp6`, for
 * a real server such as Xvnc whose accepted sockets the test cannot see), the sockets a test
 * backend accepted and has not seen closed, and the gateway's live sessions (its own set and the
 * sessions registry's listing). A meter is a set of named probes; `settled` polls it until every
 * count is back at (or below) its baseline, or fails naming each count that is off and by how much.
 * Only counts above the baseline are leaks: a count below it (a lazily opened file closed again)
 * is not something a closed connection left behind.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Gateway } from '../../src/gateway.ts';

export type Counts = Record<string, number>;

export interface LeakMeter {
  /** Every probe's count now, by name. */
  read(): Promise<Counts>;
}

export type Probe = () => number | Promise<number>;

export function leakMeter(probes: Record<string, Probe>): LeakMeter {
  return {
    async read() {
      const out: Counts = {};
      for (const [name, probe] of Object.entries(probes)) out[name] = await probe();
      return out;
    },
  };
}

/**
 * Open descriptors of a process (this one by default). The read itself holds one descriptor of
 * the directory while it runs, the same one on every read, so counts compare.
 */
export function openDescriptors(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * TCP states (the hex codes of `/proc/net/tcp`, include/net/tcp_states.h) in which the side
 * that dialled still holds its socket open: connecting, established, or told by the peer that it
 * closed but not closed itself (CLOSE_WAIT: the classic leak when the peer hung up first). The
 * states after its own close (FIN_WAIT, LAST_ACK, TIME_WAIT) hold no descriptor of the process.
 */
const HELD_BY_DIALLER = new Set(['01', '02', '08']);

/**
 * Connections on this machine whose remote end is 127.0.0.1 (or ::1) port `port`, seen from the
 * side that dialled, in a state where that side still holds them: what a proxy keeps towards a
 * backend listening on `port`. Counts every process's connections (the test knows who dials).
 */
export function connectionsTo(port: number): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ...
      const remote = f[2];
      const state = f[3];
      if (!remote || !state) continue;
      const remotePort = parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16);
      if (remotePort === port && HELD_BY_DIALLER.has(state)) n++;
    }
  }
  return n;
}

/** Sockets that `sockets` holds whose close has not been seen: what a test backend still has open. */
export function stillOpen(sockets: readonly Socket[]): number {
  let n = 0;
  for (const s of sockets) if (!s.closed) n++;
  return n;
}

/** The gateway's live sessions in this process. */
export function liveSessions(gateway: Gateway): number {
  return gateway.sessions.size;
}

/** The sessions the live-sessions registry lists (every proxy that shares its store). */
export async function registeredSessions(gateway: Gateway): Promise<number> {
  return (await gateway.registry.list()).sessions.length;
}

/** A loopback TCP server that counts what it accepted and what is still open; `onSocket` speaks for it. */
export interface CountingServer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: () => number;
  /** Accepted connections not closed yet. */
  readonly open: () => number;
  readonly sockets: readonly Socket[];
  close(): Promise<void>;
}

export async function countingServer(onSocket: (s: Socket) => void): Promise<CountingServer> {
  const live = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((s) => {
    accepted++;
    live.add(s);
    s.on('error', () => {});
    s.once('close', () => live.delete(s));
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    accepted: () => accepted,
    open: () => live.size,
    get sockets() {
      return [...live];
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of live) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A count above its baseline, for the failure message. */
export interface Excess {
  readonly name: string;
  readonly baseline: number;
  readonly now: number;
}

function excess(baseline: Counts, now: Counts): Excess[] {
  const out: Excess[] = [];
  for (const [name, b] of Object.entries(baseline)) {
    const n = now[name] ?? 0;
    if (n > b) out.push({ name, baseline: b, now: n });
  }
  return out;
}

export function describeExcess(list: readonly Excess[]): string {
  return list.map((e) => `${e.name} +${e.now - e.baseline} (baseline ${e.baseline}, now ${e.now})`).join(', ');
}

/**
 * Polls `meter` until no count is above `baseline`; rejects after `ms` with every count that is
 * still above it, so a failing test says what leaked and how much.
 */
export async function settled(meter: LeakMeter, baseline: Counts, ms: number): Promise<Counts> {
  const deadline = Date.now() + ms;
  for (;;) {
    const now = await meter.read();
    const over = excess(baseline, now);
    if (over.length === 0) return now;
    if (Date.now() > deadline) throw new Error(`not back at the baseline within ${ms} ms: ${describeExcess(over)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
