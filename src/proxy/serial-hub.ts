/**
 * @module proxy/serial-hub
 * `[porthole] serial_keep_attached`: the kept serial consoles of this process, one per server of
 * the inventory that has a serial endpoint (`Server.serial`), each the one owner of its backend
 * connection (`kept-serial.ts`). The gateway owns the hub and closes it, which closes every
 * backend socket; nothing here is module state.
 *
 * The hub follows the inventory: it reads the list at start and every `pollMs`, adding a console
 * for a server added, closing the one of a server removed (its log file stays on disk), and
 * replacing the one whose endpoint changed (the same server id: the log goes on, in memory from
 * nothing, in the file where it was). A viewer of a server the last poll has not seen yet does
 * not wait for the next one: `attach` brings that server's console in at once. Polling, not
 * hooks on the admin API and the CLI: those may write from another process (`porthole server
 * add` on the same store), which a poll sees all the same.
 *
 * Only one process may keep a given serial endpoint: a QEMU chardev serves one client at a time,
 * the others wait in its accept queue and see nothing. So the hub runs only where the serial
 * listener runs with the option on (`porthole serve`, `porthole serialproxy`), the gateway refuses
 * it in the processes of `[porthole] workers` (a viewer may land on any of them), and with several
 * proxies on one store only one of them may have it on (said in the README; not elected).
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config/options.ts';
import { formatEndpoint, type ConsoleEndpoint, type Inventory, type Server } from '../inventory/types.ts';
import type { BackendOptions } from './backend.ts';
import { KeptSerial } from './kept-serial.ts';
import { readKeptLogFile, serialLogPath } from './serial-log-file.ts';

export interface SerialHubOptions extends BackendOptions {
  readonly inventory: Inventory;
  readonly log: Logger;
  /** `[porthole] serial_log_bytes`. */
  readonly logBytes: number;
  /** `[porthole] serial_log_dir`; null: memory only. */
  readonly logDir: string | null;
  /** How often the inventory is read again (ms). */
  readonly pollMs?: number;
  /** Backoff of a console's dials: from this, doubling (ms). */
  readonly minDelayMs?: number;
  /** ... up to this (ms). */
  readonly maxDelayMs?: number;
}

/** What the upgrade handler asks of the hub in place of a dial. */
export interface KeptSerialConsoles {
  /**
   * A viewer's stream on `server`'s kept serial console at `endpoint` (the token's, checked
   * against the inventory already): scrollback, then live output; input goes to the port unless
   * `viewOnly`. Rejects as a dial does when the backend cannot be reached.
   */
  attach(server: Server, endpoint: ConsoleEndpoint, opts: { readonly viewOnly: boolean }, signal?: AbortSignal): Promise<Duplex>;
}


const DEFAULT_POLL_MS = 10_000;

export class SerialHub implements KeptSerialConsoles {
  private readonly consoles = new Map<string, KeptSerial>();
  /** Changes to `consoles` run one after another (a poll, an attach, the close). */
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private over = false;
  private listFailed = false;

  constructor(private readonly opts: SerialHubOptions) {}

  /** Reads the inventory and starts keeping its serial consoles; then follows it. */
  async start(): Promise<void> {
    await this.sync();
    if (this.over) return;
    this.timer = setInterval(() => void this.sync(), this.opts.pollMs ?? DEFAULT_POLL_MS);
    this.timer.unref();
  }

  /** The kept consoles by server id (for tests and status). */
  get kept(): ReadonlyMap<string, KeptSerial> {
    return this.consoles;
  }

  /** Brings the hub in line with the inventory now. */
  sync(): Promise<void> {
    return this.serially(async () => {
      let servers: Server[];
      try {
        servers = await this.opts.inventory.list();
      } catch (err) {
        // the store is away: keep what is kept, say it once
        if (!this.listFailed) this.opts.log.warn({ event: 'serial_kept_inventory', err: (err as Error).message }, `serial_keep_attached: the inventory could not be read (${(err as Error).message}); the kept serial consoles stay as they were until it can`);
        this.listFailed = true;
        return;
      }
      this.listFailed = false;
      const wanted = new Map<string, ConsoleEndpoint>();
      for (const s of servers) if (s.serial) wanted.set(s.id, s.serial);
      for (const [id, kept] of [...this.consoles]) {
        const ep = wanted.get(id);
        if (ep && sameEndpoint(ep, kept.endpoint)) continue;
        await this.drop(id, kept, ep ? `its serial endpoint is now ${formatEndpoint(ep)}` : 'it has no serial endpoint in the inventory any more');
      }
      for (const [id, ep] of wanted) if (!this.consoles.has(id)) this.keep(id, ep);
    });
  }

  async attach(server: Server, endpoint: ConsoleEndpoint, opts: { readonly viewOnly: boolean }, signal?: AbortSignal): Promise<Duplex> {
    const kept = await this.serially(async () => {
      const have = this.consoles.get(server.id);
      if (have && sameEndpoint(have.endpoint, endpoint)) return have;
      if (have) await this.drop(server.id, have, `its serial endpoint is now ${formatEndpoint(endpoint)}`);
      return this.keep(server.id, endpoint);
    });
    return kept.attach(opts, signal);
  }

  /**
   * The kept log of server `id`: from memory where this process keeps it, else from its file in
   * `serial_log_dir` (another process keeps it, or kept it before); undefined: none here.
   */
  async contents(id: string): Promise<Buffer | undefined> {
    const kept = this.consoles.get(id);
    if (kept) {
      await kept.start();
      return kept.contents();
    }
    return this.opts.logDir === null ? undefined : readKeptLogFile(this.opts.logDir, id, this.opts.logBytes);
  }

  /** Stops following the inventory and closes every kept console (their backend sockets). */
  close(): Promise<void> {
    this.over = true;
    clearInterval(this.timer);
    return this.serially(async () => {
      await Promise.all([...this.consoles.values()].map((k) => k.close()));
      this.consoles.clear();
    });
  }

  private keep(id: string, endpoint: ConsoleEndpoint): KeptSerial {
    const logPath = this.opts.logDir === null ? undefined : serialLogPath(this.opts.logDir, id);
    if (this.opts.logDir !== null && logPath === undefined) this.opts.log.warn({ event: 'serial_log_file', server: id }, `server id ${JSON.stringify(id)} cannot name a file: its serial log is kept in memory only`);
    const kept = new KeptSerial(id, endpoint, {
      log: this.opts.log,
      logBytes: this.opts.logBytes,
      logPath,
      connectTimeoutMs: this.opts.connectTimeoutMs,
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs,
      minDelayMs: this.opts.minDelayMs ?? 500,
      maxDelayMs: this.opts.maxDelayMs ?? 30_000,
    });
    this.consoles.set(id, kept);
    if (this.over) void kept.close();
    else void kept.start();
    return kept;
  }

  private async drop(id: string, kept: KeptSerial, why: string): Promise<void> {
    this.consoles.delete(id);
    this.opts.log.info({ event: 'serial_kept_dropped', server: id, backend: formatEndpoint(kept.endpoint), viewers: kept.viewerCount }, `serial console of server ${id} (${formatEndpoint(kept.endpoint)}) no longer kept: ${why}`);
    // closed before another takes its place: the same log file, and a chardev that takes one client
    await kept.close();
  }

  private serially<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f);
    this.queue = run.catch(() => {});
    return run;
  }
}

/** The hub's options from the config (`[porthole] serial_log_bytes`, `serial_log_dir`, the backend deadlines). */
export function serialHubOptions(config: Config, inventory: Inventory, log: Logger): SerialHubOptions {
  const p = config.porthole;
  return {
    inventory,
    log,
    logBytes: p.serial_log_bytes,
    logDir: p.serial_log_dir ?? null,
    connectTimeoutMs: p.backend_connect_timeout * 1000,
    handshakeTimeoutMs: p.handshake_timeout * 1000,
  };
}

/**
 * The serial-log API's reader in a process that keeps no serial console: the files of
 * `serial_log_dir` where it is set (another process on this host keeps them), else none.
 */
export function keptLogFiles(config: Config): ((id: string) => Promise<Buffer | undefined>) | undefined {
  const { serial_log_dir: dir, serial_log_bytes: bytes } = config.porthole;
  return dir ? (id) => readKeptLogFile(dir, id, bytes) : undefined;
}

function sameEndpoint(a: ConsoleEndpoint, b: ConsoleEndpoint): boolean {
  return a.host === b.host && a.port === b.port;
}
