/**
 * @module api/errors
 * Renders every API error, in one place, in Nova's shape: `{"<faultName>": {"code": N,
 * "message": "..."}}` with Nova's fault names (wsgi.Fault._fault_names). Fastify's own errors
 * (validation, malformed JSON, body too large, unsupported media type) get Nova's status and
 * words (a schema failure as Nova's validator words it: schema-errors.ts); anything unexpected is a 500 `computeFault` whose detail goes only to the log.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, isGatewayError } from '../errors.ts';
import { novaSchemaMessage, wrapFailure, type SchemaPart } from './schema-errors.ts';

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

/** Nova's fault body; a 413 or 429 with `retryAfter` carries it as Nova's wsgi.Fault does (a string of seconds). */
export function faultBody(status: number, message: string, retryAfter?: number): Record<string, { code: number; message: string; retryAfter?: string }> {
  const fault = retryAfter !== undefined && (status === 413 || status === 429) ? { code: status, message, retryAfter: String(retryAfter) } : { code: status, message };
  return { [FAULT_NAMES[status] ?? 'computeFault']: fault };
}

export function notFound(message = 'The resource could not be found.'): GatewayError {
  return new GatewayError('NOT_FOUND', message, { status: 404 });
}

export function badRequest(message: string): GatewayError {
  return new GatewayError('BAD_REQUEST', message, { status: 400 });
}

/**
 * The 400 for `data` failing `schema`, worded as Nova words it (schema-errors.ts); `ajvErrors`
 * only serve when none of the keywords schema-errors.ts reads failed.
 */
export function schemaRefusal(schema: object | undefined, data: unknown, part: SchemaPart, ajvErrors?: readonly AjvError[] | null): GatewayError {
  const message = (schema && novaSchemaMessage(schema as Record<string, unknown>, data, part)) ?? ajvMessage(ajvErrors?.[0], data, part);
  // the log gets no quoted value: an admin body's wrong-typed vnc_password is still a password
  return new GatewayError('BAD_REQUEST', `request ${part} does not match its schema`, { status: 400, clientMessage: message });
}

interface AjvError {
  readonly instancePath: string;
  readonly message?: string;
}

/** Ajv's first error in Nova's frame, for a keyword schema-errors.ts does not read. */
function ajvMessage(v: AjvError | undefined, data: unknown, part: SchemaPart): string {
  if (!v) return 'Invalid input';
  const path = v.instancePath.split('/').filter(Boolean).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  let value: unknown = data;
  for (const key of path) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  return wrapFailure({ path, value, message: v.message ?? 'is invalid' }, part);
}

/** Nova's words for a request that failed its route's JSON schema (Fastify's validation). */
function validationMessage(err: FastifyError, req: FastifyRequest): string {
  const where = err.validationContext;
  const schemas = req.routeOptions.schema as Record<string, object | undefined> | undefined;
  const schema = where === 'querystring' ? schemas?.querystring : where === 'params' ? schemas?.params : where === 'headers' ? schemas?.headers : schemas?.body;
  const data = where === 'querystring' ? req.query : where === 'params' ? req.params : where === 'headers' ? req.headers : req.body;
  return schemaRefusal(schema, data, where === 'querystring' ? 'query' : 'body', err.validation).clientMessage;
}

export function handleError(err: FastifyError | GatewayError, req: FastifyRequest, reply: FastifyReply): void {
  let status: number;
  let message: string;
  let retryAfter: number | undefined;
  if (isGatewayError(err)) {
    status = err.status;
    message = err.clientMessage;
    retryAfter = err.retryAfter;
    if (retryAfter !== undefined) void reply.header('Retry-After', String(retryAfter));
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
  void reply.code(status).type('application/json').send(faultBody(status, message, retryAfter));
}
