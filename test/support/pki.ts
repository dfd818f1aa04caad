/**
 * @module test/support/pki
 * A throw-away PKI for VeNCrypt tests, made with Debian's `openssl`: a test CA, a VNC server
 * certificate (for QEMU and TigerVNC) and a client certificate for the proxy, both signed by it,
 * and a second, unrelated CA that a proxy can be told to trust instead (the "untrusted CA"
 * case). EC P-256 keys: quick to make, accepted by GnuTLS (QEMU, TigerVNC) and Node. The
 * extensions are the ones QEMU's tls-creds-x509 checks (CA basic constraints and key usage on
 * the CA; digitalSignature, keyEncipherment and serverAuth / clientAuth on the leaves).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A CA that signed nothing here: a proxy trusting only it must refuse the server. */
  readonly otherCaCert: string;
  /** The names in the server certificate (subjectAltName). */
  readonly serverNames: readonly string[];
  /** A directory as QEMU's `tls-creds-x509,dir=` wants it: ca-cert.pem, server-cert.pem, server-key.pem. */
  readonly qemuDir: string;
  remove(): void;
}

export const haveOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function newKeyAndRequest(dir: string, name: string, subject: string): void {
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', subject], dir);
}

function sign(dir: string, name: string, ca: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}-cert.pem`, '-CAkey', `${ca}-key.pem`, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '3', '-out', `${name}-cert.pem`, '-extfile', `${name}.ext`], dir);
}

function newCa(dir: string, name: string, subject: string): void {
  openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}-cert.pem`, '-days', '3', '-subj', subject, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

/** The value of a subjectAltName extension naming `names` (IP addresses as IP, the rest as DNS). */
function subjectAltName(names: readonly string[]): string {
  return names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
}

/**
 * Another server certificate and key from `pki`'s CA (a fresh key, a random serial, `cn` as its
 * subject's CN): what a renewal writes in place of the first (`<name>-cert.pem`, `<name>-key.pem`
 * in `pki.dir`).
 */
export function issueServerCertificate(pki: Pki, name: string, cn: string, serverNames: readonly string[] = pki.serverNames): { cert: string; key: string } {
  const san = subjectAltName(serverNames);
  newKeyAndRequest(pki.dir, name, `/CN=${cn}`);
  sign(pki.dir, name, 'ca', `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
  return { cert: join(pki.dir, `${name}-cert.pem`), key: join(pki.dir, `${name}-key.pem`) };
}

export function makePki(opts: { serverNames?: readonly string[] } = {}): Pki {
  const serverNames = opts.serverNames ?? ['vnc.test', '127.0.0.1'];
  const dir = mkdtempSync(join(tmpdir(), 'porthole-pki-'));
  newCa(dir, 'ca', '/CN=Porthole Test CA');
  newCa(dir, 'other-ca', '/CN=Some Other CA');
  const san = subjectAltName(serverNames);
  newKeyAndRequest(dir, 'server', `/CN=${serverNames[0]}`);
  sign(dir, 'server', 'ca', `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
  newKeyAndRequest(dir, 'client', '/CN=porthole-proxy');
  sign(dir, 'client', 'ca', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  const qemuDir = join(dir, 'qemu');
  mkdirSync(qemuDir);
  copyFileSync(join(dir, 'ca-cert.pem'), join(qemuDir, 'ca-cert.pem'));
  copyFileSync(join(dir, 'server-cert.pem'), join(qemuDir, 'server-cert.pem'));
  copyFileSync(join(dir, 'server-key.pem'), join(qemuDir, 'server-key.pem'));
  return {
    dir,
    caCert: join(dir, 'ca-cert.pem'),
    serverCert: join(dir, 'server-cert.pem'),
    serverKey: join(dir, 'server-key.pem'),
    clientCert: join(dir, 'client-cert.pem'),
    clientKey: join(dir, 'client-key.pem'),
    otherCaCert: join(dir, 'other-ca-cert.pem'),
    serverNames,
    qemuDir,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
