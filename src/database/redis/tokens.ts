/**
 * @module database/redis/tokens
 * Console tokens in Redis (`TokenRecords`) and the uses of single-use tokens (`TokenUses`). Keys,
 * all under `[porthole] redis_key_prefix`:
 *
 * - `token:<sha256>`: a hash with the columns of Nova's `console_auth_tokens` row; the key
 *   expires when the token does (EXPIREAT), so Redis itself is the sweep and an expired token is
 *   simply unknown;
 * - `instance:<uuid>`: the set of an instance's token hashes (revocation by instance), expiring
 *   with its last token;
 * - `token-id`: the counter that numbers tokens (Nova's autoincrement `id`);
 * - `use:<sha256>`: the use of a single-use token (client, live, released_at), expiring with it.
 *
 * Every write that touches more than one key is one Lua script, so it is atomic.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { hashToken, nowSeconds, type ConsoleToken, type ConsumeResult, type NewConsoleToken, type TokenLookup, type TokenRecords, type TokenUses } from '../../store/types.ts';
import { defineScripts, type RedisConnection, type Scripts } from './connection.ts';

// KEYS: token, instance index, id counter; ARGV: hash, expires, now, field, value, ...
const CREATE = `
local id = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'id', id, unpack(ARGV, 4))
redis.call('EXPIREAT', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
local want = tonumber(ARGV[2]) - tonumber(ARGV[3])
local ttl = redis.call('TTL', KEYS[2])
if ttl < want then redis.call('EXPIRE', KEYS[2], want) end
return id`;

// KEYS: token; ARGV: prefix, hash
const REVOKE = `
local instance = redis.call('HGET', KEYS[1], 'instance_uuid')
if not instance then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[1] .. 'instance:' .. instance, ARGV[2])
return 1`;

// KEYS: instance index; ARGV: prefix
const REVOKE_INSTANCE = `
local n = 0
for _, hash in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. 'token:' .. hash)
end
redis.call('DEL', KEYS[1])
return n`;

// KEYS: use; ARGV: client, now, grace, expires. 1: first, 2: reconnect, 0: refused
const CONSUME = `
if redis.call('HSETNX', KEYS[1], 'client', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'live', '1', 'consumed_at', ARGV[2])
  redis.call('EXPIREAT', KEYS[1], ARGV[4])
  return 1
end
local use = redis.call('HMGET', KEYS[1], 'client', 'live', 'released_at')
if use[1] == ARGV[1] and use[2] == '0' and use[3] and tonumber(use[3]) > tonumber(ARGV[2]) - tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'live', '1')
  redis.call('HDEL', KEYS[1], 'released_at')
  return 2
end
return 0`;

// KEYS: use; ARGV: client, now
const RELEASE = `
local use = redis.call('HMGET', KEYS[1], 'client', 'live')
if use[1] == ARGV[1] and use[2] == '1' then
  redis.call('HSET', KEYS[1], 'live', '0', 'released_at', ARGV[2])
end
return 0`;

// KEYS: use; ARGV: client
const FORGET = `
local use = redis.call('HMGET', KEYS[1], 'client', 'live')
if use[1] == ARGV[1] and use[2] == '1' then redis.call('DEL', KEYS[1]) end
return 0`;

const TOKEN_SCRIPTS = { portholeCreate: [3, CREATE], portholeRevoke: [1, REVOKE], portholeRevokeInstance: [1, REVOKE_INSTANCE] } as const;
const USE_SCRIPTS = { portholeConsume: [1, CONSUME], portholeRelease: [1, RELEASE], portholeForget: [1, FORGET] } as const;

export class RedisTokenRecords implements TokenRecords {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly scripts: Scripts<keyof typeof TOKEN_SCRIPTS>;

  constructor(connection: RedisConnection) {
    this.redis = connection.redis;
    this.prefix = connection.prefix;
    this.scripts = defineScripts(connection.redis, TOKEN_SCRIPTS);
  }

  async create(spec: NewConsoleToken): Promise<{ token: string; record: ConsoleToken }> {
    const token = randomUUID();
    const tokenHash = hashToken(token);
    const now = new Date();
    const expires = Math.floor(now.getTime() / 1000) + spec.ttl;
    const fields: Array<string | number> = ['token_hash', tokenHash, 'console_type', spec.consoleType, 'host', spec.host, 'port', spec.port, 'instance_uuid', spec.instanceUuid, 'expires', expires, 'created_at', now.toISOString()];
    if (spec.tlsPort != null) fields.push('tls_port', spec.tlsPort);
    if (spec.internalAccessPath != null) fields.push('internal_access_path', spec.internalAccessPath);
    if (spec.accessUrlBase != null) fields.push('access_url_base', spec.accessUrlBase);
    const p = this.prefix;
    const id = Number(await this.scripts.portholeCreate(`${p}token:${tokenHash}`, `${p}instance:${spec.instanceUuid}`, `${p}token-id`, tokenHash, expires, Math.floor(now.getTime() / 1000), ...fields));
    return {
      token,
      record: {
        id,
        tokenHash,
        consoleType: spec.consoleType,
        host: spec.host,
        port: spec.port,
        tlsPort: spec.tlsPort ?? null,
        internalAccessPath: spec.internalAccessPath ?? null,
        instanceUuid: spec.instanceUuid,
        accessUrlBase: spec.accessUrlBase,
        expires,
      },
    };
  }

  async lookup(token: string): Promise<TokenLookup> {
    const h = await this.redis.hgetall(`${this.prefix}token:${hashToken(token)}`);
    if (h['token_hash'] === undefined) return { status: 'unknown' };
    const record: ConsoleToken = {
      id: Number(h['id']),
      tokenHash: h['token_hash'],
      consoleType: h['console_type'] ?? '',
      host: h['host'] ?? '',
      port: Number(h['port']),
      tlsPort: h['tls_port'] === undefined ? null : Number(h['tls_port']),
      internalAccessPath: h['internal_access_path'] ?? null,
      instanceUuid: h['instance_uuid'] ?? '',
      accessUrlBase: h['access_url_base'] ?? null,
      expires: Number(h['expires']),
    };
    // the key outlives its expiry by at most Redis's expiry granularity
    return record.expires > nowSeconds() ? { status: 'valid', token: record } : { status: 'expired', token: record };
  }

  async revoke(token: string): Promise<boolean> {
    const hash = hashToken(token);
    return Number(await this.scripts.portholeRevoke(`${this.prefix}token:${hash}`, this.prefix, hash)) === 1;
  }

  async revokeByInstance(instanceUuid: string): Promise<number> {
    return Number(await this.scripts.portholeRevokeInstance(`${this.prefix}instance:${instanceUuid}`, this.prefix));
  }

  async sweepExpired(): Promise<number> {
    // token and use keys expire by themselves; an instance set loses its stale members with its
    // own expiry (that of its last token)
    return 0;
  }
}

/** Single-use tokens in Redis: one Lua script decides, so racing proxies cannot both win. */
export class RedisTokenUses implements TokenUses {
  private readonly scripts: Scripts<keyof typeof USE_SCRIPTS>;

  constructor(private readonly connection: RedisConnection) {
    this.scripts = defineScripts(connection.redis, USE_SCRIPTS);
  }

  async consume(token: ConsoleToken, client: string, graceSeconds: number): Promise<ConsumeResult> {
    const { prefix } = this.connection;
    const r = Number(await this.scripts.portholeConsume(`${prefix}use:${token.tokenHash}`, client, nowSeconds(), graceSeconds, token.expires));
    return r === 1 ? 'first' : r === 2 ? 'reconnect' : 'refused';
  }

  async release(token: ConsoleToken, client: string): Promise<void> {
    const { prefix } = this.connection;
    await this.scripts.portholeRelease(`${prefix}use:${token.tokenHash}`, client, nowSeconds());
  }

  async forget(token: ConsoleToken, client: string): Promise<void> {
    const { prefix } = this.connection;
    await this.scripts.portholeForget(`${prefix}use:${token.tokenHash}`, client);
  }

  async sweepExpired(): Promise<number> {
    return 0;
  }
}
