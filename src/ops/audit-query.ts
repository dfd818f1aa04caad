/**
 * @module ops/audit-query
 * The events API's question and its answer, one service for `GET /porthole/v1/events` and
 * `porthole events list`: the query's words checked and bounded (`parseEventsQuery`), the events
 * read from Porthole's own store (`listEvents`), and the table the CLI prints for people.
 *
 * Times are ISO 8601 (`2026-12-05T10:00:00Z`; without a zone, UTC) or epoch seconds (`1764928800`,
 * fractions allowed); `since` is inclusive, `until` exclusive. At most `MAX_LIMIT` events per
 * answer (default `DEFAULT_LIMIT`), newest first unless `order=oldest`: a caller pages back with
 * `until` = the oldest time it got (or forward with `order=oldest` and `since`).
 */
import { GatewayError } from '../errors.ts';
import { AUDIT_EVENTS, type AuditEventName, type AuditEventStore, type AuditLine, type AuditQuery } from '../store/audit-events.ts';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/** The query's words as they come (URL query, CLI options): strings, all optional. */
export interface EventsQueryWords {
  readonly server?: string;
  readonly since?: string;
  readonly until?: string;
  /** One event name or several, comma-separated. */
  readonly event?: string;
  readonly token?: string;
  readonly session?: string;
  readonly limit?: string;
  readonly order?: string;
}

/** Why there is no history: the message names the option that gives one. */
export const NO_EVENT_STORE = 'the audit trail has no store here: [database] connection is a Nova database and [porthole] connection is not set, so events go only to [porthole] audit_log; set [porthole] connection to keep them for this API';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TOKEN_PREFIX = /^[0-9a-f]{8}$/;
const SESSION = /^[A-Za-z0-9._-]{1,64}$/;
const EPOCH = /^\d{1,12}(?:\.\d{1,6})?$/;
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

function bad(message: string): GatewayError {
  return new GatewayError('BAD_REQUEST', message, { status: 400 });
}

/** Epoch ms of an ISO 8601 time or epoch seconds; `what` names the parameter in the error. */
export function parseTime(text: string, what: string): number {
  let ms = Number.NaN;
  if (EPOCH.test(text)) ms = Math.round(Number(text) * 1000);
  else if (ISO.test(text)) {
    // a time without a zone is UTC, not the server's local time (ECMAScript would take it as local)
    const zoned = /[zZ]|[+-]\d{2}:?\d{2}$/.test(text.slice(10)) || text.length === 10 ? text : `${text}Z`;
    ms = Date.parse(zoned.replace(' ', 'T'));
  }
  if (!Number.isFinite(ms)) throw bad(`Invalid ${what} ${JSON.stringify(text.slice(0, 64))}: expected an ISO 8601 time (2026-12-05T10:00:00Z) or epoch seconds`);
  return ms;
}

export function parseEventsQuery(w: EventsQueryWords): AuditQuery {
  const q: { -readonly [K in keyof AuditQuery]: AuditQuery[K] } = { limit: DEFAULT_LIMIT, order: 'newest' };
  if (w.server !== undefined) {
    if (!UUID.test(w.server)) throw bad(`Invalid server ${JSON.stringify(w.server.slice(0, 64))}: expected a server UUID`);
    q.server = w.server.toLowerCase();
  }
  if (w.since !== undefined) q.since = parseTime(w.since, 'since');
  if (w.until !== undefined) q.until = parseTime(w.until, 'until');
  if (w.event !== undefined) {
    const names = w.event.split(',').map((e) => e.trim()).filter((e) => e !== '');
    const unknown = names.find((e) => !(AUDIT_EVENTS as readonly string[]).includes(e));
    if (unknown !== undefined || names.length === 0) throw bad(`Invalid event ${JSON.stringify((unknown ?? w.event).slice(0, 64))}: expected one or more of ${AUDIT_EVENTS.join(', ')}`);
    q.events = names as AuditEventName[];
  }
  if (w.token !== undefined) {
    // the 8-hex prefix only: a whole token in a URL would be a token in a request log
    if (!TOKEN_PREFIX.test(w.token)) throw bad('Invalid token: expected the 8 hex digits of the token\'s SHA-256 prefix (token_hash_prefix, the audit lines\' token), never the token itself');
    q.token = w.token;
  }
  if (w.session !== undefined) {
    if (!SESSION.test(w.session)) throw bad(`Invalid session ${JSON.stringify(w.session.slice(0, 64))}`);
    q.session = w.session;
  }
  if (w.limit !== undefined) {
    const n = Number(w.limit);
    if (!/^\d{1,7}$/.test(w.limit) || n < 1 || n > MAX_LIMIT) throw bad(`Invalid limit ${JSON.stringify(w.limit.slice(0, 16))}: expected 1 to ${MAX_LIMIT}`);
    q.limit = n;
  }
  if (w.order !== undefined) {
    if (w.order !== 'newest' && w.order !== 'oldest') throw bad(`Invalid order ${JSON.stringify(w.order.slice(0, 16))}: expected newest or oldest`);
    q.order = w.order;
  }
  return q;
}

/** The events matching `q` from the store; 501 where Porthole has no store of its own. */
export async function listEvents(store: AuditEventStore | null | undefined, q: AuditQuery): Promise<AuditLine[]> {
  if (!store) throw new GatewayError('NOT_IMPLEMENTED', NO_EVENT_STORE, { status: 501 });
  return store.query(q);
}

/** The events as a table for people (the CLI without --json). */
export function eventsText(lines: readonly AuditLine[]): string {
  const who = (l: AuditLine): string => {
    const a = l.actor;
    if (!a) return l.client ?? '';
    if ('user' in a) return `${a.user}@${a.project}`;
    if ('cli' in a) return `cli:${a.cli}`;
    return `system:${a.system}`;
  };
  const detail = (l: AuditLine): string => {
    const parts: string[] = [];
    if (l.code) parts.push(l.code);
    if (l.reason) parts.push(l.reason);
    if (l.count !== undefined && l.event === 'token.revoked' && !l.token) parts.push(`${l.count} token(s)`);
    if (l.duration_ms !== undefined) parts.push(`${(l.duration_ms / 1000).toFixed(1)} s, ${l.bytes_from_client ?? 0} B in, ${l.bytes_from_backend ?? 0} B out`);
    return parts.join('; ');
  };
  const rows = [['TIME', 'EVENT', 'SERVER', 'TOKEN', 'SESSION', 'WHO', 'DETAIL'], ...lines.map((l) => [l.time, l.event, l.server ?? '', l.token ?? '', l.session ?? '', who(l), detail(l)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = lines.length ? `${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')}\n` : '';
  return `${table}${lines.length} event(s)`;
}
