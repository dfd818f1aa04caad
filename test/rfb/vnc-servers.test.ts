/**
 * The RFB security proxy against real VNC servers: TigerVNC Xvnc with security types None,
 * VncAuth (`-rfbauth` from `vncpasswd`), VeNCrypt X509None, X509Vnc and X509Plain (PAM), and
 * TLSNone; QEMU with `tls-creds-x509,verify-peer=yes` (so the proxy's client certificate is
 * really checked), with `password=on` (password set through the QEMU monitor), and with both.
 * A test CA and certificates are made by the test with openssl. For each: noVNC in headless
 * Chromium shows the desktop through Porthole, the bytes a browser receives offer only security
 * type None, and a wrong password, an untrusted CA or a missing client certificate gives the
 * browser an RFB failure that says the console could not be authenticated while the log says
 * exactly what failed. Also `porthole novncproxy --config-file nova.conf --vnc-auth_schemes
 * vencrypt,none`, as nova-novncproxy is run.
 *
 * X509Plain: TigerVNC checks Plain passwords with PAM (`-PAMService`). The test adds a PAM
 * service of its own for the run, `/etc/pam.d/porthole-test-<random>`, whose pam_exec script
 * accepts one user and password, and removes it after; that needs root (as `.ci/run` runs), and
 * without it that one test is skipped and says why. No system user is created.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { WebSocket } from 'ws';
import type { BackendAuth } from '../../src/inventory/types.ts';
import { hashToken } from '../../src/store/types.ts';
import { launchBrowser, waitForCanvasPixel, waitForConsoleState } from '../support/browser.ts';
import { eventually, startGateway, tempDir, type LogLine, type TestGateway } from '../support/gateway.ts';
import { makePki, type Pki } from '../support/pki.ts';
import { porthole, run } from '../support/process.ts';
import { startQemu, type Qemu } from '../support/qemu.ts';
import { RfbClient } from '../support/rfb-client.ts';
import { freePort, startXvnc, type Xvnc } from '../support/xvnc.ts';

const AUTH_FAILED = 'The console could not be authenticated';
const NO_BLACKLIST = ['-UseBlacklist', '0'];
/** QEMU's placeholder screen: grey text on black. */
const QEMU_GREY: [number, number, number] = [170, 170, 170];

/** pam_exec.so (Debian libpam-modules), wherever the architecture puts it. */
function havePamExec(): boolean {
  for (const base of ['/lib', '/usr/lib']) {
    if (!existsSync(base)) continue;
    for (const dir of ['', ...readdirSync(base).filter((d) => d.endsWith('-linux-gnu'))]) {
      if (existsSync(join(base, dir, 'security', 'pam_exec.so'))) return true;
    }
  }
  return false;
}

interface Seen {
  /** Every WebSocket message the client received during the handshake, in order. */
  readonly messages: Buffer[];
  readonly name: string;
  readonly pixel: [number, number, number];
  readonly greyPixels: number;
}

describe('RFB security proxy with real VNC servers', () => {
  let pki: Pki;
  let gw: TestGateway;
  let browser: Browser;
  const stops: Array<() => Promise<void>> = [];
  let serial = 0;

  function gatewaySettings(extra: Record<string, string> = {}): Record<string, string> {
    return {
      'DEFAULT.osapi_compute_listen': '127.0.0.1',
      'DEFAULT.osapi_compute_listen_port': '0',
      'vnc.auth_schemes': 'vencrypt,vnc,none',
      'vnc.vencrypt_ca_certs': pki.caCert,
      'vnc.vencrypt_client_cert': pki.clientCert,
      'vnc.vencrypt_client_key': pki.clientKey,
      'porthole.rfb_handshake_timeout': '5',
      ...extra,
    };
  }

  async function otherGateway(extra: Record<string, string>): Promise<TestGateway> {
    const g = await startGateway(gatewaySettings(extra));
    stops.push(() => g.close());
    return g;
  }

  async function xvnc(opts: Parameters<typeof startXvnc>[0]): Promise<Xvnc> {
    const x = await startXvnc({ ...opts, extraArgs: [...NO_BLACKLIST, ...(opts.extraArgs ?? [])] });
    stops.push(() => x.stop());
    return x;
  }

  async function qemu(opts: Parameters<typeof startQemu>[0]): Promise<Qemu> {
    const q = await startQemu(opts);
    stops.push(() => q.stop());
    return q;
  }

  /** Registers a server with its backend auth and mints a token for it. */
  async function consoleFor(g: TestGateway, port: number, auth: Partial<BackendAuth> | null = null, name = `vm-${++serial}`): Promise<{ url: string; ws: string; token: string; id: string }> {
    const id = `5d1c2b9e-0000-4000-8000-${String(++serial).padStart(12, '0')}`;
    const backendAuth = auth && { authSchemes: null, vncUsername: null, vncPassword: null, tlsServerName: null, ...auth };
    await g.gateway.stores.inventory.put({ id, name, projectId: null, status: 'ACTIVE', vnc: { host: '127.0.0.1', port }, backendAuth });
    const { token, url } = await g.mint({ host: '127.0.0.1', port, instanceUuid: id });
    return { url, token, id, ws: `ws://127.0.0.1:${g.port}/websockify?token=${token}` };
  }

  /** Connects as a plain RFB client over the WebSocket: what a browser receives, and the picture. */
  async function look(wsUrl: string): Promise<Seen> {
    const ws = new WebSocket(wsUrl, ['binary'], { perMessageDeflate: false });
    const messages: Buffer[] = [];
    ws.on('message', (d: Buffer) => messages.length < 4 && messages.push(Buffer.from(d)));
    const client = RfbClient.overWebSocket(ws);
    try {
      const info = await client.handshake();
      const handshake = messages.slice(0, 4);
      const fb = await client.requestFramebuffer();
      let greyPixels = 0;
      for (let y = 0; y < fb.height; y += 2) for (let x = 0; x < fb.width; x += 2) if (fb.pixel(x, y).every((v, i) => v === QEMU_GREY[i])) greyPixels++;
      return { messages: handshake, name: info.name, pixel: fb.pixel(5, 5), greyPixels };
    } finally {
      client.close();
    }
  }

  /** What a browser-like client is told when the backend could not be authenticated. */
  async function refusal(wsUrl: string): Promise<string> {
    const ws = new WebSocket(wsUrl, ['binary'], { perMessageDeflate: false });
    const client = RfbClient.overWebSocket(ws);
    try {
      await client.handshake();
    } catch (err) {
      const m = /^security failed: (.*)$/.exec((err as Error).message);
      assert.ok(m, `expected an RFB security failure, got: ${(err as Error).message}`);
      await client.waitForClose();
      return m[1]!;
    } finally {
      client.close();
    }
    assert.fail('the handshake succeeded');
  }

  function refusalLine(g: TestGateway, token: string): Promise<LogLine> {
    return eventually('the refusal log line', () => g.logs.find((l) => l.event === 'refused' && l.tokenHash === hashToken(token).slice(0, 8)));
  }

  function assertOnlyNone(seen: Seen): void {
    assert.equal(seen.messages[0]!.toString('latin1'), 'RFB 003.008\n');
    assert.deepEqual([...seen.messages[1]!], [1, 1], 'the browser is offered exactly one security type: None');
    assert.deepEqual([...seen.messages[2]!], [0, 0, 0, 0]);
  }

  /** noVNC in Chromium through the console page. */
  async function inBrowser(url: string, check: (page: import('playwright-core').Page) => Promise<void>): Promise<void> {
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await waitForConsoleState(page, 'connected');
      await check(page);
    } finally {
      await page.close();
    }
  }

  async function greyInCanvas(page: import('playwright-core').Page): Promise<void> {
    await page.waitForFunction((grey) => {
      const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
      if (!canvas || canvas.width !== 640 || canvas.height !== 480) return false;
      const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] === grey[0] && d[i + 1] === grey[1] && d[i + 2] === grey[2]) n++;
      return n > 100;
    }, QEMU_GREY, { timeout: 15000 });
  }

  before(async () => {
    pki = makePki();
    gw = await startGateway(gatewaySettings());
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    for (const s of stops.reverse()) await s().catch(() => {});
    await gw?.close();
    pki?.remove();
  });

  describe('TigerVNC Xvnc', () => {
    it('None: the desktop in Chromium, and the browser offered only None', async () => {
      const x = await xvnc({ colour: '#3366cc' });
      const c = await consoleFor(gw, x.port, null, 'xvnc-none');
      assertOnlyNone(await look(c.ws));
      await inBrowser(c.url, (page) => waitForCanvasPixel(page, 5, 5, [0x33, 0x66, 0xcc]));
      const line = await eventually('session line', () => gw.logs.find((l) => l.event === 'session' && l.tokenHash === hashToken(c.token).slice(0, 8)));
      assert.equal(line.backendAuth, 'None');
    });

    it('VncAuth: Porthole answers the challenge with the server\'s password from the inventory; a wrong one is refused in words', async () => {
      const x = await xvnc({ colour: '#cc6633', securityTypes: 'VncAuth', password: 'tiger-pw' });
      const c = await consoleFor(gw, x.port, { vncPassword: 'tiger-pw' }, 'xvnc-vncauth');
      const seen = await look(c.ws);
      assertOnlyNone(seen);
      assert.deepEqual(seen.pixel, [0xcc, 0x66, 0x33]);
      await inBrowser(c.url, (page) => waitForCanvasPixel(page, 5, 5, [0xcc, 0x66, 0x33]));

      const wrong = await consoleFor(gw, x.port, { vncPassword: 'not-it' });
      assert.equal(await refusal(wrong.ws), AUTH_FAILED);
      const line = await refusalLine(gw, wrong.token);
      assert.equal(line.code, 'BACKEND_AUTH_FAILED');
      assert.match(line.msg, /refused VncAuth \(SecurityResult 1: "Authentication failure"\)/);
      // the console page says it in words, and does not retry
      const page = await browser.newPage();
      try {
        await page.goto(wrong.url);
        await waitForConsoleState(page, 'disconnected');
        assert.match((await page.textContent('#status')) ?? '', /could not be authenticated/);
      } finally {
        await page.close();
      }
      assert.ok(!gw.rawLog.join('').includes('tiger-pw') && !gw.rawLog.join('').includes('not-it'), 'no password in the log');
    });

    it('VncAuth with only `none` allowed: refused, as Nova refuses (the browser never gets the password prompt)', async () => {
      const x = await xvnc({ colour: '#000000', securityTypes: 'VncAuth', password: 'tiger-pw' });
      const c = await consoleFor(gw, x.port, { authSchemes: ['none'], vncPassword: 'tiger-pw' });
      assert.equal(await refusal(c.ws), AUTH_FAILED);
      const line = await refusalLine(gw, c.token);
      assert.equal(line.code, 'BACKEND_AUTH_NO_SCHEME');
      assert.match(line.msg, /the server offers VncAuth\(2\); auth_schemes = none/);
    });

    it('VeNCrypt X509None: the desktop in Chromium; a proxy that trusts another CA refuses the server', async () => {
      const x = await xvnc({ colour: '#228844', securityTypes: 'X509None', x509: { cert: pki.serverCert, key: pki.serverKey } });
      const c = await consoleFor(gw, x.port, null, 'xvnc-x509none');
      assertOnlyNone(await look(c.ws));
      await inBrowser(c.url, (page) => waitForCanvasPixel(page, 5, 5, [0x22, 0x88, 0x44]));
      const session = await eventually('session line', () => gw.logs.find((l) => l.event === 'session' && l.tokenHash === hashToken(c.token).slice(0, 8)));
      assert.equal(session.backendAuth, 'VeNCrypt X509None');

      const untrusting = await otherGateway({ 'vnc.vencrypt_ca_certs': pki.otherCaCert });
      const u = await consoleFor(untrusting, x.port);
      assert.equal(await refusal(u.ws), AUTH_FAILED);
      const line = await refusalLine(untrusting, u.token);
      assert.equal(line.code, 'BACKEND_TLS_FAILED');
      assert.match(line.msg, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify/);
    });

    it('VeNCrypt X509Vnc: TLS, then the VNC challenge inside it', async () => {
      const x = await xvnc({ colour: '#884422', securityTypes: 'X509Vnc', password: 'x509-pw', x509: { cert: pki.serverCert, key: pki.serverKey } });
      const c = await consoleFor(gw, x.port, { vncPassword: 'x509-pw' }, 'xvnc-x509vnc');
      const seen = await look(c.ws);
      assertOnlyNone(seen);
      assert.deepEqual(seen.pixel, [0x88, 0x44, 0x22]);
      await inBrowser(c.url, (page) => waitForCanvasPixel(page, 5, 5, [0x88, 0x44, 0x22]));
    });

    it('VeNCrypt X509Plain: user name and password inside TLS, checked by PAM', async (t) => {
      if (process.getuid?.() !== 0 || !existsSync('/etc/pam.d') || !havePamExec()) {
        t.skip('needs root and pam_exec to add a PAM service for Xvnc\'s Plain check (TigerVNC has no other password checker)');
        return;
      }
      const service = `porthole-test-${randomBytes(4).toString('hex')}`;
      const pamFile = join('/etc/pam.d', service);
      const dir = tempDir('porthole-pam-');
      const script = join(dir, 'check.sh');
      writeFileSync(script, '#!/bin/sh\n# pam_exec expose_authtok: the password on stdin\nIFS= read -r pw\n[ "$PAM_USER" = alice ] && [ "$pw" = "plain-pw" ]\n');
      chmodSync(script, 0o755);
      writeFileSync(pamFile, `auth required pam_exec.so expose_authtok quiet ${script}\naccount required pam_permit.so\n`);
      try {
        const x = await xvnc({ colour: '#446688', securityTypes: 'X509Plain', x509: { cert: pki.serverCert, key: pki.serverKey }, extraArgs: ['-PlainUsers', 'alice', '-PAMService', service] });
        const c = await consoleFor(gw, x.port, { vncUsername: 'alice', vncPassword: 'plain-pw' }, 'xvnc-x509plain');
        assertOnlyNone(await look(c.ws));
        await inBrowser(c.url, (page) => waitForCanvasPixel(page, 5, 5, [0x44, 0x66, 0x88]));

        const wrong = await consoleFor(gw, x.port, { vncUsername: 'alice', vncPassword: 'wrong-pw' });
        assert.equal(await refusal(wrong.ws), AUTH_FAILED);
        const line = await refusalLine(gw, wrong.token);
        assert.equal(line.code, 'BACKEND_AUTH_FAILED');
        assert.match(line.msg, /refused VeNCrypt X509Plain/);
      } finally {
        rmSync(pamFile, { force: true });
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('VeNCrypt TLSNone (anonymous TLS) only with [porthole] vencrypt_allow_insecure_tls', async () => {
      const x = await xvnc({ colour: '#123456', securityTypes: 'TLSNone' });
      const c = await consoleFor(gw, x.port);
      assert.equal(await refusal(c.ws), AUTH_FAILED);
      const line = await refusalLine(gw, c.token);
      assert.equal(line.code, 'BACKEND_AUTH_NO_SCHEME');
      assert.match(line.msg, /TLSNone\(257\): anonymous TLS, allowed only with \[porthole\] vencrypt_allow_insecure_tls/);

      const insecure = await otherGateway({ 'porthole.vencrypt_allow_insecure_tls': 'true' });
      const ok = await consoleFor(insecure, x.port);
      const seen = await look(ok.ws);
      assertOnlyNone(seen);
      assert.deepEqual(seen.pixel, [0x12, 0x34, 0x56]);
    });
  });

  describe('QEMU', () => {
    it('VeNCrypt x509 with verify-peer=yes: the screen in Chromium; no client certificate, or one from another CA, is refused', async () => {
      const q = await qemu({ tlsDir: pki.qemuDir, verifyPeer: true });
      const c = await consoleFor(gw, q.port, null, 'qemu-x509');
      const seen = await look(c.ws);
      assertOnlyNone(seen);
      assert.equal(seen.name, 'QEMU (porthole-test)');
      assert.ok(seen.greyPixels > 100, 'QEMU\'s placeholder text');
      await inBrowser(c.url, greyInCanvas);

      const noCert = await otherGateway({ 'vnc.vencrypt_client_cert': '', 'vnc.vencrypt_client_key': '' });
      const n = await consoleFor(noCert, q.port);
      assert.equal(await refusal(n.ws), AUTH_FAILED);
      const line = await refusalLine(noCert, n.token);
      assert.equal(line.code, 'BACKEND_TLS_FAILED');
      assert.match(line.msg, /no client certificate/);

      const foreign = makePki();
      stops.push(async () => foreign.remove());
      const wrongCert = await otherGateway({ 'vnc.vencrypt_client_cert': foreign.clientCert, 'vnc.vencrypt_client_key': foreign.clientKey });
      const w = await consoleFor(wrongCert, q.port);
      assert.equal(await refusal(w.ws), AUTH_FAILED);
      const wline = await refusalLine(wrongCert, w.token);
      assert.equal(wline.code, 'BACKEND_TLS_FAILED');
    });

    it('password=on, set through the monitor: VncAuth with the inventory\'s password; a wrong one is refused', async () => {
      const q = await qemu({ password: 'qemu-pw' });
      const c = await consoleFor(gw, q.port, { vncPassword: 'qemu-pw' }, 'qemu-password');
      const seen = await look(c.ws);
      assertOnlyNone(seen);
      assert.ok(seen.greyPixels > 100);
      await inBrowser(c.url, greyInCanvas);

      const wrong = await consoleFor(gw, q.port, { vncPassword: 'qemu-no' });
      assert.equal(await refusal(wrong.ws), AUTH_FAILED);
      const line = await refusalLine(gw, wrong.token);
      assert.equal(line.code, 'BACKEND_AUTH_FAILED');
      assert.match(line.msg, /refused VncAuth/);
    });

    it('x509 and a password: VeNCrypt X509Vnc, and the server name checked when asked for', async () => {
      const q = await qemu({ tlsDir: pki.qemuDir, password: 'both-pw' });
      const c = await consoleFor(gw, q.port, { vncPassword: 'both-pw', tlsServerName: 'vnc.test' }, 'qemu-x509vnc');
      assertOnlyNone(await look(c.ws));
      const session = await eventually('session line', () => gw.logs.find((l) => l.event === 'session' && l.tokenHash === hashToken(c.token).slice(0, 8)));
      assert.equal(session.backendAuth, 'VeNCrypt X509Vnc');

      const misnamed = await consoleFor(gw, q.port, { vncPassword: 'both-pw', tlsServerName: 'other.test' });
      assert.equal(await refusal(misnamed.ws), AUTH_FAILED);
      const line = await refusalLine(gw, misnamed.token);
      assert.equal(line.code, 'BACKEND_TLS_FAILED');
      assert.match(line.msg, /ERR_TLS_CERT_ALTNAME_INVALID/);
    });

    it('passes tempest\'s test_novnc through VeNCrypt (one RFB message per WebSocket frame)', async () => {
      const q = await qemu({ tlsDir: pki.qemuDir });
      const c = await consoleFor(gw, q.port);
      const { stdout } = await run('/usr/bin/python3', [join(import.meta.dirname, '..', 'support', 'tempest_novnc.py'), c.url], { timeoutMs: 60_000 });
      assert.match(stdout, /^PASS test_novnc$/m);
      assert.match(stdout, /^PASS test_novnc_bad_token$/m);
    });
  });

  describe('porthole novncproxy, as nova-novncproxy', () => {
    it('reads nova.conf and --vnc-auth_schemes vencrypt,none: VeNCrypt to QEMU, None to Xvnc, a VNC password refused', async () => {
      const dir = tempDir('porthole-nova-');
      stops.push(async () => rmSync(dir, { recursive: true, force: true }));
      const port = await freePort();
      const conf = join(dir, 'nova.conf');
      writeFileSync(conf, [
        '[DEFAULT]', `web = ${join(dir, 'no-web')}`, `cert = ${join(dir, 'no-cert.pem')}`, '',
        '[vnc]', 'novncproxy_host = 127.0.0.1', `novncproxy_port = ${port}`, `novncproxy_base_url = http://127.0.0.1:${port}/vnc_auto.html`,
        'auth_schemes = none', `vencrypt_ca_certs = ${pki.caCert}`, `vencrypt_client_cert = ${pki.clientCert}`, `vencrypt_client_key = ${pki.clientKey}`, '',
        '[database]', `connection = sqlite:///${join(dir, 'nova.db')}`, '',
      ].join('\n'));
      const proc = spawn(process.execPath, ['bin/porthole.js', 'novncproxy', '--config-file', conf, '--vnc-auth_schemes', 'vencrypt,none'], { cwd: join(import.meta.dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      stops.push(async () => {
        proc.kill('SIGTERM');
        await new Promise((r) => (proc.exitCode === null ? proc.once('exit', r) : r(null)));
      });
      await eventually('novncproxy to listen', () => /noVNC console proxy listening/.test(out) || proc.exitCode !== null, 15_000);
      assert.equal(proc.exitCode, null, out);

      const q = await qemu({ tlsDir: pki.qemuDir });
      const x = await xvnc({ colour: '#aa5500' });
      const xp = await xvnc({ colour: '#000000', securityTypes: 'VncAuth', password: 'nope-pw' });
      const mint = async (p: number) => {
        const r = await porthole(['token', 'create', '--instance-uuid', '6e4b2b7e-1c9f-4a8e-9d43-1f7e9c2a5b3d', '--host', '127.0.0.1', '--port', String(p), '--json', '--config-file', conf]);
        assert.equal(r.code, 0, r.stderr);
        const { token } = JSON.parse(r.stdout) as { token: string };
        return `ws://127.0.0.1:${port}/websockify?token=${token}`;
      };
      const viaQemu = await look(await mint(q.port));
      assertOnlyNone(viaQemu);
      assert.ok(viaQemu.greyPixels > 100);
      const viaXvnc = await look(await mint(x.port));
      assert.deepEqual(viaXvnc.pixel, [0xaa, 0x55, 0x00]);
      assert.equal(await refusal(await mint(xp.port)), AUTH_FAILED);
      await eventually('the refusal in the daemon log', () => /code=BACKEND_AUTH_NO_SCHEME/.test(out));
      assert.match(out, /backendAuth="VeNCrypt X509None"/);
    });
  });
});
