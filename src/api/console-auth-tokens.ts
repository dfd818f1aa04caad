/**
 * @module api/console-auth-tokens
 * `GET /os-console-auth-tokens/{console_token}` (admin), as Nova's ConsoleAuthTokensController:
 * before 2.31 only `rdp-html5` tokens are shown (others 401), 404 for unknown or expired
 * tokens, `tls_port` from 2.99. The token is in the URL, so the request log carries only the
 * route pattern, never the URL.
 */
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors.ts';
import { COMPUTE_PREFIXES, type ApiContext } from './context.ts';
import { badRequest, notFound } from './errors.ts';
import { atLeast } from './microversion.ts';
import { authorize } from './policy.ts';

export function registerConsoleAuthTokens(app: FastifyInstance, ctx: ApiContext): void {
  for (const prefix of COMPUTE_PREFIXES) {
    app.get<{ Params: { console_token: string } }>(
      `${prefix}/os-console-auth-tokens/:console_token`,
      {
        schema: {
          tags: ['compute'],
          summary: 'Show console connection information (admin)',
          params: { type: 'object', properties: { console_token: { type: 'string', maxLength: 255 }, project_id: { type: 'string', maxLength: 255 } }, required: ['console_token'] },
          response: { 200: { type: 'object', properties: { console: { type: 'object', properties: { instance_uuid: { type: 'string' }, host: { type: 'string' }, port: { type: 'integer' }, tls_port: { type: 'integer', nullable: true }, internal_access_path: { type: 'string', nullable: true } } } } } },
        },
      },
      async (req) => {
        authorize(req.caller, 'admin', 'os_compute_api:os-console-auth-tokens');
        const token = req.params.console_token;
        if (!token) throw badRequest('token not provided');
        const found = await ctx.stores.tokens.lookup(token);
        if (found.status !== 'valid') throw notFound('Token not found');
        const t = found.token;
        if (!atLeast(req.microversion, 31) && t.consoleType !== 'rdp-html5') {
          throw new GatewayError('UNAUTHORIZED', 'The requested console type details are not accessible', { status: 401 });
        }
        return {
          console: {
            instance_uuid: t.instanceUuid,
            host: t.host,
            port: t.port,
            ...(atLeast(req.microversion, 99) ? { tls_port: t.tlsPort } : {}),
            internal_access_path: t.internalAccessPath,
          },
        };
      },
    );
  }
}
