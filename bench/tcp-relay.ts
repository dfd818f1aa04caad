/**
 * @module bench/tcp-relay
 * The floor for a relay written in Node: a TCP proxy that does nothing but `pipe()` each client
 * connection to the backend and back (Node's default 64 KiB reads, no WebSocket, no token, no
 * RFB). Any console proxy pays at least this to carry bytes through a process of its own, so the
 * benchmark shows it beside raw TCP (no process in between) and the real proxies.
 *
 * Listens on one port per backend port given and prints `{"<backend port>": <relay port>, ...}`
 * as one JSON line; stops on SIGTERM, SIGINT, or when its parent closes stdin.
 *
 * Usage: node --import tsx bench/tcp-relay.ts BACKEND_PORT...
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { stopWithParent } from './peer.ts';

const sockets = new Set<Socket>();
const servers: Server[] = [];

function track(s: Socket): Socket {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
  return s;
}

function relay(target: number): Server {
  return createServer({ noDelay: true }, (client) => {
    const backend = track(connect({ host: '127.0.0.1', port: target, noDelay: true }));
    track(client);
    client.pipe(backend);
    backend.pipe(client);
    client.on('error', () => backend.destroy());
    backend.on('error', () => client.destroy());
    client.on('close', () => backend.destroy());
    backend.on('close', () => client.destroy());
  });
}

const targets = process.argv.slice(2).map(Number);
if (targets.length === 0 || targets.some((p) => !Number.isInteger(p) || p <= 0 || p > 65535)) {
  process.stderr.write('usage: node --import tsx bench/tcp-relay.ts BACKEND_PORT...\n');
  process.exit(2);
}
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

function stop(): void {
  for (const s of servers) s.close();
  for (const s of sockets) s.destroy();
  process.exit(0);
}
stopWithParent(stop);
