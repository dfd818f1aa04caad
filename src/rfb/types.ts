/**
 * @module rfb/types
 * What the parts of the RFB security proxy share: the security type numbers of RFC 6143 §7.2
 * (and the VeNCrypt registry), the names of the schemes `[vnc] auth_schemes` may list, the
 * settings one backend connection is authenticated with, and the contract of an auth scheme.
 */
import type { Socket } from 'node:net';
import type { ConnectionOptions, SecureContext } from 'node:tls';
import { GatewayError } from '../errors.ts';
import type { AuthSchemeName } from '../inventory/types.ts';
import type { RfbReader } from './reader.ts';

/** RFC 6143 §7.2.1 and the IANA RFB security types registry. */
export const SecurityType = {
  Invalid: 0,
  None: 1,
  VncAuth: 2,
  VeNCrypt: 19,
} as const;

const TYPE_NAMES: Record<number, string> = {
  0: 'Invalid', 1: 'None', 2: 'VncAuth', 5: 'RA2', 6: 'RA2ne', 16: 'Tight', 17: 'Ultra', 18: 'TLS',
  19: 'VeNCrypt', 20: 'SASL', 21: 'MD5', 22: 'xvp', 30: 'ARD', 113: 'MSLogonII', 129: 'RA2_256',
};

/** `VncAuth(2)`: for log lines, which must say exactly what the server offered. */
export function securityTypeName(type: number): string {
  return `${TYPE_NAMES[type] ?? 'unknown'}(${type})`;
}

/** Scheme names of `[vnc] auth_schemes` and of a server's own list: the inventory's contract owns the list. */
export { AUTH_SCHEMES, isAuthSchemeName, type AuthSchemeName } from '../inventory/types.ts';

/** Where the proxy's client certificate, key and the CA come from (rebuilt when the files change). */
export interface TlsCredentials {
  /** Null when no CA is configured: no server certificate can be verified then. */
  context(): SecureContext | null;
  /** For log lines: which option is missing when `context()` is null. */
  readonly missing: string | null;
}

/** Everything one backend connection is authenticated with: the server's settings over the global ones. */
export interface BackendAuthSettings {
  /** Schemes allowed, as configured; the first of the *server's* offered types that is allowed wins (Nova). */
  readonly schemes: readonly AuthSchemeName[];
  /** VNC password (VncAuth, VeNCrypt *Vnc) and X509Plain password. Never logged. */
  readonly password: string | null;
  /** X509Plain / TLSPlain user name. */
  readonly username: string | null;
  readonly tls: TlsCredentials | null;
  /** Name the server certificate must carry; null: the chain is verified, the name is not (Nova). */
  readonly tlsServerName: string | null;
  /** Anonymous-TLS VeNCrypt subtypes (TLSNone, TLSVnc, TLSPlain), which anyone in the path can intercept. */
  readonly allowInsecureTls: boolean;
}

/** The config's side of the security proxy; a server's settings in the inventory override each field. */
export interface RfbProxyOptions {
  /** Deadline of each side's part of the handshake. */
  readonly timeoutMs: number;
  readonly authSchemes: readonly AuthSchemeName[];
  readonly password: string | null;
  readonly username: string | null;
  readonly tls: TlsCredentials | null;
  /** Check the server certificate's name against the console host when the server has no TLS server name. */
  readonly verifyHostname: boolean;
  readonly allowInsecureTls: boolean;
}

/** The backend connection as the auth schemes see it: the current socket and the reader fed by it. */
export interface BackendTransport {
  readonly reader: RfbReader;
  readonly socket: Socket;
  /** e.g. `10.0.0.12:5901`, for log messages. */
  readonly address: string;
  write(bytes: Buffer | Uint8Array | readonly number[]): void;
  /** Replaces the socket by a TLS socket over it (VeNCrypt); resolves once the handshake is done. */
  startTls(options: ConnectionOptions): Promise<void>;
}

export interface AuthScheme {
  readonly name: AuthSchemeName;
  readonly securityType: number;
  /** Why this scheme cannot be used with these settings (e.g. no password), or null. */
  unusable(settings: BackendAuthSettings): string | null;
  /**
   * The scheme's part of the handshake, after the security type was chosen and up to (not
   * including) SecurityResult. Resolves with what was used, for the log (`VeNCrypt X509None`).
   */
  handshake(transport: BackendTransport, settings: BackendAuthSettings): Promise<string>;
}

/** The browser is told only that the console could not be authenticated: anything more is backend detail. */
export const AUTH_FAILED_CLIENT_MESSAGE = 'The console could not be authenticated';

export function backendAuthError(code: 'BACKEND_AUTH_FAILED' | 'BACKEND_AUTH_NO_SCHEME' | 'BACKEND_TLS_FAILED' | 'BACKEND_PROTOCOL' | 'BACKEND_CLOSED' | 'BACKEND_TIMEOUT', logMessage: string, cause?: unknown): GatewayError {
  return new GatewayError(code, logMessage, { status: 502, closeCode: 1011, clientMessage: AUTH_FAILED_CLIENT_MESSAGE, cause });
}
