/**
 * @module rfb/config
 * The security proxy's defaults from the config, checked when the gateway starts: a VeNCrypt
 * file that cannot be read, a key that does not match its certificate or an empty password file
 * stops the start with the option's name, instead of failing every console later.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/options.ts';
import { GatewayError } from '../errors.ts';
import { VencryptCredentials } from './auth/vencrypt.ts';
import { isAuthSchemeName, type RfbProxyOptions } from './types.ts';

export function rfbProxyOptions(config: Config): RfbProxyOptions {
  const { vnc, porthole } = config;
  const authSchemes = vnc.auth_schemes.filter(isAuthSchemeName);
  const anyTls = vnc.vencrypt_ca_certs || vnc.vencrypt_client_cert || vnc.vencrypt_client_key;
  return {
    timeoutMs: porthole.rfb_handshake_timeout * 1000,
    authSchemes,
    password: porthole.vnc_password_file ? readPasswordFile(porthole.vnc_password_file, '[porthole] vnc_password_file') : null,
    username: porthole.vnc_username,
    tls: anyTls ? VencryptCredentials.load({ caCerts: vnc.vencrypt_ca_certs, clientCert: vnc.vencrypt_client_cert, clientKey: vnc.vencrypt_client_key }) : null,
    verifyHostname: porthole.vencrypt_verify_hostname,
    allowInsecureTls: porthole.vencrypt_allow_insecure_tls,
  };
}

/** A password file: its first line, without the line end (so `echo secret > file` works). */
export function readPasswordFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', `${what} = ${file}: cannot read it: ${(err as Error).message}`);
  }
  const password = text.split(/\r?\n/, 1)[0]!;
  if (password === '') throw new GatewayError('CONFIG_INVALID', `${what} = ${file}: the file is empty; the password is its first line`);
  return password;
}

/** Start-time warnings: settings that make some consoles fail, which Nova would also only find out per connection. */
export function rfbConfigWarnings(o: RfbProxyOptions): string[] {
  const out: string[] = [];
  if (o.authSchemes.includes('vencrypt') && !o.tls?.context()) {
    out.push('[vnc] auth_schemes includes vencrypt but [vnc] vencrypt_ca_certs is not set: VeNCrypt X509 servers cannot be verified and will be refused');
  }
  if (o.allowInsecureTls) out.push('[porthole] vencrypt_allow_insecure_tls is on: anonymous-TLS VeNCrypt (no server certificate) may be used');
  return out;
}
