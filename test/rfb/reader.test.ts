/**
 * The RFB handshake reader: reads resume across chunks of any size, every length is bounded
 * before anything is allocated, bytes that arrived before the peer left still count, and one
 * deadline ends a handshake that stalls, whatever step it is waiting in.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../src/errors.ts';
import { MAX_READ, RfbReader, type ReaderErrors } from '../../src/rfb/reader.ts';

const errors: ReaderErrors = {
  closed: (step, detail) => new GatewayError('BACKEND_CLOSED', `closed at ${step}: ${detail}`),
  timeout: (step) => new GatewayError('BACKEND_TIMEOUT', `timeout at ${step}`),
  protocol: (step, detail) => new GatewayError('BACKEND_PROTOCOL', `protocol at ${step}: ${detail}`),
};

function reader(timeoutMs = 2000, maxBuffered?: number): RfbReader {
  return new RfbReader({ timeoutMs, errors, maxBuffered });
}

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GatewayError, `expected a GatewayError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('RFB reader', () => {
  it('resumes a read across one-byte chunks and splits a chunk across reads', async () => {
    const r = reader();
    const version = r.read(12, 'ProtocolVersion');
    for (const b of Buffer.from('RFB 003.008\n')) r.push(Buffer.from([b]));
    assert.equal((await version).toString(), 'RFB 003.008\n');
    r.push(Buffer.from([2, 1, 2, 0, 0, 0, 7, 0xaa]));
    assert.equal(await r.u8('Security'), 2);
    assert.deepEqual([...(await r.read(2, 'Security'))], [1, 2]);
    assert.equal(await r.u32('SecurityResult'), 7);
    assert.deepEqual([...r.finish()], [0xaa]);
  });

  it('reads a length-prefixed string within its bound, and refuses a longer length without waiting for it', async () => {
    const r = reader();
    r.push(Buffer.from([0, 0, 0, 5, ...Buffer.from('hello')]));
    assert.equal((await r.lengthPrefixed('reason', 16)).toString(), 'hello');
    r.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    await rejectsWith(r.lengthPrefixed('reason', 4096), 'BACKEND_PROTOCOL', /length 4294967295 exceeds the bound of 4096/);
    // the reader stays failed
    await rejectsWith(r.u8('next'), 'BACKEND_PROTOCOL');
  });

  it('refuses a read longer than MAX_READ', async () => {
    await rejectsWith(reader().read(MAX_READ + 1, 'ServerInit name'), 'BACKEND_PROTOCOL', /out of bounds/);
  });

  it('serves bytes that arrived before the peer closed, then fails the read they cannot satisfy', async () => {
    const r = reader();
    r.push(Buffer.from([0, 0, 0, 0, 9]));
    r.end('the peer closed the connection');
    assert.equal(await r.u32('SecurityResult'), 0);
    await rejectsWith(r.read(2, 'ServerInit'), 'BACKEND_CLOSED', /ServerInit/);
  });

  it('fails a pending read when the peer closes, naming the step', async () => {
    const r = reader();
    const p = r.read(12, 'ProtocolVersion');
    r.push(Buffer.from('RFB 003'));
    r.end('ECONNRESET');
    await rejectsWith(p, 'BACKEND_CLOSED', /ProtocolVersion: ECONNRESET/);
  });

  it('ends a stalled handshake at the deadline, in whatever step it waits', async () => {
    const r = reader(100);
    r.push(Buffer.from('RFB 003.008\n'));
    await r.read(12, 'ProtocolVersion');
    await rejectsWith(r.u8('Security'), 'BACKEND_TIMEOUT', /Security/);
    await rejectsWith(r.u8('later'), 'BACKEND_TIMEOUT');
  });

  it('bounds the bytes held unread', async () => {
    const r = reader(2000, 1024);
    assert.equal((await Promise.all([r.read(1000, 'first'), r.push(Buffer.alloc(1000))]))[0].length, 1000);
    r.push(Buffer.alloc(1000));
    r.push(Buffer.alloc(1000));
    await rejectsWith(r.read(1, 'next'), 'BACKEND_PROTOCOL', /more than 1024 bytes unread/);
  });

  it('guards a step outside the reader (a TLS handshake) with the same deadline', async () => {
    const r = reader(100);
    const never = new Promise<void>(() => {});
    await rejectsWith(r.guard(never), 'BACKEND_TIMEOUT');
    const ok = reader(2000);
    assert.equal(await ok.guard(Promise.resolve(42)), 42);
    ok.finish();
  });

  it('pauses its deadline while the other side has the move, and starts a fresh one on resume', async () => {
    const r = reader(50);
    r.pauseDeadline();
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(r.failed, null);
    r.resumeDeadline(50);
    await rejectsWith(r.u8('ServerInit'), 'BACKEND_TIMEOUT', /ServerInit/);
  });
});
