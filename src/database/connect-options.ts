/**
 * @module database/connect-options
 * How Porthole connects to a networked store (`[porthole] store_*` options), for every storage kind.
 */
import { OPTIONS } from '../config/options.ts';

/** How Porthole connects to a networked store; `[porthole] store_*` options, in milliseconds. */
export interface ConnectOptions {
  readonly poolSize: number;
  readonly connectTimeoutMs: number;
  readonly queryTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly redisKeyPrefix: string;
  /** Trouble no caller sees (a server closing an idle pooled connection, a Redis reconnect). */
  readonly onError?: (err: Error, store: string) => void;
}

export const DEFAULT_CONNECT_OPTIONS: ConnectOptions = {
  poolSize: OPTIONS.porthole.store_pool_size.default,
  connectTimeoutMs: OPTIONS.porthole.store_connect_timeout.default * 1000,
  queryTimeoutMs: OPTIONS.porthole.store_query_timeout.default * 1000,
  idleTimeoutMs: OPTIONS.porthole.store_idle_timeout.default * 1000,
  reconnectMaxDelayMs: OPTIONS.porthole.store_reconnect_max_delay.default * 1000,
  redisKeyPrefix: OPTIONS.porthole.redis_key_prefix.default,
};
