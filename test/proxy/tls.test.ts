/**
 * TLS on the console listener, asked with Debian's `openssl s_client` one suite and one version
 * at a time: by default Mozilla's "intermediate" profile (TLS 1.2 and 1.3; ECDHE with AES-GCM or
 * ChaCha20-Poly1305 only, no RSA key exchange, no CBC, no DHE), `[console] ssl_ciphers` and
 * `ssl_minimum_version` change that; HSTS on responses over TLS, none over plain HTTP on the
 * same port.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { haveOpenssl } from '../support/pki.ts';

interface Handshake {
  readonly ok: boolean;
  readonly protocol: string | null;
  readonly cipher: string | null;
  readonly output: string;
}

/** One `openssl s_client` handshake; stdin is /dev/null, so it closes once the handshake is done. */
function sClient(port: number, args: readonly string[]): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill(), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const cipher = /Cipher is (\S+)/.exec(output)?.[1] ?? null;
      // TLS 1.3's session block may come after stdin's end closed the connection; its "New, …"
      // line names the protocol (for older ones it names the cipher's version, not the protocol)
      const protocol = /^\s*Protocol\s*:\s*(\S+)/m.exec(output)?.[1] ?? /^New, (TLSv1\.3),/m.exec(output)?.[1] ?? null;
      resolve({ ok: code === 0 && cipher !== null && cipher !== '(NONE)', protocol, cipher, output });
    });
  });
}

/** A TLS 1.2 handshake offering only `suite`. */
const tls12 = (port: number, suite: string) => sClient(port, ['-tls1_2', '-cipher', suite]);
/** A TLS 1.3 handshake offering only `suite`. */
const tls13 = (port: number, suite: string) => sClient(port, ['-tls1_3', '-ciphersuites', suite]);
/** A TLS 1.1 (or 1.0) handshake; OpenSSL 3's client needs security level 0 to offer it at all. */
const oldTls = (port: number, flag: '-tls1_1' | '-tls1') => sClient(port, [flag, '-cipher', 'DEFAULT:@SECLEVEL=0']);

async function assertSuites(port: number, accepted: readonly string[], refused: readonly string[]): Promise<void> {
  const results = await Promise.all([...accepted, ...refused].map((s) => tls12(port, s)));
  results.forEach((r, i) => {
    const suite = [...accepted, ...refused][i]!;
    if (i < accepted.length) {
      assert.ok(r.ok, `${suite} refused:\n${r.output}`);
      assert.equal(r.cipher, suite);
      assert.equal(r.protocol, 'TLSv1.2');
    } else assert.ok(!r.ok, `${suite} accepted (${r.protocol} ${r.cipher})`);
  });
}

function httpsGet(port: number, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
// in Node's default list (its `HIGH` and its explicit CBC and DHE entries) and not in the profile
const WEAK_RSA = ['AES128-SHA', 'AES256-SHA256', 'AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256', 'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES256-SHA256'];

describe('console listener TLS', { skip: haveOpenssl ? false : 'needs openssl' }, () => {
  let dir: string;
  let rsa: { cert: string; key: string };
  let ec: { cert: string; key: string };
  const gateways: TestGateway[] = [];

  async function gateway(cert: { cert: string; key: string }, settings: Record<string, string> = {}): Promise<TestGateway> {
    const gw = await startGateway({ 'DEFAULT.cert': cert.cert, 'DEFAULT.key': cert.key, ...settings });
    gateways.push(gw);
    assert.equal(gw.gateway.novnc!.tls, true);
    return gw;
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'porthole-tls-'));
    const make = (name: string, keyArgs: string[]) => {
      execFileSync('openssl', ['req', '-x509', '-new', ...keyArgs, '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}-cert.pem`, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'ignore' });
      return { cert: join(dir, `${name}-cert.pem`), key: join(dir, `${name}-key.pem`) };
    };
    rsa = make('rsa', ['-newkey', 'rsa:2048']);
    ec = make('ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  });
  after(async () => {
    for (const gw of gateways) await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('by default (Mozilla intermediate)', () => {
    let rsaPort: number;
    let ecPort: number;
    before(async () => {
      rsaPort = (await gateway(rsa)).port;
      ecPort = (await gateway(ec)).port;
    });

    it('accepts ECDHE-RSA with AES-GCM and ChaCha20 on TLS 1.2, and refuses RSA key exchange, CBC and DHE', async () => {
      await assertSuites(rsaPort, ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305'], WEAK_RSA);
    });

    it('accepts ECDHE-ECDSA with AES-GCM and ChaCha20 on TLS 1.2 with an EC certificate, and refuses its CBC suites', async () => {
      await assertSuites(ecPort, ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305'], ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-ECDSA-AES128-SHA256']);
    });

    it('accepts each TLS 1.3 suite', async () => {
      for (const suite of TLS13_SUITES) {
        const r = await tls13(rsaPort, suite);
        assert.ok(r.ok, `${suite}:\n${r.output}`);
        assert.equal(r.protocol, 'TLSv1.3');
        assert.equal(r.cipher, suite);
      }
    });

    it('refuses TLS 1.1 and 1.0', async () => {
      for (const flag of ['-tls1_1', '-tls1'] as const) {
        const r = await oldTls(rsaPort, flag);
        assert.ok(!r.ok, `${flag} accepted: ${r.protocol} ${r.cipher}`);
      }
    });
  });

  describe('with [console] ssl_ciphers and ssl_minimum_version', () => {
    it('ssl_ciphers replaces the TLS 1.2 list and keeps TLS 1.3', async () => {
      const { port } = await gateway(rsa, { 'console.ssl_ciphers': 'AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384' });
      await assertSuites(port, ['AES128-SHA', 'ECDHE-RSA-AES256-GCM-SHA384'], ['ECDHE-RSA-AES128-GCM-SHA256', 'AES256-SHA256']);
      const r = await tls13(port, 'TLS_AES_128_GCM_SHA256');
      assert.ok(r.ok, r.output);
    });

    it('ssl_minimum_version = tlsv1_3 refuses TLS 1.2', async () => {
      const { port } = await gateway(rsa, { 'console.ssl_minimum_version': 'tlsv1_3' });
      await assertSuites(port, [], ['ECDHE-RSA-AES128-GCM-SHA256']);
      assert.ok((await tls13(port, 'TLS_AES_256_GCM_SHA384')).ok);
    });

    it('ssl_minimum_version = tlsv1_1 with ciphers at OpenSSL security level 0 accepts TLS 1.1', async () => {
      const { port } = await gateway(rsa, { 'console.ssl_minimum_version': 'tlsv1_1', 'console.ssl_ciphers': 'DEFAULT:@SECLEVEL=0' });
      const r = await oldTls(port, '-tls1_1');
      assert.ok(r.ok, r.output);
      assert.equal(r.protocol, 'TLSv1.1');
      assert.ok(!(await oldTls(port, '-tls1')).ok, 'TLS 1.0 is below the minimum');
    });

    it('ssl_minimum_version = default is TLS 1.2, whatever the ciphers', async () => {
      const { port } = await gateway(rsa, { 'console.ssl_minimum_version': 'default', 'console.ssl_ciphers': 'DEFAULT:@SECLEVEL=0' });
      assert.ok(!(await oldTls(port, '-tls1_1')).ok);
      assert.ok((await tls12(port, 'ECDHE-RSA-AES128-GCM-SHA256')).ok);
    });

    it('refuses to start on a cipher string OpenSSL matches nothing with', async () => {
      const err = await startGateway({ 'DEFAULT.cert': rsa.cert, 'DEFAULT.key': rsa.key, 'console.ssl_ciphers': 'NO-SUCH-CIPHER' }).then(
        (gw) => (gateways.push(gw), null),
        (e: Error & { code?: string }) => e,
      );
      assert.ok(err, 'the gateway started');
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.match(err.message, /\[console\] ssl_ciphers = NO-SUCH-CIPHER/);
    });

    it('refuses a minimum version Nova does not know', async () => {
      await assert.rejects(startGateway({ 'DEFAULT.cert': rsa.cert, 'DEFAULT.key': rsa.key, 'console.ssl_minimum_version': 'tlsv1_0' }), /ssl_minimum_version/);
    });
  });

  describe('HSTS', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await gateway(rsa);
    });

    it('is sent on every response over TLS, and the page knows it came over TLS', async () => {
      const { token } = await gw.mint({ host: '127.0.0.1', port: 5900 });
      for (const path of [`/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}`, '/porthole/console.js', '/porthole/token-state', '/no-such-file']) {
        const res = await httpsGet(gw.port, path);
        assert.equal(res.headers['strict-transport-security'], 'max-age=31536000', path);
        assert.equal(res.headers['x-frame-options'], 'DENY', path);
      }
      // a page that names another port connects to it with wss, as the page over https will
      const page = await httpsGet(gw.port, '/vnc.html?port=7000');
      assert.match(String(page.headers['content-security-policy']), /connect-src 'self' wss:\/\/127\.0\.0\.1:7000;/);
    });

    it('is not sent over plain HTTP on the same port', async () => {
      for (const path of ['/vnc.html', '/porthole/console.js']) {
        const res = await fetch(`${gw.origin}${path}`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('strict-transport-security'), null, path);
        assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
      }
      const page = await fetch(`${gw.origin}/vnc.html?port=7000`);
      assert.match(page.headers.get('content-security-policy') ?? '', /connect-src 'self' ws:\/\/127\.0\.0\.1:7000;/);
    });
  });
});
