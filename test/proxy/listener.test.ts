import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { bannerBackend, openConsole, RFB_BANNER, type TestBackend } from '../support/backends.ts';
import { startGateway, tempDir, type TestGateway } from '../support/gateway.ts';

function selfSignedCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

describe('proxy listener with TLS ([DEFAULT] cert, ssl_only)', () => {
  let backend: TestBackend;
  let certs: { cert: string; key: string };
  before(async () => {
    backend = await bannerBackend();
    certs = selfSignedCert(tempDir());
  });
  after(async () => backend.close());

  it('accepts TLS and plain connections on one port when the certificate exists', async () => {
    const gw = await startGateway({ 'DEFAULT.cert': certs.cert, 'DEFAULT.key': certs.key });
    try {
      assert.equal(gw.gateway.novnc!.tls, true);
      const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
      const plain = await openConsole(`ws://127.0.0.1:${gw.port}/?token=${token}`);
      assert.deepEqual(plain.first, RFB_BANNER);
      plain.ws!.close();
      const secure = await new Promise<Buffer>((resolve, reject) => {
        const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/?token=${token}`, ['binary'], { ca: [execFileSync('cat', [certs.cert])] });
        ws.once('message', (d: Buffer) => { resolve(d); ws.close(); });
        ws.once('error', reject);
      });
      assert.deepEqual(secure, RFB_BANNER);
    } finally {
      await gw.close();
    }
  });

  it('refuses plain connections with ssl_only', async () => {
    const gw = await startGateway({ 'DEFAULT.cert': certs.cert, 'DEFAULT.key': certs.key, 'DEFAULT.ssl_only': 'true' });
    try {
      const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
      const before = backend.connections;
      assert.equal((await openConsole(`ws://127.0.0.1:${gw.port}/?token=${token}`)).status, 400);
      assert.equal(backend.connections, before);
      // TLS still works
      const sock = tlsConnect({ host: '127.0.0.1', port: gw.port, rejectUnauthorized: false });
      await new Promise((r, j) => { sock.once('secureConnect', r); sock.once('error', j); });
      sock.destroy();
    } finally {
      await gw.close();
    }
  });

  it('will not start with ssl_only and no certificate', async () => {
    await assert.rejects(startGateway({ 'DEFAULT.ssl_only': 'true' }), /ssl_only is set but the certificate file .* does not exist/);
  });
});

describe('proxy HTTP side', () => {
  let gw: TestGateway;
  let webDir: string;
  before(async () => {
    webDir = join(tempDir(), 'web');
    mkdirSync(webDir);
    writeFileSync(join(webDir, 'hello.txt'), 'hello from web\n');
    gw = await startGateway({ 'DEFAULT.web': webDir });
  });
  after(async () => gw.close());

  it('serves files of [DEFAULT] web for other paths, and never outside it', async () => {
    const ok = await fetch(`${gw.origin}/hello.txt`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'hello from web\n');
    assert.ok(existsSync('/etc/passwd'));
    const escape = await fetch(`${gw.origin}/..%2f..%2f..%2f..%2fetc%2fpasswd`);
    assert.equal(escape.status, 404);
  });

  it('serves noVNC core as JavaScript modules', async () => {
    const res = await fetch(`${gw.origin}/novnc/core/rfb.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(await res.text(), /export default class RFB/);
    assert.equal((await fetch(`${gw.origin}/novnc/core/../../package.json`)).status, 404);
  });

  it('answers token-state for the page with no-store', async () => {
    const { token } = await gw.mint({ host: '127.0.0.1', port: 1 });
    const res = await fetch(`${gw.origin}/porthole/token-state?token=${token}`);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(Object.keys(await res.json()), ['state', 'server', 'expiresAt']);
    const unknown = await (await fetch(`${gw.origin}/porthole/token-state?token=6f1e2d3c-0000-4000-8000-000000000000`)).json();
    assert.equal(unknown.state, 'unknown');
    // not a token's shape at all: a link cut short when copied
    const malformed = await (await fetch(`${gw.origin}/porthole/token-state?token=nope`)).json();
    assert.equal(malformed.state, 'malformed');
    const missing = await (await fetch(`${gw.origin}/porthole/token-state`)).json();
    assert.equal(missing.state, 'missing');
  });

  it('escapes the injected state so a server name cannot close the script element', async () => {
    const id = '7a7a7a7a-1111-4222-8333-444444444444';
    await gw.gateway.stores.inventory.put({ id, name: '</script><script>alert(1)</script>', projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port: 1 } });
    const { url } = await gw.mint({ host: '127.0.0.1', port: 1, instanceUuid: id });
    const html = await (await fetch(url)).text();
    assert.ok(!html.includes('</script><script>alert(1)'));
    assert.match(html, /\\u003c\/script>/);
  });

  it('closes live sessions with 1001 when the gateway shuts down', async () => {
    const backend = await bannerBackend();
    const gw2 = await startGateway();
    try {
      const { token } = await gw2.mint({ host: '127.0.0.1', port: backend.port });
      const r = await openConsole(`ws://127.0.0.1:${gw2.port}/?token=${token}`);
      const closed = new Promise<[number, string]>((res) => r.ws!.once('close', (code, reason) => res([code, reason.toString()])));
      await gw2.close();
      assert.deepEqual(await closed, [1001, 'proxy shutting down']);
    } finally {
      await backend.close();
    }
  });
});
