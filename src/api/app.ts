/**
 * @module api/app
 * The compute API server: Fastify with a JSON schema on every route, checked as Nova's
 * jsonschema checks (no type coercion, nothing stripped or defaulted), Nova's request handling
 * around them (microversion headers in and out, credentials, the `{project_id}` of the URL
 * matched against the caller's, bodies parsed as JSON when their type is JSON, plain text or
 * absent, and bounded in size), and one error renderer. Requests are logged by route pattern,
 * never by URL, since a console token can be part of a URL.
 */
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifySchema } from 'fastify';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.ts';
import { registerAdmin } from './admin.ts';
import { ConsoleRequestLimit, consoleRequestLimitOptions, registerConsoleRequestLimit } from './rate-limit.ts';
import { registerSerialLog } from './serial-log.ts';
import { registerEvents } from './events.ts';
import { registerScreenshots } from './screenshots.ts';
import { registerRecordings } from './recordings.ts';
import { createAuthenticator } from './auth.ts';
import { registerConsoleAuthTokens } from './console-auth-tokens.ts';
import type { ApiContext } from './context.ts';
import { faultBody, handleError } from './errors.ts';
import { formatVersion, MAX_VERSION, MIN_VERSION, requestedVersion, versionHeaders } from './microversion.ts';
import { registerRemoteConsoles } from './remote-consoles.ts';
import { registerServers } from './servers.ts';
import { registerVersions } from './versions.ts';

export async function createApi(ctx: ApiContext, log: Logger): Promise<FastifyInstance> {
  const authenticate = await createAuthenticator(ctx.config, log);
  const app = Fastify({
    loggerInstance: log.child({ component: 'api' }) as FastifyBaseLogger,
    // request lines are ours (by route pattern): Fastify's would log URLs, which can hold tokens
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.config.porthole.api_max_body_size,
    // an upgrade-free JSON API: bound the time a client may take to send its request
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 255 },
    // Nova's jsonschema never coerces, strips or fills in: `"protocol": ["vnc"]`, `"port": "5900"`,
    // `true` for an integer are 400, as is an unknown field. Fastify's Ajv defaults do all three
    // (coerceTypes 'array', removeAdditional, useDefaults); a query's values are strings, and
    // its routes say so in their schemas (servers.ts) rather than having them coerced.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    // a URL Fastify cannot route (bad percent-encoding, an over-long parameter) gets Nova's body too
    frameworkErrors: handleError,
    // HTTPS: an https.Server, whose secure context a certificate reload replaces (gateway.ts)
    ...(ctx.https ? { https: ctx.https } : {}),
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'Porthole API', version: formatVersion(MAX_VERSION), description: `OpenStack Compute (Nova) remote-console routes, microversions ${formatVersion(MIN_VERSION)}-${formatVersion(MAX_VERSION)}, and Porthole's admin API.` },
      components: { securitySchemes: { authToken: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' } } },
      security: [{ authToken: [] }],
    },
    // one params schema serves both URL forms of a compute route; OpenAPI allows only the path's own
    transform: ({ schema, url }) => ({ schema: pathParamsOnly(schema, url), url }),
  });

  // Nova treats a body without Content-Type, or text/plain, as JSON; other types are 415
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => parseJson(body as string, done));
  app.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
    if (req.headers['content-type'] === undefined) parseJson(body as string, done);
    else done(new GatewayError('UNSUPPORTED_MEDIA_TYPE', `Content-Type ${req.headers['content-type']} refused`, { status: 415, clientMessage: 'Unsupported Content-Type' }), undefined);
  });

  app.decorateRequest('caller', null as never);
  app.decorateRequest('microversion', null as never);
  app.addHook('onRequest', async (req, reply) => {
    req.microversion = MIN_VERSION;
    req.microversion = requestedVersion(req.headers);
    void reply.headers(versionHeaders(req.microversion));
  });
  // credentials before the body is read or validated, as Nova's auth middleware sits in front of
  // everything: an unauthenticated caller learns nothing from the schema and costs no parsing
  app.addHook('onRequest', async (req) => {
    if (req.routeOptions.config.public) return;
    req.caller = await authenticate(req.headers);
    const projectInUrl = (req.params as { project_id?: string } | undefined)?.project_id;
    if (projectInUrl !== undefined && projectInUrl !== req.caller.project) {
      throw new GatewayError('BAD_REQUEST', `Malformed request URL: URL's project_id '${projectInUrl}' doesn't match Context's project_id '${req.caller.project}'`, { status: 400 });
    }
  });
  // after the credentials: a project's remote-console requests per minute ([porthole] api_console_requests_per_minute)
  registerConsoleRequestLimit(app, new ConsoleRequestLimit(consoleRequestLimitOptions(ctx.config, ctx.stores.lookupFailures ?? null, log)));
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    ctx.ops?.apiRequest(route, req.method, reply.statusCode, reply.elapsedTime);
    req.log[req.routeOptions.config.probe ? 'debug' : 'info']({ event: 'api_request', method: req.method, route, status: reply.statusCode, user: req.caller?.user, project: req.caller?.project, ms: Math.round(reply.elapsedTime) }, 'api request');
  });
  // keystonemiddleware names the Keystone to authenticate with on every 401 (process_response)
  const challenge = authenticate.challenge;
  if (challenge) {
    app.addHook('onSend', async (_req, reply, payload) => {
      if (reply.statusCode === 401) void reply.header('WWW-Authenticate', challenge);
      return payload;
    });
  }
  app.addHook('onClose', async () => authenticate.close?.());
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((req, reply) => {
    void reply.headers(versionHeaders(req.microversion ?? MIN_VERSION)).code(404).send(faultBody(404, 'The resource could not be found.'));
  });

  registerVersions(app);
  registerServers(app, ctx);
  registerRemoteConsoles(app, ctx);
  registerConsoleAuthTokens(app, ctx);
  registerAdmin(app, ctx);
  registerSerialLog(app, ctx);
  registerEvents(app, ctx);
  registerScreenshots(app, ctx);
  registerRecordings(app, ctx);
  for (const path of ctx.ops?.paths ?? []) {
    app.get(path, { config: { public: true, probe: true }, schema: { hide: true } }, async (_req, reply) => {
      const a = await ctx.ops!.answer(path);
      return reply.code(a.status).type(a.contentType).header('Cache-Control', 'no-store').send(a.body);
    });
  }
  await app.ready();
  return app;
}

function pathParamsOnly(schema: FastifySchema, url: string): FastifySchema {
  const params = schema?.params as { properties?: Record<string, unknown>; required?: string[] } | undefined;
  if (!params?.properties) return schema;
  const inUrl = new Set([...url.matchAll(/:(\w+)/g)].map((m) => m[1]));
  return {
    ...schema,
    params: { ...params, properties: Object.fromEntries(Object.entries(params.properties).filter(([k]) => inUrl.has(k))), required: params.required?.filter((k) => inUrl.has(k)) },
  };
}

function parseJson(body: string, done: (err: Error | null, value?: unknown) => void): void {
  if (body.trim() === '') {
    done(null, undefined);
    return;
  }
  try {
    done(null, JSON.parse(body));
  } catch {
    done(new GatewayError('BAD_REQUEST', 'request body is not JSON', { status: 400, clientMessage: 'Malformed request body' }));
  }
}
