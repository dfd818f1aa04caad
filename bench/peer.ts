/**
 * @module bench/peer
 * For the benchmark's own peer processes (bench/backend.ts, bench/tcp-relay.ts, bench/ws-floor.ts):
 * stop on SIGTERM or SIGINT, and when the benchmark that started them goes without killing them (it
 * keeps their stdin open, so stdin ends when it dies).
 */
import type { Server } from 'node:net';

/**
 * A relay peer's life: one server per backend port given on the command line (`relay(port)`),
 * each on a free loopback port, `{"<backend port>": <its port>, ...}` printed as one JSON line,
 * and at the end the servers closed and the sockets `open` holds destroyed.
 */
export async function serveBackends(usage: string, relay: (target: number) => Server, open: ReadonlySet<{ destroy(): void }>): Promise<void> {
  const targets = process.argv.slice(2).map(Number);
  if (targets.length === 0 || targets.some((p) => !Number.isInteger(p) || p <= 0 || p > 65535)) {
    process.stderr.write(`usage: ${usage}\n`);
    process.exit(2);
  }
  const servers: Server[] = [];
  const ports: Record<string, number> = {};
  for (const target of targets) {
    const server = relay(target);
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    ports[String(target)] = (server.address() as { port: number }).port;
  }
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  stopWithParent(() => {
    for (const s of servers) s.close();
    for (const s of open) s.destroy();
    process.exit(0);
  });
}

export function stopWithParent(stop: () => void): void {
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}
