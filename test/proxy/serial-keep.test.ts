/**
 * The kept serial consoles (`serial_keep_attached`) on their own, against TCP servers the test
 * starts (each plays a serial port that takes one client at a time, as a QEMU chardev does, and
 * says what it got): the ring, the hub's one backend connection per server whatever the viewers
 * do, scrollback then live output, view-only input, redialling, following the inventory, the log
 * file (0600, bounded, reloaded), and the backend sockets closed with the hub.
 * QEMU itself is in test/proxy/serial-keep-qemu.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Inventory, Server } from '../../src/inventory/types.ts';
import { SerialHub } from '../../src/proxy/serial-hub.ts';
import { SerialRing } from '../../src/proxy/serial-ring.ts';
import { eventually } from '../support/gateway.ts';

const ID = '0b6c1c52-1b8e-4c4e-9a53-3d6f4f2a0001';
const ID2 = '0b6c1c52-1b8e-4c4e-9a53-3d6f4f2a0002';

/** A serial port: one client at a time (the next one waits until it goes, as in QEMU's accept queue). */
interface FakePort {
  readonly port: number;
  readonly received: Buffer[];
  /** Clients connected now. */
  readonly clients: Set<Socket>;
  /** How many clients it accepted in all. */
  accepted: number;
  print(text: string): void;
  /** Closes the current client from the port's side (the VM's chardev went away). */
  hangUp(): void;
  close(): Promise<void>;
}

async function fakePort(): Promise<FakePort> {
  const clients = new Set<Socket>();
  const received: Buffer[] = [];
  let server: NetServer;
  const fake: FakePort = {
    port: 0,
    received,
    clients,
    accepted: 0,
    print: (text) => {
      for (const c of clients) c.write(text);
    },
    hangUp: () => {
      for (const c of clients) c.destroy();
    },
    close: () =>
      new Promise((resolve) => {
        for (const c of clients) c.destroy();
        server.close(() => resolve());
      }),
  };
  server = createServer((socket) => {
    fake.accepted++;
    clients.add(socket);
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', () => {});
    socket.on('close', () => clients.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  (fake as { port: number }).port = (server.address() as AddressInfo).port;
  return fake;
}

function memoryInventory(servers: Server[]): Inventory & { servers: Map<string, Server> } {
  const map = new Map(servers.map((s) => [s.id, s]));
  return {
    servers: map,
    put: async (s) => void map.set(s.id, s),
    get: async (id) => map.get(id),
    list: async () => [...map.values()],
    remove: async (id) => map.delete(id),
  };
}

function server(id: string, port: number): Server {
  return { id, name: `vm-${id.slice(-4)}`, projectId: null, status: 'ACTIVE', vnc: null, serial: { host: '127.0.0.1', port } };
}

const log = pino({ level: 'silent' });

function hub(inventory: Inventory, extra: Partial<ConstructorParameters<typeof SerialHub>[0]> = {}): SerialHub {
  return new SerialHub({ inventory, log, logBytes: 4096, logDir: null, connectTimeoutMs: 2000, handshakeTimeoutMs: 2000, pollMs: 50, minDelayMs: 20, maxDelayMs: 100, ...extra });
}

/** Everything a viewer's stream gives, as text. */
function reader(viewer: Duplex): { text: () => string; ended: Promise<void> } {
  let text = '';
  viewer.on('data', (d: Buffer) => (text += d.toString('latin1')));
  const ended = new Promise<void>((r) => {
    viewer.once('end', r);
    viewer.once('close', r);
  });
  viewer.on('error', () => {});
  return { text: () => text, ended };
}

describe('serial ring', () => {
  it('keeps the last capacity bytes of any sequence of chunks, oldest first', () => {
    for (const capacity of [1, 7, 4096, 10_000]) {
      const ring = new SerialRing(capacity);
      let all = Buffer.alloc(0);
      let seed = capacity;
      for (let i = 0; i < 300; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const n = seed % (capacity * 2 + 3);
        const chunk = Buffer.alloc(n, i % 251);
        ring.append(chunk);
        all = Buffer.concat([all, chunk]).subarray(-capacity);
        assert.equal(ring.length, all.length);
      }
      assert.ok(ring.contents().equals(all), `capacity ${capacity}`);
    }
  });

  it('holds memory for what it keeps, not its capacity, until it is full', () => {
    const ring = new SerialRing(1024 * 1024);
    ring.append(Buffer.from('login: '));
    assert.equal(ring.contents().toString(), 'login: ');
    // the ring's buffer is private; its growth is seen through a full ring's behaviour above
    assert.equal(ring.length, 7);
  });
});

describe('serial hub', () => {
  let a: FakePort;
  let b: FakePort;
  before(async () => {
    a = await fakePort();
    b = await fakePort();
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it('holds one connection per server with no viewer, and shows what it printed meanwhile to the next viewer first', async () => {
    const inv = memoryInventory([server(ID, a.port)]);
    const h = hub(inv);
    try {
      await h.start();
      await eventually('the hub attached', () => a.clients.size === 1);
      a.print('boot line 1\r\n');
      await eventually('kept', async () => (await h.contents(ID))?.toString() === 'boot line 1\r\n');
      const v1 = reader(await h.attach(server(ID, a.port), { host: '127.0.0.1', port: a.port }, { viewOnly: false }));
      await eventually('scrollback', () => v1.text() === 'boot line 1\r\n');
      a.print('live\r\n');
      await eventually('live output after the scrollback', () => v1.text() === 'boot line 1\r\nlive\r\n');
      // a second viewer shares the connection: the port still has one client
      const v2stream = await h.attach(server(ID, a.port), { host: '127.0.0.1', port: a.port }, { viewOnly: false });
      const v2 = reader(v2stream);
      await eventually('second viewer scrollback', () => v2.text() === 'boot line 1\r\nlive\r\n');
      a.print('both\r\n');
      await eventually('both viewers see it', () => v1.text().endsWith('both\r\n') && v2.text().endsWith('both\r\n'));
      assert.equal(a.clients.size, 1);
      assert.equal(a.accepted, 1);
      // input from either goes to the port
      v2stream.write('ls\r');
      await eventually('input reached the port', () => Buffer.concat(a.received).toString() === 'ls\r');
      v2stream.destroy();
      assert.equal(h.kept.get(ID)!.viewerCount, 1);
    } finally {
      await h.close();
    }
    await eventually('the backend socket is closed with the hub', () => a.clients.size === 0);
    a.received.length = 0;
    a.accepted = 0;
  });

  it('drops the input of a view-only viewer', async () => {
    const h = hub(memoryInventory([server(ID, a.port)]));
    try {
      await h.start();
      const ro = await h.attach(server(ID, a.port), { host: '127.0.0.1', port: a.port }, { viewOnly: true });
      const rw = await h.attach(server(ID, a.port), { host: '127.0.0.1', port: a.port }, { viewOnly: false });
      reader(ro);
      reader(rw);
      ro.write('rm -rf /\r');
      rw.write('date\r');
      await eventually('the typing viewer\'s input arrived', () => Buffer.concat(a.received).toString().includes('date\r'));
      assert.equal(Buffer.concat(a.received).toString(), 'date\r');
    } finally {
      await h.close();
    }
    await eventually('closed', () => a.clients.size === 0);
    a.received.length = 0;
  });

  it('ends the viewers when the backend closes, dials again, and keeps the log across', async () => {
    const h = hub(memoryInventory([server(ID, a.port)]));
    try {
      await h.start();
      await eventually('attached', () => a.clients.size === 1);
      a.print('before\n');
      const v = reader(await h.attach(server(ID, a.port), { host: '127.0.0.1', port: a.port }, { viewOnly: false }));
      await eventually('output', () => v.text() === 'before\n');
      const acceptedBefore = a.accepted;
      a.hangUp();
      await v.ended;
      await eventually('dialled again', () => a.accepted === acceptedBefore + 1 && a.clients.size === 1);
      a.print('after\n');
      await eventually('kept across', async () => (await h.contents(ID))?.toString() === 'before\nafter\n');
    } finally {
      await h.close();
    }
  });

  it('refuses a viewer as a dial does when the port cannot be reached', async () => {
    const gone = await fakePort();
    const port = gone.port;
    await gone.close();
    const h = hub(memoryInventory([server(ID2, port)]));
    try {
      await h.start();
      await assert.rejects(h.attach(server(ID2, port), { host: '127.0.0.1', port }, { viewOnly: false }), (err: Error & { code?: string }) => err.code === 'BACKEND_UNREACHABLE');
      assert.equal(h.kept.get(ID2)!.state === 'attached', false);
    } finally {
      await h.close();
    }
  });

  it('follows the inventory: a server added, its endpoint changed, removed', async () => {
    const inv = memoryInventory([]);
    const h = hub(inv);
    try {
      await h.start();
      await inv.put(server(ID, a.port));
      await eventually('a server added is kept', () => a.clients.size === 1);
      await inv.put(server(ID, b.port));
      await eventually('the new endpoint replaces the old', () => b.clients.size === 1 && a.clients.size === 0);
      await inv.remove(ID);
      await eventually('a server removed is let go', () => b.clients.size === 0 && h.kept.size === 0);
    } finally {
      await h.close();
    }
    // a viewer of a server the poll has not seen yet does not wait for it
    const inv2 = memoryInventory([]);
    const h2 = hub(inv2, { pollMs: 3_600_000 });
    try {
      await h2.start();
      const s = server(ID, a.port);
      await inv2.put(s);
      const v = reader(await h2.attach(s, s.serial!, { viewOnly: false }));
      a.print('hello\n');
      await eventually('live at once', () => v.text() === 'hello\n');
    } finally {
      await h2.close();
    }
    await eventually('closed', () => a.clients.size === 0);
  });

  it('writes the log to <dir>/<id>.log (0600), bounded to twice serial_log_bytes, and reloads it after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'porthole-serial-log-'));
    try {
      const inv = memoryInventory([server(ID, a.port)]);
      const h = hub(inv, { logDir: dir, logBytes: 1024 });
      await h.start();
      await eventually('attached', () => a.clients.size === 1);
      const path = join(dir, `${ID}.log`);
      let printed = '';
      for (let i = 0; i < 60; i++) {
        const line = `line ${String(i).padStart(3, '0')} ${'x'.repeat(40)}\n`;
        printed += line;
        a.print(line);
        await new Promise((r) => setTimeout(r, 2));
      }
      await eventually('the file has the last line', () => readFileSync(path, 'latin1').endsWith(printed.slice(-50)));
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const size = statSync(path).size;
      assert.ok(size <= 2048 && size >= 1024, `file of ${size} bytes, bounded to [1024, 2048]`);
      assert.ok(printed.endsWith(readFileSync(path, 'latin1')), 'the file is a tail of the output');
      await h.close();
      await eventually('closed', () => a.clients.size === 0);

      // a new process: the log is back before the backend prints anything
      const h2 = hub(inv, { logDir: dir, logBytes: 1024 });
      try {
        await h2.start();
        const kept = (await h2.contents(ID))!.toString('latin1');
        assert.equal(kept, printed.slice(-1024));
        const v = reader(await h2.attach(server(ID, a.port), { host: '127.0.0.1', port: a.port }, { viewOnly: false }));
        await eventually('the reloaded scrollback reaches a viewer', () => v.text() === printed.slice(-1024));
      } finally {
        await h2.close();
      }
      // the API of a process that keeps nothing reads the file
      const h3 = hub(memoryInventory([]), { logDir: dir, logBytes: 1024 });
      assert.equal((await h3.contents(ID))!.toString('latin1'), printed.slice(-1024));
      assert.equal(await h3.contents(ID2), undefined);
      await h3.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await eventually('closed', () => a.clients.size === 0);
  });

  it('keeps a file it cannot write from stopping the console', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'porthole-serial-log-'));
    try {
      // a directory where the file should be: open fails
      mkdirSync(join(dir, `${ID}.log`));
      const h = hub(memoryInventory([server(ID, a.port)]), { logDir: dir });
      try {
        await h.start();
        await eventually('attached', () => a.clients.size === 1);
        a.print('still kept\n');
        await eventually('kept in memory', async () => (await h.contents(ID))?.toString() === 'still kept\n');
      } finally {
        await h.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await eventually('closed', () => a.clients.size === 0);
  });
});
