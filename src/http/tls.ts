/**
 * @module http/tls
 * The TLS settings every Porthole listener shares, the console proxies and the compute API
 * alike: Mozilla's "intermediate" profile unless `[console] ssl_ciphers` / `ssl_minimum_version`
 * say otherwise, and a certificate and key read and checked as a pair, whose failures are one
 * line naming the options to change (no stack: nothing is wrong with Porthole). In `src/http/`
 * because the proxy (`proxy/listener.ts`) and the API (`api/tls.ts`) both use it and neither
 * may import the other; like the rest of the folder it knows no config object, only values.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions, type SecureVersion } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { GatewayError } from '../errors.ts';

/** Nova's `[console] ssl_minimum_version` choices. */
export type SslMinimumVersion = 'default' | 'tlsv1_1' | 'tlsv1_2' | 'tlsv1_3';

/** A certificate file and its key, with the options they come from, as messages name them. */
export interface TlsFiles {
  readonly cert: string;
  /** null: the key is in the certificate's file (websockify's and Nova's `self.pem`). */
  readonly key: string | null;
  /** `[DEFAULT] cert`, `[porthole] api_cert`. */
  readonly certOption: string;
  readonly keyOption: string;
}

/** How a listener's TLS is negotiated: `[console] ssl_ciphers` and `ssl_minimum_version`. */
export interface TlsPolicy {
  /** An OpenSSL cipher string; null: Mozilla's intermediate list. */
  readonly sslCiphers: string | null;
  /** `default` is TLS 1.2. */
  readonly sslMinimumVersion: SslMinimumVersion;
}

export interface TlsSettings {
  readonly files: TlsFiles;
  readonly policy: TlsPolicy;
  /** CA certificates (PEM) that clients must present a certificate of (`[wsgi] ssl_ca_file`); absent: no client certificate asked. */
  readonly clientCa?: { readonly file: string; readonly option: string };
}

/** What a TLS server is given (`https.createServer`, `setSecureContext`): the pair and the policy. */
export interface SecureOptions extends SecureContextOptions {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ciphers: string;
  readonly minVersion: SecureVersion;
  /** With a client CA (`[wsgi] ssl_ca_file`): clients must present a certificate it signed. */
  readonly requestCert?: boolean;
  readonly rejectUnauthorized?: boolean;
}

/**
 * Mozilla's "intermediate" server-side TLS profile (guidelines 6.0, ssl-config.mozilla.org): TLS
 * 1.2 with forward-secret AEAD suites only (Node's default list also has `HIGH`, which lets in
 * RSA key exchange and CBC: AES128-SHA, AES256-SHA256), and TLS 1.3's three suites. 6.0 dropped
 * the DHE suites of 5.7; Node sets no DH parameters anyway, so they could not be chosen.
 */
export const INTERMEDIATE_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
const TLS13_SUITES = INTERMEDIATE_CIPHERS.split(':').filter((c) => c.startsWith('TLS_')).join(':');

const MINIMUM_VERSIONS: Record<SslMinimumVersion, SecureVersion> = {
  // Nova's `default` is whatever the system's OpenSSL allows; Porthole's is the profile's
  default: 'TLSv1.2',
  tlsv1_1: 'TLSv1.1',
  tlsv1_2: 'TLSv1.2',
  tlsv1_3: 'TLSv1.3',
};

/** The `ciphers` Node is given: TLS 1.3 suites are named `TLS_*` and set apart by Node. */
export function tlsCiphers(sslCiphers: string | null): string {
  if (sslCiphers === null || sslCiphers.trim() === '') return INTERMEDIATE_CIPHERS;
  // Nova's ssl_ciphers (Python's set_ciphers) governs TLS 1.2 and below only; Node would turn
  // TLS 1.3 off for a list without TLS 1.3 suites, so the profile's are kept for it
  return /(^|:)TLS_/.test(sslCiphers) ? sslCiphers : `${TLS13_SUITES}:${sslCiphers}`;
}

/** The oldest TLS version `ssl_minimum_version` lets in. */
export function minimumVersion(v: SslMinimumVersion): SecureVersion {
  return MINIMUM_VERSIONS[v];
}

/** The pair of `settings` read now, checked, with the policy: what a TLS server is given at start. */
export function secureOptions(settings: TlsSettings): SecureOptions {
  const { files } = settings;
  const cert = readPem(files.cert, files.certOption);
  const key = files.key !== null ? readPem(files.key, files.keyOption) : cert;
  const ca = settings.clientCa ? readPem(settings.clientCa.file, settings.clientCa.option) : undefined;
  return checkedOptions(settings, cert, key, ca);
}

/** As `secureOptions`, reading without blocking: for a reload while consoles are served. */
export async function secureOptionsNow(settings: TlsSettings): Promise<SecureOptions> {
  const { files } = settings;
  const [cert, key, ca] = await Promise.all([
    readPemAsync(files.cert, files.certOption),
    files.key !== null ? readPemAsync(files.key, files.keyOption) : null,
    settings.clientCa ? readPemAsync(settings.clientCa.file, settings.clientCa.option) : undefined,
  ]);
  return checkedOptions(settings, cert, key ?? cert, ca);
}

/** The certificate of a pair in words for the log (subject, serial, expiry): never anything of the key. */
export function describeCertificate(pem: Buffer): string {
  try {
    const x = new X509Certificate(pem);
    const subject = x.subject.split('\n').join(', ');
    return `${subject || 'no subject'}, serial ${x.serialNumber.toLowerCase()}, valid until ${new Date(x.validTo).toISOString()}`;
  } catch {
    return 'not readable as X.509';
  }
}

/**
 * The options, once OpenSSL has taken them: a file that is no PEM certificate or key, a key of
 * another certificate, a cipher string that matches nothing is one line naming its options.
 */
function checkedOptions(settings: TlsSettings, cert: Buffer, key: Buffer, ca?: Buffer): SecureOptions {
  const { files, policy } = settings;
  // oslo.service's sslutils: a CA file means CERT_REQUIRED, a client without a good certificate fails the handshake
  const clientCerts = ca ? { ca, requestCert: true, rejectUnauthorized: true } : {};
  const options: SecureOptions = { cert, key, ciphers: tlsCiphers(policy.sslCiphers), minVersion: minimumVersion(policy.sslMinimumVersion), ...clientCerts };
  try {
    createSecureContext(options);
  } catch (err) {
    const message = (err as Error).message;
    if (policy.sslCiphers !== null && /cipher/i.test(message)) {
      throw new GatewayError('CONFIG_INVALID', `[console] ssl_ciphers = ${policy.sslCiphers}: ${message} (expected an OpenSSL cipher string, see openssl ciphers -v)`, { cause: err });
    }
    throw new GatewayError('CONFIG_INVALID', `${pairName(files)}: not a usable PEM certificate and private key: ${message}`, { cause: err });
  }
  return options;
}

/** The pair as its options name it: `[DEFAULT] cert = F, [DEFAULT] key = G`. */
export function pairName(files: TlsFiles): string {
  return files.key !== null ? `${files.certOption} = ${files.cert}, ${files.keyOption} = ${files.key}` : `${files.certOption} = ${files.cert} (with its key, ${files.keyOption} unset)`;
}

/** A certificate or key file, or one line naming its option and the OS's reason. */
function readPem(file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw unreadable(file, option, err);
  }
}

async function readPemAsync(file: string, option: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw unreadable(file, option, err);
  }
}

function unreadable(file: string, option: string, err: unknown): GatewayError {
  return new GatewayError('CONFIG_INVALID', `${option} = ${file}: cannot read it: ${(err as Error).message}`, { cause: err });
}
