/**
 * @module api/servers
 * `GET /servers`, `/servers/detail`, `/servers/{id}`: the inventory in the shape of Nova's
 * server views: the brief view (id, name, links) clients use to resolve a name to an id, and
 * the detailed view of the request's microversion (`server-view.ts`) that `openstack server
 * list` and `server show` read. Readers and members see their project's servers, admins all. `?name=`
 * filters as Nova's regular-expression filter does for the forms clients send (a name,
 * `^name$`, a prefix with `^`), matched literally so a request can never run a costly
 * expression.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Server } from '../inventory/types.ts';
import { COMPUTE_PREFIXES, type ApiContext } from './context.ts';
import { baseUrl } from './versions.ts';
import { authorize, canSee, visibleServer } from './policy.ts';
import { serverDetail } from './server-view.ts';

const POLICY = 'os_compute_api:servers:index';

const linkArray = { type: 'array', items: { type: 'object', properties: { rel: { type: 'string' }, href: { type: 'string' } } } };
const serverBrief = { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, links: linkArray } };
// the fields every microversion has; the rest (extended attributes, microversion additions) pass as they are
const serverDetailSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    status: { type: 'string' },
    tenant_id: { type: 'string' },
    user_id: { type: 'string' },
    metadata: { type: 'object', additionalProperties: true },
    hostId: { type: 'string' },
    image: { anyOf: [{ type: 'string' }, { type: 'object', additionalProperties: true }] },
    flavor: { type: 'object', additionalProperties: true },
    addresses: { type: 'object', additionalProperties: true },
    accessIPv4: { type: 'string' },
    accessIPv6: { type: 'string' },
    links: linkArray,
  },
  additionalProperties: true,
};
const idParams = { type: 'object', properties: { server_id: { type: 'string', maxLength: 255 }, project_id: { type: 'string', maxLength: 255 } }, required: ['server_id'] };
/**
 * Nova's query schema form: every parameter is the list of its values (webob's dict_of_lists,
 * since `?limit=1&limit=2` is legal) and each value a string, checked as a string (Nova's
 * pagination_parameters: `limit` matches `^[0-9]*$`), never coerced; the last value counts, as
 * webob's `GET[name]` takes it. `name` and `marker` are bounded here, which Nova does not do.
 */
const multi = (item: object) => ({ type: 'array', items: item });
const listQuery = {
  type: 'object',
  properties: {
    name: multi({ type: 'string', maxLength: 255 }),
    limit: multi({ type: 'string', pattern: '^[0-9]*$', minLength: 1 }),
    marker: multi({ type: 'string', maxLength: 255 }),
  },
  additionalProperties: true,
};

type ListQuery = { name?: string[]; limit?: string[]; marker?: string[] };

/** The query as Nova's schema sees it: each parameter's values as a list, however many were sent. */
async function queryAsLists(req: FastifyRequest): Promise<void> {
  const query = req.query as Record<string, string | string[]>;
  req.query = Object.fromEntries(Object.entries(query).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]));
}

export function nameMatches(name: string, filter: string): boolean {
  const anchoredStart = filter.startsWith('^');
  const anchoredEnd = filter.endsWith('$') && !filter.endsWith('\\$');
  const core = filter.slice(anchoredStart ? 1 : 0, anchoredEnd ? -1 : undefined);
  if (anchoredStart && anchoredEnd) return name === core;
  if (anchoredStart) return name.startsWith(core);
  if (anchoredEnd) return name.endsWith(core);
  return name.includes(core);
}

function links(req: FastifyRequest, server: Server) {
  const base = baseUrl(req);
  const project = server.projectId ?? req.caller.project;
  return [
    { rel: 'self', href: `${base}/v2.1/${project}/servers/${server.id}` },
    { rel: 'bookmark', href: `${base}/${project}/servers/${server.id}` },
  ];
}

function detail(req: FastifyRequest, s: Server) {
  return serverDetail(s, req.microversion, links(req, s));
}

export function registerServers(app: FastifyInstance, ctx: ApiContext): void {
  async function listed(req: FastifyRequest<{ Querystring: ListQuery }>): Promise<Server[]> {
    authorize(req.caller, 'project_reader_or_admin', POLICY);
    let servers = (await ctx.stores.inventory.list()).filter((s) => canSee(req.caller, s));
    const name = req.query.name?.at(-1);
    const marker = req.query.marker?.at(-1);
    const limit = req.query.limit === undefined ? undefined : Number(req.query.limit.at(-1));
    if (name !== undefined) servers = servers.filter((s) => nameMatches(s.name, name));
    if (marker !== undefined) servers = servers.slice(servers.findIndex((s) => s.id === marker) + 1);
    if (limit !== undefined) servers = servers.slice(0, limit);
    return servers;
  }

  for (const prefix of COMPUTE_PREFIXES) {
    app.get<{ Querystring: ListQuery }>(`${prefix}/servers`, { preValidation: queryAsLists, schema: { tags: ['compute'], summary: 'List servers', querystring: listQuery, response: { 200: { type: 'object', properties: { servers: { type: 'array', items: serverBrief } } } } } }, async (req) => ({
      servers: (await listed(req)).map((s) => ({ id: s.id, name: s.name, links: links(req, s) })),
    }));
    app.get<{ Querystring: ListQuery }>(`${prefix}/servers/detail`, { preValidation: queryAsLists, schema: { tags: ['compute'], summary: 'List servers with details', querystring: listQuery, response: { 200: { type: 'object', properties: { servers: { type: 'array', items: serverDetailSchema } } } } } }, async (req) => ({
      servers: (await listed(req)).map((s) => detail(req, s)),
    }));
    app.get<{ Params: { server_id: string } }>(`${prefix}/servers/:server_id`, { schema: { tags: ['compute'], summary: 'Show a server', params: idParams, response: { 200: { type: 'object', properties: { server: serverDetailSchema } } } } }, async (req) => {
      authorize(req.caller, 'project_reader_or_admin', 'os_compute_api:servers:show');
      const server = visibleServer(req.caller, await ctx.stores.inventory.get(req.params.server_id), req.params.server_id);
      return { server: detail(req, server) };
    });
  }
}
