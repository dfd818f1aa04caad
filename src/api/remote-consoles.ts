/**
 * @module api/remote-consoles
 * `POST /servers/{id}/remote-consoles` (2.6+) and the legacy `os-get*Console` server actions
 * (2.1–2.5), as Nova's RemoteConsolesController: the body schema of each microversion (2.6,
 * 2.8 adds `mks`/`webmks`, 2.99 `spice-direct`), then the server (404 when unknown or another
 * project's), the policy, the protocol/type pair (400 "Invalid console type"), what this
 * deployment offers (400 "Unavailable console type" when switched off, 501 for kinds Porthole
 * has no driver for), the server's state (409), its endpoint of that kind (409 "not ready" for a
 * server with no console endpoint at all, 400 "Unavailable console type vnc|serial|spice." for one
 * without this kind's, as Nova's libvirt driver), and a token valid `[consoleauth] token_ttl`
 * seconds in a URL built as Nova builds it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '../errors.ts';
import type { Server } from '../inventory/types.ts';
import { kindOfProtocol, type ConsoleKind } from '../consoles/index.ts';
import { mintConsoleToken } from '../consoles/mint.ts';
import { COMPUTE_PREFIXES, type ApiContext } from './context.ts';
import { badRequest, notFound, schemaRefusal } from './errors.ts';
import { atLeast, type Microversion } from './microversion.ts';
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

/**
 * Nova's request schemas (nova/api/openstack/compute/schemas/remote_consoles.py), keyword for
 * keyword and in the same order, since the order decides which error Nova reports first.
 */
function createSchema(protocols: readonly string[], types: readonly string[]) {
  return {
    type: 'object',
    properties: {
      remote_console: {
        type: 'object',
        properties: {
          protocol: { type: 'string', enum: [...protocols] },
          type: { type: 'string', enum: [...types] },
        },
        required: ['protocol', 'type'],
        additionalProperties: false,
      },
    },
    required: ['remote_console'],
    additionalProperties: false,
  } as const;
}

const CREATE_V26 = createSchema(PROTOCOLS_26, TYPES_26);
const CREATE_V28 = createSchema([...PROTOCOLS_26, 'mks'], [...TYPES_26, 'webmks']);
const CREATE_V299 = createSchema([...PROTOCOLS_26, 'mks'], [...TYPES_26, 'webmks', 'spice-direct']);

/** The schema Nova's create() takes at a microversion (its @validation.schema decorators). */
function createSchemaAt(v: Microversion) {
  return atLeast(v, 99) ? CREATE_V299 : atLeast(v, 8) ? CREATE_V28 : CREATE_V26;
}

const LEGACY_ACTIONS: Record<string, { protocol: string; types: readonly string[] }> = {
  'os-getVNCConsole': { protocol: 'vnc', types: ['novnc', 'xvpvnc'] },
  'os-getSPICEConsole': { protocol: 'spice', types: ['spice-html5'] },
  'os-getRDPConsole': { protocol: 'rdp', types: ['rdp-html5'] },
  'os-getSerialConsole': { protocol: 'serial', types: ['serial'] },
};

/** Nova's get_vnc_console, get_spice_console, ... schemas: one per action. */
const LEGACY_SCHEMAS = Object.fromEntries(
  Object.entries(LEGACY_ACTIONS).map(([name, { types }]) => [
    name,
    {
      type: 'object',
      properties: { [name]: { type: 'object', properties: { type: { type: 'string', enum: [...types] } }, required: ['type'], additionalProperties: false } },
      required: [name],
      additionalProperties: false,
    },
  ]),
);

const params = { type: 'object', properties: { server_id: { type: 'string', maxLength: 255 }, project_id: { type: 'string', maxLength: 255 } }, required: ['server_id'] };

interface CreateBody {
  remote_console: { protocol: string; type: string };
}

/** The body against `schema` with the route's Ajv (no coercion); refused in Nova's words. */
function checkBody(req: FastifyRequest, schema: object): void {
  const validate = req.compileValidationSchema(schema);
  if (!validate(req.body ?? null)) throw schemaRefusal(schema, req.body, 'body', validate.errors);
}

/**
 * The action a server-action body names, as Nova's wsgi.action_peek finds it and its caller
 * (Resource._process_stack) answers a failure: no JSON or not exactly one key is 400 "Malformed
 * request body"; a body with no len() (a number, true, null) or a one-element list or one-letter
 * string (len() 1 but no keys()) is the plain 404 of a method that is not there.
 */
function actionName(body: unknown): string {
  const malformed = () => badRequest('Malformed request body');
  if (body === undefined) throw malformed();
  if (body === null || typeof body === 'number' || typeof body === 'boolean') throw notFound();
  const size = typeof body === 'string' ? [...body].length : Array.isArray(body) ? body.length : Object.keys(body).length;
  if (size !== 1) throw malformed();
  if (typeof body === 'string' || Array.isArray(body)) throw notFound();
  return Object.keys(body)[0]!;
}

export function registerRemoteConsoles(app: FastifyInstance, ctx: ApiContext): void {
  async function mint(req: FastifyRequest<{ Params: { server_id: string } }>, protocol: string, type: string): Promise<string> {
    const server = visibleServer(req.caller, await ctx.stores.inventory.get(req.params.server_id), req.params.server_id);
    authorize(req.caller, 'project_member_or_admin', POLICY);
    if (!TYPE_OF_PROTOCOL[protocol]!.includes(type)) throw badRequest(`Invalid console type ${type}`);
    const kind = kindOfProtocol(protocol);
    if (!kind || !kind.consoleTypes.includes(type)) {
      throw new GatewayError('NOT_IMPLEMENTED', `${protocol} consoles are not offered by this deployment`, { status: 501, clientMessage: 'The requested functionality is not supported.' });
    }
    if (!kind.listener(ctx.config).enabled) throw badRequest(`Unavailable console type ${type}.`);
    checkState(server, kind);
    const audit = ctx.audit ? { recorder: ctx.audit, actor: { user: req.caller.user, project: req.caller.project } } : undefined;
    // who minted it, for the viewer lists of shared consoles and the sessions list; never in Nova's body
    const extras = { label: null, mintedBy: req.caller.user, control: false, record: false };
    const warn = (message: string) => req.log.warn({ event: 'token_extras', instance: server.id }, message);
    const { url } = await mintConsoleToken(ctx.stores, { kind, consoleType: type, instanceUuid: server.id, server, base: ctx.consoleBaseUrl(kind), ttl: ctx.config.consoleauth.token_ttl, audit, extras, warn });
    req.log.info({ event: 'console_url', instance: server.id, user: req.caller.user, project: req.caller.project, protocol, type }, 'console URL minted');
    return url;
  }

  for (const prefix of COMPUTE_PREFIXES) {
    app.post<{ Params: { server_id: string }; Body: CreateBody }>(
      `${prefix}/servers/:server_id/remote-consoles`,
      {
        // the route's schema is the latest microversion's (for the OpenAPI document); the
        // caller's own microversion's schema is checked first, so its error is the one reported
        schema: { tags: ['compute'], summary: 'Create a remote console (microversion 2.6+)', params, body: CREATE_V299, response: { 200: { type: 'object', properties: { remote_console: { type: 'object', properties: { protocol: { type: 'string' }, type: { type: 'string' }, url: { type: 'string' } } } } } } },
        preValidation: async (req) => {
          // before 2.6 the method does not exist, whatever the body, as in Nova
          if (!atLeast(req.microversion, 6)) throw notFound();
          checkBody(req, createSchemaAt(req.microversion));
        },
      },
      async (req) => {
        const { protocol, type } = req.body.remote_console;
        return { remote_console: { protocol, type, url: await mint(req, protocol, type) } };
      },
    );

    app.post<{ Params: { server_id: string }; Body: Record<string, { type: string }> }>(
      `${prefix}/servers/:server_id/action`,
      {
        schema: {
          tags: ['compute'],
          summary: 'Server actions: os-getVNCConsole, os-getSPICEConsole, os-getRDPConsole, os-getSerialConsole (microversions 2.1-2.5)',
          params,
          body: { oneOf: Object.values(LEGACY_SCHEMAS) },
          response: { 200: { type: 'object', properties: { console: { type: 'object', properties: { type: { type: 'string' }, url: { type: 'string' } } } } } },
        },
        // Nova's order: which action, whether this microversion has it, then its schema
        preValidation: async (req) => {
          const name = actionName(req.body);
          // own keys only: `constructor` or `__proto__` must not find Object.prototype's
          if (!Object.hasOwn(LEGACY_ACTIONS, name)) throw badRequest(`There is no such action: ${name}`);
          // the console actions end at 2.5: later callers get the plain not-found of a missing method
          if (atLeast(req.microversion, 6)) throw notFound();
          checkBody(req, LEGACY_SCHEMAS[name]!);
        },
      },
      async (req) => {
        const name = Object.keys(req.body)[0]!;
        const { type } = req.body[name]!;
        return { console: { type, url: await mint(req, LEGACY_ACTIONS[name]!.protocol, type) } };
      },
    );
  }
}

function checkState(server: Server, kind: ConsoleKind): void {
  if (server.status !== 'ACTIVE') {
    const state = VM_STATE[server.status] ?? server.status.toLowerCase();
    throw new GatewayError('CONFLICT', `Cannot 'get_${kind.protocol}_console' instance ${server.id} while it is in vm_state ${state}`, { status: 409 });
  }
  if (kind.endpoint(server)) return;
  // no console at all: as Nova's check_instance_host for an instance without a host (409);
  // consoles, but not this one: as Nova's libvirt driver for a guest without that device
  // (ConsoleTypeUnavailable naming the protocol, 400), e.g. serial asked of a VNC-only server
  if (!server.vnc && !server.serial && !server.spice) throw new GatewayError('CONFLICT', `Instance ${server.id} is not ready`, { status: 409 });
  throw badRequest(`Unavailable console type ${kind.protocol}.`);
}
