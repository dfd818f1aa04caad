/**
 * A browser that never reads while its backend streams as fast as it can (issue 15, item 6):
 * the proxy's memory stays bounded by the socket high-water marks, the backend is paused (its
 * writes block), a good console beside it keeps relaying, and when the browser goes everything
 * is freed. The gateway is a real `porthole serve` in a child process, measured from `/proc`.
 *
 * The bound: once the browser's TCP receive window and the kernel buffers between are full, the
 * proxy's WebSocket holds at most `CLIENT_HIGH_WATER` (1 MiB, src/proxy/relay.ts) before it
 * pauses the backend socket, plus the one read (up to `BACKEND_READ_SIZE`, 1 MiB) the backend socket had
 * taken; the rest waits in the kernel (the backend's send buffer, the proxy's receive buffer: not the
 * proxy's memory). So the gateway's resident memory may grow by those 2 MiB plus what a V8 heap wanders
 * by (a few MiB); without backpressure it would read the endless source into memory, hundreds of
 * MiB within seconds.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BACKEND_READ_SIZE } from '../../src/proxy/backend.ts';
import { sourceBackend, echoBackend, type TestBackend } from '../support/backends.ts';
import { startDaemon, stopDaemon, type Daemon } from '../support/daemon.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { connectionsTo, leakMeter, openDescriptors, settled } from '../support/leak-meter.ts';
import { porthole } from '../support/process.ts';
import { binaryFrame, RawClient, upgradeRequest } from '../support/raw-ws.ts';
import { goodConsole } from '../support/storm.ts';
import { freePort } from '../support/xvnc.ts';

const CLIENT_HIGH_WATER = 1024 * 1024;
const BACKEND_READ_CHUNK = BACKEND_READ_SIZE;
/** What the gateway's RSS may grow by: the buffers above plus the V8 heap's wandering. */
const RSS_BOUND = CLIENT_HIGH_WATER + BACKEND_READ_CHUNK + 32 * 1024 * 1024;

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
/** Most bytes the kernel can hold on one TCP connection's two ends (tcp_wmem and tcp_rmem maxima). */
function kernelBufferMax(): number {
  const max = (f: string) => Number(readFileSync(f, 'utf8').trim().split(/\s+/)[2]);
  return max('/proc/sys/net/ipv4/tcp_wmem') + max('/proc/sys/net/ipv4/tcp_rmem');
}

describe('a browser that never reads while the backend streams (issue 15)', () => {
  let d: Daemon;
  let source: TestBackend & { written: () => number };
  let echo: TestBackend;
  let db: string;
  const token = async (port: number) => {
    const r = await porthole(['token', 'create', '--instance-uuid', '11e4a7c0-0000-4000-8000-d00000000001', '--host', '127.0.0.1', '--port', String(port), '--json', '--database-connection', db]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { token: string }).token;
  };

  before(async () => {
    source = await sourceBackend();
    echo = await echoBackend();
    db = `sqlite:///${join(tempDir('porthole-never-reads-'), 'porthole.db')}`;
    d = await startDaemon('never-reads', await freePort(), await freePort(), ['--database-connection', db]);
  });
  after(async () => {
    await stopDaemon(d);
    await source?.close();
    await echo?.close();
  });

  it('keeps the proxy\'s memory within the high-water marks, pauses the backend, harms no other console, and frees everything when the browser goes', async () => {
    const pid = d.process.pid!;
    const good = await goodConsole(`ws://127.0.0.1:${d.consolePort}/websockify?token=${await token(echo.port)}`);
    const meter = leakMeter({ 'gateway descriptors': () => openDescriptors(pid), 'connections to the source': () => connectionsTo(source.port) });
    const baseline = await meter.read();
    const sourceToken = await token(source.port);
    const client = await RawClient.open(d.consolePort);
    try {
      // the browser's side of the handshake, then it stops reading for good
      client.write(upgradeRequest(d.consolePort, `/websockify?token=${sourceToken}`));
      client.write(Buffer.concat([binaryFrame('RFB 003.008\n'), binaryFrame([1]), binaryFrame([1])]));
      assert.ok(await client.until(() => client.frames.length >= 4, 10_000), `the handshake did not complete: status ${client.status}, ${client.frames.length} frames`);
      client.socket.pause();
      const rssBefore = rssOf(pid);
      const echoing = good.keepEchoing(100);

      // the source stalls: its writes block once every buffer on the way is full
      await eventually('the source to stall', async () => {
        const a = source.written();
        await new Promise((r) => setTimeout(r, 500));
        return source.written() === a && a > 0;
      }, 30_000);
      const written = source.written();
      const pending = source.sockets.map((s) => s.writableLength).reduce((a, b) => a + b, 0);
      // hold it a while: a proxy without backpressure would keep reading and growing
      await new Promise((r) => setTimeout(r, 2000));
      const rssStalled = rssOf(pid);
      const failures = await echoing.stop();
      console.log(`# c. never-reading browser: the source wrote ${mib(written)} before it stalled (${mib(pending)} waiting in its own buffer); gateway RSS ${mib(rssBefore)} -> ${mib(rssStalled)} (+${mib(rssStalled - rssBefore)}; bound ${mib(RSS_BOUND)}); kernel buffers on both connections at most ${mib(2 * kernelBufferMax())}`);
      assert.equal(source.written(), written, 'the source kept writing: the proxy did not pause it');
      assert.ok(pending > 0, 'the source\'s last write did not block');
      assert.ok(written <= 2 * kernelBufferMax() + CLIENT_HIGH_WATER + BACKEND_READ_CHUNK + pending, `the source wrote ${mib(written)}: more than the kernel buffers and the high-water marks hold`);
      assert.ok(rssStalled - rssBefore < RSS_BOUND, `the gateway grew by ${mib(rssStalled - rssBefore)} with a browser that does not read`);
      assert.deepEqual(failures, [], 'the good console failed while the other browser did not read');
    } finally {
      client.destroy();
    }
    // the browser goes: its backend connection, descriptors and memory are let go
    await eventually('the source\'s connection closed', () => source.sockets.every((s) => s.destroyed), 10_000);
    const after = await settled(meter, baseline, 10_000);
    await good.echo();
    good.close();
    console.log(`# c. after the browser went: gateway descriptors ${baseline['gateway descriptors']} -> ${after['gateway descriptors']}, RSS ${mib(rssOf(pid))}`);
  });
});
