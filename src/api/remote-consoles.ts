/**
 * @module api/remote-consoles
 * `POST /servers/{id}/remote-consoles` (2.6+) and the legacy `os-get*Console` server actions
 * (2.1–2.5), as Nova's RemoteConsolesController: the body schema of each microversion (2.6,
 * 2.8 adds `mks`/`webmks`, 2.99 `spice-direct`), then the server (404 when unknown or another
 * project's), the policy, the protocol/type pair (400 "Invalid console type"), what this
 * deployment offers (400 "Unavailable console type" when switched off, 501 for kinds Porthole
 * has no driver for), the server's state (409), and a token valid `[consoleauth] token_ttl`
 * seconds in a URL built as Nova builds it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '../errors.ts';
import type { Server } from '../inventory/types.ts';
import { accessUrl } from '../proxy/console-url.ts';
import { COMPUTE_PREFIXES, type ApiContext } from './context.ts';
import { badRequest, notFound, preview } from './errors.ts';
import { atLeast } from './microversion.ts';
import { authorize, visibleServer } from './policy.ts';

const POLICY = 'os_compute_api:os-remote-consoles';

const PROTOCOLS_26 = ['vnc', 'spice', 'rdp', 'serial'];
const TYPES_26 = ['novnc', 'xvpvnc', 'rdp-html5', 'spice-html5', 'serial'];

/** The console type each protocol's handler accepts (Nova's compute manager checks). */
const TYPE_OF_PROTOCOL: Record<string, readonly string[]> = {
  vnc: ['novnc'],
  spice: ['spice-html5', 'spice-direct'],
  rdp: ['rdp-html5'],
  serial: ['serial'],
  mks: ['webmks'],
};

/** Nova's `nova.compute.vm_states` word for each server status, for 409 messages. */
const VM_STATE: Record<string, string> = {
  SHUTOFF: 'stopped',
  PAUSED: 'paused',
  SUSPENDED: 'suspended',
  ERROR: 'error',
  BUILD: 'building',
  SHELVED: 'shelved',
  SHELVED_OFFLOADED: 'shelved_offloaded',
  RESCUE: 'rescued',
  RESIZE: 'resized',
  SOFT_DELETED: 'soft-delete',
  DELETED: 'deleted',
};

const remoteConsoleBody = {
  type: 'object',
  properties: {
    remote_console: {
      type: 'object',
      properties: {
        protocol: { type: 'string', enum: [...PROTOCOLS_26, 'mks'] },
        type: { type: 'string', enum: [...TYPES_26, 'webmks', 'spice-direct'] },
      },
      required: ['protocol', 'type'],
      additionalProperties: false,
    },
  },
  required: ['remote_console'],
  additionalProperties: false,
};

const LEGACY_ACTIONS: Record<string, { protocol: string; types: readonly string[] }> = {
  'os-getVNCConsole': { protocol: 'vnc', types: ['novnc', 'xvpvnc'] },
  'os-getSPICEConsole': { protocol: 'spice', types: ['spice-html5'] },
  'os-getRDPConsole': { protocol: 'rdp', types: ['rdp-html5'] },
  'os-getSerialConsole': { protocol: 'serial', types: ['serial'] },
};

const params = { type: 'object', properties: { server_id: { type: 'string', maxLength: 255 }, project_id: { type: 'string', maxLength: 255 } }, required: ['server_id'] };

interface CreateBody {
  remote_console: { protocol: string; type: string };
}

/** The schema of later microversions is the route's; earlier ones allow fewer values (Nova's create_v26). */
function checkMicroversionEnums(req: FastifyRequest, body: CreateBody): void {
  const { protocol, type } = body.remote_console;
  if (!atLeast(req.microversion, 8) && !PROTOCOLS_26.includes(protocol)) {
    throw badRequest(`Invalid input for field/attribute protocol. Value: ${protocol}. '${protocol}' is not one of ${JSON.stringify(PROTOCOLS_26)}`);
  }
  const types = atLeast(req.microversion, 99) ? [...TYPES_26, 'webmks', 'spice-direct'] : atLeast(req.microversion, 8) ? [...TYPES_26, 'webmks'] : TYPES_26;
  if (!types.includes(type)) throw badRequest(`Invalid input for field/attribute type. Value: ${type}. '${type}' is not one of ${JSON.stringify(types)}`);
}

export function registerRemoteConsoles(app: FastifyInstance, ctx: ApiContext): void {
  async function mint(req: FastifyRequest<{ Params: { server_id: string } }>, protocol: string, type: string): Promise<string> {
    const server = visibleServer(req.caller, await ctx.stores.inventory.get(req.params.server_id), req.params.server_id);
    authorize(req.caller, 'project_member_or_admin', POLICY);
    if (!TYPE_OF_PROTOCOL[protocol]!.includes(type)) throw badRequest(`Invalid console type ${type}`);
    if (protocol !== 'vnc') {
      throw new GatewayError('NOT_IMPLEMENTED', `${protocol} consoles are not offered by this deployment`, { status: 501, clientMessage: 'The requested functionality is not supported.' });
    }
    if (!ctx.config.vnc.enabled) throw badRequest(`Unavailable console type ${type}.`);
    checkState(server);
    const ttl = ctx.config.consoleauth.token_ttl;
    const base = ctx.novncBaseUrl();
    const { token } = await ctx.stores.tokens.create({ consoleType: type, host: server.vnc!.host, port: server.vnc!.port, instanceUuid: server.id, accessUrlBase: base, ttl });
    req.log.info({ event: 'console_url', instance: server.id, user: req.caller.user, project: req.caller.project, protocol, type }, 'console URL minted');
    return accessUrl(base, type, token);
  }

  for (const prefix of COMPUTE_PREFIXES) {
    app.post<{ Params: { server_id: string }; Body: CreateBody }>(
      `${prefix}/servers/:server_id/remote-consoles`,
      { schema: { tags: ['compute'], summary: 'Create a remote console (microversion 2.6+)', params, body: remoteConsoleBody, response: { 200: { type: 'object', properties: { remote_console: { type: 'object', properties: { protocol: { type: 'string' }, type: { type: 'string' }, url: { type: 'string' } } } } } } } },
      async (req) => {
        // before 2.6 the route does not exist, as in Nova
        if (!atLeast(req.microversion, 6)) throw notFound();
        checkMicroversionEnums(req, req.body);
        const { protocol, type } = req.body.remote_console;
        return { remote_console: { protocol, type, url: await mint(req, protocol, type) } };
      },
    );

    app.post<{ Params: { server_id: string }; Body: Record<string, unknown> }>(
      `${prefix}/servers/:server_id/action`,
      {
        schema: {
          tags: ['compute'],
          summary: 'Server actions: os-getVNCConsole, os-getSPICEConsole, os-getRDPConsole, os-getSerialConsole (microversions 2.1-2.5)',
          params,
          body: { type: 'object', minProperties: 1, maxProperties: 1, additionalProperties: { type: ['object', 'null'] } },
          response: { 200: { type: 'object', properties: { console: { type: 'object', properties: { type: { type: 'string' }, url: { type: 'string' } } } } } },
        },
      },
      async (req) => {
        const name = Object.keys(req.body)[0]!;
        // own keys only: `constructor` or `__proto__` must not find Object.prototype's
        const action = Object.hasOwn(LEGACY_ACTIONS, name) ? LEGACY_ACTIONS[name] : undefined;
        if (!action) throw badRequest(`There is no such action: ${name}`);
        // the console actions end at 2.5: later callers get the plain not-found of a missing method
        if (atLeast(req.microversion, 6)) throw notFound();
        const args = req.body[name] as { type?: unknown } | null;
        if (args === null || typeof args !== 'object' || Object.keys(args).some((k) => k !== 'type')) {
          throw badRequest(`Invalid input for field/attribute ${name}. Value: ${preview(args)}. Additional properties are not allowed`);
        }
        if (typeof args.type !== 'string') throw badRequest(`Invalid input for field/attribute ${name}. Value: ${preview(args)}. 'type' is a required property`);
        if (!action.types.includes(args.type)) throw badRequest(`Invalid input for field/attribute type. Value: ${args.type}. '${args.type}' is not one of ${JSON.stringify(action.types)}`);
        return { console: { type: args.type, url: await mint(req, action.protocol, args.type) } };
      },
    );
  }
}

function checkState(server: Server): void {
  if (server.status !== 'ACTIVE') {
    const state = VM_STATE[server.status] ?? server.status.toLowerCase();
    throw new GatewayError('CONFLICT', `Cannot 'get_vnc_console' instance ${server.id} while it is in vm_state ${state}`, { status: 409 });
  }
  if (!server.vnc) throw new GatewayError('CONFLICT', `Instance ${server.id} is not ready`, { status: 409 });
}
