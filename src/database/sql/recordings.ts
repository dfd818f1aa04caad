/**
 * @module database/sql/recordings
 * The list of console recordings (`store/recordings.ts`) in `porthole_recordings` (migration
 * 0010) of Porthole's own database: one row per recording, times in epoch ms, indexed by start
 * time alone and with the server or the project, the filters of the recordings API.
 */
import type { RecordingFilter, RecordingRecord, RecordingStore } from '../../store/recordings.ts';
import type { Database } from './types.ts';

const TABLE = 'porthole_recordings';

interface Row {
  id: string;
  session_id: string;
  server_id: string;
  server_name: string | null;
  project_id: string | null;
  viewer: string | null;
  client: string;
  proxy_host: string;
  path: string;
  started_at: number | string | bigint;
  ended_at: number | string | bigint | null;
  size_bytes: number | string | bigint;
}

export class SqlRecordings implements RecordingStore {
  constructor(private readonly database: Database) {}

  async add(r: RecordingRecord): Promise<void> {
    await this.database.db
      .insertInto(TABLE)
      .values({
        id: r.id,
        session_id: r.sessionId,
        server_id: r.serverId,
        server_name: r.serverName,
        project_id: r.projectId,
        viewer: r.viewer,
        client: r.client,
        proxy_host: r.proxyHost,
        path: r.path,
        started_at: r.startedAt,
        ended_at: r.endedAt,
        size_bytes: r.sizeBytes,
      })
      .execute();
  }

  async finish(id: string, endedAt: number, sizeBytes: number): Promise<void> {
    await this.database.db.updateTable(TABLE).set({ ended_at: endedAt, size_bytes: sizeBytes }).where('id', '=', id).execute();
  }

  async get(id: string): Promise<RecordingRecord | undefined> {
    const row = (await this.database.db.selectFrom(TABLE).selectAll().where('id', '=', id).executeTakeFirst()) as Row | undefined;
    return row && toRecording(row);
  }

  async list(filter: RecordingFilter = {}): Promise<RecordingRecord[]> {
    let s = this.database.db.selectFrom(TABLE).selectAll();
    if (filter.serverId !== undefined) s = s.where('server_id', '=', filter.serverId);
    if (filter.projectId !== undefined) s = s.where('project_id', '=', filter.projectId);
    if (filter.since !== undefined) s = s.where('started_at', '>=', filter.since);
    s = s.orderBy('started_at', 'desc').orderBy('id', 'desc');
    if (filter.limit !== undefined) s = s.limit(filter.limit);
    return ((await s.execute()) as Row[]).map(toRecording);
  }

  async remove(id: string): Promise<boolean> {
    const r = await this.database.db.deleteFrom(TABLE).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

function toRecording(r: Row): RecordingRecord {
  return {
    id: r.id,
    sessionId: r.session_id,
    serverId: r.server_id,
    serverName: r.server_name,
    projectId: r.project_id,
    viewer: r.viewer,
    client: r.client,
    proxyHost: r.proxy_host,
    path: r.path,
    startedAt: Number(r.started_at),
    endedAt: r.ended_at == null ? null : Number(r.ended_at),
    sizeBytes: Number(r.size_bytes),
  };
}
