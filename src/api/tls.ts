/**
 * @module api/tls
 * Whether the compute API speaks HTTPS, and with which pair: `[porthole] api_cert` (and
 * `api_key`), else nova-api's own `[DEFAULT] enabled_ssl_apis = osapi_compute` with `[wsgi]
 * ssl_cert_file` and `ssl_key_file`, else the console proxies' `[DEFAULT] cert` and `key` when
 * `[porthole] api_use_console_cert` says so, else plain HTTP. The console proxies take
 * `[DEFAULT] cert` whenever its file exists (websockify's way, and Nova's default `self.pem` is
 * usually absent); the API does not, since many deployments put it behind a TLS-terminating
 * balancer that speaks HTTP to it, and an upgrade must not turn that port into HTTPS behind
 * their back. Either way the API follows the proxies' `[console] ssl_ciphers` and
 * `ssl_minimum_version`, and an HTTPS API whose files are missing does not start. `[wsgi]
 * ssl_cert_file`'s companion `ssl_ca_file` asks clients for a certificate, as nova-api does.
 */
import { existsSync } from 'node:fs';
import type { Config } from '../config/options.ts';
import { GatewayError } from '../errors.ts';
import type { TlsSettings } from '../http/tls.ts';

/** The compute API's TLS files and policy, or null for plain HTTP; a contradiction in the options is CONFIG_INVALID. */
export function apiTlsSettings(config: Config): TlsSettings | null {
  const p = config.porthole;
  const w = config.wsgi;
  const policy = { sslCiphers: config.console.ssl_ciphers, sslMinimumVersion: config.console.ssl_minimum_version };
  const clientCa = w.ssl_ca_file ? { clientCa: { file: w.ssl_ca_file, option: '[wsgi] ssl_ca_file' } } : {};
  if (p.api_cert !== null && p.api_cert !== '') {
    return { files: { cert: p.api_cert, key: p.api_key || null, certOption: '[porthole] api_cert', keyOption: '[porthole] api_key' }, policy, ...clientCa };
  }
  // nova-api's own switch: a nova.conf that serves its compute API over TLS gets the same from Porthole
  if (config.DEFAULT.enabled_ssl_apis.includes('osapi_compute')) {
    if (!w.ssl_cert_file) {
      throw new GatewayError('CONFIG_INVALID', '[DEFAULT] enabled_ssl_apis has osapi_compute but [wsgi] ssl_cert_file is not set: set it (and ssl_key_file) to the API\'s certificate, or take osapi_compute out of enabled_ssl_apis');
    }
    return { files: { cert: w.ssl_cert_file, key: w.ssl_key_file || null, certOption: '[wsgi] ssl_cert_file', keyOption: '[wsgi] ssl_key_file' }, policy, ...clientCa };
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
  return { files: { cert, key: config.DEFAULT.key || null, certOption: '[DEFAULT] cert', keyOption: '[DEFAULT] key' }, policy, ...clientCa };
}
