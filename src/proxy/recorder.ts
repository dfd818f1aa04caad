/**
 * @module proxy/recorder
 * Records console sessions to files (`rfb/recording/format.ts`) beside the byte relay, at the
 * least live cost: a tapped chunk is held as it is (the relay's own buffer, given back once
 * written) with its 9-byte record head, and the relay goes on; records are written off the byte
 * path, one write per 64 KiB gathered or per 100 ms. Nothing on the byte path waits for the disk: past `maxQueuedBytes` not yet written the
 * recording is cut (a `TRUNCATED` record, one warning) and the console runs on unrecorded.
 *
 * `Recorders` is the gateway's (one per process): it decides which sessions are recorded, names
 * their files (`[DEFAULT] record` prefix, else `[porthole] recording_dir`; directory 0700, files
 * 0600), lists each recording in the `RecordingStore` at its start and finishes the listing at
 * its end. A `SessionRecorder` is one recording; the relay taps it (`relay.ts` `RelayTap`) and a
 * shared console's hub may too: `fromBackend` for every chunk the backend sent after ServerInit,
 * `fromClient` for every message that went to the backend, `close()` once at the end.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import { currentStateContext, stateDirectory } from '../config/state-dir.ts';
import type { Server } from '../inventory/types.ts';
import type { AuditRecorder } from '../store/audit-events.ts';
import type { RecordingRecord, RecordingStore } from '../store/recordings.ts';
import type { RelayTap } from './relay.ts';
import { encodeHeader, encodeRecordHead, RECORD_HEAD, RecordType } from '../rfb/recording/format.ts';

/** What a recording's header and listing say of the session it records. */
export interface RecordingFacts {
  /** The console session recorded (a relay's session id, or a shared console's id). */
  readonly sessionId: string;
  readonly serverId: string;
  readonly serverName: string | null;
  readonly projectId: string | null;
  /** The token's label or minter, when known. */
  readonly viewer: string | null;
  /** The client's address as the sessions registry shows it (a shared console: its first viewer's). */
  readonly client: string;
  /** The ServerInit message the client was given: what a decoder of the recorded stream starts from. */
  readonly serverInit: Buffer;
  /** The recording's id; default: the session id (so the file name names both). */
  readonly id?: string;
}

/** One recording; all its methods are cheap and never throw. */
export interface SessionRecorder {
  /** The recording's id (the store's, the file's name, the session info's `recording`). */
  readonly id: string;
  readonly path: string;
  /**
   * Backend bytes as relayed to the client. With `keep`, the recorder may hold `chunk` as it is
   * until written and calls `keep` once when done with it; without, it copies `chunk` before it
   * returns (the caller may reuse it).
   */
  fromBackend(chunk: Buffer, keep?: () => void): void;
  /** One message from the client to the backend; copied before it returns. */
  fromClient(message: Buffer): void;
  /** The disk could not keep up (or failed): what came after was not recorded. */
  readonly truncated: boolean;
  /** Ends the recording (an `END` record, the file closed, the listing finished); once, later calls wait for the first. */
  close(): Promise<void>;
}

/** The relay's tap (`relay.ts` `RelayTap`) that feeds `r`. */
export function recorderTap(r: SessionRecorder): RelayTap {
  return {
    fromBackend: (chunk, keep) => r.fromBackend(chunk, keep),
    toBackend: (data) => r.fromClient(data),
    end: () => void r.close(),
  };
}

/** Where the recordings of a process go. */
export interface RecordingPlace {
  /** `[DEFAULT] record`: files are `<prefix>.<id>.rfbrec`. */
  readonly prefix?: string | null;
  /** `[porthole] recording_dir` (or `recordings/` in the state directory): files are `<dir>/<id>.rfbrec`. */
  readonly dir: string;
}

export interface RecordersOptions {
  readonly place: RecordingPlace;
  /** `[DEFAULT] record` is set: every noVNC session is recorded. */
  readonly recordAll: boolean;
  readonly store: RecordingStore;
  readonly log: Logger;
  /** This host's name: the listing's `proxyHost`, where the file can be read. */
  readonly hostname: string;
  readonly audit?: AuditRecorder;
  /** Bytes tapped and not yet written past which the recording is cut (default 16 MiB). */
  readonly maxQueuedBytes?: number;
  /** Bytes gathered that make a write at once (default 64 KiB). */
  readonly blockBytes?: number;
  /** Longest a tapped byte waits for its write (default 100 ms). */
  readonly flushMs?: number;
}

/** A server id or session id that can name a file: UUIDs and the like, never a path. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const RECORDING_SUFFIX = '.rfbrec';
export const KEYS_SUFFIX = '.keys';

/** The file of recording `id`. */
export function recordingPath(place: RecordingPlace, id: string): string {
  if (!SAFE_ID.test(id)) throw new RangeError(`recording id ${JSON.stringify(id)} cannot name a file`);
  return place.prefix ? `${place.prefix}.${id}${RECORDING_SUFFIX}` : join(place.dir, `${id}${RECORDING_SUFFIX}`);
}

export class Recorders {
  /** Recordings under way in this process. */
  readonly active = new Set<SessionRecorder>();
  /**
   * Bytes a new recording may have waiting for the disk before it is cut (`maxQueuedBytes`, 16 MiB
   * by default): a benchmark that measures the whole cost of recording raises it so that none is cut.
   */
  queueBytes: number;
  private readonly dirsMade = new Set<string>();

  constructor(private readonly opts: RecordersOptions) {
    this.queueBytes = opts.maxQueuedBytes ?? 16 * 1024 * 1024;
  }

  /**
   * Whether a session of `server` (absent: not in the inventory) whose token's extras say
   * `tokenRecord` is recorded: a token that asks always is; a server's own `record` wins over
   * `[DEFAULT] record` (`--no-record`: never, `--record`: always), which decides for the others.
   */
  wants(server: Pick<Server, 'record'> | undefined, tokenRecord: boolean | null | undefined): boolean {
    if (tokenRecord === true) return true;
    return server?.record ?? this.opts.recordAll;
  }

  /**
   * Starts recording (the file opens in the background; what is tapped meanwhile waits for it,
   * within the same bound). The listing is added now and finished at `close()`.
   */
  start(facts: RecordingFacts): SessionRecorder {
    const id = facts.id ?? facts.sessionId;
    const path = recordingPath(this.opts.place, id);
    const startedAt = Date.now();
    const record: RecordingRecord = {
      id,
      sessionId: facts.sessionId,
      serverId: facts.serverId,
      serverName: facts.serverName,
      projectId: facts.projectId,
      viewer: facts.viewer,
      client: facts.client,
      proxyHost: this.opts.hostname,
      path,
      startedAt,
      endedAt: null,
      sizeBytes: 0,
    };
    const header = encodeHeader({
      format: 1,
      kind: 'recording',
      recordingId: id,
      sessionId: facts.sessionId,
      serverId: facts.serverId,
      serverName: facts.serverName,
      projectId: facts.projectId,
      viewer: facts.viewer,
      client: facts.client,
      startedAt,
      serverInit: facts.serverInit.toString('base64'),
    });
    const rec = new FileRecorder(id, path, startedAt, header, { ...this.opts, maxQueuedBytes: this.queueBytes }, () => this.ensureDir(path), (r) => this.active.delete(r));
    this.active.add(rec);
    this.opts.store.add(record).catch((err: Error) => this.opts.log.warn({ event: 'recording', recording: id, err: err.message }, `recording ${id} could not be listed in the store: ${err.message}`));
    this.opts.audit?.record({ event: 'recording.started', server: facts.serverId, session: facts.sessionId, client: facts.client, actor: { system: 'proxy' }, recording: id });
    this.opts.log.info({ event: 'recording', recording: id, session: facts.sessionId, instance: facts.serverId, path }, `recording console session ${facts.sessionId} to ${path}`);
    return rec;
  }

  /** Ends every recording under way (the gateway's close, after the sessions ended). */
  async close(): Promise<void> {
    await Promise.all([...this.active].map((r) => r.close()));
  }

  /** The recording's directory, made 0700 when it does not exist (once per process and directory). */
  private ensureDir(path: string): void {
    const dir = dirname(path);
    if (this.dirsMade.has(dir)) return;
    try {
      statSync(dir);
    } catch {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    this.dirsMade.add(dir);
  }
}

/**
 * One recording's file. A record is its 9-byte head (from Node's small-buffer pool) and its
 * bytes: held as they are when the caller allows it (`fromBackend` with `keep`: the relay's own
 * chunks, given back once written), else copied. Records gather until 64 KiB or 100 ms, then go
 * to the write queue; one write at a time (at most `IOV_BATCH` pieces each) runs off the byte
 * path. The first write also opens the file (0600, exclusive: a recording never appends to
 * another's file). Every `keep` is called exactly once: when its bytes are written, dropped (cut,
 * failed) or not held at all.
 */
class FileRecorder implements SessionRecorder {
  truncated = false;
  private handle: FileHandle | undefined;
  /** Records gathered since the last seal, and the `keep`s of the chunks among them. */
  private pieces: Buffer[] = [];
  private keeps: Array<() => void> = [];
  private gathered = 0;
  /** Sealed groups waiting for their write. */
  private queue: Array<{ readonly pieces: Buffer[]; readonly keeps: Array<() => void>; readonly bytes: number }> = [];
  private queuedBytes = 0;
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failed = false;
  private closing: Promise<void> | undefined;
  private written = 0;
  private readonly blockBytes: number;
  private readonly maxQueued: number;
  private readonly flushMs: number;

  constructor(
    readonly id: string,
    readonly path: string,
    private readonly startedAt: number,
    header: Buffer,
    private readonly opts: RecordersOptions,
    private readonly ensureDir: () => void,
    private readonly gone: (r: FileRecorder) => void,
  ) {
    this.blockBytes = opts.blockBytes ?? 64 * 1024;
    this.maxQueued = opts.maxQueuedBytes ?? 16 * 1024 * 1024;
    this.flushMs = opts.flushMs ?? 100;
    this.pieces.push(header);
    this.gathered = header.length;
    this.arm();
  }

  fromBackend(chunk: Buffer, keep?: () => void): void {
    this.append(RecordType.SERVER, chunk, keep);
  }

  fromClient(message: Buffer): void {
    this.append(RecordType.CLIENT, message, undefined);
  }

  close(): Promise<void> {
    this.closing ??= this.finish();
    return this.closing;
  }

  private append(type: number, bytes: Buffer, keep: (() => void) | undefined): void {
    if (this.truncated || this.closing || this.failed) {
      keep?.();
      return;
    }
    const need = RECORD_HEAD + bytes.length;
    if (this.queuedBytes + this.gathered + need > this.maxQueued) {
      keep?.();
      this.truncate();
      return;
    }
    this.pieces.push(encodeRecordHead(type, Date.now() - this.startedAt, bytes.length, Buffer.allocUnsafe(RECORD_HEAD), 0));
    if (keep) {
      this.pieces.push(bytes);
      this.keeps.push(keep);
    } else {
      this.pieces.push(Buffer.from(bytes));
    }
    this.gathered += need;
    if (this.gathered >= this.blockBytes) this.seal();
    else this.arm();
  }

  /** The disk is behind by more than the bound: the recording stops here, saying so in the file and once in the log. */
  private truncate(): void {
    this.truncated = true;
    this.pieces.push(encodeRecordHead(RecordType.TRUNCATED, Date.now() - this.startedAt, 0, Buffer.allocUnsafe(RECORD_HEAD), 0));
    this.gathered += RECORD_HEAD;
    this.seal();
    this.opts.log.warn({ event: 'recording_truncated', recording: this.id, path: this.path, queuedBytes: this.queuedBytes }, `recording ${this.id}: the disk did not keep up (${this.queuedBytes} bytes waiting); the rest of the session is not recorded`);
  }

  /** What gathered goes to the write queue. */
  private seal(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pieces.length === 0) return;
    this.queue.push({ pieces: this.pieces, keeps: this.keeps, bytes: this.gathered });
    this.queuedBytes += this.gathered;
    this.pieces = [];
    this.keeps = [];
    this.gathered = 0;
    this.writing ??= this.drain();
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.seal();
    }, this.flushMs);
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failed) {
        if (this.handle === undefined) {
          this.ensureDir();
          this.handle = await open(this.path, 'wx', 0o600);
        }
        const groups = this.queue;
        this.queue = [];
        const pieces = groups.length === 1 ? groups[0]!.pieces : groups.flatMap((g) => g.pieces);
        for (let i = 0; i < pieces.length; i += IOV_BATCH) await writeAll(this.handle, pieces.slice(i, i + IOV_BATCH));
        const bytes = groups.reduce((n, g) => n + g.bytes, 0);
        this.written += bytes;
        this.queuedBytes = Math.max(0, this.queuedBytes - bytes);
        for (const g of groups) for (const keep of g.keeps) keep();
      }
    } catch (err) {
      this.failed = true;
      this.dropQueued();
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.opts.log.warn({ event: 'recording_failed', recording: this.id, path: this.path, err: code }, `recording ${this.id} could not be written to ${this.path} (${code}); the session goes on unrecorded`);
    } finally {
      this.writing = undefined;
    }
  }

  /** Gives back every chunk held and not written (a failed recording). */
  private dropQueued(): void {
    const groups = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    for (const g of groups) for (const keep of g.keeps) keep();
    for (const keep of this.keeps) keep();
    this.keeps = [];
    this.pieces = [];
    this.gathered = 0;
  }

  private async finish(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.failed) {
      this.pieces.push(encodeRecordHead(RecordType.END, Date.now() - this.startedAt, 0, Buffer.allocUnsafe(RECORD_HEAD), 0));
      this.gathered += RECORD_HEAD;
      this.seal();
    }
    while (this.writing) await this.writing;
    // a write that failed meanwhile left nothing held; this is for the case of none at all
    this.dropQueued();
    const h = this.handle;
    this.handle = undefined;
    await h?.close().catch(() => {});
    let size = this.written;
    try {
      size = statSync(this.path).size;
    } catch {
      // never opened (failed before its first write)
    }
    this.gone(this);
    await this.opts.store.finish(this.id, Date.now(), size).catch((err: Error) => this.opts.log.warn({ event: 'recording', recording: this.id, err: err.message }, `recording ${this.id} could not be finished in the store: ${err.message}`));
  }
}

/** Pieces per write (under the kernel's IOV_MAX of 1024). */
const IOV_BATCH = 512;

/** Writes every byte of `pieces` at the file's position (a short write goes on from where it stopped). */
async function writeAll(h: FileHandle, pieces: Buffer[]): Promise<void> {
  let left = pieces;
  for (;;) {
    const total = left.reduce((n, p) => n + p.length, 0);
    const { bytesWritten } = await h.writev(left);
    if (bytesWritten >= total) return;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const p of left) {
      if (skip >= p.length) {
        skip -= p.length;
        continue;
      }
      rest.push(skip > 0 ? p.subarray(skip) : p);
      skip = 0;
    }
    left = rest;
  }
}

/**
 * Where this process's recordings go and whether every session is recorded, from the config:
 * `[DEFAULT] record` (a file prefix, every noVNC session), else `[porthole] recording_dir`, else
 * `recordings/` in the state directory (`config/state-dir.ts`).
 */
export function recordingPlaceOf(config: Pick<Config, 'DEFAULT' | 'porthole'>, env: NodeJS.ProcessEnv = process.env): { place: RecordingPlace; recordAll: boolean } {
  const prefix = config.DEFAULT.record || null;
  const dir = prefix ? dirname(prefix) : (config.porthole.recording_dir || join(stateDirectory(currentStateContext(env)), 'recordings'));
  return { place: { prefix, dir }, recordAll: prefix !== null };
}
