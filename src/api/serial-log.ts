/**
 * @module api/serial-log
 * `GET /porthole/v1/servers/{id}/serial-log` (admin callers only): the serial console output that
 * `[porthole] serial_keep_attached` kept for a server, oldest first, at most `serial_log_bytes`,
 * as the bytes came from the port (escape sequences and all), with
 * `Content-Type: text/plain; charset=utf-8` (what consoles print; a byte that is not UTF-8 is
 * sent unchanged all the same).
 *
 * 404 for a server not in the inventory. 409 when this process keeps no log for it: the option is
 * off here and `serial_log_dir` is not set, or the server has none kept (no serial endpoint, or
 * not seen yet). A server that is kept but printed nothing is a 200 with an empty body. A process
 * that does not keep consoles itself (`porthole api` beside a `porthole serialproxy`) answers
 * from the files of `serial_log_dir` when it is set and on the same host.
 */
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors.ts';
import type { ApiContext } from './context.ts';
import { notFound } from './errors.ts';
import { authorize } from './policy.ts';

export function registerSerialLog(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Params: { id: string } }>(
    '/porthole/v1/servers/:id/serial-log',
    {
      preHandler: async (req) => authorize(req.caller, 'admin', 'porthole:admin'),
      schema: {
        tags: ['admin'],
        summary: 'The serial console output kept for a server (serial_keep_attached), oldest first, as text/plain',
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 36 } }, required: ['id'] },
      },
    },
    async (req, reply) => {
      const server = await ctx.stores.inventory.get(req.params.id.toLowerCase());
      if (!server) throw notFound(`Server ${req.params.id} could not be found.`);
      const log = ctx.serialLog ? await ctx.serialLog(server.id) : undefined;
      if (log === undefined) {
        const why = ctx.serialLog ? 'no serial log is kept for it here' : 'this process keeps no serial log ([porthole] serial_keep_attached is off and serial_log_dir is not set)';
        throw new GatewayError('CONFLICT', `Server ${server.id}: ${why}`, { status: 409 });
      }
      return reply.type('text/plain; charset=utf-8').header('Cache-Control', 'no-store').send(log);
    },
  );
}
