/**
 * The RFB security proxy, byte for byte: recorded handshakes of real servers (TigerVNC Xvnc and
 * QEMU, `test/fixtures/rfb/`) replayed whole and one byte at a time; each handshake step of RFB
 * 3.3, 3.7 and 3.8 and of VeNCrypt scripted as the RFC and the VeNCrypt spec give it; Nova's
 * choice of scheme (the first of the *server's* types that is allowed); the browser's side
 * (always 3.8-capable, None only, one WebSocket message per RFB message); and hostile servers
 * and clients: oversized lengths, unknown types, truncated messages, floods, stalls.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createSecureContext } from 'node:tls';
import { GatewayError } from '../../src/errors.ts';
import { vncAuthResponse } from '../../src/rfb/auth/vnc.ts';
import { negotiateBackend, REFUSED_CLOSE, serveClient, type BackendHandshake } from '../../src/rfb/security-proxy.ts';
import type { AuthSchemeName, BackendAuthSettings } from '../../src/rfb/types.ts';
import type { Transcript } from '../fixtures/rfb/transcript.ts';
import { eventually } from '../support/gateway.ts';
import { FakeClient, replay, scriptedServer, type ScriptIo, type ScriptedServer } from '../support/rfb-script.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'rfb');
const V38 = 'RFB 003.008\n';
const V37 = 'RFB 003.007\n';
const V33 = 'RFB 003.003\n';
const AUTH_FAILED = 'The console could not be authenticated';

const servers: ScriptedServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

function settings(schemes: AuthSchemeName[], more: Partial<BackendAuthSettings> = {}): BackendAuthSettings {
  return { schemes, password: null, username: null, tls: null, tlsServerName: null, allowInsecureTls: false, ...more };
}

async function negotiate(script: (io: ScriptIo) => Promise<void>, s: BackendAuthSettings, timeoutMs = 2000): Promise<{ backend: BackendHandshake; server: ScriptedServer }> {
  const server = await scriptedServer(script);
  servers.push(server);
  const backend = await negotiateBackend(await server.connect(), s, { timeoutMs, address: `127.0.0.1:${server.port}` });
  return { backend, server };
}

async function refused(script: (io: ScriptIo) => Promise<void>, s: BackendAuthSettings, code: string, detail?: RegExp, timeoutMs = 2000): Promise<GatewayError> {
  const server = await scriptedServer(script);
  servers.push(server);
  try {
    await negotiateBackend(await server.connect(), s, { timeoutMs, address: `127.0.0.1:${server.port}` });
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    assert.equal(err.code, code, err.message);
    if (detail) assert.match(err.message, detail);
    // whatever failed, the browser may be told only this
    assert.equal(err.clientMessage, AUTH_FAILED);
    return err;
  }
  assert.fail(`expected ${code}`);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function reason(text: string): Buffer {
  return Buffer.concat([u32(Buffer.byteLength(text)), Buffer.from(text)]);
}

const SERVER_INIT = Buffer.concat([Buffer.from('028001e0201800010' + '0ff00ff00ff100800000000', 'hex').subarray(0, 20), reason('test desktop')]);

/** The browser's whole side at once (3.8, None, shared), then what it received. */
async function browse(backend: BackendHandshake, opts: { version?: string; pipelined?: Buffer } = {}): Promise<Buffer[]> {
  const client = new FakeClient();
  client.say(opts.version ?? V38);
  if ((opts.version ?? V38) !== V33) client.say([1]);
  client.say(Buffer.concat([Buffer.from([1]), opts.pipelined ?? Buffer.alloc(0)]));
  await serveClient(client, Promise.resolve(backend), { timeoutMs: 2000 });
  return client.messages;
}

/** The server's side of ClientInit → ServerInit. */
async function serverInit(io: ScriptIo): Promise<void> {
  assert.deepEqual([...(await io.read(1))], [1], 'ClientInit carries the browser\'s shared flag');
  await io.write(SERVER_INIT);
}

describe('RFB security proxy: recorded handshakes of real servers', () => {
  for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort()) {
    const t = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Transcript;
    const vencrypt = t.steps.some((s) => s.tls);
    const scheme: AuthSchemeName = vencrypt ? 'vencrypt' : t.password ? 'vnc' : 'none';
    for (const byteByByte of [false, true]) {
      it(`${file} (${t.server})${byteByByte ? ', one byte at a time' : ''}`, async () => {
        const server = await scriptedServer(replay(t, { byteByByte }));
        servers.push(server);
        // VeNCrypt: a CA that is not the recording's; the replay ends at the ClientHello anyway
        const tls = { context: () => createSecureContext(), missing: null };
        const s = settings([scheme], { password: t.password ?? null, tls });
        const socket = await server.connect();
        if (vencrypt) {
          await assert.rejects(negotiateBackend(socket, s, { timeoutMs: 2000, address: 'recorded' }), (e: GatewayError) => e.code === 'BACKEND_TLS_FAILED' || e.code === 'BACKEND_CLOSED');
          await server.done;
          return;
        }
        const backend = await negotiateBackend(socket, s, { timeoutMs: 2000, address: 'recorded' });
        const messages = await browse(backend);
        await server.done;
        const serverInitStep = Buffer.from(t.steps[t.steps.length - 1]!.hex!, 'hex');
        // what the browser gets: 3.8, only None, OK, and the server's own ServerInit, one message each
        assert.deepEqual(messages.map((m) => m.toString('hex')), [Buffer.from(V38).toString('hex'), '0101', '00000000', serverInitStep.toString('hex')]);
        backend.socket.destroy();
      });
    }
  }

  it('answers the recorded VNC challenges as DES under the password (the VNC key bit order)', async () => {
    for (const file of ['tigervnc-vncauth.json', 'qemu-vncauth.json']) {
      const t = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Transcript;
      const challengeAt = t.steps.findIndex((s) => s.from === 'server' && s.hex!.length === 32);
      const challenge = Buffer.from(t.steps[challengeAt]!.hex!, 'hex');
      const answer = t.steps[challengeAt + 1]!.hex;
      assert.equal((await vncAuthResponse(t.password!, challenge)).toString('hex'), answer, file);
    }
    // and a vector from OpenSSL's DES-ECB with the bit-mirrored key of "secret"
    assert.equal((await vncAuthResponse('secret', Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'))).toString('hex'), 'ee22539f33a5983ec12f9c2edbc995dd');
    // only the first 8 bytes count, as in VNC servers
    assert.deepEqual(await vncAuthResponse('password-long', Buffer.alloc(16)), await vncAuthResponse('password', Buffer.alloc(16)));
  });
});

describe('RFB security proxy: the backend handshake, step by step', () => {
  it('3.8, None: version, types, choice, SecurityResult', async () => {
    const { backend, server } = await negotiate(async (io) => {
      await io.write(V38, { byteByByte: true });
      assert.equal((await io.read(12)).toString(), V38);
      await io.write([1, 1], { byteByByte: true });
      assert.deepEqual([...(await io.read(1))], [1]);
      await io.write(u32(0), { byteByByte: true });
      await serverInit(io);
    }, settings(['none']));
    assert.equal(backend.minor, 8);
    assert.equal(backend.auth, 'None');
    await browse(backend);
    await server.done;
    backend.socket.destroy();
  });

  it('3.7, None: no SecurityResult, as RFC 6143 §7.1.3 says for versions before 3.8', async () => {
    const { backend, server } = await negotiate(async (io) => {
      await io.write(V37);
      assert.equal((await io.read(12)).toString(), V37);
      await io.write([2, 2, 1]);
      assert.deepEqual([...(await io.read(1))], [1]);
      await serverInit(io);
    }, settings(['none']));
    assert.equal(backend.minor, 7);
    const messages = await browse(backend);
    // the browser still gets 3.8 and a SecurityResult
    assert.deepEqual(messages.slice(0, 3).map((m) => m.toString('hex')), [Buffer.from(V38).toString('hex'), '0101', '00000000']);
    await server.done;
    backend.socket.destroy();
  });

  it('3.3: the server decides the type as a U32; None has no SecurityResult', async () => {
    const { backend, server } = await negotiate(async (io) => {
      await io.write(V33);
      assert.equal((await io.read(12)).toString(), V33);
      await io.write(u32(1));
      await serverInit(io);
    }, settings(['none']));
    assert.equal(backend.minor, 3);
    await browse(backend);
    await server.done;
    backend.socket.destroy();
  });

  it('3.3 with VNC authentication: challenge, answer, SecurityResult without a reason', async () => {
    const challenge = Buffer.from('f0e1d2c3b4a5968778695a4b3c2d1e0f', 'hex');
    const { backend, server } = await negotiate(async (io) => {
      await io.write(V33);
      await io.read(12);
      await io.write(Buffer.concat([u32(2), challenge]), { byteByByte: true });
      assert.deepEqual(await io.read(16), await vncAuthResponse('pw', challenge));
      await io.write(u32(0));
      await serverInit(io);
    }, settings(['vnc'], { password: 'pw' }));
    assert.equal(backend.auth, 'VncAuth');
    await browse(backend);
    await server.done;
    backend.socket.destroy();
  });

  it('treats 3.889 (Apple) and later minors as 3.8, and other minors below 7 as 3.3', async () => {
    for (const [offered, answer] of [['RFB 003.889\n', V38], ['RFB 003.005\n', V33]] as const) {
      const { backend } = await negotiate(async (io) => {
        await io.write(offered);
        assert.equal((await io.read(12)).toString(), answer);
        await io.write(answer === V33 ? u32(1) : Buffer.from([1, 1]));
        if (answer === V38) {
          await io.read(1);
          await io.write(u32(0));
        }
      }, settings(['none']));
      backend.socket.destroy();
    }
  });

  it('refuses a server whose ProtocolVersion is not RFB 3.x', async () => {
    await refused(async (io) => {
      await io.write('HTTP/1.1 400');
      await io.closed();
    }, settings(['none']), 'BACKEND_PROTOCOL', /not an RFB 3\.x server: "HTTP\/1\.1 400"/);
    await refused(async (io) => io.write('RFB 004.001\n'), settings(['none']), 'BACKEND_PROTOCOL');
  });

  it('takes the first of the SERVER\'s types that auth_schemes allows, as Nova (not the first of auth_schemes)', async () => {
    const chose = async (offered: number[], schemes: AuthSchemeName[], password: string | null) => {
      let choice = -1;
      const { backend } = await negotiate(async (io) => {
        await io.write(V38);
        await io.read(12);
        await io.write([offered.length, ...offered]);
        choice = (await io.read(1))[0]!;
        if (choice === 2) {
          await io.write(Buffer.alloc(16));
          await io.read(16);
        }
        await io.write(u32(0));
      }, settings(schemes, { password }));
      backend.socket.destroy();
      return choice;
    };
    assert.equal(await chose([2, 1], ['none', 'vnc'], 'pw'), 2);
    assert.equal(await chose([1, 2], ['vnc', 'none'], 'pw'), 1);
    // unknown and unsupported types are passed over
    assert.equal(await chose([30, 113, 16, 1], ['vencrypt', 'vnc', 'none'], null), 1);
    // `vnc` without a password for this server is not usable: the next allowed one wins
    assert.equal(await chose([2, 1], ['vnc', 'none'], null), 1);
  });

  it('says which types the server offered when none is allowed or usable', async () => {
    const script = (types: number[]) => async (io: ScriptIo) => {
      await io.write(V38);
      await io.read(12);
      await io.write([types.length, ...types]);
      await io.closed();
    };
    await refused(script([30, 113, 255, 0]), settings(['vencrypt', 'vnc', 'none']), 'BACKEND_AUTH_NO_SCHEME', /the server offers ARD\(30\), MSLogonII\(113\), unknown\(255\), Invalid\(0\); auth_schemes = vencrypt,vnc,none/);
    await refused(script([2]), settings(['none']), 'BACKEND_AUTH_NO_SCHEME', /offers VncAuth\(2\); auth_schemes = none$/);
    await refused(script([2]), settings(['vnc', 'none']), 'BACKEND_AUTH_NO_SCHEME', /vnc: no VNC password is set for this server/);
  });

  it('reports a server that refuses the connection with its reason (3.8: no types; 3.3: type 0)', async () => {
    await refused(async (io) => {
      await io.write(V38);
      await io.read(12);
      await io.write(Buffer.concat([Buffer.from([0]), reason('Too many security failures')]), { byteByByte: true });
    }, settings(['none']), 'BACKEND_AUTH_FAILED', /refused the connection: "Too many security failures"/);
    await refused(async (io) => {
      await io.write(V33);
      await io.read(12);
      await io.write(Buffer.concat([u32(0), reason('go away')]));
    }, settings(['none']), 'BACKEND_AUTH_FAILED', /RFB 3\.3 server refused the connection: "go away"/);
  });

  it('reports a wrong password with the server\'s reason (3.8) or without one (3.7)', async () => {
    await refused(async (io) => {
      await io.write(V38);
      await io.read(12);
      await io.write([1, 2]);
      await io.read(1);
      await io.write(Buffer.alloc(16, 7));
      await io.read(16);
      await io.write(Buffer.concat([u32(1), reason('Authentication failure')]));
    }, settings(['vnc'], { password: 'wrong' }), 'BACKEND_AUTH_FAILED', /refused VncAuth \(SecurityResult 1: "Authentication failure"\)/);
    await refused(async (io) => {
      await io.write(V37);
      await io.read(12);
      await io.write([1, 2]);
      await io.read(1);
      await io.write(Buffer.alloc(16, 7));
      await io.read(16);
      await io.write(u32(1));
    }, settings(['vnc'], { password: 'wrong' }), 'BACKEND_AUTH_FAILED', /refused VncAuth \(SecurityResult 1\)$/);
  });

  it('never logs the password it used', async () => {
    const err = await refused(async (io) => {
      await io.write(V38);
      await io.read(12);
      await io.write([1, 2]);
      await io.read(1);
      await io.write(Buffer.alloc(16));
      await io.read(16);
      await io.write(Buffer.concat([u32(1), reason('Authentication failure')]));
    }, settings(['vnc'], { password: 'hunter22' }), 'BACKEND_AUTH_FAILED');
    assert.ok(!err.message.includes('hunter22'));
  });
});

describe('RFB security proxy: VeNCrypt before TLS', () => {
  // a real context that trusts nothing: these servers never get as far as a certificate
  const x509 = { context: () => createSecureContext(), missing: null };
  const vencrypt = (steps: (io: ScriptIo) => Promise<void>) => async (io: ScriptIo) => {
    await io.write(V38);
    await io.read(12);
    await io.write([1, 19]);
    assert.deepEqual([...(await io.read(1))], [19]);
    await steps(io);
  };

  it('speaks 0.2, picks the first usable subtype in the server\'s order, and starts TLS after the ack', async () => {
    let chosen = -1;
    await assert.rejects(negotiate(vencrypt(async (io) => {
      await io.write([0, 2], { byteByByte: true });
      assert.deepEqual([...(await io.read(2))], [0, 2]);
      // ack, then 4 subtypes: X509SASL (unsupported), TLSNone (insecure), X509Plain (no user), X509Vnc
      await io.write(Buffer.concat([Buffer.from([0, 4]), u32(263), u32(257), u32(262), u32(261)]), { byteByByte: true });
      chosen = (await io.read(4)).readUInt32BE(0);
      await io.write([1]);
      const hello = await io.read(2);
      assert.deepEqual([...hello], [0x16, 0x03], 'a TLS ClientHello');
      io.socket.destroy();
    }), settings(['vencrypt'], { password: 'pw', tls: x509 })));
    assert.equal(chosen, 261);
  });

  it('accepts a server that speaks a later 0.x and answers 0.2', async () => {
    let answer: number[] = [];
    await assert.rejects(negotiate(vencrypt(async (io) => {
      await io.write([0, 3]);
      answer = [...(await io.read(2))];
      await io.write([0, 1]);
      await io.write(u32(260));
      await io.read(4);
      await io.write([1]);
      await io.read(1);
      io.socket.destroy();
    }), settings(['vencrypt'], { tls: x509 })));
    assert.deepEqual(answer, [0, 2]);
  });

  it('refuses VeNCrypt 0.1, a refused version, no subtypes, no usable subtype and a refused subtype', async () => {
    const s = settings(['vencrypt'], { tls: x509 });
    await refused(vencrypt(async (io) => io.write([0, 1])), s, 'BACKEND_AUTH_FAILED', /VeNCrypt 0\.1; Porthole needs 0\.2/);
    await refused(vencrypt(async (io) => {
      await io.write([0, 2]);
      await io.read(2);
      await io.write([1]);
    }), s, 'BACKEND_AUTH_FAILED', /refused VeNCrypt 0\.2/);
    await refused(vencrypt(async (io) => {
      await io.write([0, 2]);
      await io.read(2);
      await io.write([0, 0]);
    }), s, 'BACKEND_AUTH_NO_SCHEME', /no VeNCrypt subtype/);
    await refused(vencrypt(async (io) => {
      await io.write([0, 2]);
      await io.read(2);
      await io.write(Buffer.concat([Buffer.from([0, 3]), u32(256), u32(258), u32(0xdeadbeef)]));
    }), s, 'BACKEND_AUTH_NO_SCHEME', /Plain\(256\): not supported by Porthole; TLSVnc\(258\): anonymous TLS, allowed only with \[porthole\] vencrypt_allow_insecure_tls; unknown\(3735928559\): not supported/);
    await refused(vencrypt(async (io) => {
      await io.write([0, 2]);
      await io.read(2);
      await io.write(Buffer.concat([Buffer.from([0, 1]), u32(260)]));
      await io.read(4);
      await io.write([0]);
    }), s, 'BACKEND_AUTH_FAILED', /did not accept VeNCrypt subtype X509None\(260\)/);
  });

  it('refuses the X509 subtypes without a CA to verify the server with', async () => {
    await refused(vencrypt(async (io) => {
      await io.write([0, 2]);
      await io.read(2);
      await io.write(Buffer.concat([Buffer.from([0, 1]), u32(260)]));
      await io.closed();
    }), settings(['vencrypt'], { tls: { context: () => null, missing: '[vnc] vencrypt_ca_certs' } }), 'BACKEND_AUTH_NO_SCHEME', /X509None\(260\): no \[vnc\] vencrypt_ca_certs to verify the server certificate with/);
  });

  it('bounds the TLS handshake by the same deadline (a server that stalls after the ack)', async () => {
    await refused(vencrypt(async (io) => {
      await io.write([0, 2]);
      await io.read(2);
      await io.write(Buffer.concat([Buffer.from([0, 1]), u32(260)]));
      await io.read(4);
      await io.write([1]);
      await io.closed();
    }), settings(['vencrypt'], { tls: x509 }), 'BACKEND_TIMEOUT', /did not complete the RFB handshake in time/, 300);
  });
});

describe('RFB security proxy: hostile and broken servers', () => {
  it('refuses an oversized failure reason length without reading or allocating it', async () => {
    await refused(async (io) => {
      await io.write(V38);
      await io.read(12);
      await io.write(Buffer.concat([Buffer.from([0]), u32(0xffffffff)]));
      await io.closed();
    }, settings(['none']), 'BACKEND_PROTOCOL', /length 4294967295 exceeds the bound of 4096 bytes/);
    await refused(async (io) => {
      await io.write(V38);
      await io.read(12);
      await io.write([1, 1]);
      await io.read(1);
      await io.write(Buffer.concat([u32(1), u32(0x7fffffff)]));
      await io.closed();
    }, settings(['none']), 'BACKEND_PROTOCOL', /SecurityResult reason: length 2147483647 exceeds/);
  });

  it('reports truncated messages as a server closing early, naming the step', async () => {
    await refused(async (io) => {
      await io.write('RFB 003.0');
      io.socket.end();
    }, settings(['none']), 'BACKEND_CLOSED', /\(ProtocolVersion\)/);
    await refused(async (io) => {
      await io.write(V38);
      await io.read(12);
      await io.write([3, 1]);
      io.socket.end();
    }, settings(['none']), 'BACKEND_CLOSED', /\(Security\)/);
    await refused(async (io) => {
      await io.write(V38);
      await io.read(12);
      await io.write([1, 2]);
      await io.read(1);
      await io.write(Buffer.alloc(9));
      io.socket.end();
    }, settings(['vnc'], { password: 'pw' }), 'BACKEND_CLOSED', /VNC Authentication challenge/);
    await refused(async (io) => {
      await io.write(V38);
      await io.read(12);
      await io.write([1, 1]);
      await io.read(1);
      await io.write([0, 0]);
      io.socket.end();
    }, settings(['none']), 'BACKEND_CLOSED', /\(SecurityResult\)/);
  });

  it('ends a server that stalls, at the deadline, whatever step it stalls in', async () => {
    await refused(async (io) => io.closed(), settings(['none']), 'BACKEND_TIMEOUT', /waiting for ProtocolVersion/, 300);
    await refused(async (io) => {
      await io.write(V38);
      await io.read(12);
      await io.write([1, 1]);
      await io.read(1);
      await io.closed();
    }, settings(['none']), 'BACKEND_TIMEOUT', /waiting for SecurityResult/, 300);
  });

  it('refuses a flood of bytes while it waits for the browser', async () => {
    const { backend } = await negotiate(async (io) => {
      await io.write(V38);
      await io.read(12);
      await io.write([1, 1]);
      await io.read(1);
      // before ClientInit a server has nothing to send
      await io.write(Buffer.concat([u32(0), Buffer.alloc(2 * 1024 * 1024, 0x41)]));
      await io.closed();
    }, settings(['none']));
    await eventually('the flood to arrive', () => backend.transport.reader.failed);
    await assert.rejects(browse(backend), (e: GatewayError) => e.code === 'BACKEND_PROTOCOL' && /more than 1048576 bytes unread/.test(e.message));
    backend.socket.destroy();
  });

  it('refuses an oversized desktop name in ServerInit and a server that stalls before it', async () => {
    const handshake = (init: (io: ScriptIo) => Promise<void>) => async (io: ScriptIo) => {
      await io.write(V38);
      await io.read(12);
      await io.write([1, 1]);
      await io.read(1);
      await io.write(u32(0));
      await io.read(1);
      await init(io);
    };
    const big = await negotiate(handshake(async (io) => {
      await io.write(Buffer.concat([SERVER_INIT.subarray(0, 20), u32(0x10000000)]));
      await io.closed();
    }), settings(['none']));
    await assert.rejects(browse(big.backend), (e: GatewayError) => e.code === 'BACKEND_PROTOCOL' && /desktop name length 268435456 exceeds/.test(e.message));
    big.backend.socket.destroy();
    const stall = await negotiate(handshake(async (io) => io.closed()), settings(['none']));
    const client = new FakeClient();
    client.say(V38);
    client.say([1, 1]);
    await assert.rejects(serveClient(client, Promise.resolve(stall.backend), { timeoutMs: 200 }), (e: GatewayError) => e.code === 'BACKEND_TIMEOUT' && /ServerInit/.test(e.message));
    stall.backend.socket.destroy();
  });
});

describe('RFB security proxy: the browser\'s side', () => {
  const noneServer = (after: (io: ScriptIo) => Promise<void> = serverInit) => async (io: ScriptIo) => {
    await io.write(V38);
    await io.read(12);
    await io.write([1, 1]);
    await io.read(1);
    await io.write(u32(0));
    await after(io);
  };

  it('offers 3.8 and only None, one message per RFB message, and passes the browser\'s shared flag on', async () => {
    let shared = -1;
    const { backend } = await negotiate(noneServer(async (io) => {
      shared = (await io.read(1))[0]!;
      await io.write(SERVER_INIT);
    }), settings(['none']));
    const client = new FakeClient();
    const done = serveClient(client, Promise.resolve(backend), { timeoutMs: 2000 });
    for (const b of Buffer.from(V38)) client.say([b]);
    client.say([1]);
    client.say([0]);
    await done;
    assert.deepEqual(client.messages.map((m) => m.toString('hex')), [Buffer.from(V38).toString('hex'), '0101', '00000000', SERVER_INIT.toString('hex')]);
    assert.equal(shared, 0);
    backend.socket.destroy();
  });

  it('speaks 3.7 and 3.3 to a browser that asks for them', async () => {
    for (const [version, expected] of [[V37, ['0101']], [V33, ['00000001']]] as const) {
      const { backend } = await negotiate(noneServer(), settings(['none']));
      const messages = await browse(backend, { version });
      assert.deepEqual(messages.slice(1, -1).map((m) => m.toString('hex')), expected);
      backend.socket.destroy();
    }
  });

  it('forwards what the browser pipelined after ClientInit, before the relay starts', async () => {
    let early: Buffer = Buffer.alloc(0);
    const { backend, server } = await negotiate(noneServer(async (io) => {
      await io.read(1);
      await io.write(SERVER_INIT);
      early = await io.read(10);
    }), settings(['none']));
    await browse(backend, { pipelined: Buffer.from([3, 0, 0, 0, 0, 0, 0, 64, 0, 48]) });
    await server.done;
    assert.deepEqual([...early], [3, 0, 0, 0, 0, 0, 0, 64, 0, 48]);
    backend.socket.destroy();
  });

  it('hands the backend over with bytes it sent after ServerInit still in the socket', async () => {
    const { backend } = await negotiate(noneServer(async (io) => {
      await io.read(1);
      await io.write(Buffer.concat([SERVER_INIT, Buffer.from([2])]));
    }), settings(['none']));
    await browse(backend);
    const bell = await new Promise<Buffer>((resolve) => {
      backend.socket.once('data', resolve);
      backend.socket.resume();
    });
    assert.deepEqual([...bell], [2]);
    backend.socket.destroy();
  });

  it('refuses a browser that does not speak RFB 3.3/3.7/3.8 or chooses another type', async () => {
    const { backend: b1 } = await negotiate(noneServer(async (io) => io.closed()), settings(['none']));
    const c1 = new FakeClient();
    c1.say('GET / HTTP/1.1\r\n');
    await assert.rejects(serveClient(c1, Promise.resolve(b1), { timeoutMs: 2000 }), (e: GatewayError) => e.code === 'CLIENT_PROTOCOL');
    b1.socket.destroy();
    const { backend: b2 } = await negotiate(noneServer(async (io) => io.closed()), settings(['none']));
    const c2 = new FakeClient();
    c2.say(V38);
    c2.say([2]);
    await assert.rejects(serveClient(c2, Promise.resolve(b2), { timeoutMs: 2000 }), (e: GatewayError) => e.code === 'CLIENT_PROTOCOL' && /chose security type VncAuth\(2\)/.test(e.message));
    // and tells it why, as Nova does
    assert.equal(c2.messages[2]!.subarray(8).toString(), 'Only the security type None (1) is supported');
    assert.equal(c2.messages[2]!.readUInt32BE(0), 1);
    b2.socket.destroy();
  });

  it('ends a browser that stalls, at the deadline', async () => {
    const { backend } = await negotiate(noneServer(async (io) => io.closed()), settings(['none']));
    const client = new FakeClient(200);
    client.say(V38);
    await assert.rejects(serveClient(client, Promise.resolve(backend), { timeoutMs: 2000 }), (e: GatewayError) => e.code === 'CLIENT_TIMEOUT' && /Security/.test(e.message));
    backend.socket.destroy();
  });

  it('refuses a browser whose console could not be authenticated with a reason, and nothing more (3.8, 3.7, 3.3)', async () => {
    const failure = new GatewayError('BACKEND_AUTH_FAILED', 'backend 192.0.2.1:5900: the server refused VncAuth', { status: 502, clientMessage: AUTH_FAILED });
    const refuseClient = (client: FakeClient) =>
      assert.rejects(serveClient(client, Promise.reject(failure), { timeoutMs: 2000 }), (e: GatewayError) => e.cause === failure && e.code === failure.code && e.closeCode === REFUSED_CLOSE.code && e.clientMessage === REFUSED_CLOSE.reason);
    const c8 = new FakeClient();
    c8.say(V38);
    c8.say([1]);
    await refuseClient(c8);
    assert.deepEqual(c8.messages.map((m) => m.toString('hex')), [Buffer.from(V38).toString('hex'), '0101', Buffer.concat([u32(1), reason(AUTH_FAILED)]).toString('hex')]);
    const c7 = new FakeClient();
    c7.say(V37);
    await refuseClient(c7);
    assert.deepEqual(c7.messages[1], Buffer.concat([Buffer.from([0]), reason(AUTH_FAILED)]));
    const c3 = new FakeClient();
    c3.say(V33);
    await refuseClient(c3);
    assert.deepEqual(c3.messages[1], Buffer.concat([u32(0), reason(AUTH_FAILED)]));
  });
});
