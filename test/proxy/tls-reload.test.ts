/**
 * Certificates renewed in place reach the running listeners without a restart: with a test CA
 * made by Debian's `openssl`, a new pair written over the files (as certbot and cert-manager do,
 * by renaming a new file over the old) is shown by the next TLS handshake on the compute API and
 * on the console listeners, while a serial console opened over TLS before the change keeps
 * relaying; each reload is one info line naming the certificate and never the key; a pair that
 * does not load (a key of another certificate, a truncated certificate) is logged once and the
 * pair before stays; SIGHUP loads at once, in a real daemon with two workers too.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { mintConsoleToken } from '../../src/consoles/mint.ts';
import { serial } from '../../src/consoles/serial.ts';
import { CERT_POLL_MS } from '../../src/http/cert-reload.ts';
import { startApi, type TestApi } from '../support/api.ts';
import { startDaemon, stopDaemon, type Daemon } from '../support/daemon.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { haveOpenssl, issueServerCertificate, makePki, type Pki } from '../support/pki.ts';
import { handshake } from '../support/tls.ts';
import { freePort } from '../support/xvnc.ts';

const SERVER = '3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c';

/** The serial number of a PEM certificate file, as a handshake's peer certificate gives it. */
function serialOf(file: string): string {
  return new X509Certificate(readFileSync(file)).serialNumber;
}

/** Writes `from` over `to` as certbot does: a new file renamed into place. */
function renameOver(from: string, to: string): void {
  copyFileSync(from, `${to}.new`);
  renameSync(`${to}.new`, to);
}

/** A TCP echo server: what a serial port that echoes looks like to the proxy. */
async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

/** A serial console over wss, and a round trip through it. */
async function openEcho(url: string, ca: string): Promise<{ ws: WebSocket; echo(text: string): Promise<string> }> {
  const ws = new WebSocket(url, ['binary'], { ca: readFileSync(ca), perMessageDeflate: false });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  let received = '';
  ws.on('message', (d: Buffer) => (received += d.toString()));
  return {
    ws,
    async echo(text) {
      received = '';
      ws.send(Buffer.from(text));
      return eventually(`the echo of ${text}`, () => received.length >= text.length && received);
    },
  };
}

describe('certificate reload', { skip: haveOpenssl ? false : 'needs openssl' }, () => {
  let pki: Pki;
  let dir: string;
  let renewed: { cert: string; key: string };
  let gw: TestApi;
  let echo: { server: Server; port: number };
  const live = { consoleCert: '', consoleKey: '', apiCert: '', apiKey: '' };
  const serialPort = () => gw.gateway.proxies.get(serial.name)!.port;
  const reloads = () => gw.logs.filter((l) => l.event === 'tls_reload');

  before(async () => {
    pki = makePki({ serverNames: ['127.0.0.1', 'localhost'] });
    renewed = issueServerCertificate(pki, 'renewed', 'renewed.test', ['127.0.0.1', 'localhost']);
    dir = tempDir('porthole-tls-reload-');
    Object.assign(live, { consoleCert: join(dir, 'console-cert.pem'), consoleKey: join(dir, 'console-key.pem'), apiCert: join(dir, 'api-cert.pem'), apiKey: join(dir, 'api-key.pem') });
    copyFileSync(pki.serverCert, live.consoleCert);
    copyFileSync(pki.serverKey, live.consoleKey);
    copyFileSync(pki.serverCert, live.apiCert);
    copyFileSync(pki.serverKey, live.apiKey);
    echo = await echoServer();
    gw = await startApi({ 'DEFAULT.cert': live.consoleCert, 'DEFAULT.key': live.consoleKey, 'porthole.api_cert': live.apiCert, 'porthole.api_key': live.apiKey });
  });
  after(async () => {
    await gw?.close();
    echo?.server.close();
    pki?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a renewed pair renamed over the files is served on the next handshake by the API and the console listeners; a console opened before keeps relaying', async () => {
    const first = serialOf(pki.serverCert);
    const next = serialOf(renewed.cert);
    assert.notEqual(first, next);
    for (const port of [gw.apiPort, gw.port, serialPort()]) assert.equal((await handshake(port, pki.caCert)).cert.serialNumber, first);

    const { token } = await mintConsoleToken(gw.gateway.stores, { kind: serial, instanceUuid: SERVER, endpoint: { host: '127.0.0.1', port: echo.port }, base: gw.gateway.proxies.get(serial.name)!.baseUrl, ttl: 600 });
    const session = await openEcho(`wss://127.0.0.1:${serialPort()}/?token=${token}`, pki.caCert);
    try {
      assert.equal(await session.echo('before renewal'), 'before renewal');

      renameOver(renewed.cert, live.consoleCert);
      renameOver(renewed.key, live.consoleKey);
      renameOver(renewed.cert, live.apiCert);
      renameOver(renewed.key, live.apiKey);
      for (const port of [gw.apiPort, gw.port, serialPort()]) {
        const seen = await eventually(`the renewed certificate on port ${port}`, async () => {
          const { cert } = await handshake(port, pki.caCert);
          return cert.serialNumber === next && cert;
        }, 20_000);
        assert.equal(seen.subject.CN, 'renewed.test');
      }

      assert.equal(session.ws.readyState, WebSocket.OPEN);
      assert.equal(await session.echo('after renewal'), 'after renewal');
    } finally {
      session.ws.terminate();
    }

    // one line per pair: the three console listeners share theirs
    const lines = reloads();
    assert.equal(lines.length, 2, JSON.stringify(lines));
    for (const l of lines) {
      assert.equal(l.level, 30);
      assert.equal(l.reason, 'changed');
      assert.match(l.msg, /^TLS certificate of the .* reloaded \(changed\): CN=renewed\.test, serial [0-9a-f]+, valid until \S+, from /);
    }
    assert.match(lines.find((l) => /compute API/.test(l.msg))!.msg, /^TLS certificate of the compute API reloaded .* from \[porthole\] api_cert = \S+api-cert\.pem, \[porthole\] api_key = \S+api-key\.pem$/);
    assert.match(lines.find((l) => /noVNC/.test(l.msg))!.msg, /^TLS certificate of the noVNC console proxy, serial console proxy(, SPICE console proxy)? reloaded .* from \[DEFAULT\] cert = /);
    const keyBody = readFileSync(renewed.key, 'utf8').split('\n')[1]!;
    assert.ok(!gw.rawLog.join('').includes(keyBody), 'key material in the log');
    assert.ok(!gw.rawLog.join('').includes('PRIVATE KEY'), 'key material in the log');
  });

  it('a pair that does not load is logged once, and the pair before stays', async () => {
    const served = serialOf(renewed.cert);
    const other = issueServerCertificate(pki, 'other', 'other.test', ['127.0.0.1']);
    const before = reloads().length;
    // the consoles: a certificate whose key is not the key file's; the API: a certificate cut short
    renameOver(other.cert, live.consoleCert);
    const pem = readFileSync(other.cert);
    writeFileSync(`${live.apiCert}.new`, pem.subarray(0, pem.length >> 1));
    renameSync(`${live.apiCert}.new`, live.apiCert);

    const failures = await eventually('both failures logged', () => {
      const f = reloads().slice(before).filter((l) => l.level === 40);
      return f.length === 2 && f;
    }, 20_000);
    assert.match(failures.find((l) => /console proxy/.test(l.msg))!.msg, /not reloaded \(changed\): \[DEFAULT\] cert = \S+console-cert\.pem, \[DEFAULT\] key = \S+console-key\.pem: not a usable PEM certificate and private key: .*key values mismatch; the certificate loaded before is still served$/);
    assert.match(failures.find((l) => /compute API/.test(l.msg))!.msg, /not reloaded \(changed\): \[porthole\] api_cert = \S+api-cert\.pem, \[porthole\] api_key = \S+api-key\.pem: not a usable PEM certificate and private key/);
    for (const port of [gw.apiPort, gw.port, serialPort()]) assert.equal((await handshake(port, pki.caCert)).cert.serialNumber, served);

    // the same broken files on later polls: nothing more in the log
    await sleep(2 * CERT_POLL_MS);
    assert.equal(reloads().length, before + 2);

    // the missing half arrives: served from the next polls on
    renameOver(other.key, live.consoleKey);
    renameOver(other.cert, live.apiCert);
    renameOver(other.key, live.apiKey);
    for (const port of [gw.apiPort, gw.port]) {
      await eventually(`the mended pair on port ${port}`, async () => (await handshake(port, pki.caCert)).cert.subject.CN === 'other.test', 20_000);
    }
  });

  it('reloadCertificates (SIGHUP) loads at once, without waiting for a poll', async () => {
    const third = issueServerCertificate(pki, 'third', 'third.test', ['127.0.0.1']);
    // written in place, as cp does: the poll would wait for the files to settle
    writeFileSync(live.apiCert, readFileSync(third.cert));
    writeFileSync(live.apiKey, readFileSync(third.key));
    await gw.gateway.reloadCertificates();
    assert.equal((await handshake(gw.apiPort, pki.caCert)).cert.subject.CN, 'third.test');
    const line = reloads().at(-1)!;
    assert.equal(line.reason, 'SIGHUP');
    assert.match(line.msg, /^TLS certificate of the compute API reloaded \(SIGHUP\): CN=third\.test/);
  });
});

describe('a daemon with two workers on SIGHUP', { skip: haveOpenssl ? false : 'needs openssl' }, () => {
  let pki: Pki;
  let dir: string;
  let daemon: Daemon | undefined;

  before(() => {
    pki = makePki({ serverNames: ['127.0.0.1'] });
    dir = tempDir('porthole-tls-sighup-');
  });
  after(async () => {
    await stopDaemon(daemon);
    pki?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reloads the certificate in every worker, and keeps running', async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    copyFileSync(pki.serverCert, cert);
    copyFileSync(pki.serverKey, key);
    daemon = await startDaemon('tls-sighup', await freePort(), await freePort(), [
      '--database-connection', `sqlite:///${join(dir, 'p.db')}`,
      '--cert', cert, '--key', key, '--porthole-api_use_console_cert', 'true',
      '--porthole-workers', '2',
      '--porthole-log_level', 'info',
    ]);
    await eventually('the start-up summary with an https API URL', () => daemon!.stdout.some((l) => l.includes(`Compute API: https://127.0.0.1:${daemon!.apiPort}/v2.1`)), 20_000);
    assert.equal((await handshake(daemon.apiPort, pki.caCert)).cert.serialNumber, serialOf(pki.serverCert));

    const renewed = issueServerCertificate(pki, 'renewed', 'renewed.test', ['127.0.0.1']);
    writeFileSync(cert, readFileSync(renewed.cert));
    writeFileSync(key, readFileSync(renewed.key));
    daemon.signal('SIGHUP');
    const lines = await eventually('a SIGHUP reload in both workers', () => {
      const l = daemon!.logs.filter((x) => x.event === 'tls_reload' && x.reason === 'SIGHUP' && x.level === 30);
      return new Set(l.map((x) => x.pid)).size === 2 && l;
    }, 20_000);
    assert.ok(lines.every((l) => /CN=renewed\.test/.test(l.msg)), JSON.stringify(lines));
    // each worker answers with the new pair: a few handshakes land on both
    for (let i = 0; i < 4; i++) {
      assert.equal((await handshake(daemon.apiPort, pki.caCert)).cert.subject.CN, 'renewed.test');
      assert.equal((await handshake(daemon.consolePort, pki.caCert)).cert.subject.CN, 'renewed.test');
    }
    assert.equal(daemon.process.exitCode, null);
    assert.equal(daemon.process.signalCode, null);
  });
});
