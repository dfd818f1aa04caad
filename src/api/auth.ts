/**
 * @module api/auth
 * Who is calling: one `Caller` (user, project, roles) per request, from the strategy of
 * `[api] auth_strategy`. `noauth2` is Nova's development middleware (`X-Auth-Token:
 * user:project`, the project defaulting to the user, admin when the user is `admin`); `static`
 * looks the token's SHA-256 up in a file, so the file holds no usable secret; `jwt` verifies a
 * bearer token (HS256 with a shared secret, or RS256/ES256 with a public key) with `jose`,
 * checking expiry and, when configured, issuer and audience; `keystone` asks Keystone about an
 * OpenStack token, as keystonemiddleware does (`keystone.ts`), and gives every 401 its
 * `WWW-Authenticate: Keystone uri="..."`. Failures are 401 with Nova's body.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { importSPKI, jwtVerify, type JWTPayload } from 'jose';
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import { GatewayError } from '../errors.ts';
import { keystoneAuthenticator } from './keystone.ts';

export interface Caller {
  readonly user: string;
  readonly project: string;
  readonly roles: readonly string[];
  readonly isAdmin: boolean;
}

export type Authenticator = ((headers: IncomingHttpHeaders) => Promise<Caller>) & {
  /** The `WWW-Authenticate` value of every 401, when the strategy has one (keystone). */
  readonly challenge?: string;
  /** Ends what the strategy holds open (Keystone's keep-alive connections). */
  close?(): void;
};

export async function createAuthenticator(config: Config, log?: Logger): Promise<Authenticator> {
  switch (config.api.auth_strategy) {
    case 'noauth2':
      return async (headers) => noauth2(headers);
    case 'static':
      return staticTokens(config.porthole.api_tokens_file);
    case 'jwt':
      return jwt(config);
    case 'keystone': {
      const keystone = keystoneAuthenticator(config, log?.child({ component: 'keystone' }));
      return Object.assign((headers: IncomingHttpHeaders) => keystone.authenticate(headers), { challenge: keystone.challenge, close: () => keystone.close() });
    }
  }
}

function unauthorized(log: string): GatewayError {
  return new GatewayError('UNAUTHORIZED', log, { status: 401, clientMessage: 'The request you have made requires authentication.' });
}

function authToken(headers: IncomingHttpHeaders): string | undefined {
  const x = headers['x-auth-token'];
  if (typeof x === 'string' && x !== '') return x;
  const auth = headers.authorization;
  const m = auth ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
  return m?.[1];
}

function noauth2(headers: IncomingHttpHeaders): Caller {
  const token = authToken(headers);
  if (token === undefined) throw unauthorized('no X-Auth-Token (noauth2 expects user:project)');
  const sep = token.indexOf(':');
  const user = sep >= 0 ? token.slice(0, sep) : token;
  const project = (sep >= 0 ? token.slice(sep + 1) : '') || user;
  const isAdmin = user === 'admin';
  return { user, project, roles: isAdmin ? ['admin', 'member'] : ['member'], isAdmin };
}

interface StaticEntry {
  readonly hash: Buffer;
  readonly caller: Caller;
}

export function parseTokensFile(text: string, file: string): StaticEntry[] {
  const out: StaticEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [hash, user, project, roles = ''] = line.split(/\s+/);
    if (!hash || !/^[0-9a-f]{64}$/.test(hash) || !user || !project) {
      throw new GatewayError('CONFIG_INVALID', `${file}:${i + 1}: expected "<sha256 hex> <user> <project> [role,role]"`);
    }
    const roleList = roles.split(',').filter((r) => r !== '');
    out.push({ hash: Buffer.from(hash, 'hex'), caller: { user, project, roles: roleList, isAdmin: roleList.includes('admin') } });
  });
  return out;
}

function staticTokens(file: string | null): Authenticator {
  if (!file) throw new GatewayError('CONFIG_INVALID', '[api] auth_strategy = static needs [porthole] api_tokens_file');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', `[porthole] api_tokens_file ${file}: ${(err as Error).message}`);
  }
  const entries = parseTokensFile(text, file);
  return async (headers) => {
    const token = authToken(headers);
    if (token === undefined) throw unauthorized('no API token');
    const digest = createHash('sha256').update(token, 'utf8').digest();
    const hit = entries.find((e) => timingSafeEqual(e.hash, digest));
    if (!hit) throw unauthorized('unknown API token');
    return hit.caller;
  };
}

/** A new static API token and the line that lists it in `api_tokens_file`. */
export function newStaticToken(user: string, project: string, roles: readonly string[]): { token: string; line: string } {
  const token = randomBytes(32).toString('base64url');
  const hash = createHash('sha256').update(token, 'utf8').digest('hex');
  return { token, line: `${hash} ${user} ${project} ${roles.join(',')}` };
}

async function jwt(config: Config): Promise<Authenticator> {
  const p = config.porthole;
  let key: CryptoKey | Uint8Array;
  let algorithms: string[];
  if (p.jwt_public_key_file) {
    const pem = readFileSync(p.jwt_public_key_file, 'utf8');
    const rsa = await importSPKI(pem, 'RS256').catch(() => undefined);
    const ec = rsa ? undefined : await importSPKI(pem, 'ES256').catch(() => undefined);
    if (!rsa && !ec) throw new GatewayError('CONFIG_INVALID', `[porthole] jwt_public_key_file ${p.jwt_public_key_file}: expected a PEM RSA or P-256 "PUBLIC KEY"`);
    key = (rsa ?? ec)!;
    algorithms = [rsa ? 'RS256' : 'ES256'];
  } else if (p.jwt_secret) {
    key = new TextEncoder().encode(p.jwt_secret);
    algorithms = ['HS256'];
  } else {
    throw new GatewayError('CONFIG_INVALID', '[api] auth_strategy = jwt needs [porthole] jwt_secret (HS256) or jwt_public_key_file (RS256/ES256)');
  }
  return async (headers) => {
    const token = authToken(headers);
    if (token === undefined) throw unauthorized('no bearer token');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms,
        issuer: p.jwt_issuer ?? undefined,
        audience: p.jwt_audience ?? undefined,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw unauthorized(`JWT rejected: ${(err as Error).message}`);
    }
    const rawRoles = payload[p.jwt_roles_claim];
    const roles = Array.isArray(rawRoles) ? rawRoles.map(String) : typeof rawRoles === 'string' ? rawRoles.split(/\s+/).filter(Boolean) : [];
    const project = payload[p.jwt_project_claim];
    if (typeof project !== 'string' || project === '') throw unauthorized(`JWT has no "${p.jwt_project_claim}" claim`);
    return { user: payload.sub ?? 'unknown', project, roles, isAdmin: roles.includes('admin') };
  };
}
