/**
 * An in-memory `RecordingStore` for tests that are not about the store (the store's own tests
 * run against SQLite, PostgreSQL, MariaDB and Redis).
 */
import type { RecordingFilter, RecordingRecord, RecordingStore } from '../../src/store/recordings.ts';

export class MemoryRecordings implements RecordingStore {
  readonly rows = new Map<string, RecordingRecord>();

  async add(r: RecordingRecord): Promise<void> {
    this.rows.set(r.id, r);
  }

  async finish(id: string, endedAt: number, sizeBytes: number): Promise<void> {
    const r = this.rows.get(id);
    if (r) this.rows.set(id, { ...r, endedAt, sizeBytes });
  }

  async get(id: string): Promise<RecordingRecord | undefined> {
    return this.rows.get(id);
  }

  async list(f: RecordingFilter = {}): Promise<RecordingRecord[]> {
    return [...this.rows.values()]
      .filter((r) => (f.serverId === undefined || r.serverId === f.serverId) && (f.projectId === undefined || r.projectId === f.projectId) && (f.since === undefined || r.startedAt >= f.since))
      .sort((a, b) => b.startedAt - a.startedAt)
      .slice(0, f.limit ?? 1000);
  }

  async remove(id: string): Promise<boolean> {
    return this.rows.delete(id);
  }
}
