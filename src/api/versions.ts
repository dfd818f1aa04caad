/**
 * @module api/versions
 * The version documents, as Nova serves them at `/` (all versions, 200 as Nova's
 * `Versions.index`; its 300 Multiple Choices is for other paths) and at `/v2.1` (the current
 * one). Clients read them with no credentials to find the microversion range; links point back
 * at this API's own address.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { formatVersion, MAX_VERSION, MIN_VERSION } from './microversion.ts';

/** This API's address as the caller reached it (a TLS-terminating balancer says so in X-Forwarded-Proto). */
export function baseUrl(req: FastifyRequest): string {
  const proto = (req.headers['x-forwarded-proto'] as string | undefined)?.split(',')[0]?.trim() || req.protocol;
  return `${proto}://${req.headers.host ?? 'localhost'}`;
}

function v21(req: FastifyRequest) {
  return {
    id: 'v2.1',
    status: 'CURRENT',
    version: formatVersion(MAX_VERSION),
    min_version: formatVersion(MIN_VERSION),
    updated: '2013-07-23T11:33:21Z',
    links: [{ rel: 'self', href: `${baseUrl(req)}/v2.1/` }, { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
  };
}

const linkSchema = { type: 'object', properties: { rel: { type: 'string' }, href: { type: 'string' }, type: { type: 'string' } } };
const versionSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string' },
    version: { type: 'string' },
    min_version: { type: 'string' },
    updated: { type: 'string' },
    links: { type: 'array', items: linkSchema },
    'media-types': { type: 'array', items: { type: 'object', properties: { base: { type: 'string' }, type: { type: 'string' } } } },
  },
};

export function registerVersions(app: FastifyInstance): void {
  app.get('/', { schema: { tags: ['versions'], summary: 'All API versions', response: { 200: { type: 'object', properties: { versions: { type: 'array', items: versionSchema } } } } }, config: { public: true } }, async (req) => ({
    versions: [v21(req)],
  }));
  for (const path of ['/v2.1', '/v2.1/']) {
    app.get(path, { schema: { tags: ['versions'], summary: 'The v2.1 API version', response: { 200: { type: 'object', properties: { version: versionSchema } } } }, config: { public: true } }, async (req) => ({ version: v21(req) }));
  }
}
