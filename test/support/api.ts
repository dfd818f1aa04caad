/**
 * @module test/support/api
 * A real Porthole gateway with its compute API on a free loopback port (`startGateway` runs it
 * beside the noVNC proxy), and a small client for it that hands back what a caller sees: the
 * status, the headers and the parsed JSON body; and the assertion on Nova's error bodies
 * (`{"<faultName>": {"code": N, "message": "..."}}`, with the fault names of
 * nova.api.openstack.wsgi.Fault). Servers go straight into the gateway's inventory, so each
 * test sets up exactly the servers it talks about.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { Server } from '../../src/inventory/types.ts';
import { startGateway, type TestGateway } from './gateway.ts';

export interface ApiResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** The parsed body, or undefined when it is not JSON. */
  readonly body: any;
}

export interface ApiCall {
  /** Sent as `X-Auth-Token` unless `headers` says otherwise. */
  readonly token?: string;
  readonly headers?: Record<string, string>;
  /** An object is sent as JSON with `Content-Type: application/json`; a string or Buffer as is, with no Content-Type unless `headers` gives one. */
  readonly body?: unknown;
}

export interface TestApi extends TestGateway {
  readonly apiPort: number;
  /** `http://127.0.0.1:PORT` */
  readonly apiOrigin: string;
  call(method: string, path: string, opts?: ApiCall): Promise<ApiResponse>;
  addServer(server: Partial<Server> & { id: string }): Promise<Server>;
}

export async function startApi(settings: Record<string, string> = {}): Promise<TestApi> {
  const gw = await startGateway(settings);
  const api = gw.gateway.api;
  if (!api) {
    await gw.close();
    throw new Error('the gateway started no API listener ([porthole] api_enabled is false?)');
  }
  const apiPort = api.port;
  return Object.assign(gw, {
    apiPort,
    apiOrigin: `http://127.0.0.1:${apiPort}`,
    call: (method: string, path: string, opts: ApiCall = {}) => call(apiPort, method, path, opts),
    async addServer(partial: Partial<Server> & { id: string }): Promise<Server> {
      const server: Server = { name: `server-${partial.id.slice(0, 8)}`, projectId: 'notused', status: 'ACTIVE', vnc: null, ...partial };
      await gw.gateway.stores.inventory.put(server);
      return server;
    },
  });
}

/** One HTTP request with node:http (so nothing is added or normalised behind the test's back). */
export function call(port: number, method: string, path: string, opts: ApiCall = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers['X-Auth-Token'] = opts.token;
  let payload: Buffer | undefined;
  if (opts.body !== undefined) {
    if (typeof opts.body === 'string' || Buffer.isBuffer(opts.body)) payload = Buffer.from(opts.body as string | Buffer);
    else {
      payload = Buffer.from(JSON.stringify(opts.body));
      headers['Content-Type'] = 'application/json';
    }
    headers['Content-Length'] = String(payload.length);
  }
  Object.assign(headers, opts.headers);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text === '' ? undefined : JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** The token of a noVNC console URL as Nova builds it (`...?path=%3Ftoken%3D<token>`). */
export function tokenOfUrl(url: string): string {
  const path = new URL(url).searchParams.get('path');
  const token = path === null ? null : new URLSearchParams(path.replace(/^[^?]*\?/, '')).get('token');
  if (!token) throw new Error(`no token in ${url}`);
  return token;
}

/** The WebSocket URL of the proxy that a console URL's page would open. */
export function websocketUrl(gw: TestGateway, token: string): string {
  return `ws://127.0.0.1:${gw.port}/websockify?token=${encodeURIComponent(token)}`;
}

export const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

/** The response is Nova's fault for `status`, as JSON, with exactly this message (or one matching). */
export function assertFault(r: ApiResponse, status: number, message: string | RegExp): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const name = FAULT_NAMES[status] ?? 'computeFault';
  assert.deepEqual(Object.keys(r.body ?? {}), [name], r.text);
  const fault = r.body[name];
  assert.deepEqual(Object.keys(fault).sort(), ['code', 'message']);
  assert.equal(fault.code, status);
  if (typeof message === 'string') assert.equal(fault.message, message);
  else assert.match(fault.message, message);
}
