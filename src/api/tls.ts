/**
 * @module api/tls
 * Whether the compute API speaks HTTPS, and with which pair: `[porthole] api_cert` (and
 * `api_key`), else the console proxies' `[DEFAULT] cert` and `key` when
 * `[porthole] api_use_console_cert` says so, else plain HTTP. The console proxies take
 * `[DEFAULT] cert` whenever its file exists (websockify's way, and Nova's default `self.pem` is
 * usually absent); the API does not, since many deployments put it behind a TLS-terminating
 * balancer that speaks HTTP to it, and an upgrade must not turn that port into HTTPS behind
 * their back. Either way the API follows the proxies' `[console] ssl_ciphers` and
 * `ssl_minimum_version`, and an HTTPS API whose files are missing does not start.
 */
import { existsSync } from 'node:fs';
import type { Config } from '../config/options.ts';
import { GatewayError } from '../errors.ts';
import type { TlsSettings } from '../http/tls.ts';

/** The compute API's TLS files and policy, or null for plain HTTP; a contradiction in the options is CONFIG_INVALID. */
export function apiTlsSettings(config: Config): TlsSettings | null {
  const p = config.porthole;
  const policy = { sslCiphers: config.console.ssl_ciphers, sslMinimumVersion: config.console.ssl_minimum_version };
  if (p.api_cert !== null && p.api_cert !== '') {
    return { files: { cert: p.api_cert, key: p.api_key || null, certOption: '[porthole] api_cert', keyOption: '[porthole] api_key' }, policy };
  }
  if (p.api_key !== null && p.api_key !== '') {
    throw new GatewayError('CONFIG_INVALID', `[porthole] api_key = ${p.api_key} is set but [porthole] api_cert is not: set api_cert to the API's certificate (or unset api_key for plain HTTP)`);
  }
  if (!p.api_use_console_cert) return null;
  const cert = config.DEFAULT.cert;
  // the proxies quietly go without TLS when it is absent; the API was asked for HTTPS explicitly
  if (!existsSync(cert)) {
    throw new GatewayError('CONFIG_INVALID', `[porthole] api_use_console_cert is set but [DEFAULT] cert = ${cert} does not exist: set [DEFAULT] cert (and key), or [porthole] api_cert`);
  }
  return { files: { cert, key: config.DEFAULT.key || null, certOption: '[DEFAULT] cert', keyOption: '[DEFAULT] key' }, policy };
}
