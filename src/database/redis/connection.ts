/**
 * @module database/redis/connection
 * The Redis store (`redis://[:password@]host:6379/0`, `rediss://` for TLS) through `ioredis`,
 * imported only when chosen. Every key Porthole writes is under `[porthole] redis_key_prefix`
 * (the key layout: `tokens.ts`, `inventory.ts`, `registry.ts`, `lookup-failures.ts`).
 *
 * Scripts name keys they derive from others, which a Redis Cluster does not allow: a single
 * Redis (or one behind Sentinel) is what this store supports. Reconnection is ioredis's:
 * commands fail at once while the connection is down (no offline queue: a console connection is
 * refused with 503 rather than kept waiting) and the client reconnects in the background,
 * backing off up to `[porthole] store_reconnect_max_delay`.
 */
import type { Redis } from 'ioredis';
import { GatewayError } from '../../errors.ts';
import type { ConnectOptions } from '../connect-options.ts';
import { redactUrl } from '../url.ts';

export interface RedisConnection {
  readonly redis: Redis;
  readonly prefix: string;
  readonly description: string;
  close(): Promise<void>;
}

export async function openRedis(connection: string, o: ConnectOptions): Promise<RedisConnection> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(connection, {
    lazyConnect: true,
    connectTimeout: o.connectTimeoutMs,
    commandTimeout: o.queryTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * 100, o.reconnectMaxDelayMs),
    keepAlive: 10_000,
    connectionName: 'porthole',
  });
  // without a listener ioredis prints every failed reconnection attempt. While connecting, the
  // first error is the failure's cause (connect() itself says only "Connection is closed"), told
  // once in the failure rather than also as a warning
  let connected = false;
  let connectError: Error | undefined;
  redis.on('error', (err: Error) => {
    if (connected) o.onError?.(err, 'redis');
    else connectError ??= err;
  });
  const description = redactUrl(connection);
  try {
    await redis.connect();
    connected = true;
  } catch (err) {
    redis.disconnect();
    const cause = connectError ?? (err as Error);
    throw new GatewayError('STORE_UNAVAILABLE', `cannot connect to ${description}: ${cause.message}`, { status: 503, clientMessage: 'console token store unavailable', cause });
  }
  return {
    redis,
    prefix: o.redisKeyPrefix,
    description,
    async close() {
      try {
        await redis.quit();
      } catch {
        redis.disconnect();
      }
    },
  };
}

type Script = (...args: Array<string | number>) => Promise<unknown>;
export type Scripts<N extends string> = Record<N, Script>;

/** Registers Lua scripts as commands of `redis` (EVALSHA, falling back to EVAL when the server does not have one yet: ioredis does it). */
export function defineScripts<N extends string>(redis: Redis, scripts: Record<N, readonly [number, string]>): Scripts<N> {
  const out = {} as Scripts<N>;
  for (const [name, [numberOfKeys, lua]] of Object.entries(scripts) as Array<[N, readonly [number, string]]>) {
    redis.defineCommand(name, { numberOfKeys, lua });
    out[name] = (redis as unknown as Record<string, Script>)[name]!.bind(redis);
  }
  return out;
}
