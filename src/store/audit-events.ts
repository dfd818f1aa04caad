/**
 * @module store/audit-events
 * The audit trail's contract: what one security event says (`AuditLine`, the JSON object written
 * as one line to `[porthole] audit_log` and answered by `GET /porthole/v1/events`), who records
 * them (`AuditRecorder`: the proxy's watcher, the API, the CLI, the sessions service), and where
 * they are kept for the events API (`AuditEventStore`, in Porthole's own store:
 * `src/database/<kind>/audit-events.ts`). Never in a Nova database.
 *
 * The line's fields are a stable interface (README "Audit trail"): fields are only ever added,
 * never renamed or given another meaning. A token appears only as its 8-hex SHA-256 prefix.
 */

/** Every event the trail records; `v` of a line says which schema version wrote it. */
export const AUDIT_EVENTS = ['token.minted', 'token.used', 'token.refused', 'token.revoked', 'token.consumed', 'session.opened', 'session.closed', 'session.killed', 'recording.started', 'recording.deleted', 'screenshot.taken', 'control.changed'] as const;
export type AuditEventName = (typeof AUDIT_EVENTS)[number];

/** The schema version written in every line (`v`). */
export const AUDIT_SCHEMA_VERSION = 1;

/**
 * Who did it: an API caller (user and project as authenticated by `[api] auth_strategy`), a
 * `porthole` CLI command (the operating-system user who ran it), or Porthole itself (`system`
 * names the part: `sweep`, `proxy`).
 */
export type AuditActor = { readonly user: string; readonly project: string } | { readonly cli: string } | { readonly system: string };

/** One event as written and stored: snake_case, absent fields left out (never null). */
export interface AuditLine {
  /** ISO 8601, UTC, milliseconds. */
  readonly time: string;
  readonly event: AuditEventName;
  readonly v: number;
  /** The token's 8-hex SHA-256 prefix (the main log's `tokenHash`); never the token. */
  readonly token?: string;
  /** The server (Nova's instance_uuid) the token or session is of. */
  readonly server?: string;
  readonly console_type?: string;
  readonly actor?: AuditActor;
  /** The console client's address as Porthole sees it through `[porthole] trusted_proxies`. */
  readonly client?: string;
  /** The live session's id (as in `porthole sessions list`). */
  readonly session?: string;
  /** A refusal's stable code (`TOKEN_EXPIRED`, `ORIGIN_MISMATCH`, ...). */
  readonly code?: string;
  /** Words: why a session closed, what a refusal was, what a revocation covered. */
  readonly reason?: string;
  /** Tokens a revocation of a whole server deleted. */
  readonly count?: number;
  readonly bytes_from_client?: number;
  readonly bytes_from_backend?: number;
  readonly duration_ms?: number;
  /** Token expiry (minted), ISO 8601. */
  readonly expires_at?: string;
  /** A console recording's id (`recording.started`, `recording.deleted`). */
  readonly recording?: string;
  /** The process that recorded it: its console listener's or API's address, or `cli@<host>`. */
  readonly proxy?: string;
}

/** What a recorder is given: the line without its time, version and recording process. */
export type AuditInput = Omit<AuditLine, 'time' | 'v' | 'proxy'>;

/** Records security events; never throws, never waits (an output that fails is logged and counted). */
export interface AuditRecorder {
  record(event: AuditInput): void;
}

/** Who an action is recorded for, and where: given to the service functions the API and the CLI share. */
export interface AuditBy {
  readonly recorder: AuditRecorder;
  readonly actor: AuditActor;
}

/** A query of the events API, checked and bounded (`ops/audit-query.ts`). */
export interface AuditQuery {
  readonly server?: string;
  /** Epoch milliseconds, inclusive. */
  readonly since?: number;
  /** Epoch milliseconds, exclusive. */
  readonly until?: number;
  readonly events?: readonly AuditEventName[];
  readonly token?: string;
  readonly session?: string;
  readonly limit: number;
  /** `newest` first (the default) or `oldest` first. */
  readonly order: 'newest' | 'oldest';
}

export interface AuditEventStore {
  /** Where the events are kept (no password), for messages. */
  readonly description: string;
  /** Adds a batch of events (one round trip where the store allows). */
  append(lines: readonly AuditLine[]): Promise<void>;
  /** The events matching `q`, in its order, at most `q.limit`. */
  query(q: AuditQuery): Promise<AuditLine[]>;
  /** Deletes events older than `before` (epoch ms); returns how many, where the store can say. */
  sweep(before: number): Promise<number>;
}

/** Epoch milliseconds of a line's `time`. */
export function lineTime(line: Pick<AuditLine, 'time'>): number {
  return Date.parse(line.time);
}
