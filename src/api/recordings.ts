/**
 * @module api/recordings
 * The recordings of console sessions (admin): `GET /porthole/v1/recordings` (filters `server`,
 * `project`, `since`, `limit`), `GET .../{id}`, `GET .../{id}/file` (the `.rfbrec` file from this
 * host's disk, or 409 naming the host that holds it), `POST .../{id}/playback` (a short-lived
 * playback token's page URL on the noVNC listener: the browser gets that token, never an admin
 * credential), `DELETE .../{id}` (file, keyframes and listing). The work is
 * `recordings/service.ts`, which the CLI calls too; this module never sees RFB or the proxy.
 */
import { createReadStream } from 'node:fs';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { novnc } from '../consoles/novnc.ts';
import { GatewayError } from '../errors.ts';
import { deleteRecording, getRecording, listRecordings, localRecordingFile, MAX_LISTED, mintPlayback, recordingJson } from '../recordings/service.ts';
import type { RecordingStore } from '../store/recordings.ts';
import { auditBy } from './admin.ts';
import type { ApiContext } from './context.ts';
import { badRequest } from './errors.ts';
import { authorize } from './policy.ts';

const recordingOutput = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    session_id: { type: 'string' },
    server_id: { type: 'string' },
    server_name: { type: 'string', nullable: true },
    project_id: { type: 'string', nullable: true },
    viewer: { type: 'string', nullable: true, description: 'who was at the console: the token\'s label or minter' },
    client: { type: 'string' },
    proxy_host: { type: 'string', description: 'the host whose disk holds the file' },
    path: { type: 'string' },
    started_at: { type: 'string', format: 'date-time' },
    ended_at: { type: 'string', format: 'date-time', nullable: true, description: 'null while the session is live (or its proxy died before ending it)' },
    size_bytes: { type: 'integer' },
  },
};

const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 128 } }, required: ['id'] };

export function registerRecordings(app: FastifyInstance, ctx: ApiContext): void {
  const admin = { preHandler: async (req: { caller: Parameters<typeof authorize>[0] }) => authorize(req.caller, 'admin', 'porthole:admin') };
  const store = (): RecordingStore => {
    const s = ctx.stores.recordings;
    if (!s) throw new GatewayError('CONFLICT', 'recordings are not listed: [database] connection is a Nova database and [porthole] connection is not set', { status: 409, clientMessage: 'Recordings need a store of Porthole\'s own ([porthole] connection)' });
    return s;
  };
  const here = hostname();

  app.get<{ Querystring: { server?: string; project?: string; since?: string; limit?: string } }>('/porthole/v1/recordings', {
    ...admin,
    schema: {
      tags: ['admin'],
      summary: 'List console recordings, newest first',
      querystring: {
        type: 'object',
        properties: {
          server: { type: 'string', maxLength: 64 },
          project: { type: 'string', maxLength: 255 },
          since: { type: 'string', maxLength: 40, description: 'ISO 8601 time or epoch milliseconds: recordings started at or after' },
          limit: { type: 'string', pattern: '^[0-9]{1,6}$', description: `at most ${MAX_LISTED}` },
        },
      },
      response: { 200: { type: 'object', properties: { recordings: { type: 'array', items: recordingOutput } } } },
    },
  }, async (req) => {
    const q = req.query;
    let since: number | undefined;
    if (q.since !== undefined) {
      since = /^\d+$/.test(q.since) ? Number(q.since) : Date.parse(q.since);
      if (!Number.isFinite(since)) throw badRequest(`Invalid input for query parameter since. Value: ${q.since.slice(0, 40)}. Expected an ISO 8601 time or epoch milliseconds`);
    }
    const limit = q.limit === undefined ? undefined : Number(q.limit);
    if (limit !== undefined && (limit < 1 || limit > MAX_LISTED)) throw badRequest(`Invalid input for query parameter limit. Value: ${q.limit}. Expected 1 to ${MAX_LISTED}`);
    const list = await listRecordings(store(), { ...(q.server ? { serverId: q.server.toLowerCase() } : {}), ...(q.project ? { projectId: q.project } : {}), ...(since !== undefined ? { since } : {}), ...(limit !== undefined ? { limit } : {}) });
    return { recordings: list.map(recordingJson) };
  });

  app.get<{ Params: { id: string } }>('/porthole/v1/recordings/:id', { ...admin, schema: { tags: ['admin'], summary: 'Show a recording', params: idParams, response: { 200: { type: 'object', properties: { recording: recordingOutput } } } } }, async (req) => ({
    recording: recordingJson(await getRecording(store(), req.params.id)),
  }));

  app.get<{ Params: { id: string } }>('/porthole/v1/recordings/:id/file', {
    ...admin,
    schema: { tags: ['admin'], summary: 'Download a recording\'s file (from the host that wrote it: 409 names it otherwise)', params: idParams, response: { 200: { description: 'the .rfbrec file', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } } },
  }, async (req, reply) => {
    const f = await localRecordingFile(store(), req.params.id, here);
    // a recording under way grows: the download is the file as it is now (its whole records, and perhaps a torn one the reader skips)
    return reply
      .type('application/octet-stream')
      .header('Content-Disposition', `attachment; filename="${f.record.id}.rfbrec"`)
      .header('Cache-Control', 'no-store')
      .header('Content-Length', String(f.size))
      .send(createReadStream(f.path, { start: 0, end: Math.max(0, f.size - 1) }));
  });

  app.post<{ Params: { id: string } }>('/porthole/v1/recordings/:id/playback', {
    ...admin,
    schema: { tags: ['admin'], summary: 'A playback page URL for a recording, with a short-lived playback token (console type rfb-recording)', params: idParams, response: { 200: { type: 'object', properties: { url: { type: 'string' }, expires_at: { type: 'string', format: 'date-time' } } } } },
  }, async (req) => mintPlayback({ store: store(), tokens: ctx.stores.tokens }, req.params.id, ctx.consoleBaseUrl(novnc), ctx.config.consoleauth.token_ttl, auditBy(ctx, req.caller)));

  app.delete<{ Params: { id: string } }>('/porthole/v1/recordings/:id', { ...admin, schema: { tags: ['admin'], summary: 'Delete a recording: its file, keyframes and listing (on the host that wrote it)', params: idParams } }, async (req, reply) => {
    await deleteRecording(store(), req.params.id, here, auditBy(ctx, req.caller));
    reply.code(204);
  });
}
