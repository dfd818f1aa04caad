/**
 * Counting what the sessions registry asks of its store (issue 20), for the idle-cost test and
 * the fleet benchmark: every SQL statement a Kysely instance runs (a plugin that compiles each
 * query again to read its text, and adds up the rows each one wrote), and every Redis command
 * under one key prefix (MONITOR on a connection of its own: top-level commands only, those that
 * scripts run inside the server are counted apart). Also fake live sessions, so that a proxy's
 * tracker can hold thousands of consoles with no sockets.
 */
import type { Kysely, KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { LiveSession, RegistryBackend, Subscription } from '../../src/sessions/types.ts';

export interface SqlStatement {
  readonly sql: string;
  /** Rows it inserted, updated or deleted. */
  rows: number;
}

/** Records every statement of the Kysely instances it is plugged into (`db.withPlugin(counter)`). */
export class SqlCounter implements KyselyPlugin {
  readonly statements: SqlStatement[] = [];
  private readonly pending = new WeakMap<object, SqlStatement>();

  constructor(private readonly db: Kysely<any>) {}

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const compiled = this.db.getExecutor().compileQuery(args.node, args.queryId);
    const s: SqlStatement = { sql: compiled.sql, rows: 0 };
    this.statements.push(s);
    this.pending.set(args.queryId, s);
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const s = this.pending.get(args.queryId);
    const r = args.result as QueryResult<UnknownRow> & { numUpdatedOrDeletedRows?: bigint };
    if (s) s.rows = Number(r.numAffectedRows ?? r.numUpdatedOrDeletedRows ?? 0n);
    return args.result;
  }

  /** Statements from `from` on, and the rows they wrote into `table`. */
  since(from: number, table: string): { statements: SqlStatement[]; rowsWritten: number } {
    const statements = this.statements.slice(from);
    const t = `"${table}"`;
    const rowsWritten = statements.filter((s) => /^(insert|update|delete)/i.test(s.sql) && (s.sql.split(' where ')[0] ?? '').includes(t)).reduce((n, s) => n + s.rows, 0);
    return { statements, rowsWritten };
  }
}

export interface RedisCommand {
  readonly args: string[];
  /** Run by a script inside the server, not sent by a client. */
  readonly inScript: boolean;
}

/** Every command that names a key under `prefix` (MULTI, EXEC have none and are not counted). */
export class RedisMonitor {
  readonly commands: RedisCommand[] = [];
  private monitor: Redis | undefined;

  static async start(url: string, prefix: string): Promise<RedisMonitor> {
    const m = new RedisMonitor();
    const client = new Redis(url, { lazyConnect: true });
    client.on('error', () => {});
    await client.connect();
    const monitor = await client.monitor();
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (args.some((a) => a.startsWith(prefix))) m.commands.push({ args, inScript: source === 'lua' });
    });
    m.monitor = monitor;
    client.disconnect();
    return m;
  }

  async stop(): Promise<void> {
    this.monitor?.disconnect();
  }
}

/** The registry as a tracker sees it, but deaf to events (what is measured is the heartbeat, not the event feed's polls). */
export function withoutEvents(registry: RegistryBackend): RegistryBackend {
  const deaf = Object.create(registry) as RegistryBackend;
  deaf.subscribe = async (): Promise<Subscription> => ({ close: async () => {} });
  return deaf;
}

/** A console session with no sockets behind it: idle (its byte counts do not move) unless told. */
export function fakeSession(tokenHash: string, n: number, expires = Math.floor(Date.now() / 1000) + 3600): LiveSession & { bytesFromClient: number; bytesFromBackend: number; closed: boolean } {
  return {
    info: { id: randomUUID(), consoleType: 'novnc', instanceUuid: randomUUID(), serverName: `vm-${n}`, client: `127.0.0.${1 + (n % 250)}:${10000 + n}`, backend: '127.0.0.1:5900', tokenLogId: tokenHash.slice(0, 8), tokenHash, tokenExpires: expires },
    startedAt: Date.now(),
    bytesFromClient: 100,
    bytesFromBackend: 1000,
    closed: false,
    close() {
      this.closed = true;
    },
  };
}
