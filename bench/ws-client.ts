/**
 * @module bench/ws-client
 * The benchmarks' WebSocket client (RFC 6455, client side, binary only): the upgrade request
 * written by hand on a TCP socket, then a resumable frame parser that hands over payload bytes
 * without copying them. It exists so that the client costs about what the raw TCP client costs
 * and the figures measure the proxies: `ws`'s client goes through Node's HTTP client for the
 * upgrade and copies each message that spans socket reads into one buffer, which on this machine
 * took more CPU per GiB than the proxy being measured and delayed every first byte. Every proxy
 * (websockify, nova-novncproxy, Porthole) is measured through this same client.
 *
 * It checks what a browser checks (status 101, `Sec-WebSocket-Accept`, the subprotocol, server
 * frames unmasked) and fails loudly on anything else; it masks what it sends (§5.3) and answers
 * pings and close frames.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_RESPONSE_HEAD = 16 * 1024;

export interface WsEvents {
  /** the 101 arrived and was valid */
  open(): void;
  /** payload bytes of binary (or continuation) frames, in order (views of the socket's own chunks, which nothing reuses) */
  data(data: Buffer): void;
  /** the connection is gone; `code` is the close frame's code, 1006 when there was none */
  close(code: number, reason: string): void;
  error(err: Error): void;
}

type State = 'head' | 'frame' | 'payload' | 'closed';

export class BenchWebSocket {
  private readonly socket: Socket;
  private state: State = 'head';
  private head = '';
  private readonly key = randomBytes(16).toString('base64');
  /** the masking key of every frame this client sends: random per connection */
  private readonly mask = randomBytes(4);
  /** the frame header being read, which may arrive split over reads */
  private header = Buffer.alloc(14);
  private headerHave = 0;
  private opcode = 0;
  private payloadLeft = 0;
  /** control frame payload (close, ping), at most 125 bytes */
  private control: Buffer[] = [];
  private closeCode = 1006;
  private closeReason = '';
  private ended = false;

  constructor(url: string, protocol: string, private readonly on: WsEvents) {
    const u = new URL(url);
    if (u.protocol !== 'ws:') throw new Error(`bench/ws-client: only ws:// URLs (${url})`);
    this.socket = connect({ host: u.hostname, port: Number(u.port || 80), noDelay: true });
    this.socket.on('connect', () => {
      this.socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`,
      );
    });
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk, protocol));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.finish());
  }

  /** Sends one binary message. */
  send(data: Buffer): void {
    if (this.state === 'closed') return;
    this.socket.write(this.frame(0x2, data));
  }

  /** Starts the closing handshake (§7.1.2); the socket closes when the server answers or after `ms`. */
  close(code = 1000, ms = 2000): void {
    if (this.state === 'head') return this.terminate();
    if (this.state === 'closed') return;
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code);
    this.socket.write(this.frame(0x8, body));
    setTimeout(() => this.socket.destroy(), ms).unref();
  }

  terminate(): void {
    this.socket.destroy();
  }

  private frame(opcode: number, payload: Buffer): Buffer {
    const n = payload.length;
    const headLength = n < 126 ? 2 : n < 65536 ? 4 : 10;
    const out = Buffer.allocUnsafe(headLength + 4 + n);
    out[0] = 0x80 | opcode;
    if (n < 126) out[1] = 0x80 | n;
    else if (n < 65536) {
      out[1] = 0x80 | 126;
      out.writeUInt16BE(n, 2);
    } else {
      out[1] = 0x80 | 127;
      out.writeBigUInt64BE(BigInt(n), 2);
    }
    this.mask.copy(out, headLength);
    for (let i = 0; i < n; i++) out[headLength + 4 + i] = payload[i]! ^ this.mask[i & 3]!;
    return out;
  }

  private receive(chunk: Buffer, protocol: string): void {
    let at = 0;
    if (this.state === 'head') {
      this.head += chunk.toString('latin1');
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.head.length > MAX_RESPONSE_HEAD) this.fail(new Error('upgrade response head too large'));
        return;
      }
      const problem = this.checkResponse(this.head.slice(0, end), protocol);
      if (problem) return this.fail(new Error(problem));
      at = chunk.length - (this.head.length - end - 4);
      this.head = '';
      this.state = 'frame';
      this.on.open();
    }
    while (at < chunk.length && this.state !== 'closed') {
      if (this.state === 'frame') at = this.readHeader(chunk, at);
      else {
        const n = Math.min(this.payloadLeft, chunk.length - at);
        const part = chunk.subarray(at, at + n);
        at += n;
        this.payloadLeft -= n;
        if (this.opcode >= 0x8) this.control.push(Buffer.from(part));
        else if (n > 0) this.on.data(part);
        if (this.payloadLeft === 0) this.endFrame();
      }
    }
  }

  /** Reads as much of a frame header as `chunk` holds; returns the new offset. */
  private readHeader(chunk: Buffer, at: number): number {
    while (at < chunk.length) {
      this.header[this.headerHave++] = chunk[at++]!;
      if (this.headerHave < 2) continue;
      const b1 = this.header[1]!;
      if (b1 & 0x80) {
        this.fail(new Error('the server masked a frame (RFC 6455 §5.1)'));
        return chunk.length;
      }
      const len7 = b1 & 0x7f;
      const need = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
      if (this.headerHave < need) continue;
      this.opcode = this.header[0]! & 0x0f;
      this.payloadLeft = len7 < 126 ? len7 : len7 === 126 ? this.header.readUInt16BE(2) : Number(this.header.readBigUInt64BE(2));
      this.headerHave = 0;
      if (this.opcode === 0x1) {
        this.fail(new Error('the server sent a text frame to a binary console'));
        return chunk.length;
      }
      if (this.opcode >= 0x8 && this.payloadLeft > 125) {
        this.fail(new Error('control frame longer than 125 bytes'));
        return chunk.length;
      }
      this.state = 'payload';
      if (this.payloadLeft === 0) this.endFrame();
      return at;
    }
    return at;
  }

  private endFrame(): void {
    this.state = 'frame';
    if (this.opcode < 0x8) return;
    const body = Buffer.concat(this.control);
    this.control = [];
    if (this.opcode === 0x9) this.socket.write(this.frame(0xa, body));
    else if (this.opcode === 0x8) {
      this.closeCode = body.length >= 2 ? body.readUInt16BE(0) : 1005;
      this.closeReason = body.subarray(2).toString('utf8');
      // §5.5.1: echo the close, then the server closes the TCP connection
      this.socket.write(this.frame(0x8, body.subarray(0, 2)));
      this.state = 'closed';
      this.socket.end();
    }
  }

  private checkResponse(head: string, protocol: string): string | undefined {
    const [status, ...lines] = head.split('\r\n');
    if (!/^HTTP\/1\.1 101 /.test(status ?? '')) return `upgrade refused: ${status}`;
    const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const accept = createHash('sha1').update(this.key + GUID).digest('base64');
    if (headers.get('sec-websocket-accept') !== accept) return 'wrong Sec-WebSocket-Accept';
    if (headers.get('sec-websocket-protocol') !== protocol) return `subprotocol ${headers.get('sec-websocket-protocol') ?? 'none'} instead of ${protocol}`;
    return undefined;
  }

  private fail(err: Error): void {
    if (this.ended) return;
    this.on.error(err);
    this.socket.destroy();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.state = 'closed';
    this.on.close(this.closeCode, this.closeReason);
  }
}
