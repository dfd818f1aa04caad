/**
 * @module errors
 * The one error type of Porthole. A `GatewayError` carries everything both places that render
 * errors need: a stable string `code`, the HTTP status (API and refused upgrades), the WebSocket
 * close code, the detail for the log and the words the client may see. Client words never carry
 * backend detail (host, port, certificate names): that is information leakage, the log has it.
 */

export type GatewayErrorCode =
  | 'BAD_REQUEST'
  | 'DOUBLE_SLASH_PATH'
  | 'NOT_FOUND'
  | 'TOKEN_MISSING'
  | 'TOKEN_UNKNOWN'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_CONSUMED'
  | 'TOO_MANY_FAILED_LOOKUPS'
  /** A concurrent-console limit (`[porthole] max_consoles*`, `proxy/console-limits.ts`): 503 for the total, 429 for the others. */
  | 'CONSOLE_LIMIT_TOTAL'
  | 'CONSOLE_LIMIT_SERVER'
  | 'CONSOLE_LIMIT_PROJECT'
  | 'CONSOLE_LIMIT_CLIENT'
  /** `[porthole] api_console_requests_per_minute`: a project's remote-console requests (API, 429). */
  | 'API_RATE_LIMITED'
  | 'TOKEN_WRONG_CONSOLE_TYPE'
  | 'CONSOLE_PORT_MISMATCH'
  /** A token minted without a console endpoint: none given, none in the inventory. */
  | 'ENDPOINT_MISSING'
  | 'ORIGIN_INVALID'
  | 'ORIGIN_MISMATCH'
  | 'ORIGIN_PROTO_MISMATCH'
  | 'BACKEND_UNREACHABLE'
  | 'BACKEND_TIMEOUT'
  | 'BACKEND_PROTOCOL'
  | 'BACKEND_CLOSED'
  /** A viewer of a kept serial console (`serial_keep_attached`) fell too far behind its output. */
  | 'SERIAL_VIEWER_TOO_SLOW'
  | 'BACKEND_AUTH_NO_SCHEME'
  | 'BACKEND_AUTH_FAILED'
  | 'BACKEND_TLS_FAILED'
  | 'CLIENT_PROTOCOL'
  | 'CLIENT_TIMEOUT'
  | 'CLIENT_CLOSED'
  | 'STORE_UNAVAILABLE'
  /** Keystone cannot say whether an API caller's token is valid (`[api] auth_strategy = keystone`): 503, never a pass. */
  | 'IDENTITY_UNAVAILABLE'
  | 'CONFIG_INVALID'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'CONFLICT'
  | 'NOT_IMPLEMENTED'
  | 'NOT_ACCEPTABLE'
  | 'METHOD_NOT_ALLOWED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  /** Not the client's doing nor a peer's: a bug in Porthole, logged with its stack. */
  | 'INTERNAL';

export interface GatewayErrorInit {
  status?: number;
  /** Seconds after which the request may be tried again (HTTP `Retry-After`, with 429 and 503). */
  retryAfter?: number;
  closeCode?: number;
  clientMessage?: string;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  /** HTTP status for the API and for an upgrade refused before the 101. */
  readonly status: number;
  /** WebSocket close code when the session is already open. */
  readonly closeCode: number;
  /** What the browser or API client may be told. */
  readonly clientMessage: string;
  readonly retryAfter: number | undefined;

  constructor(code: GatewayErrorCode, logMessage: string, init: GatewayErrorInit = {}) {
    super(logMessage, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = init.status ?? 400;
    this.closeCode = init.closeCode ?? 1008;
    this.clientMessage = init.clientMessage ?? logMessage;
    this.retryAfter = init.retryAfter;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** An error that is no GatewayError is a bug: a 500 (close 1011) whose words tell the client nothing, with the original as its cause. */
export function asGatewayError(err: unknown): GatewayError {
  if (isGatewayError(err)) return err;
  return new GatewayError('INTERNAL', `bug: ${(err as Error)?.message ?? String(err)}`, { status: 500, closeCode: 1011, clientMessage: 'Internal error', cause: err });
}
