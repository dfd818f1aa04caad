/**
 * @module api/keystone-identity
 * Porthole's conversation with Keystone, as keystonemiddleware's auth_token holds it: a service
 * token of Porthole's own (password or application-credential auth, `POST /v3/auth/tokens`),
 * renewed before it expires, one renewal shared by every validation waiting for it; and the
 * validation of a caller's token (`GET /v3/auth/tokens` with `X-Subject-Token`). A 404 is a
 * token Keystone does not honour (unknown, expired, revoked); a 401 is Porthole's own token
 * gone stale, renewed and tried once more; anything else (no connection, a timeout, a 5xx, a
 * 403 for a service user that may not validate tokens) is Keystone unavailable, which the
 * caller must answer 503, never as a valid token. Every exchange is bounded in time
 * (`http_connect_timeout` to connect, and again to be answered) and in size. The agent's
 * sockets belong to this object: `close()` ends them.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Config } from '../config/options.ts';
import { GatewayError } from '../errors.ts';

/** What a validated token says about its bearer. */
export interface KeystoneToken {
  readonly userId: string;
  readonly userName: string;
  /** null: not scoped to a project (domain- or system-scoped). */
  readonly projectId: string | null;
  /** Role names as Keystone gives them, implied roles included (admin → member → reader). */
  readonly roles: readonly string[];
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

export type Validation = { readonly valid: true; readonly token: KeystoneToken } | { readonly valid: false; readonly reason: string };

/** Keystone's answers are small without the catalog (`?nocatalog`); a bigger one is not Keystone's. */
const MAX_BODY = 1024 * 1024;
/** keystoneauth renews a token that expires within 120 s (MIN_TOKEN_LIFE_SECONDS); a shorter-lived one at half its life. */
const RENEW_BEFORE_MS = 120_000;

interface Answer {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A failure to get any answer from Keystone (connection, TLS, timeout): worth another try. */
class Unreachable extends Error {}

export function identityUnavailable(log: string, cause?: unknown): GatewayError {
  // keystonemiddleware's words (webob.exc.HTTPServiceUnavailable); the detail is for the log only
  return new GatewayError('IDENTITY_UNAVAILABLE', log, { status: 503, clientMessage: 'The Keystone service is temporarily unavailable.', cause });
}

export class KeystoneIdentity {
  /** `<auth_url>/v3`, no trailing slash. */
  readonly baseUrl: string;
  private readonly authBody: string;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly secure: boolean;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private service: { readonly token: string; readonly renewAt: number } | undefined;
  private renewing: Promise<string> | undefined;
  private closed = false;

  constructor(config: Config) {
    const k = config.keystone_authtoken;
    this.baseUrl = v3Url(k.auth_url);
    this.authBody = JSON.stringify(serviceAuth(config));
    this.secure = this.baseUrl.startsWith('https:');
    this.timeoutMs = k.http_connect_timeout * 1000;
    this.retries = k.http_request_max_retries;
    const keepAlive = { keepAlive: true, maxSockets: 64, maxFreeSockets: 8, timeout: 60_000 };
    this.agent = this.secure
      ? new HttpsAgent({ ...keepAlive, ca: readPem(k.cafile, 'cafile'), cert: readPem(k.certfile, 'certfile'), key: readPem(k.keyfile, 'keyfile'), rejectUnauthorized: !k.insecure })
      : new HttpAgent(keepAlive);
  }

  /** Asks Keystone about `token`; throws IDENTITY_UNAVAILABLE when Keystone cannot say. */
  async validate(token: string): Promise<Validation> {
    for (let attempt = 0; ; attempt++) {
      const service = await this.serviceToken();
      const a = await this.send('GET', '/auth/tokens?nocatalog', { 'X-Auth-Token': service, 'X-Subject-Token': token });
      if (a.status === 200) return parseValidation(a.body);
      if (a.status === 404) return { valid: false, reason: 'Keystone does not know it (unknown, expired or revoked)' };
      if (a.status === 401 && attempt === 0) {
        // Porthole's own token was revoked or aged out early: get another and ask once more, as keystoneauth does
        this.forget(service);
        continue;
      }
      if (a.status === 401) throw identityUnavailable(`Keystone at ${this.baseUrl} refused Porthole's fresh service token when validating a token (HTTP 401)`);
      if (a.status === 403) throw identityUnavailable(`Keystone at ${this.baseUrl} does not let Porthole's service user validate tokens (HTTP 403): give it the service role (or admin) in [keystone_authtoken] project_name`);
      throw identityUnavailable(`Keystone at ${this.baseUrl} answered HTTP ${a.status} to a token validation`);
    }
  }

  /** Porthole's service token: the one held while it has life left, else one renewal that every caller waits on. */
  serviceToken(): Promise<string> {
    if (this.service && Date.now() < this.service.renewAt) return Promise.resolve(this.service.token);
    this.renewing ??= this.authenticate().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  close(): void {
    this.closed = true;
    this.agent.destroy();
  }

  private forget(token: string): void {
    if (this.service?.token === token) this.service = undefined;
  }

  private async authenticate(): Promise<string> {
    const a = await this.send('POST', '/auth/tokens?nocatalog', { 'Content-Type': 'application/json' }, this.authBody);
    if (a.status === 401 || a.status === 400 || a.status === 403 || a.status === 404) {
      throw identityUnavailable(`Keystone at ${this.baseUrl} refused Porthole's own credentials ([keystone_authtoken] username, password, project; HTTP ${a.status})`);
    }
    if (a.status !== 201 && a.status !== 200) throw identityUnavailable(`Keystone at ${this.baseUrl} answered HTTP ${a.status} to Porthole's authentication`);
    const token = a.headers['x-subject-token'];
    const expires = Date.parse(parseJson(a.body)?.token?.expires_at);
    if (typeof token !== 'string' || token === '' || !Number.isFinite(expires)) throw identityUnavailable(`Keystone at ${this.baseUrl} answered Porthole's authentication without a token or its expiry`);
    const now = Date.now();
    this.service = { token, renewAt: expires - Math.min(RENEW_BEFORE_MS, (expires - now) / 2) };
    return token;
  }

  /** One request, tried again after a connection failure or a timeout (0.5 s, 1 s, 2 s, ...), as keystoneauth's connect_retries. */
  private async send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(method, path, headers, body);
      } catch (err) {
        if (!(err instanceof Unreachable)) throw err;
        if (attempt >= this.retries || this.closed) throw identityUnavailable(`Keystone at ${this.baseUrl} unreachable: ${err.message}`, err);
        await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      }
    }
  }

  private once(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const url = new URL(this.baseUrl + path);
      const send = this.secure ? httpsRequest : httpRequest;
      const req = send(url, { method, agent: this.agent, headers: { Accept: 'application/json', ...headers, ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) } });
      let phase = 'connect';
      // one deadline to connect, a fresh one for the answer once connected
      let timer = setTimeout(() => req.destroy(new Unreachable(`no ${phase} within ${this.timeoutMs} ms`)), this.timeoutMs);
      const rearm = () => {
        phase = 'answer';
        clearTimeout(timer);
        timer = setTimeout(() => req.destroy(new Unreachable(`no ${phase} within ${this.timeoutMs} ms`)), this.timeoutMs);
      };
      req.on('socket', (socket) => {
        if (!socket.connecting) rearm();
        else socket.once(this.secure ? 'secureConnect' : 'connect', rearm);
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err instanceof Unreachable ? err : new Unreachable(err.message));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > MAX_BODY) req.destroy(new Unreachable(`answer larger than ${MAX_BODY} bytes`));
          else chunks.push(d);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', () => {});
      });
      req.end(body);
    });
  }
}

/** keystonemiddleware's auth_url is often the bare host (`http://keystone:5000`); the v3 API is under `/v3`. */
export function v3Url(authUrl: string | null): string {
  if (!authUrl) throw new GatewayError('CONFIG_INVALID', '[api] auth_strategy = keystone needs [keystone_authtoken] auth_url (e.g. http://keystone.example.com:5000/v3)');
  let u: URL;
  try {
    u = new URL(authUrl);
  } catch {
    throw new GatewayError('CONFIG_INVALID', `[keystone_authtoken] auth_url ${authUrl} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new GatewayError('CONFIG_INVALID', `[keystone_authtoken] auth_url ${authUrl}: expected http:// or https://`);
  const base = `${u.origin}${u.pathname}`.replace(/\/+$/, '');
  return /\/v3$/.test(base) ? base : `${base.replace(/\/v2\.0$/, '')}/v3`;
}

function readPem(file: string | null, name: string): Buffer | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', `[keystone_authtoken] ${name} ${file}: ${(err as Error).message}`);
  }
}

/** The body of Porthole's own authentication, from keystoneauth's password or v3applicationcredential options. */
function serviceAuth(config: Config): object {
  const k = config.keystone_authtoken;
  const type = k.auth_type ?? 'password';
  const missing = (what: string) => new GatewayError('CONFIG_INVALID', `[keystone_authtoken] auth_type = ${type} needs ${what}`);
  const domain = (id: string | null, name: string | null) => (id ? { id } : name ? { name } : undefined);
  const user = () => {
    if (k.user_id) return { id: k.user_id };
    if (!k.username) throw missing('username (or user_id)');
    const d = domain(k.user_domain_id, k.user_domain_name);
    if (!d) throw missing('user_domain_name (or user_domain_id) with username');
    return { name: k.username, domain: d };
  };
  if (type === 'password' || type === 'v3password') {
    if (!k.password) throw missing('password');
    let scope: object;
    if (k.project_id) scope = { project: { id: k.project_id } };
    else if (k.project_name) {
      const d = domain(k.project_domain_id, k.project_domain_name);
      if (!d) throw missing('project_domain_name (or project_domain_id) with project_name');
      scope = { project: { name: k.project_name, domain: d } };
    } else throw missing('project_name (or project_id): the service token is scoped to Porthole\'s service project');
    return { auth: { identity: { methods: ['password'], password: { user: { ...user(), password: k.password } } }, scope } };
  }
  if (type === 'v3applicationcredential') {
    if (!k.application_credential_secret) throw missing('application_credential_secret');
    if (k.application_credential_id) return { auth: { identity: { methods: ['application_credential'], application_credential: { id: k.application_credential_id, secret: k.application_credential_secret } } } };
    if (!k.application_credential_name) throw missing('application_credential_id (or application_credential_name with the user)');
    return { auth: { identity: { methods: ['application_credential'], application_credential: { name: k.application_credential_name, secret: k.application_credential_secret, user: user() } } } };
  }
  throw new GatewayError('CONFIG_INVALID', `[keystone_authtoken] auth_type = ${type} is not one Porthole can use: password, v3password or v3applicationcredential`);
}

function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** keystonemiddleware refuses a token whose contents it cannot read ("Invalid token contents") or that has no life left. */
function parseValidation(text: string): Validation {
  const t = parseJson(text)?.token;
  const expiresAt = Date.parse(t?.expires_at);
  const user = t?.user;
  if (!t || typeof user?.id !== 'string' || !Number.isFinite(expiresAt) || (t.roles !== undefined && !Array.isArray(t.roles))) {
    return { valid: false, reason: 'Keystone\'s answer holds no readable token' };
  }
  if (expiresAt <= Date.now()) return { valid: false, reason: 'expired' };
  const roles = ((t.roles ?? []) as unknown[]).map((r) => (r as { name?: unknown })?.name).filter((n): n is string => typeof n === 'string');
  const projectId = typeof t.project?.id === 'string' ? (t.project.id as string) : null;
  return { valid: true, token: { userId: user.id, userName: typeof user.name === 'string' ? user.name : user.id, projectId, roles, expiresAt } };
}
