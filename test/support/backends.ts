/**
 * @module test/support/backends
 * Small TCP backends for protocol tests, each counting the connections it gets so a test can
 * assert that a refused upgrade never reached the backend: an RFB banner, an echo, a source
 * that writes as fast as it may, and a tunnel that wants Nova's `CONNECT` handshake first.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { WebSocket } from 'ws';

export interface TestBackend {
  readonly port: number;
  connections: number;
  readonly sockets: Socket[];
  close(): Promise<void>;
}

async function serve(onSocket: (s: Socket) => void): Promise<TestBackend> {
  const sockets: Socket[] = [];
  const backend = { port: 0, connections: 0, sockets, close: async () => {} } as TestBackend;
  const server: Server = createServer((s) => {
    backend.connections++;
    sockets.push(s);
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (backend as { port: number }).port = (server.address() as { port: number }).port;
  backend.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return backend;
}

export const RFB_BANNER = Buffer.from('RFB 003.008\n');

export function bannerBackend(): Promise<TestBackend> {
  return serve((s) => s.write(RFB_BANNER));
}

export function echoBackend(): Promise<TestBackend> {
  return serve((s) => s.pipe(s));
}

/** Writes 64 KiB chunks for as long as the socket takes them, counting what it wrote. */
export function sourceBackend(): Promise<TestBackend & { written: () => number }> {
  let written = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  return serve((s) => {
    const pump = () => {
      while (!s.destroyed) {
        written += chunk.length;
        if (!s.write(chunk)) {
          s.once('drain', pump);
          return;
        }
      }
    };
    pump();
  }).then((b) => Object.assign(b, { written: () => written }));
}

export function connectTunnelBackend(expectedPath: string): Promise<TestBackend & { requests: string[] }> {
  const requests: string[] = [];
  return serve((s) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      requests.push(buf.slice(0, end));
      if (buf.startsWith(`CONNECT ${expectedPath} HTTP/1.1`)) s.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), RFB_BANNER]));
      else s.end('HTTP/1.1 404 Not Found\r\n\r\n');
    };
    s.on('data', onData);
  }).then((b) => Object.assign(b, { requests }));
}

export interface WsResult {
  readonly ws?: WebSocket;
  readonly status?: number;
  readonly protocol?: string;
  readonly first?: Buffer;
}

/** Opens a console WebSocket; resolves with the first message, or with the refusal status. */
export function openConsole(url: string, opts: { origin?: string; headers?: Record<string, string>; protocols?: string[] } = {}): Promise<WsResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols ?? ['binary'], { origin: opts.origin, headers: opts.headers, perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no answer within 5 s'));
    }, 5000);
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        if (body !== '') reject(new Error(`refusal carried a body: ${JSON.stringify(body)}`));
        else resolve({ status: res.statusCode });
      });
    });
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer);
      resolve({ ws, protocol: ws.protocol, first: data });
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
