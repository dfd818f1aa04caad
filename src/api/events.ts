/**
 * @module api/events
 * `GET /porthole/v1/events` (admin): the audit trail's recent events from Porthole's own store,
 * whichever proxy recorded them, filtered by server, time, event, token prefix and session
 * (`ops/audit-query.ts` checks and bounds the query; `porthole events list` asks the same
 * service). The answer's events are the audit lines themselves. 501 where there is no store of
 * Porthole's own (a Nova database without `[porthole] connection`).
 */
import type { FastifyInstance } from 'fastify';
import { DEFAULT_LIMIT, listEvents, MAX_LIMIT, parseEventsQuery, type EventsQueryWords } from '../ops/audit-query.ts';
import { AUDIT_EVENTS } from '../store/audit-events.ts';
import type { ApiContext } from './context.ts';
import { authorize } from './policy.ts';

const text = (maxLength: number, description: string) => ({ type: 'string', maxLength, description });

const querySchema = {
  type: 'object',
  properties: {
    server: text(36, 'a server UUID: only its events'),
    since: text(40, 'ISO 8601 or epoch seconds; inclusive'),
    until: text(40, 'ISO 8601 or epoch seconds; exclusive'),
    event: text(200, `one or more of ${AUDIT_EVENTS.join(', ')}, comma-separated`),
    // longer than a prefix, so that a whole token given by mistake is refused by
    // parseEventsQuery, whose message does not quote it (a schema error would)
    token: text(64, 'the 8 hex digits of a token\'s SHA-256 prefix, never the token'),
    session: text(64, 'a session id'),
    limit: text(7, `at most this many events (1-${MAX_LIMIT}, default ${DEFAULT_LIMIT})`),
    order: { type: 'string', enum: ['newest', 'oldest'], description: 'newest first (default) or oldest first' },
  },
  additionalProperties: false,
};

const actorSchema = {
  type: 'object',
  properties: { user: { type: 'string' }, project: { type: 'string' }, cli: { type: 'string' }, system: { type: 'string' } },
};

const eventSchema = {
  type: 'object',
  properties: {
    time: { type: 'string', format: 'date-time' },
    event: { type: 'string', enum: [...AUDIT_EVENTS] },
    v: { type: 'integer' },
    token: { type: 'string', description: 'first 8 hex digits of the token\'s SHA-256' },
    server: { type: 'string' },
    console_type: { type: 'string' },
    actor: actorSchema,
    client: { type: 'string' },
    session: { type: 'string' },
    code: { type: 'string' },
    reason: { type: 'string' },
    count: { type: 'integer' },
    bytes_from_client: { type: 'integer' },
    bytes_from_backend: { type: 'integer' },
    duration_ms: { type: 'integer' },
    expires_at: { type: 'string', format: 'date-time' },
    recording: { type: 'string', description: 'a console recording\'s id (recording.started, recording.deleted)' },
    proxy: { type: 'string' },
  },
};

export function registerEvents(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: EventsQueryWords }>(
    '/porthole/v1/events',
    {
      preHandler: async (req) => authorize(req.caller, 'admin', 'porthole:admin'),
      schema: { tags: ['admin'], summary: 'The audit trail\'s recent events, from every proxy sharing the store (newest first unless order=oldest)', querystring: querySchema, response: { 200: { type: 'object', properties: { events: { type: 'array', items: eventSchema } } } } },
    },
    async (req) => ({ events: await listEvents(ctx.stores.auditEvents, parseEventsQuery(req.query)) }),
  );
}
