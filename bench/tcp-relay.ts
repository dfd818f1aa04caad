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
import { serveBackends } from './peer.ts';

const sockets = new Set<Socket>();

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

await serveBackends('node --import tsx bench/tcp-relay.ts BACKEND_PORT...', relay, sockets);
