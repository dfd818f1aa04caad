/**
 * @module http/cert-reload
 * Certificates renewed in place (certbot, cert-manager, an operator's `cp`) reach the running TLS
 * servers without a restart and without touching a live connection: each server is handed a new
 * secure context (`setSecureContext`), which only handshakes made after it use.
 *
 * The files are polled (inode, size, times) every `intervalMs`, not watched: `fs.watch` on a file
 * loses it at the first atomic rename (certbot's and cert-manager's way: a new file, or a
 * symlink swapped in), and on a directory it misses symlinked targets. A change is loaded once
 * the files have looked the same on two polls in a row, so a pair caught half-written is not
 * tried. `reloadNow` (SIGHUP) loads at once. A pair that does not load (unreadable, no PEM, a key
 * of another certificate) is logged once, naming its options, and the servers keep the context
 * they have; every load is one info line naming the certificate (subject, serial, expiry), never
 * anything of the key.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { describeCertificate, pairName, secureOptionsNow, type SecureOptions, type TlsSettings } from './tls.ts';

/** What a reload needs of a TLS server (`tls.Server`, `https.Server`). */
export interface ReloadableServer {
  setSecureContext(options: SecureOptions): void;
}

/** What the reloader needs of the daemon's logger (pino's signature). */
export interface ReloadLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

/** Polled often enough that a renewal is served within seconds, seldom enough to cost nothing: two stats. */
export const CERT_POLL_MS = 2000;

/** The servers that share one pair of files and one policy, and what was last seen of the files. */
interface Pair {
  readonly settings: TlsSettings;
  /** Who serves this pair, for the log: `noVNC proxy`, `compute API`. */
  readonly users: string[];
  readonly servers: ReloadableServer[];
  /** The files' look when last loaded or tried: a poll that sees it again does nothing. */
  tried: string;
  /** A new look seen once, loaded if the next poll sees it again. */
  pending: string | undefined;
  /** SHA-256 of the bytes being served: a rewrite with the same bytes is no reload. */
  served: string;
}

export class CertificateReloader {
  readonly #log: ReloadLog;
  readonly #pairs = new Map<string, Pair>();
  readonly #timer: NodeJS.Timeout;
  #busy: Promise<void> | undefined;
  #closed = false;

  constructor(log: ReloadLog, opts: { readonly intervalMs?: number } = {}) {
    this.#log = log;
    this.#timer = setInterval(() => void this.#run(false, 'changed'), opts.intervalMs ?? CERT_POLL_MS);
    // never what keeps the process alive
    this.#timer.unref();
  }

  /**
   * Keeps `server` on the pair of `settings` from now on; `served` is what it was started with.
   * Servers of the same files and policy are reloaded together, from one read.
   */
  watch(user: string, settings: TlsSettings, server: ReloadableServer, served: SecureOptions): void {
    const id = JSON.stringify(settings);
    const pair = this.#pairs.get(id);
    if (pair) {
      if (!pair.users.includes(user)) pair.users.push(user);
      pair.servers.push(server);
      return;
    }
    this.#pairs.set(id, { settings, users: [user], servers: [server], tried: lookSync(settings), pending: undefined, served: digest(served) });
  }

  /** Loads every pair now, changed or not (SIGHUP); resolves when done. */
  reloadNow(reason = 'SIGHUP'): Promise<void> {
    return this.#run(true, reason);
  }

  /** Stops polling; a load under way finishes. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }

  #run(force: boolean, reason: string): Promise<void> {
    if (this.#closed) return Promise.resolve();
    // one pass at a time: a SIGHUP during a poll's load waits for it, then loads again
    const previous = this.#busy ?? Promise.resolve();
    const pass = previous.then(() => this.#pass(force, reason)).catch((err: Error) => {
      // a reload must never end the process: the servers keep what they have
      this.#log.warn({ event: 'tls_reload', reason, err: err?.message }, `TLS certificate reload failed (${reason}): ${err?.stack ?? err}`);
    });
    this.#busy = pass.finally(() => {
      if (this.#busy === pass) this.#busy = undefined;
    });
    return pass;
  }

  async #pass(force: boolean, reason: string): Promise<void> {
    for (const pair of this.#pairs.values()) {
      if (this.#closed) return;
      const now = await look(pair.settings);
      if (!force) {
        if (now === pair.tried) {
          pair.pending = undefined;
          continue;
        }
        if (now !== pair.pending) {
          // seen once: a writer may be between the certificate and the key
          pair.pending = now;
          continue;
        }
      }
      pair.pending = undefined;
      pair.tried = now;
      await this.#load(pair, reason);
    }
  }

  async #load(pair: Pair, reason: string): Promise<void> {
    const who = pair.users.join(', ');
    const fields = { event: 'tls_reload', users: pair.users, cert: pair.settings.files.cert, reason };
    let options: SecureOptions;
    try {
      options = await secureOptionsNow(pair.settings);
    } catch (err) {
      this.#log.warn({ ...fields, err: (err as Error).message }, `TLS certificate of the ${who} not reloaded (${reason}): ${(err as Error).message}; the certificate loaded before is still served`);
      return;
    }
    const sum = digest(options);
    if (sum === pair.served) {
      this.#log.debug(fields, `TLS certificate of the ${who} unchanged (${reason}): ${pairName(pair.settings.files)}`);
      return;
    }
    for (const server of pair.servers) server.setSecureContext(options);
    pair.served = sum;
    this.#log.info({ ...fields, certificate: describeCertificate(options.cert) }, `TLS certificate of the ${who} reloaded (${reason}): ${describeCertificate(options.cert)}, from ${pairName(pair.settings.files)}`);
  }
}

function digest(options: SecureOptions): string {
  return createHash('sha256').update(options.cert).update('\0').update(options.key).digest('hex');
}

/** The files' look: what changes when one is rewritten, renamed over or re-linked. */
async function look(settings: TlsSettings): Promise<string> {
  const { cert, key } = settings.files;
  const files = key !== null && key !== cert ? [cert, key] : [cert];
  return (await Promise.all(files.map((f) => stat(f).then(fileLook, (err: NodeJS.ErrnoException) => err.code ?? 'error')))).join('|');
}

function lookSync(settings: TlsSettings): string {
  const { cert, key } = settings.files;
  const files = key !== null && key !== cert ? [cert, key] : [cert];
  return files
    .map((f) => {
      try {
        return fileLook(statSync(f));
      } catch (err) {
        return (err as NodeJS.ErrnoException).code ?? 'error';
      }
    })
    .join('|');
}

function fileLook(s: { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}
