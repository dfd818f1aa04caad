/**
 * @module test/support/backends
 * Small TCP backends for protocol tests, each counting the connections it gets so a test can
 * assert that a refused upgrade never reached the backend. Each speaks the server side of an
 * RFB 3.8 handshake with security type None first (Porthole's security proxy negotiates with
 * every noVNC backend, as nova-novncproxy does), then: nothing more (`bannerBackend`), an echo,
 * a source that writes as fast as it may; and a tunnel that wants Nova's `CONNECT` first.
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
export const TEST_DESKTOP_NAME = 'porthole-test-backend';

/**
 * The server side of RFB 3.8 with security type None, up to ServerInit (a 64x48 desktop), then
 * `after(socket)` with any bytes the client sent beyond ClientInit put back in the socket.
 */
export function rfbNoneServer(s: Socket, after: (s: Socket) => void = () => {}): void {
  s.write(RFB_BANNER);
  let buf = Buffer.alloc(0);
  let stage = 0;
  const onData = (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const need = stage === 0 ? 12 : 1;
      if (buf.length < need) return;
      buf = buf.subarray(need);
      if (stage === 0) s.write(Buffer.from([1, 1]));
      else if (stage === 1) s.write(Buffer.alloc(4));
      else {
        s.off('data', onData);
        const name = Buffer.from(TEST_DESKTOP_NAME);
        const init = Buffer.alloc(24);
        init.writeUInt16BE(64, 0);
        init.writeUInt16BE(48, 2);
        init.set([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0], 4);
        init.writeUInt32BE(name.length, 20);
        s.write(Buffer.concat([init, name]));
        s.pause();
        if (buf.length > 0) s.unshift(buf);
        after(s);
        return;
      }
      stage++;
    }
  };
  s.on('data', onData);
}

/** RFB 3.8 with None up to ServerInit, then silence. */
export function bannerBackend(): Promise<TestBackend> {
  return serve((s) => rfbNoneServer(s, (sock) => sock.resume()));
}

/** RFB 3.8 with None up to ServerInit, then echoes every byte. */
export function echoBackend(): Promise<TestBackend> {
  return serve((s) => rfbNoneServer(s, (sock) => sock.pipe(sock)));
}

/** After the RFB handshake, writes 64 KiB chunks for as long as the socket takes them, counting what it wrote. */
export function sourceBackend(): Promise<TestBackend & { written: () => number }> {
  let written = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  return serve((sock) => rfbNoneServer(sock, (s) => {
    s.resume();
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
  })).then((b) => Object.assign(b, { written: () => written }));
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
      if (buf.startsWith(`CONNECT ${expectedPath} HTTP/1.1`)) {
        s.write('HTTP/1.1 200 OK\r\n\r\n');
        rfbNoneServer(s, (sock) => sock.resume());
      } else s.end('HTTP/1.1 404 Not Found\r\n\r\n');
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

/**
 * Opens a console WebSocket and runs the client side of the RFB handshake as tempest does, one
 * WebSocket message per RFB message (version, security types, SecurityResult, ServerInit);
 * resolves with the open WebSocket and the messages received, in order.
 */
export async function openRfbConsole(url: string, opts: { shared?: boolean; headers?: Record<string, string> } = {}): Promise<{ ws: WebSocket; messages: Buffer[] }> {
  const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false, headers: opts.headers });
  const messages: Buffer[] = [];
  const queue: Buffer[] = [];
  let waiting: ((b: Buffer) => void) | null = null;
  let closed: Error | null = null;
  let failWait: ((e: Error) => void) | null = null;
  ws.on('message', (d: Buffer) => {
    messages.push(d);
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(d);
    } else queue.push(d);
  });
  ws.on('close', (code, reason) => {
    closed = new Error(`WebSocket closed ${code} ${reason.toString()}`);
    failWait?.(closed);
  });
  ws.on('error', () => {});
  const next = (what: string) => new Promise<Buffer>((resolve, reject) => {
    const q = queue.shift();
    if (q) return resolve(q);
    if (closed) return reject(closed);
    const timer = setTimeout(() => reject(new Error(`no ${what} within 5 s`)), 5000);
    waiting = (b) => { clearTimeout(timer); resolve(b); };
    failWait = (e) => { clearTimeout(timer); reject(e); };
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`))); });
  const version = await next('ProtocolVersion');
  ws.send(version);
  const types = await next('security types');
  if (types[0] === 0 || !types.subarray(1).includes(1)) throw new Error(`no None in ${JSON.stringify([...types])}`);
  ws.send(Buffer.from([1]));
  const result = await next('SecurityResult');
  if (result.readUInt32BE(0) !== 0) throw new Error(`SecurityResult failed: ${result.subarray(8).toString()}`);
  ws.send(Buffer.from([opts.shared === false ? 0 : 1]));
  await next('ServerInit');
  return { ws, messages };
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
