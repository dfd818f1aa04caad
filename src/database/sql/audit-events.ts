/**
 * @module database/sql/audit-events
 * The audit trail's events (`store/audit-events.ts`) in `porthole_events` (migration 0008): the
 * line as JSON and, beside it, the columns the events API filters on (time in epoch ms, event,
 * server, token prefix, session), indexed by (server, time), time, token and session. A batch is
 * one multi-row INSERT. The sweep deletes by time in chunks, so a large backlog never holds one
 * long transaction (or, on SQLite, the write lock) against the proxies' own writes.
 */
import type { AuditEventStore, AuditLine, AuditQuery } from '../../store/audit-events.ts';
import type { Database } from './types.ts';

const TABLE = 'porthole_events';
/** Rows deleted per statement by the sweep. */
const SWEEP_CHUNK = 5000;

export class SqlAuditEvents implements AuditEventStore {
  readonly description: string;

  constructor(private readonly database: Database) {
    this.description = database.description;
  }

  async append(lines: readonly AuditLine[]): Promise<void> {
    if (lines.length === 0) return;
    const rows = lines.map((l) => ({
      event_time: Date.parse(l.time),
      event: l.event,
      instance_uuid: l.server ?? null,
      token_prefix: l.token ?? null,
      session_id: l.session ?? null,
      line: JSON.stringify(l),
    }));
    await this.database.db.insertInto(TABLE).values(rows).execute();
  }

  async query(q: AuditQuery): Promise<AuditLine[]> {
    let s = this.database.db.selectFrom(TABLE).select('line');
    if (q.server !== undefined) s = s.where('instance_uuid', '=', q.server);
    if (q.since !== undefined) s = s.where('event_time', '>=', q.since);
    if (q.until !== undefined) s = s.where('event_time', '<', q.until);
    if (q.events?.length) s = s.where('event', 'in', [...q.events]);
    if (q.token !== undefined) s = s.where('token_prefix', '=', q.token);
    if (q.session !== undefined) s = s.where('session_id', '=', q.session);
    const dir = q.order === 'oldest' ? 'asc' : 'desc';
    const rows = await s.orderBy('event_time', dir).orderBy('id', dir).limit(q.limit).execute();
    return rows.map((r) => JSON.parse(String(r.line)) as AuditLine);
  }

  async sweep(before: number): Promise<number> {
    const { db } = this.database;
    let total = 0;
    for (;;) {
      // MySQL takes no LIMIT in a subquery of IN: the ids are read first, then deleted
      const ids = (await db.selectFrom(TABLE).select('id').where('event_time', '<', before).orderBy('id').limit(SWEEP_CHUNK).execute()).map((r) => r.id as number);
      if (ids.length === 0) return total;
      const r = await db.deleteFrom(TABLE).where('id', 'in', ids).executeTakeFirst();
      total += Number(r.numDeletedRows ?? 0);
      if (ids.length < SWEEP_CHUNK) return total;
    }
  }
}
