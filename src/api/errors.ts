/**
 * @module api/errors
 * Renders every API error, in one place, in Nova's shape: `{"<faultName>": {"code": N,
 * "message": "..."}}` with Nova's fault names (wsgi.Fault._fault_names). Fastify's own errors
 * (validation, malformed JSON, body too large, unsupported media type) get Nova's status and
 * words; anything unexpected is a 500 `computeFault` whose detail goes only to the log.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, isGatewayError } from '../errors.ts';

const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

export function faultBody(status: number, message: string): Record<string, { code: number; message: string }> {
  return { [FAULT_NAMES[status] ?? 'computeFault']: { code: status, message } };
}

export function notFound(message = 'The resource could not be found.'): GatewayError {
  return new GatewayError('NOT_FOUND', message, { status: 404 });
}

export function badRequest(message: string): GatewayError {
  return new GatewayError('BAD_REQUEST', message, { status: 400 });
}

/**
 * A request value as an error message may quote it: at most 200 characters, and never a throw
 * (JSON.stringify recurses, and a body may nest deeper than the stack goes).
 */
export function preview(value: unknown): string {
  if (typeof value === 'string') return value.slice(0, 200);
  try {
    return String(JSON.stringify(value ?? null)).slice(0, 200);
  } catch {
    return Array.isArray(value) ? '[...]' : '{...}';
  }
}

/** Nova's words for a JSON-schema failure: the field, the value, what was wrong. */
function validationMessage(err: FastifyError, req: FastifyRequest): string {
  const v = err.validation?.[0];
  if (!v) return err.message;
  const path = v.instancePath.split('/').filter(Boolean);
  const root = err.validationContext === 'querystring' ? req.query : err.validationContext === 'params' ? req.params : req.body;
  let data: unknown = root;
  for (const key of path) data = data !== null && typeof data === 'object' ? (data as Record<string, unknown>)[key] : undefined;
  const field = path.at(-1) ?? err.validationContext ?? 'body';
  const value = preview(data);
  const params = v.params as Record<string, unknown>;
  if (v.keyword === 'required') return `Invalid input for field/attribute ${field}. Value: ${value}. '${String(params.missingProperty)}' is a required property`;
  if (v.keyword === 'additionalProperties') return `Invalid input for field/attribute ${field}. Value: ${value}. Additional properties are not allowed ('${String(params.additionalProperty)}' was unexpected)`;
  if (v.keyword === 'enum') return `Invalid input for field/attribute ${field}. Value: ${value}. '${value}' is not one of ${JSON.stringify(params.allowedValues)}`;
  return `Invalid input for field/attribute ${field}. Value: ${value}. ${v.message ?? 'is invalid'}`;
}

export function handleError(err: FastifyError | GatewayError, req: FastifyRequest, reply: FastifyReply): void {
  let status: number;
  let message: string;
  if (isGatewayError(err)) {
    status = err.status;
    message = err.clientMessage;
    if (status >= 500) req.log.error({ event: 'api_error', code: err.code }, err.message);
    else req.log.info({ event: 'api_refused', code: err.code, status }, err.message);
  } else if (err.validation) {
    status = 400;
    message = validationMessage(err, req);
  } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    status = 413;
    message = 'Request is too large.';
  } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    status = 415;
    message = 'Unsupported Content-Type';
  } else if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError) {
    status = 400;
    message = 'Malformed request body';
  } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    status = err.statusCode;
    message = err.message;
  } else {
    status = 500;
    message = 'Unexpected API Error. The Porthole log has the details.';
    req.log.error({ event: 'api_error', err: err.message, stack: err.stack }, 'unexpected API error');
  }
  void reply.code(status).type('application/json').send(faultBody(status, message));
}
