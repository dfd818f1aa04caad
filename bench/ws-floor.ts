/**
 * @module bench/ws-floor
 * The floor for a WebSocket console proxy written in Node: Node's HTTP server takes the upgrade,
 * the backend is dialled, `ws` answers the 101 (`handleUpgrade`, subprotocol `binary`, no
 * compression, no UTF-8 checks), and every message is written to the backend and every backend
 * chunk sent as a binary message. No token, no store, no Origin check, no RFB security proxy, no
 * limits, metrics, audit or registry: what any Node proxy pays per console open and per byte
 * before it does anything of its own. `bench/open-rate.ts --ws-floor` and
 * `bench/serial-first-byte.ts` measure it beside Porthole (the path and query of the URL are
 * ignored; every connection goes to the one backend).
 *
 * Listens on one port per backend port given and prints `{"<backend port>": <proxy port>, ...}`
 * as one JSON line, as `bench/tcp-relay.ts` does; stops on SIGTERM, SIGINT, or when its parent
 * closes stdin.
 *
 * Usage: node --import tsx bench/ws-floor.ts BACKEND_PORT...
 */
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { serveBackends } from './peer.ts';

const sockets = new Set<Socket | Duplex>();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, skipUTF8Validation: true, clientTracking: false, handleProtocols: () => 'binary' });

function track<T extends Socket | Duplex>(s: T): T {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
  return s;
}

function proxy(target: number): Server {
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    track(socket);
    socket.on('error', () => {});
    const backend = track(connect({ host: '127.0.0.1', port: target, noDelay: true }));
    backend.on('error', () => socket.destroy());
    socket.on('close', () => backend.destroy());
    backend.once('connect', () => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => {});
        backend.on('data', (d: Buffer) => ws.send(d));
        ws.on('message', (d: Buffer) => backend.write(d));
        ws.on('close', () => backend.destroy());
        backend.on('close', () => ws.terminate());
      });
    });
  });
  return server;
}

await serveBackends('node --import tsx bench/ws-floor.ts BACKEND_PORT...', proxy, sockets);
