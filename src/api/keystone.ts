/**
 * @module api/keystone
 * `[api] auth_strategy = keystone`: the caller's `X-Auth-Token` is a Keystone token, validated
 * by Keystone (`keystone-identity.ts`) as keystonemiddleware's auth_token does, and turned into
 * the same `Caller` the other strategies give: the token's user and project ids (Nova's
 * context takes X-User-Id and X-Project-Id), its role names (Keystone adds the implied ones;
 * oslo.policy compares them without case), admin with the `admin` role (Nova's
 * `context_is_admin`). Answers are remembered by the token's SHA-256, so no token is kept:
 * a valid one for `token_cache_time`, never past its own expiry, in at most 10 000 entries
 * (least recently used first out); a refused one for 5 s at most, so a client retrying a bad
 * token does not become a load on Keystone. "Keystone cannot say" is never remembered, so the
 * first request after Keystone is back is validated again, and it is 503, never a pass.
 * Concurrent requests with one uncached token share one validation. A token appears in the
 * log only as its 8-hex hash prefix.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import { GatewayError, isGatewayError } from '../errors.ts';
import { hashToken } from '../store/types.ts';
import { KeystoneIdentity } from './keystone-identity.ts';

/** auth.ts's `Caller`, spelled out here: auth.ts imports this module, and the layout allows no cycle. */
interface Caller {
  readonly user: string;
  readonly project: string;
  readonly roles: readonly string[];
  readonly isAdmin: boolean;
}

const MAX_ENTRIES = 10_000;
const REFUSED_MS = 5_000;
/** Fernet tokens are under 300 characters, JWS ones under 1 KiB; anything far longer is not a token. */
const MAX_TOKEN_LENGTH = 8 * 1024;

type Remembered = { readonly caller: Caller; readonly until: number } | { readonly refused: string; readonly until: number };

export interface KeystoneAuthenticator {
  authenticate(headers: IncomingHttpHeaders): Promise<Caller>;
  /** The `WWW-Authenticate` of every 401, as keystonemiddleware sends it. */
  readonly challenge: string;
  close(): void;
}

export function keystoneAuthenticator(config: Config, log?: Logger): KeystoneAuthenticator {
  const identity = new KeystoneIdentity(config);
  const k = config.keystone_authtoken;
  const challenge = `Keystone uri="${k.www_authenticate_uri ?? k.auth_url}"`;
  const cacheMs = k.token_cache_time * 1000;
  const cache = new Map<string, Remembered>();
  const inFlight = new Map<string, Promise<Remembered>>();
  /** Keystone's state as last logged, so an outage is one warning and one recovery line, not one per request. */
  let down = false;

  const remember = (hash: string, r: Remembered) => {
    if (cacheMs <= 0 || r.until <= Date.now()) return;
    cache.delete(hash);
    cache.set(hash, r);
    if (cache.size > MAX_ENTRIES) cache.delete(cache.keys().next().value!);
  };

  const ask = async (token: string, hash: string): Promise<Remembered> => {
    let r: Remembered;
    try {
      const v = await identity.validate(token);
      const now = Date.now();
      r = v.valid
        ? { caller: callerOf(v.token.userId, v.token.projectId, v.token.roles), until: Math.min(now + cacheMs, v.token.expiresAt) }
        : { refused: v.reason, until: now + Math.min(cacheMs, REFUSED_MS) };
    } catch (err) {
      if (isGatewayError(err) && err.code === 'IDENTITY_UNAVAILABLE' && !down) {
        down = true;
        log?.warn({ event: 'keystone', state: 'unavailable' }, `API callers cannot be authenticated (503) until Keystone answers: ${err.message}`);
      }
      throw err;
    }
    if (down) {
      down = false;
      log?.info({ event: 'keystone', state: 'available' }, `Keystone at ${identity.baseUrl} answers again`);
    }
    remember(hash, r);
    return r;
  };

  return {
    challenge,
    close: () => identity.close(),
    async authenticate(headers) {
      const token = userToken(headers);
      const hash = hashToken(token);
      const logId = hash.slice(0, 8);
      let r = cache.get(hash);
      if (r && r.until <= Date.now()) {
        cache.delete(hash);
        r = undefined;
      }
      if (r) {
        // least recently used goes first: a hit moves to the end
        cache.delete(hash);
        cache.set(hash, r);
      } else {
        let pending = inFlight.get(hash);
        if (!pending) {
          pending = ask(token, hash).finally(() => inFlight.delete(hash));
          inFlight.set(hash, pending);
        }
        r = await pending;
      }
      if ('refused' in r) throw unauthorized(`Keystone token ${logId} refused: ${r.refused}`);
      return r.caller;
    },
  };
}

function unauthorized(log: string): GatewayError {
  return new GatewayError('UNAUTHORIZED', log, { status: 401, clientMessage: 'The request you have made requires authentication.' });
}

/** keystonemiddleware reads X-Auth-Token (or Swift's X-Storage-Token) and strips surrounding white space (bug 1689468). */
function userToken(headers: IncomingHttpHeaders): string {
  const raw = headers['x-auth-token'] ?? headers['x-storage-token'];
  const token = typeof raw === 'string' ? raw.trim() : '';
  if (token === '') throw unauthorized('no X-Auth-Token');
  // checked before it is sent on as a header: Node would throw on a control character
  if (token.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) throw unauthorized('X-Auth-Token is not a Keystone token (too long or not printable)');
  return token;
}

function callerOf(userId: string, projectId: string | null, roleNames: readonly string[]): Caller {
  const roles = [...new Set(roleNames.map((r) => r.toLowerCase()))];
  // a token scoped to no project owns no server: Caller.project '' matches none (policy.canSee)
  return { user: userId, project: projectId ?? '', roles, isAdmin: roles.includes('admin') };
}
