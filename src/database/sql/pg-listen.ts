/**
 * @module database/sql/pg-listen
 * One PostgreSQL connection of its own (not from the pool: a pooled connection is handed to other
 * queries and would miss notifications) that `LISTEN`s on a channel and says when something was
 * notified. When the connection is lost it says so and connects again, backing off up to
 * `[porthole] store_reconnect_max_delay`; the caller polls meanwhile and reads what it missed once
 * the connection is back. `pg` is imported only here and only on PostgreSQL.
 */
import type { Client } from 'pg';

export interface PostgresListener {
  close(): Promise<void>;
}

export interface ListenTarget {
  readonly url: string;
  readonly connectTimeoutMs: number;
  readonly reconnectMaxDelayMs: number;
}

export interface ListenHandlers {
  onNotify(): void;
  /** The LISTEN connection is up (true) or lost (false). */
  onState(up: boolean): void;
  onTrouble(err: Error): void;
}

export async function listenPostgres(target: ListenTarget, channel: string, h: ListenHandlers): Promise<PostgresListener> {
  const { default: pg } = await import('pg');
  // SQLAlchemy's `+driver` means nothing to libpq, as in postgres.ts
  const connectionString = target.url.replace(/^[^:]*:/, 'postgresql:');
  let client: Client | undefined;
  let closed = false;
  let attempt = 0;
  let retry: NodeJS.Timeout | undefined;

  const drop = (c: Client) => {
    if (client !== c) return;
    client = undefined;
    c.end().catch(() => {});
    h.onState(false);
    schedule();
  };
  const connect = async () => {
    const c = new pg.Client({ connectionString, connectionTimeoutMillis: target.connectTimeoutMs, keepAlive: true, application_name: 'porthole-sessions' });
    c.on('notification', (n) => n.channel === channel && h.onNotify());
    c.on('error', (err: Error) => {
      h.onTrouble(err);
      drop(c);
    });
    c.on('end', () => drop(c));
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
    } catch (err) {
      c.end().catch(() => {});
      throw err;
    }
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    attempt = 0;
    h.onState(true);
  };
  const schedule = () => {
    if (closed || retry) return;
    const delay = Math.min(100 * 2 ** attempt, target.reconnectMaxDelayMs);
    attempt = Math.min(attempt + 1, 20);
    retry = setTimeout(() => {
      retry = undefined;
      connect().catch((err: Error) => {
        h.onTrouble(err);
        schedule();
      });
    }, delay);
    retry.unref();
  };

  try {
    await connect();
  } catch (err) {
    // the registry works without it, polling, until the connection can be made
    h.onTrouble(err as Error);
    h.onState(false);
    schedule();
  }
  return {
    async close() {
      closed = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
