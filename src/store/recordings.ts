/**
 * @module store/recordings
 * The list of console recordings (the files themselves are on the recording host's disk): who,
 * which server, when, how big, where. Shared by every proxy on Porthole's own store, so the API
 * on any host lists all of them; the file is read by the host that wrote it (`proxyHost`).
 */

export interface RecordingRecord {
  /** Random id (UUID), also in the file's name. */
  readonly id: string;
  /** The console session recorded (the sessions registry's id). */
  readonly sessionId: string;
  readonly serverId: string;
  readonly serverName: string | null;
  readonly projectId: string | null;
  /** Who was at the console: the token's label or minter, when known. */
  readonly viewer: string | null;
  /** The client's address, as in the sessions registry. */
  readonly client: string;
  /** The host name of the proxy that wrote the file. */
  readonly proxyHost: string;
  /** Absolute path of the file on `proxyHost`. */
  readonly path: string;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  /** Epoch milliseconds; null while the session is live (or its proxy died before writing it). */
  readonly endedAt: number | null;
  /** Bytes of the file (updated when the recording ends). */
  readonly sizeBytes: number;
}

export interface RecordingFilter {
  readonly serverId?: string;
  readonly projectId?: string;
  /** Epoch milliseconds: recordings started at or after. */
  readonly since?: number;
  readonly limit?: number;
}

export interface RecordingStore {
  add(r: RecordingRecord): Promise<void>;
  finish(id: string, endedAt: number, sizeBytes: number): Promise<void>;
  get(id: string): Promise<RecordingRecord | undefined>;
  /** Newest first. */
  list(filter?: RecordingFilter): Promise<RecordingRecord[]>;
  remove(id: string): Promise<boolean>;
}
