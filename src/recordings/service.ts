/**
 * @module recordings/service
 * What the recordings API and `porthole recordings` both do, on the store's listing and this
 * host's files only (never the RFB code or the proxy): list, show, the file for a download (from
 * this host's disk, or a 409 naming the host that holds it), delete (file, keyframe sidecar,
 * listing), a short-lived playback token, and the retention sweep by age and total size.
 */
import { rm, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.ts';
import type { AuditBy } from '../store/audit-events.ts';
import type { RecordingFilter, RecordingRecord, RecordingStore } from '../store/recordings.ts';
import type { TokenStore } from '../store/types.ts';

/** The console type of a playback token: `instance_uuid` the recording's server, `internal_access_path` the recording's id. */
export const RECORDING_CONSOLE_TYPE = 'rfb-recording';
/** The playback page, on the noVNC listener. */
export const PLAYBACK_PAGE = '/porthole/playback.html';
/** The playback WebSocket, on the noVNC listener. */
export const PLAYBACK_SOCKET = '/porthole/playback';
/** Most recordings one listing answers. */
export const MAX_LISTED = 1000;

/** The keyframe sidecar of a recording file (`rfb/recording/player.ts` writes it). */
export function keysPathOf(path: string): string {
  return `${path}.keys`;
}

/** A store that lists nothing (a Nova database alone): recordings are files only. */
export function unlistedRecordings(): RecordingStore {
  return {
    add: async () => {},
    finish: async () => {},
    get: async () => undefined,
    list: async () => [],
    remove: async () => false,
  };
}

export async function listRecordings(store: RecordingStore, filter: RecordingFilter = {}): Promise<RecordingRecord[]> {
  return store.list({ ...filter, limit: Math.min(filter.limit ?? MAX_LISTED, MAX_LISTED) });
}

export async function getRecording(store: RecordingStore, id: string): Promise<RecordingRecord> {
  const r = await store.get(id);
  if (!r) throw new GatewayError('NOT_FOUND', `Recording ${id} could not be found.`, { status: 404 });
  return r;
}

/**
 * The file of recording `id` on this host (`hostname`), with its size now; a recording written
 * by another host is a 409 that names it (its file is on that host's disk only).
 */
export async function localRecordingFile(store: RecordingStore, id: string, hostname: string): Promise<{ record: RecordingRecord; path: string; size: number }> {
  const record = await getRecording(store, id);
  if (record.proxyHost !== hostname) throw new GatewayError('CONFLICT', `Recording ${id} is on host ${record.proxyHost}; ask that host's API or CLI for its file.`, { status: 409 });
  const s = await stat(record.path).catch(() => undefined);
  if (!s) throw new GatewayError('NOT_FOUND', `Recording ${id} is listed but its file ${record.path} is gone.`, { status: 404 });
  return { record, path: record.path, size: s.size };
}

/** Deletes recording `id`: its file and sidecar (on this host only), then its listing. A recording under way is a 409. */
export async function deleteRecording(store: RecordingStore, id: string, hostname: string, audit?: AuditBy, reason?: string): Promise<RecordingRecord> {
  const record = await getRecording(store, id);
  if (record.proxyHost !== hostname) throw new GatewayError('CONFLICT', `Recording ${id} is on host ${record.proxyHost}; delete it there.`, { status: 409 });
  if (record.endedAt === null && !reason) throw new GatewayError('CONFLICT', `Recording ${id} is under way; end its session first.`, { status: 409 });
  await removeFiles(record.path);
  await store.remove(id);
  audit?.recorder.record({ event: 'recording.deleted', recording: id, server: record.serverId, session: record.sessionId, actor: audit.actor, ...(reason ? { reason } : {}) });
  return record;
}

async function removeFiles(path: string): Promise<void> {
  await rm(path, { force: true });
  await rm(keysPathOf(path), { force: true });
}

export interface PlaybackLink {
  readonly url: string;
  /** ISO 8601. */
  readonly expires_at: string;
}

/**
 * A playback token for recording `id` and the page's URL on the noVNC listener whose console
 * URLs start with `consoleBase` (its origin is kept). The token is a console token like any
 * other (hash stored, expiring, Origin-checked), of console type `rfb-recording`.
 */
export async function mintPlayback(deps: { readonly store: RecordingStore; readonly tokens: TokenStore }, id: string, consoleBase: string, ttl: number, audit?: AuditBy): Promise<PlaybackLink> {
  const record = await getRecording(deps.store, id);
  const base = new URL(consoleBase);
  const { token, record: row } = await deps.tokens.create({ consoleType: RECORDING_CONSOLE_TYPE, host: record.proxyHost, port: 0, instanceUuid: record.serverId, accessUrlBase: consoleBase, ttl, internalAccessPath: record.id });
  audit?.recorder.record({ event: 'token.minted', server: record.serverId, console_type: RECORDING_CONSOLE_TYPE, actor: audit.actor, recording: id, expires_at: new Date(row.expires * 1000).toISOString() });
  return { url: `${base.origin}${PLAYBACK_PAGE}?token=${encodeURIComponent(token)}`, expires_at: new Date(row.expires * 1000).toISOString() };
}

export interface RetentionSettings {
  /** `[porthole] recording_retention_days`; 0: no age limit. */
  readonly retentionDays: number;
  /** `[porthole] recording_max_total_size`, MiB; 0: no size limit. */
  readonly maxTotalMiB: number;
}

/**
 * Deletes this host's recordings started more than `retentionDays` ago, then the oldest finished
 * ones while this host's recordings take more than `maxTotalMiB`. Returns the ids deleted.
 */
export async function sweepRecordings(store: RecordingStore, hostname: string, settings: RetentionSettings, audit?: AuditBy, now = Date.now()): Promise<string[]> {
  if (settings.retentionDays <= 0 && settings.maxTotalMiB <= 0) return [];
  const mine = (await store.list({})).filter((r) => r.proxyHost === hostname);
  const deleted: string[] = [];
  const cutoff = now - settings.retentionDays * 86_400_000;
  const kept: RecordingRecord[] = [];
  for (const r of mine) {
    if (settings.retentionDays > 0 && r.endedAt !== null && r.startedAt < cutoff) {
      await deleteRecording(store, r.id, hostname, audit, `older than ${settings.retentionDays} days`);
      deleted.push(r.id);
    } else {
      kept.push(r);
    }
  }
  if (settings.maxTotalMiB > 0) {
    const limit = settings.maxTotalMiB * 1024 * 1024;
    let total = 0;
    for (const r of kept) total += await sizeOnDisk(r);
    // oldest first (the listing is newest first)
    for (const r of kept.filter((k) => k.endedAt !== null).sort((a, b) => a.startedAt - b.startedAt)) {
      if (total <= limit) break;
      total -= await sizeOnDisk(r);
      await deleteRecording(store, r.id, hostname, audit, `recordings over ${settings.maxTotalMiB} MiB`);
      deleted.push(r.id);
    }
  }
  return deleted;
}

/** A recording's file and sidecar as they are on disk (the listing's size is the file's at its end). */
async function sizeOnDisk(r: RecordingRecord): Promise<number> {
  const size = async (p: string) => (await stat(p).catch(() => undefined))?.size ?? 0;
  return (await size(r.path)) + (await size(keysPathOf(r.path)));
}

/** Runs `sweepRecordings` every `everyMs` (the token sweep's interval); returns what stops it. */
export function startRecordingSweep(store: RecordingStore, hostname: string, settings: RetentionSettings, everyMs: number, log: Logger, audit?: AuditBy): () => void {
  if (everyMs <= 0 || (settings.retentionDays <= 0 && settings.maxTotalMiB <= 0)) return () => {};
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweepRecordings(store, hostname, settings, audit)
      .then(
        (ids) => ids.length > 0 && log.info({ event: 'sweep', recordings: ids.length }, `deleted ${ids.length} recording(s) past [porthole] recording_retention_days or recording_max_total_size`),
        (err: Error) => log.warn({ event: 'sweep', err: err.message }, `sweep of recordings failed: ${err.message}`),
      )
      .finally(() => (running = false));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** A recording's listing as the API and `--json` give it (snake case, times in ISO 8601). */
export function recordingJson(r: RecordingRecord) {
  return {
    id: r.id,
    session_id: r.sessionId,
    server_id: r.serverId,
    server_name: r.serverName,
    project_id: r.projectId,
    viewer: r.viewer,
    client: r.client,
    proxy_host: r.proxyHost,
    path: r.path,
    started_at: new Date(r.startedAt).toISOString(),
    ended_at: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
    size_bytes: r.sizeBytes,
  };
}
