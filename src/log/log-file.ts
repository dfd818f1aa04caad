/**
 * @module log/log-file
 * `log_file` / `log_dir`: the log appended to a file, as oslo.log's handlers do.
 * - Opened with O_APPEND, so the processes of `[porthole] workers` may share one file: each line
 *   is one write(2), placed whole at the end whoever else writes.
 * - Created with mode 0640 (less the umask): a log names clients and servers, not for everyone.
 * - `reopen()` (on SIGHUP) closes and opens the path again: logrotate's `create` moves the file
 *   away and signals the daemon, which then writes to a new file at the path.
 * - With `watch_log_file`, before each write the path is stat()ed and compared with the open
 *   file (device and inode), as Python's WatchedFileHandler does: moved or deleted, the file is
 *   reopened without any signal.
 * Writes are synchronous: a line is in the file when the log call returns, also just before
 * the process exits.
 */
import { closeSync, fstatSync, openSync, statSync, writeSync } from 'node:fs';

/** How a log file is created: read and write for its owner, read for its group. */
export const LOG_FILE_MODE = 0o640;

export class LogFile {
  private fd: number | undefined;
  private dev = 0;
  private ino = 0;

  /**
   * Opens `path` at once: a file that cannot be opened throws here, at start. `mode` is the
   * mode a new file is created with (the audit trail's is 0600).
   */
  constructor(readonly path: string, private readonly watch: boolean, private readonly mode = LOG_FILE_MODE) {
    this.open();
  }

  get what(): string {
    return `the log file ${this.path}`;
  }

  /** Appends `text` (whole lines); throws when the file cannot be written. */
  write(text: string): void {
    if (this.watch && this.moved()) this.reopen();
    if (this.fd === undefined) this.open();
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    // a regular file takes the whole buffer in one write; the loop is for a short write (a full disk)
    while (off < buf.length) off += writeSync(this.fd!, buf, off, buf.length - off);
  }

  /** Closes the file and opens the path again (a new file when it was moved away). */
  reopen(): void {
    this.shut();
    this.open();
  }

  close(): void {
    this.shut();
  }

  private open(): void {
    const fd = openSync(this.path, 'a', this.mode);
    const st = fstatSync(fd);
    this.fd = fd;
    this.dev = st.dev;
    this.ino = st.ino;
  }

  private shut(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      closeSync(fd);
    } catch {
      // nothing left to do with a descriptor that does not close
    }
  }

  /** The path no longer names the open file: moved, deleted, or replaced. */
  private moved(): boolean {
    const st = statSync(this.path, { throwIfNoEntry: false });
    return !st || st.dev !== this.dev || st.ino !== this.ino;
  }
}
