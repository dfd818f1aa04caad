/**
 * @module test/support/x11-paint
 * Paints known pixels on the root window of a real X server (a test's Xvnc) with a tiny X11
 * client written here: the connection setup (no authorisation: Xvnc started by the tests has
 * none on its local socket), one CreateGC and PutImage requests (ZPixmap, depth 24, 32 bits a
 * pixel, in strips under the request length limit), then a GetInputFocus round trip, whose reply
 * says every request before it was done. `xsetroot -solid` paints one colour; this paints any
 * picture (gradients, so that Tight's JPEG and ZRLE's palettes have something to do).
 */
import { connect, type Socket } from 'node:net';

export type PixelAt = (x: number, y: number) => readonly [number, number, number];

interface Setup {
  readonly root: number;
  readonly rootDepth: number;
  readonly idBase: number;
  readonly maxRequestBytes: number;
  readonly bigEndianImage: boolean;
}

/** Draws `pixel(x, y)` for every pixel of the rectangle onto the root window of `display` (`:N`). */
export async function paintRoot(display: string, rect: { x: number; y: number; width: number; height: number }, pixel: PixelAt): Promise<void> {
  const n = /^:(\d+)$/.exec(display)?.[1];
  if (n === undefined) throw new Error(`display ${display}: expected :N`);
  const socket = connect(`/tmp/.X11-unix/X${n}`);
  const reader = new Reader(socket);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    // 'l': little-endian requests; protocol 11.0; no authorisation
    const hello = Buffer.alloc(12);
    hello[0] = 0x6c;
    hello.writeUInt16LE(11, 2);
    socket.write(hello);
    const setup = await readSetup(reader);
    const gc = setup.idBase | 1;
    const createGc = Buffer.alloc(16);
    createGc[0] = 55;
    createGc.writeUInt16LE(4, 2);
    createGc.writeUInt32LE(gc, 4);
    createGc.writeUInt32LE(setup.root, 8);
    socket.write(createGc);
    const rowBytes = rect.width * 4;
    const rowsPerRequest = Math.max(1, Math.floor((setup.maxRequestBytes - 24) / rowBytes));
    for (let y0 = 0; y0 < rect.height; y0 += rowsPerRequest) {
      const rows = Math.min(rowsPerRequest, rect.height - y0);
      const data = Buffer.alloc(rows * rowBytes);
      for (let y = 0; y < rows; y++) {
        for (let x = 0; x < rect.width; x++) {
          const [r, g, b] = pixel(rect.x + x, rect.y + y0 + y);
          const v = ((r << 16) | (g << 8) | b) >>> 0;
          if (setup.bigEndianImage) data.writeUInt32BE(v, y * rowBytes + x * 4);
          else data.writeUInt32LE(v, y * rowBytes + x * 4);
        }
      }
      const head = Buffer.alloc(24);
      head[0] = 72;
      head[1] = 2; // ZPixmap
      head.writeUInt16LE(6 + data.length / 4, 2);
      head.writeUInt32LE(setup.root, 4);
      head.writeUInt32LE(gc, 8);
      head.writeUInt16LE(rect.width, 12);
      head.writeUInt16LE(rows, 14);
      head.writeInt16LE(rect.x, 16);
      head.writeInt16LE(rect.y + y0, 18);
      head[20] = 0;
      head[21] = setup.rootDepth;
      socket.write(Buffer.concat([head, data]));
    }
    // GetInputFocus: its reply comes after every request before it was processed (or their error)
    const sync = Buffer.alloc(4);
    sync[0] = 43;
    sync.writeUInt16LE(1, 2);
    socket.write(sync);
    const reply = await reader.read(32);
    if (reply[0] === 0) throw new Error(`X error ${reply[1]} (request opcode ${reply[10]}) while painting`);
  } finally {
    socket.destroy();
  }
}

async function readSetup(r: Reader): Promise<Setup> {
  const head = await r.read(8);
  const rest = await r.read(head.readUInt16LE(6) * 4);
  if (head[0] !== 1) throw new Error(`X server refused the connection: ${rest.subarray(0, head[1]).toString('latin1')}`);
  const vendorLength = rest.readUInt16LE(16);
  const maxRequest = rest.readUInt16LE(18);
  const formats = rest[21]!;
  const screensAt = 32 + Math.ceil(vendorLength / 4) * 4 + formats * 8;
  return {
    idBase: rest.readUInt32LE(4),
    maxRequestBytes: maxRequest * 4,
    bigEndianImage: rest[22] === 1,
    root: rest.readUInt32LE(screensAt),
    rootDepth: rest[screensAt + 38]!,
  };
}

/** Exact reads from a socket, with a deadline so a test never hangs on a silent X server. */
class Reader {
  private buffered = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private failed: Error | undefined;

  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      this.waiter?.();
    });
    socket.on('error', (e) => {
      this.failed = e;
      this.waiter?.();
    });
    socket.on('close', () => {
      this.failed ??= new Error('X server closed the connection');
      this.waiter?.();
    });
  }

  async read(n: number): Promise<Buffer> {
    const deadline = Date.now() + 10_000;
    while (this.buffered.length < n) {
      if (this.failed) throw this.failed;
      if (Date.now() > deadline) throw new Error('X server did not answer within 10 s');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 100);
      });
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }
}
