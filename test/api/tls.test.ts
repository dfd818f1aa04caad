/**
 * The compute API over HTTPS (`[porthole] api_cert` / `api_key`, or the console proxies'
 * `[DEFAULT] cert` with `api_use_console_cert`), with a test CA made by Debian's `openssl`: the
 * real OpenStack clients (python3-openstackclient, python3-novaclient) reach it with
 * `--os-cacert` or `OS_CACERT` and get a console URL whose token opens the server, and refuse it
 * without the CA; a plain HTTP request to the port gets no HTTP answer; the version documents
 * link back with https; `[console] ssl_minimum_version` and the cipher profile hold on the API
 * as on the console proxies; a missing, unreadable or mismatched pair stops the start with one
 * line naming the option.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { startApi, tokenOfUrl, type TestApi } from '../support/api.ts';
import { startGateway, tempDir, type TestGateway } from '../support/gateway.ts';
import { haveOpenssl, issueServerCertificate, makePki, type Pki } from '../support/pki.ts';
import { run } from '../support/process.ts';
import { handshake } from '../support/tls.ts';

const OPENSTACK = '/usr/bin/openstack';
const NOVA = '/usr/bin/nova';
const SERVER = '7c1d5a3e-2b4f-4e6a-9c8d-0f1e2d3c4b5a';

/** What a plain HTTP GET to 127.0.0.1:`port` gets: a status, or the error that ended it. */
function plainGet(port: number, path: string): Promise<{ status?: number; error?: string }> {
  return new Promise((resolve) => {
    const req = httpGet({ host: '127.0.0.1', port, path, timeout: 10_000 }, (res) => {
      res.resume();
      resolve({ status: res.statusCode });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

function httpsJson(port: number, path: string, ca: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ca: readFileSync(ca) }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('compute API over HTTPS', { skip: haveOpenssl ? false : 'needs openssl' }, () => {
  let pki: Pki;
  const gateways: TestGateway[] = [];
  const started = async <T extends TestGateway>(gw: Promise<T>): Promise<T> => {
    const g = await gw;
    gateways.push(g);
    return g;
  };

  before(() => {
    pki = makePki({ serverNames: ['127.0.0.1', 'localhost'] });
  });
  after(async () => {
    for (const gw of gateways) await gw.close();
    pki?.remove();
  });

  describe('with [porthole] api_cert and api_key, and the OpenStack clients', () => {
    let gw: TestApi;
    let home: string;
    let endpoint: string;

    before(async () => {
      for (const file of [OPENSTACK, NOVA]) assert.ok(existsSync(file), `${file} is required (python3-openstackclient, python3-novaclient)`);
      home = tempDir('porthole-tls-clients-');
      gw = await started(startApi({ 'porthole.api_cert': pki.serverCert, 'porthole.api_key': pki.serverKey }));
      await gw.addServer({ id: SERVER, name: 'tls1', projectId: 'notused', vnc: { host: '127.0.0.1', port: 5900 } });
      endpoint = `https://127.0.0.1:${gw.apiPort}/v2.1`;
    });
    after(() => {
      if (home) rmSync(home, { recursive: true, force: true });
    });

    /** A client run with an empty HOME and only the environment given. */
    const client = (command: string, args: string[], env: Record<string, string> = {}) => run(command, args, { env: { PATH: '/usr/bin:/bin', HOME: home, LC_ALL: 'C.UTF-8', ...env }, timeoutMs: 60_000 });

    it('says HTTPS at start, with the option it came from', () => {
      assert.equal(gw.gateway.api?.tls, true);
      const line = gw.logs.find((l) => l.event === 'config' && /^compute API: /.test(l.msg));
      assert.match(line?.msg ?? '', /^compute API: HTTPS only, \[porthole\] api_cert = \S+server-cert\.pem, \[porthole\] api_key = \S+server-key\.pem;/);
      assert.ok(gw.logs.some((l) => l.event === 'listening' && l.part === 'api' && l.tls === true && /\(HTTPS\)$/.test(l.msg)));
    });

    it('openstack --os-cacert console url show --novnc gives a console URL whose token is the server\'s', async () => {
      const r = await client(OPENSTACK, ['--os-cacert', pki.caCert, '--os-auth-type', 'none', '--os-endpoint', endpoint, '--os-compute-api-version', '2.6', 'console', 'url', 'show', '--novnc', '-f', 'value', '-c', 'url', SERVER]);
      assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
      const url = r.stdout.trim();
      assert.ok(url.startsWith(`${gw.gateway.novnc!.baseUrl}?path=%3Ftoken%3D`), url);
      const found = await gw.gateway.stores.tokens.lookup(tokenOfUrl(url));
      assert.ok(found.status === 'valid' && found.token.instanceUuid === SERVER, found.status);
    });

    it('openstack server list with OS_CACERT in the environment lists the server', async () => {
      const r = await client(OPENSTACK, ['--os-auth-type', 'none', '--os-endpoint', endpoint, 'server', 'list', '-f', 'value', '-c', 'ID', '-c', 'Name'], { OS_CACERT: pki.caCert });
      assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
      assert.equal(r.stdout.trim(), `${SERVER} tls1`);
    });

    it('nova --os-cacert get-vnc-console gives a console URL', async () => {
      // novaclient wants these even with --os-auth-type none, and never calls the URL
      const r = await client(NOVA, ['--os-cacert', pki.caCert, '--os-auth-type', 'none', '--os-endpoint', endpoint, 'get-vnc-console', SERVER, 'novnc'], { OS_USERNAME: 'notused', OS_PROJECT_ID: 'notused', OS_AUTH_URL: 'http://127.0.0.1:9/identity/v3' });
      assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
      const url = /https?:\/\/\S+?token%3D[0-9a-f-]{36}/.exec(r.stdout)?.[0];
      assert.ok(url, r.stdout);
      assert.equal((await gw.gateway.stores.tokens.lookup(tokenOfUrl(url))).status, 'valid');
    });

    it('the clients refuse the API without the CA (the certificate is checked, not skipped)', async () => {
      // --debug: the client's one-line error hides the reason, its traceback names it
      const r = await client(OPENSTACK, ['--debug', '--os-auth-type', 'none', '--os-endpoint', endpoint, 'server', 'list']);
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr, /CERTIFICATE_VERIFY_FAILED|certificate verify failed/i);
    });

    it('a plain HTTP request to the port gets no HTTP answer', async () => {
      const r = await plainGet(gw.apiPort, '/v2.1');
      assert.equal(r.status, undefined, `answered ${r.status} over plain HTTP`);
      assert.ok(r.error, 'no error either');
    });

    it('the version documents link to https://', async () => {
      const r = await httpsJson(gw.apiPort, '/', pki.caCert);
      assert.equal(r.status, 200);
      assert.equal(r.body.versions[0].links[0].href, `https://127.0.0.1:${gw.apiPort}/v2.1/`);
      const v = await httpsJson(gw.apiPort, '/v2.1', pki.caCert);
      assert.equal(v.body.version.links[0].href, `https://127.0.0.1:${gw.apiPort}/v2.1/`);
    });

    it('follows Mozilla\'s intermediate profile: TLS 1.2 with ECDHE and AES-GCM, not CBC; not TLS 1.1', async () => {
      const ok = await handshake(gw.apiPort, pki.caCert, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
      assert.equal(ok.protocol, 'TLSv1.2');
      await assert.rejects(handshake(gw.apiPort, pki.caCert, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' }));
      await assert.rejects(handshake(gw.apiPort, pki.caCert, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }));
    });
  });

  it('[console] ssl_minimum_version = tlsv1_3 refuses a TLS 1.2 client on the API', async () => {
    const gw = await started(startApi({ 'porthole.api_cert': pki.serverCert, 'porthole.api_key': pki.serverKey, 'console.ssl_minimum_version': 'tlsv1_3' }));
    await assert.rejects(handshake(gw.apiPort, pki.caCert, { maxVersion: 'TLSv1.2' }), /version|alert/i);
    assert.equal((await handshake(gw.apiPort, pki.caCert)).protocol, 'TLSv1.3');
  });

  it('api_use_console_cert serves the API with [DEFAULT] cert and key; without it the API stays HTTP beside TLS consoles, and says why', async () => {
    const shared = await started(startApi({ 'DEFAULT.cert': pki.serverCert, 'DEFAULT.key': pki.serverKey, 'porthole.api_use_console_cert': 'true' }));
    assert.equal(shared.gateway.api?.tls, true);
    assert.equal((await handshake(shared.apiPort, pki.caCert)).cert.subject.CN, '127.0.0.1');
    assert.match(shared.logs.find((l) => /^compute API: /.test(l.msg))!.msg, /HTTPS only, \[DEFAULT\] cert = \S+, \[DEFAULT\] key = \S+;/);

    const plain = await started(startApi({ 'DEFAULT.cert': pki.serverCert, 'DEFAULT.key': pki.serverKey }));
    assert.equal(plain.gateway.novnc?.tls, true);
    assert.equal(plain.gateway.api?.tls, false);
    assert.equal((await plain.call('GET', '/')).status, 200);
    assert.match(plain.logs.find((l) => /^compute API: /.test(l.msg))!.msg, /^compute API: HTTP, no TLS \(\[DEFAULT\] cert serves the console proxies only: \[porthole\] api_cert or api_use_console_cert gives the API HTTPS\)/);
  });

  describe('nova-api\'s own options: [DEFAULT] enabled_ssl_apis = osapi_compute with [wsgi] ssl_cert_file, ssl_key_file, ssl_ca_file', () => {
    it('serves the API over HTTPS with the [wsgi] pair, as nova-api does', async () => {
      const gw = await started(startApi({ 'DEFAULT.enabled_ssl_apis': 'osapi_compute,metadata', 'wsgi.ssl_cert_file': pki.serverCert, 'wsgi.ssl_key_file': pki.serverKey }));
      assert.equal(gw.gateway.api?.tls, true);
      assert.equal((await handshake(gw.apiPort, pki.caCert)).cert.subject.CN, '127.0.0.1');
      assert.equal((await httpsJson(gw.apiPort, '/', pki.caCert)).status, 200);
      assert.match(gw.logs.find((l) => /^compute API: /.test(l.msg))!.msg, /HTTPS only, \[wsgi\] ssl_cert_file = \S+, \[wsgi\] ssl_key_file = \S+/);
    });

    it('with ssl_ca_file, refuses a client without a certificate of that CA; the OpenStack client with --os-cert and --os-key gets through', async () => {
      const gw = await started(startApi({ 'DEFAULT.enabled_ssl_apis': 'osapi_compute', 'wsgi.ssl_cert_file': pki.serverCert, 'wsgi.ssl_key_file': pki.serverKey, 'wsgi.ssl_ca_file': pki.caCert }));
      await gw.addServer({ id: SERVER, name: 'tls-mutual', projectId: 'notused', vnc: { host: '127.0.0.1', port: 5900 } });
      // TLS 1.3 sends the server's refusal of a missing certificate after the client's Finished: a request shows it
      await assert.rejects(httpsJson(gw.apiPort, '/', pki.caCert), /certificate|alert|socket hang up|ECONNRESET/i);
      const mutual = await handshake(gw.apiPort, pki.caCert, { cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) });
      assert.equal(mutual.cert.subject.CN, '127.0.0.1');
      const home = tempDir('porthole-tls-mutual-');
      try {
        const r = await run(OPENSTACK, ['--os-auth-type', 'none', '--os-endpoint', `https://127.0.0.1:${gw.apiPort}/v2.1`, '--os-cacert', pki.caCert, '--os-cert', pki.clientCert, '--os-key', pki.clientKey, '--os-compute-api-version', '2.6', 'server', 'list', '-f', 'value', '-c', 'ID'], { env: { ...process.env, HOME: home } });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(SERVER));
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    });
  });

  describe('refuses to start, naming the option', () => {
    const refusal = async (settings: Record<string, string>): Promise<Error & { code?: string }> => {
      const err = await startGateway(settings).then(
        async (gw) => (gateways.push(gw), null),
        (e: Error & { code?: string }) => e,
      );
      assert.ok(err, `started with ${JSON.stringify(settings)}`);
      assert.equal(err.code, 'CONFIG_INVALID', err.stack);
      assert.doesNotMatch(err.message, /\n/);
      return err;
    };

    it('an api_cert that cannot be read', async () => {
      const err = await refusal({ 'porthole.api_cert': '/nonexistent/api.pem' });
      assert.match(err.message, /^\[porthole\] api_cert = \/nonexistent\/api\.pem: cannot read it: ENOENT/);
    });

    it('an api_key of another certificate', async () => {
      const other = issueServerCertificate(pki, 'other', 'other.test');
      const err = await refusal({ 'porthole.api_cert': pki.serverCert, 'porthole.api_key': other.key });
      assert.match(err.message, /^\[porthole\] api_cert = \S+server-cert\.pem, \[porthole\] api_key = \S+other-key\.pem: not a usable PEM certificate and private key: .*key values mismatch/);
    });

    it('an api_cert that is no certificate', async () => {
      const err = await refusal({ 'porthole.api_cert': pki.serverKey });
      assert.match(err.message, /^\[porthole\] api_cert = \S+server-key\.pem \(with its key, \[porthole\] api_key unset\): not a usable PEM certificate and private key/);
    });

    it('api_key without api_cert', async () => {
      const err = await refusal({ 'porthole.api_key': pki.serverKey });
      assert.match(err.message, /\[porthole\] api_key = \S+ is set but \[porthole\] api_cert is not/);
    });

    it('enabled_ssl_apis with osapi_compute and no [wsgi] ssl_cert_file', async () => {
      const err = await refusal({ 'DEFAULT.enabled_ssl_apis': 'osapi_compute' });
      assert.match(err.message, /\[DEFAULT\] enabled_ssl_apis has osapi_compute but \[wsgi\] ssl_cert_file is not set/);
    });

    it('a [wsgi] ssl_ca_file that cannot be read', async () => {
      const err = await refusal({ 'DEFAULT.enabled_ssl_apis': 'osapi_compute', 'wsgi.ssl_cert_file': pki.serverCert, 'wsgi.ssl_key_file': pki.serverKey, 'wsgi.ssl_ca_file': '/nonexistent/ca.pem' });
      assert.match(err.message, /^\[wsgi\] ssl_ca_file = \/nonexistent\/ca\.pem: cannot read it: ENOENT/);
    });

    it('api_use_console_cert with no [DEFAULT] cert file', async () => {
      const err = await refusal({ 'porthole.api_use_console_cert': 'true', 'DEFAULT.cert': '/nonexistent/self.pem' });
      assert.match(err.message, /\[porthole\] api_use_console_cert is set but \[DEFAULT\] cert = \/nonexistent\/self\.pem does not exist/);
    });
  });
});
