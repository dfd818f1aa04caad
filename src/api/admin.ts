/**
 * @module api/admin
 * Porthole's admin API under `/porthole/v1` (admin callers only): the inventory (servers, their
 * console endpoints: `vnc`, `serial`, `spice` with its `tls_port`, each null when the server has
 * none; backend auth settings: a VNC password goes in and never comes out; whether its consoles
 * are shared and recorded, null leaving it to the config),
 * revocation of one token or of all tokens of a server (which closes the live sessions opened
 * with them, on every proxy), the live sessions of every proxy and their kill, and the OpenAPI
 * document of every route, Nova's included.
 */
import type { FastifyInstance } from 'fastify';
import { AUTH_SCHEMES, backendAuthSummary, isUuid, type BackendAuth, type Server } from '../inventory/types.ts';
import { listingJson } from '../sessions/format.ts';
import { shadowSession } from '../consoles/shadow.ts';
import { novnc } from '../consoles/novnc.ts';
import type { Sessions } from '../sessions/service.ts';
import type { AuditBy } from '../store/audit-events.ts';
import { revokeServerTokens, revokeToken } from '../store/revoke.ts';
import type { Caller } from './auth.ts';
import type { ApiContext } from './context.ts';
import { badRequest, notFound } from './errors.ts';
import { pyRepr, pyStr } from './schema-errors.ts';
import { authorize } from './policy.ts';

const portSchema = { type: 'integer', minimum: 1, maximum: 65535 };
const endpointSchema = { type: 'object', properties: { host: { type: 'string', minLength: 1, maxLength: 255 }, port: portSchema }, required: ['host', 'port'], additionalProperties: false };
/** A SPICE console: its plain port and, where QEMU has one, its TLS port (the token's `tls_port`, Nova 2.99). */
const spiceSchema = {
  type: 'object',
  properties: { host: { type: 'string', minLength: 1, maxLength: 255 }, port: portSchema, tls_port: { ...portSchema, nullable: true } },
  required: ['host', 'port'],
  additionalProperties: false,
};
/** As `porthole server add`: every field left out or null falls back to the config. */
const backendAuthInput = {
  type: 'object',
  nullable: true,
  properties: {
    auth_schemes: { type: 'array', nullable: true, minItems: 1, maxItems: AUTH_SCHEMES.length, uniqueItems: true, items: { type: 'string', enum: [...AUTH_SCHEMES] } },
    vnc_username: { type: 'string', nullable: true, maxLength: 255 },
    vnc_password: { type: 'string', nullable: true, minLength: 1, maxLength: 255 },
    tls_server_name: { type: 'string', nullable: true, minLength: 1, maxLength: 255 },
  },
  additionalProperties: false,
};
const backendAuthOutput = {
  type: 'object',
  nullable: true,
  properties: {
    auth_schemes: { type: 'array', nullable: true, items: { type: 'string' } },
    vnc_username: { type: 'string', nullable: true },
    vnc_password_set: { type: 'boolean' },
    tls_server_name: { type: 'string', nullable: true },
  },
};
const serverInput = {
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 36 },
    name: { type: 'string', minLength: 1, maxLength: 255 },
    project_id: { type: 'string', nullable: true, maxLength: 255 },
    status: { type: 'string', minLength: 1, maxLength: 32 },
    vnc: { ...endpointSchema, nullable: true },
    serial: { ...endpointSchema, nullable: true },
    spice: { ...spiceSchema, nullable: true },
    backend_auth: backendAuthInput,
    shared_consoles: { type: 'boolean', nullable: true, description: 'its noVNC viewers share one backend connection; null: [porthole] shared_consoles' },
    record: { type: 'boolean', nullable: true, description: 'its noVNC sessions are recorded; null: [DEFAULT] record decides' },
  },
  required: ['name'],
  additionalProperties: false,
};
const serverOutput = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    project_id: { type: 'string', nullable: true },
    status: { type: 'string' },
    vnc: { ...endpointSchema, nullable: true },
    serial: { ...endpointSchema, nullable: true },
    spice: { ...spiceSchema, nullable: true },
    backend_auth: backendAuthOutput,
    shared_consoles: { type: 'boolean', nullable: true },
    record: { type: 'boolean', nullable: true },
  },
};
const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 36 } }, required: ['id'] };

interface ServerInput {
  id?: string;
  name: string;
  project_id?: string | null;
  status?: string;
  vnc?: { host: string; port: number } | null;
  serial?: { host: string; port: number } | null;
  spice?: { host: string; port: number; tls_port?: number | null } | null;
  backend_auth?: { auth_schemes?: string[] | null; vnc_username?: string | null; vnc_password?: string | null; tls_server_name?: string | null } | null;
  shared_consoles?: boolean | null;
  record?: boolean | null;
}

function toJson(s: Server) {
  return {
    id: s.id,
    name: s.name,
    project_id: s.projectId,
    status: s.status,
    vnc: s.vnc && { host: s.vnc.host, port: s.vnc.port },
    serial: s.serial ? { host: s.serial.host, port: s.serial.port } : null,
    spice: s.spice ? { host: s.spice.host, port: s.spice.port, tls_port: s.spice.tlsPort ?? null } : null,
    backend_auth: s.backendAuth ? backendAuthSummary(s.backendAuth) : null,
    shared_consoles: s.sharedConsoles ?? null,
    record: s.record ?? null,
  };
}

function backendAuth(input: ServerInput['backend_auth']): BackendAuth | null {
  if (!input) return null;
  const auth = { authSchemes: input.auth_schemes ?? null, vncUsername: input.vnc_username ?? null, vncPassword: input.vnc_password ?? null, tlsServerName: input.tls_server_name ?? null };
  return Object.values(auth).every((v) => v === null) ? null : auth;
}

/** The audit trail's `by` for an API caller's action; undefined: the trail is not wired. */
export function auditBy(ctx: ApiContext, caller: Caller): AuditBy | undefined {
  return ctx.audit ? { recorder: ctx.audit, actor: { user: caller.user, project: caller.project } } : undefined;
}

export function registerAdmin(app: FastifyInstance, ctx: ApiContext): void {
  const admin = { preHandler: async (req: { caller: Parameters<typeof authorize>[0] }) => authorize(req.caller, 'admin', 'porthole:admin') };
  const inv = ctx.stores.inventory;

  function fromInput(id: string, body: ServerInput): Server {
    // Nova's words for a failed `format: uuid` (its FormatChecker: "%r is not a %r")
    if (!isUuid(id)) throw badRequest(`Invalid input for field/attribute id. Value: ${pyStr(id)}. ${pyRepr(id)} is not a 'uuid'`);
    return {
      id: id.toLowerCase(),
      name: body.name,
      projectId: body.project_id ?? null,
      status: (body.status ?? 'ACTIVE').toUpperCase(),
      vnc: body.vnc ?? null,
      serial: body.serial ?? null,
      spice: body.spice ? { host: body.spice.host, port: body.spice.port, tlsPort: body.spice.tls_port ?? null } : null,
      backendAuth: backendAuth(body.backend_auth),
      sharedConsoles: body.shared_consoles ?? null,
      record: body.record ?? null,
    };
  }

  app.get('/porthole/v1/servers', { ...admin, schema: { tags: ['admin'], summary: 'List the inventory', response: { 200: { type: 'object', properties: { servers: { type: 'array', items: serverOutput } } } } } }, async () => ({
    servers: (await inv.list()).map(toJson),
  }));
  app.post<{ Body: ServerInput }>('/porthole/v1/servers', { ...admin, schema: { tags: ['admin'], summary: 'Register a server (id generated when absent)', body: serverInput, response: { 201: { type: 'object', properties: { server: serverOutput } } } } }, async (req, reply) => {
    const server = fromInput(req.body.id ?? crypto.randomUUID(), req.body);
    if (await inv.get(server.id)) throw badRequest(`Server ${server.id} already exists; use PUT to replace it`);
    await inv.put(server);
    reply.code(201);
    return { server: toJson(server) };
  });
  app.get<{ Params: { id: string } }>('/porthole/v1/servers/:id', { ...admin, schema: { tags: ['admin'], summary: 'Show a server', params: idParams, response: { 200: { type: 'object', properties: { server: serverOutput } } } } }, async (req) => {
    const s = await inv.get(req.params.id);
    if (!s) throw notFound(`Server ${req.params.id} could not be found.`);
    return { server: toJson(s) };
  });
  app.put<{ Params: { id: string }; Body: ServerInput }>('/porthole/v1/servers/:id', { ...admin, schema: { tags: ['admin'], summary: 'Register or replace a server', params: idParams, body: serverInput, response: { 200: { type: 'object', properties: { server: serverOutput } } } } }, async (req) => {
    if (req.body.id !== undefined && req.body.id.toLowerCase() !== req.params.id.toLowerCase()) throw badRequest('The id in the body differs from the id in the URL');
    const server = fromInput(req.params.id, req.body);
    await inv.put(server);
    return { server: toJson(server) };
  });
  app.delete<{ Params: { id: string } }>('/porthole/v1/servers/:id', { ...admin, schema: { tags: ['admin'], summary: 'Remove a server and revoke its tokens', params: idParams } }, async (req, reply) => {
    if (!(await inv.remove(req.params.id))) throw notFound(`Server ${req.params.id} could not be found.`);
    await revokeServerTokens(ctx.stores.tokens, req.params.id.toLowerCase(), auditBy(ctx, req.caller), 'server removed from the inventory: every token of it revoked');
    reply.code(204);
  });
  app.delete<{ Params: { id: string } }>('/porthole/v1/servers/:id/tokens', { ...admin, schema: { tags: ['admin'], summary: 'Revoke every console token of a server', params: idParams, response: { 200: { type: 'object', properties: { revoked: { type: 'integer' } } } } } }, async (req) => ({
    revoked: await revokeServerTokens(ctx.stores.tokens, req.params.id.toLowerCase(), auditBy(ctx, req.caller)),
  }));
  app.delete<{ Params: { token: string } }>('/porthole/v1/tokens/:token', { ...admin, schema: { tags: ['admin'], summary: 'Revoke one console token', params: { type: 'object', properties: { token: { type: 'string', maxLength: 255 } }, required: ['token'] } } }, async (req, reply) => {
    if (!(await revokeToken(ctx.stores.tokens, req.params.token, auditBy(ctx, req.caller)))) throw notFound('Token not found');
    reply.code(204);
  });
  if (ctx.registry) registerSessions(app, ctx.registry, admin, ctx);
  app.get('/porthole/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}

const sessionOutput = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    proxy_id: { type: 'string' },
    proxy_address: { type: 'string', nullable: true },
    console_type: { type: 'string' },
    instance_uuid: { type: 'string' },
    server_name: { type: 'string', nullable: true },
    client: { type: 'string' },
    backend: { type: 'string' },
    token_hash_prefix: { type: 'string', description: 'first 8 hex digits of the token\'s SHA-256, as in the log' },
    started_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time', description: 'when the byte counts were written (the proxy\'s last heartbeat)' },
    bytes_from_client: { type: 'integer' },
    bytes_from_backend: { type: 'integer' },
    viewer: { type: 'string', nullable: true, description: 'who is at the console: the token\'s label, else the API user (or cli:<user>) who minted it' },
    shared_console: { type: 'string', nullable: true, description: 'on a shared console: its id, the same for every viewer of it' },
    role: { type: 'string', enum: ['control', 'view'], nullable: true, description: 'on a shared console: in control or watching' },
    recording: { type: 'string', nullable: true, description: 'the id of this session\'s recording (GET /porthole/v1/recordings/{id})' },
  },
};
const proxyOutput = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    address: { type: 'string' },
    hostname: { type: 'string' },
    pid: { type: 'integer' },
    started_at: { type: 'string', format: 'date-time' },
    heartbeat_at: { type: 'string', format: 'date-time' },
    draining: { type: 'boolean' },
    sessions: { type: 'integer' },
  },
};

/** `GET /porthole/v1/sessions` and `DELETE /porthole/v1/sessions/{id}`: every proxy's, through the shared registry. */
function registerSessions(app: FastifyInstance, sessions: Sessions, admin: object, ctx: ApiContext): void {
  app.get('/porthole/v1/sessions', { ...admin, schema: { tags: ['admin'], summary: 'List the live console sessions of every proxy, and the proxies', response: { 200: { type: 'object', properties: { sessions: { type: 'array', items: sessionOutput }, proxies: { type: 'array', items: proxyOutput } } } } } }, async () => listingJson(await sessions.list()));
  app.delete<{ Params: { id: string } }>('/porthole/v1/sessions/:id', { ...admin, schema: { tags: ['admin'], summary: 'Close a live console session on whichever proxy holds it: 204 when it is closed, 202 when its proxy was asked but had not closed it within 3 s', params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } } }, async (req, reply) => {
    const result = await sessions.kill(req.params.id, undefined, auditBy(ctx, req.caller));
    if (result === 'unknown') throw notFound(`Session ${req.params.id} could not be found.`);
    reply.code(result === 'closed' ? 204 : 202);
  });
  app.post<{ Params: { id: string } }>('/porthole/v1/sessions/:id/shadow', { ...admin, schema: { tags: ['admin'], summary: 'Watch a live noVNC session view-only: a short-lived view-only console URL that joins the session\'s shared console (the other viewers see the admin\'s name). 409 when the server\'s consoles are not shared: a view-only viewer needs them', params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] }, response: { 200: { type: 'object', properties: { url: { type: 'string' }, expires_at: { type: 'string', format: 'date-time' }, instance_uuid: { type: 'string' }, label: { type: 'string' } } } } } }, async (req) => {
    const shadow = await shadowSession(
      { tokens: ctx.stores.tokens, inventory: ctx.stores.inventory, tokenExtras: ctx.stores.tokenExtras, sessions, sharedConsoles: ctx.config.porthole.shared_consoles, base: ctx.consoleBaseUrl(novnc) },
      { sessionId: req.params.id, admin: req.caller.user, audit: auditBy(ctx, req.caller) },
    );
    return { url: shadow.url, expires_at: new Date(shadow.expires * 1000).toISOString(), instance_uuid: shadow.instanceUuid, label: shadow.label };
  });
}
