/**
 * @module api/screenshots
 * `GET /porthole/v1/servers/{id}/screenshot[?width=N]`: a PNG of the server's VNC console as it
 * is now (`image/png`, `Cache-Control: no-store`: a screen is never the same twice, and may show
 * what a cache must not keep). Admins, or members of the server's project under
 * `porthole:servers:screenshot` (policy.ts); a server of another project is not found, as in
 * Nova. The picture comes from the screenshot service the gateway hands over (`ctx.screenshot`:
 * a live shared console's framebuffer, or a short connection of its own through the security
 * proxy); this module never sees RFB or a socket. `X-Porthole-Screenshot-Source` says which
 * (`live` or `connection`).
 *
 * 400 for a width that is not a whole number of at least 16 (wider than the screen is the
 * screen's own size: never scaled up); 404 unknown server; 409 no VNC console, or a process
 * that takes no screenshots; 502 when the console cannot be reached or authenticated, 504 when
 * it did not send its screen within `[porthole] screenshot_timeout`. Every error has Nova's body.
 */
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors.ts';
import { auditBy } from './admin.ts';
import type { ApiContext } from './context.ts';
import { badRequest } from './errors.ts';
import { authorize, SCREENSHOT_POLICY, visibleServer } from './policy.ts';

/** The narrowest screenshot (as `rfb/screenshot.ts`, which the API may not import; the service checks it again). */
const MIN_WIDTH = 16;
/** No console is wider (RFB's framebuffer bound in Porthole is 16384 a side). */
const MAX_WIDTH = 16384;

export function registerScreenshots(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Params: { id: string }; Querystring: { width?: string } }>(
    '/porthole/v1/servers/:id/screenshot',
    {
      schema: {
        tags: ['admin'],
        summary: 'A PNG of the server\'s VNC console as it is now (admins, or members of its project: porthole:servers:screenshot), optionally scaled down to a width',
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 36 } }, required: ['id'] },
        // a query's values are strings (no coercion, app.ts): the width is checked as digits here, its range below
        querystring: { type: 'object', properties: { width: { type: 'string', pattern: '^[0-9]{1,5}$', description: `Scale down to this many pixels wide, aspect ratio kept (${MIN_WIDTH} at least; wider than the screen: its own size)` } }, additionalProperties: true },
        response: {
          200: {
            description: 'The screen as a PNG (RGB, 8 bits a channel); X-Porthole-Screenshot-Source: live (a shared console\'s framebuffer) or connection',
            content: { 'image/png': { schema: { type: 'string', format: 'binary' } } },
          },
        },
      },
    },
    async (req, reply) => {
      const { name, rule } = SCREENSHOT_POLICY;
      authorize(req.caller, rule, name);
      const server = visibleServer(req.caller, await ctx.stores.inventory.get(req.params.id.toLowerCase()), req.params.id);
      let width: number | undefined;
      if (req.query.width !== undefined) {
        width = Number(req.query.width);
        if (width < MIN_WIDTH || width > MAX_WIDTH) throw badRequest(`Invalid input for query parameter width. Value: ${req.query.width}. Expected a whole number from ${MIN_WIDTH} to ${MAX_WIDTH}`);
      }
      if (!ctx.screenshot) throw new GatewayError('CONFLICT', 'this process takes no screenshots (no screenshot service wired)', { status: 409, clientMessage: 'Screenshots are not available from this API process' });
      const by = auditBy(ctx, req.caller);
      const shot = await ctx.screenshot(server, { ...(width !== undefined ? { width } : {}), ...(by ? { by } : {}) });
      return reply.type('image/png').header('Cache-Control', 'no-store').header('X-Porthole-Screenshot-Source', shot.source).send(shot.png);
    },
  );
}
