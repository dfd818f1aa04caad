/**
 * @module proxy/serial-log-file
 * A kept serial console's output on disk (`[porthole] serial_log_dir`): `<dir>/<server id>.log`,
 * created owner-only (0600: a console prints what its users type at a login prompt), appended as
 * output comes, read back at start so the log survives a restart. The file is bounded by
 * truncation, not rotation: once it would pass twice `limit` (`serial_log_bytes`) it is replaced
 * (a new file renamed over it, so a crash leaves the old or the new one, never half of one) by the
 * last `limit` bytes, which the ring in memory holds at that moment. It so holds between `limit`
 * and twice `limit` bytes: appends are one write each (no rewrite per chunk), and what the API and
 * the next start read is at least the last `limit` bytes.
 *
 * Writes are queued: one write in flight per file, the chunks that came meanwhile go together in
 * the next. A write that fails (disk full, directory gone) turns the file off for the rest of the
 * run, said once in the log; the console and its memory log go on.
 */
import { open, rename, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

/** A server id that can name a file: the inventory's UUIDs, never a path. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The log file of server `id` in `dir`, or undefined when the id cannot name a file safely. */
export function serialLogPath(dir: string, id: string): string | undefined {
  return SAFE_ID.test(id) ? join(dir, `${id}.log`) : undefined;
}

/** The last `limit` bytes of a server's log file; an empty buffer when there is none. */
export async function readSerialLogTail(path: string, limit: number): Promise<Buffer> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, limit);
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(out, done, length - done, size - length + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return out.subarray(0, done);
  } finally {
    await handle.close();
  }
}

export class SerialLogFile {
  private handle: FileHandle | undefined;
  private size = 0;
  private pending: Buffer[] = [];
  private writing: Promise<void> | undefined;
  private off = false;

  /**
   * `snapshot` gives the last `limit` bytes as they are at the moment it is called (the ring's
   * contents), for the truncation: every byte appended before that moment is in it.
   */
  private constructor(
    readonly path: string,
    private readonly limit: number,
    private readonly snapshot: () => Buffer,
    private readonly log: Logger,
  ) {}

  /**
   * Opens (creating, 0600) the log file at `path`; returns it and its last `limit` bytes, which
   * the caller puts into its ring before anything is appended.
   */
  static async open(path: string, limit: number, snapshot: () => Buffer, log: Logger): Promise<{ file: SerialLogFile; tail: Buffer }> {
    const tail = await readSerialLogTail(path, limit);
    const file = new SerialLogFile(path, limit, snapshot, log);
    file.handle = await open(path, 'a', 0o600);
    file.size = (await file.handle.stat()).size;
    return { file, tail };
  }

  /** Queues `chunk` (which the file may hold on to until written: give it a buffer of its own). */
  append(chunk: Buffer): void {
    if (this.off || this.handle === undefined) return;
    this.pending.push(chunk);
    this.writing ??= this.flush();
  }

  /** Writes what is queued, then closes the file. */
  async close(): Promise<void> {
    await this.writing;
    const h = this.handle;
    this.handle = undefined;
    await h?.close().catch(() => {});
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0 && this.handle !== undefined) {
        const chunks = this.pending;
        this.pending = [];
        const bytes = chunks.reduce((n, c) => n + c.length, 0);
        if (this.size + bytes > 2 * this.limit) {
          // the snapshot already holds every chunk queued so far
          await this.truncate();
          continue;
        }
        await this.handle.writev(chunks);
        this.size += bytes;
      }
    } catch (err) {
      this.off = true;
      this.pending = [];
      this.log.warn({ event: 'serial_log_file', path: this.path, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message }, `serial log file ${this.path} could not be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the log is kept in memory only until the next start`);
    } finally {
      this.writing = undefined;
    }
  }

  /** Replaces the file by the last `limit` bytes. */
  private async truncate(): Promise<void> {
    const kept = this.snapshot();
    this.pending = [];
    const tmp = `${this.path}.tmp`;
    const h = await open(tmp, 'w', 0o600);
    try {
      await h.writeFile(kept);
    } finally {
      await h.close();
    }
    await rename(tmp, this.path);
    const old = this.handle;
    this.handle = await open(this.path, 'a', 0o600);
    await old?.close();
    this.size = kept.length;
  }
}

/** For the API where no hub runs in this process: the last `limit` bytes of the file, or undefined when the server has none. */
export async function readKeptLogFile(dir: string, id: string, limit: number): Promise<Buffer | undefined> {
  const path = serialLogPath(dir, id);
  if (path === undefined) return undefined;
  try {
    await stat(path);
  } catch {
    return undefined;
  }
  return readSerialLogTail(path, limit);
}
