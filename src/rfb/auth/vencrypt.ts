/**
 * @module rfb/auth/vencrypt
 * VeNCrypt (security type 19, version 0.2; rfbproto §7.2.19), the TLS layer of QEMU, libvirt
 * and TigerVNC: version exchange, the server's subtype list, the proxy's choice, the one-byte
 * acceptance that QEMU, gtk-vnc and TigerVNC send (missing from the spec, as Nova notes), TLS
 * over the same TCP connection, then the subtype's own authentication inside TLS.
 *
 * Subtypes: X509None (Nova's only one), X509Vnc and X509Plain with a client certificate and the
 * server certificate verified against `[vnc] vencrypt_ca_certs`, always: a VeNCrypt connection
 * whose server cannot be verified is refused. Checking the certificate's name is optional and off
 * by default, as in Nova, since compute certificates often name the host rather than the VNC
 * listen address. TLSNone/TLSVnc/TLSPlain use anonymous Diffie-Hellman, which anyone in the path
 * can intercept: they are offered only with `[porthole] vencrypt_allow_insecure_tls`. Plain (256)
 * sends a password in the clear and is never used. Among the usable subtypes the first the server
 * lists wins, as for the top-level types.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext, type ConnectionOptions, type SecureContext } from 'node:tls';
import { GatewayError } from '../../errors.ts';
import { backendAuthError, SecurityType, type AuthScheme, type BackendAuthSettings, type BackendTransport, type TlsCredentials } from '../types.ts';
import { answerVncChallenge } from './vnc.ts';

export const Subtype = {
  Plain: 256,
  TLSNone: 257,
  TLSVnc: 258,
  TLSPlain: 259,
  X509None: 260,
  X509Vnc: 261,
  X509Plain: 262,
  X509SASL: 263,
  TLSSASL: 264,
} as const;

const SUBTYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Subtype).map(([k, v]) => [v, k]));

export function subtypeName(subtype: number): string {
  return `${SUBTYPE_NAMES[subtype] ?? 'unknown'}(${subtype})`;
}

/** Longest user name or password sent in a Plain message; the lengths are U32 but no server needs more. */
const MAX_CREDENTIAL = 1024;

type Inner = 'none' | 'vnc' | 'plain';
interface SubtypeSpec {
  readonly x509: boolean;
  readonly inner: Inner;
}

const SUPPORTED: Record<number, SubtypeSpec> = {
  [Subtype.X509None]: { x509: true, inner: 'none' },
  [Subtype.X509Vnc]: { x509: true, inner: 'vnc' },
  [Subtype.X509Plain]: { x509: true, inner: 'plain' },
  [Subtype.TLSNone]: { x509: false, inner: 'none' },
  [Subtype.TLSVnc]: { x509: false, inner: 'vnc' },
  [Subtype.TLSPlain]: { x509: false, inner: 'plain' },
};

/** Why `subtype` cannot be used with these settings, or null when it can. */
export function subtypeUnusable(subtype: number, s: BackendAuthSettings): string | null {
  const spec = SUPPORTED[subtype];
  if (!spec) return 'not supported by Porthole';
  if (spec.x509 && !s.tls?.context()) return `no ${s.tls?.missing ?? '[vnc] vencrypt_ca_certs'} to verify the server certificate with`;
  if (!spec.x509 && !s.allowInsecureTls) return 'anonymous TLS, allowed only with [porthole] vencrypt_allow_insecure_tls';
  if (spec.inner === 'vnc' && s.password === null) return 'no VNC password is set for this server';
  if (spec.inner === 'plain' && (s.username === null || s.password === null)) return 'no user name and password are set for this server';
  return null;
}

export const vencryptAuth: AuthScheme = {
  name: 'vencrypt',
  securityType: SecurityType.VeNCrypt,
  unusable: () => null,
  async handshake(t, settings) {
    const r = t.reader;
    const major = await r.u8('VeNCrypt version');
    const minor = await r.u8('VeNCrypt version');
    // the server sends the highest version it speaks; 0.1 (one-byte subtypes) is obsolete
    if (major !== 0 || minor < 2) throw failed(t, 'BACKEND_AUTH_FAILED', `server speaks VeNCrypt ${major}.${minor}; Porthole needs 0.2`);
    t.write([0, 2]);
    const ack = await r.u8('VeNCrypt version ack');
    if (ack !== 0) throw failed(t, 'BACKEND_AUTH_FAILED', `server refused VeNCrypt 0.2 (status ${ack})`);
    const count = await r.u8('VeNCrypt subtypes');
    if (count === 0) throw failed(t, 'BACKEND_AUTH_NO_SCHEME', 'server offers no VeNCrypt subtype');
    const list = await r.read(4 * count, 'VeNCrypt subtypes');
    const offered = Array.from({ length: count }, (_, i) => list.readUInt32BE(4 * i));
    const subtype = offered.find((st) => subtypeUnusable(st, settings) === null);
    if (subtype === undefined) {
      const why = [...new Set(offered)].map((st) => `${subtypeName(st)}: ${subtypeUnusable(st, settings)}`).join('; ');
      throw failed(t, 'BACKEND_AUTH_NO_SCHEME', `no usable VeNCrypt subtype (${why})`);
    }
    const spec = SUPPORTED[subtype]!;
    const chosen = Buffer.alloc(4);
    chosen.writeUInt32BE(subtype);
    t.write(chosen);
    const accepted = await r.u8('VeNCrypt subtype ack');
    if (accepted !== 1) throw failed(t, 'BACKEND_AUTH_FAILED', `server did not accept VeNCrypt subtype ${subtypeName(subtype)}`);

    await t.startTls(spec.x509 ? x509Options(settings) : anonymousOptions());
    if (spec.inner === 'vnc') await answerVncChallenge(t, settings.password!);
    else if (spec.inner === 'plain') t.write(plainMessage(t, settings.username!, settings.password!));
    return `VeNCrypt ${SUBTYPE_NAMES[subtype]}`;
  },
};

function x509Options(s: BackendAuthSettings): ConnectionOptions {
  const name = s.tlsServerName;
  return {
    secureContext: s.tls!.context()!,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    // SNI carries host names only, never addresses (RFC 6066 §3)
    ...(name && isIP(name) === 0 ? { servername: name } : {}),
    // the chain is always checked by rejectUnauthorized; the name only when one is configured
    checkServerIdentity: (_host, cert) => (name ? checkServerIdentity(name, cert) : undefined),
  };
}

function anonymousOptions(): ConnectionOptions {
  // anonymous (EC)DH exists only up to TLS 1.2 and only below OpenSSL's default security level
  return { rejectUnauthorized: false, maxVersion: 'TLSv1.2', minVersion: 'TLSv1.2', ciphers: 'aNULL:!eNULL:@SECLEVEL=0' };
}

function plainMessage(t: BackendTransport, username: string, password: string): Buffer {
  const user = Buffer.from(username, 'utf8');
  const pass = Buffer.from(password, 'utf8');
  if (user.length > MAX_CREDENTIAL || pass.length > MAX_CREDENTIAL) throw failed(t, 'BACKEND_AUTH_FAILED', `user name or password longer than ${MAX_CREDENTIAL} bytes`);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(user.length, 0);
  head.writeUInt32BE(pass.length, 4);
  return Buffer.concat([head, user, pass]);
}

function failed(t: BackendTransport, code: 'BACKEND_AUTH_FAILED' | 'BACKEND_AUTH_NO_SCHEME', detail: string): GatewayError {
  return backendAuthError(code, `backend ${t.address}: ${detail}`);
}

/** Paths of the VeNCrypt files, as configured (`[vnc] vencrypt_*`). */
export interface VencryptFiles {
  readonly caCerts: string | null;
  readonly clientCert: string | null;
  readonly clientKey: string | null;
}

/**
 * The proxy's VeNCrypt credentials. Checked when the gateway starts (an unreadable file or a key
 * that does not match its certificate stops the start, naming the option); afterwards the files
 * are looked at again on each use and re-read when they changed, so a renewed certificate is
 * picked up without a restart, as Nova reads them on every connection. A change that cannot be
 * used (a half-written file) keeps the last good credentials.
 */
export class VencryptCredentials implements TlsCredentials {
  private cached: { stamp: string; context: SecureContext } | null = null;
  readonly missing: string | null;

  private constructor(private readonly files: VencryptFiles) {
    this.missing = files.caCerts ? null : '[vnc] vencrypt_ca_certs';
  }

  /** Validates the files now; throws CONFIG_INVALID naming the option at fault. */
  static load(files: VencryptFiles): VencryptCredentials {
    if (files.clientKey && !files.clientCert) {
      throw new GatewayError('CONFIG_INVALID', '[vnc] vencrypt_client_key is set without [vnc] vencrypt_client_cert');
    }
    const c = new VencryptCredentials(files);
    c.build();
    return c;
  }

  context(): SecureContext | null {
    if (!this.files.caCerts) return null;
    try {
      return this.build();
    } catch (err) {
      if (this.cached) return this.cached.context;
      throw err;
    }
  }

  private build(): SecureContext {
    const { caCerts, clientCert, clientKey } = this.files;
    const files = [['vencrypt_ca_certs', caCerts], ['vencrypt_client_cert', clientCert], ['vencrypt_client_key', clientKey]] as const;
    const stamp = files.map(([option, file]) => (file ? fileStamp(option, file) : '-')).join('|');
    if (this.cached?.stamp === stamp) return this.cached.context;
    const ca = caCerts ? readOption('vencrypt_ca_certs', caCerts) : undefined;
    if (ca) {
      try {
        new X509Certificate(ca);
      } catch (err) {
        throw new GatewayError('CONFIG_INVALID', `[vnc] vencrypt_ca_certs = ${caCerts}: not a PEM certificate: ${(err as Error).message}`);
      }
    }
    const cert = clientCert ? readOption('vencrypt_client_cert', clientCert) : undefined;
    // as `[DEFAULT] key`: without its own file, the key is looked for in the certificate's file
    const key = clientKey ? readOption('vencrypt_client_key', clientKey) : cert;
    let context: SecureContext;
    try {
      context = createSecureContext({ ca, cert, key, minVersion: 'TLSv1.2' });
    } catch (err) {
      const which = clientKey ? `[vnc] vencrypt_client_cert = ${clientCert} and vencrypt_client_key = ${clientKey}` : `[vnc] vencrypt_client_cert = ${clientCert} (with no vencrypt_client_key, the key must be in this file)`;
      throw new GatewayError('CONFIG_INVALID', `${which}: not a usable certificate and key: ${(err as Error).message}`);
    }
    this.cached = { stamp, context };
    return context;
  }
}

function readOption(option: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', `[vnc] ${option} = ${file}: cannot read it: ${(err as Error).message}`);
  }
}

function fileStamp(option: string, file: string): string {
  try {
    const st = statSync(file);
    return `${st.mtimeMs}:${st.size}:${st.ino}`;
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', `[vnc] ${option} = ${file}: cannot read it: ${(err as Error).message}`);
  }
}
