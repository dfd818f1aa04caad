/**
 * @module bench/nova-novncproxy
 * Debian's real nova-novncproxy (package nova-consoleproxy: Nova 26.2.2, 2023.1 "Antelope", on
 * Debian 12, with websockify 0.10, oslo.messaging 14.0.3, SQLAlchemy 1.4, eventlet 0.33) as a
 * peer of the relay benchmark, run the way a deployment runs it, on loopback only:
 *
 * - its own nova.conf in a private temp dir: `[database] connection` a SQLite cell database
 *   with Nova's own schema (`nova.db.migration.db_sync(database='main')`, the alembic migrations
 *   `nova-manage db sync` runs; no API database is needed: about 0.35 s on an idle machine,
 *   1–2 s on a busy one), `[vnc] novncproxy_host = 127.0.0.1`, a free port, `auth_schemes =
 *   none`, `[DEFAULT] transport_url` the machine's RabbitMQ (guest/guest on 127.0.0.1:5672;
 *   RabbitMQ admits guest from loopback only), logging at WARNING on stderr through
 *   `log_config_append`;
 * - one `instances` row per backend (`objects.Instance.create()`, on a compute host named for
 *   the run) and one token per instance minted as nova-compute mints it for get_vnc_console:
 *   `objects.ConsoleAuthToken(context, console_type='novnc', host, port, instance_uuid,
 *   access_url_base).authorize(CONF.consoleauth.token_ttl)` (bench/nova_peer.py `mint`, Debian's
 *   /usr/bin/python3);
 * - a stub nova-compute for the RPC every connection makes (below): Nova's own RPC server
 *   (`nova.rpc.get_server`, NovaObjectSerializer, eventlet executor) on topic `compute`, server
 *   = the instances' host, target version 6.1 without a namespace like ComputeManager's, whose
 *   `validate_console_port` returns True (the real one asks the hypervisor driver for the
 *   console and compares ports: the only step left out). bench/nova_peer.py `compute`.
 *   Isolation per run: the compute host name and `control_exchange` are `porthole-bench-<8 hex>`;
 *   with `amqp_auto_delete = true` the run's exchange and the stub's topic queues go when it
 *   stops, and `rabbit_transient_queues_ttl = 60` lets the stub's fanout queue and each
 *   connection's reply queue expire 60 s after their process is gone instead of Nova's 1800 s.
 *   Neither changes the work per connection.
 *
 * What one connection costs in Nova 26 (nova/console/websocketproxy.py, websockify 0.10
 * websockifyserver.py), in order:
 *
 * 1. websockify's accept loop (a blocking `select` on the listening socket, backlog 100) forks
 *    a `multiprocessing.Process` per accepted TCP connection, before even reading the request;
 *    the loop also calls `multiprocessing.active_children()` (a waitpid per live child) on every
 *    turn and on every SIGCHLD;
 * 2. the child does the WebSocket upgrade, then `hubs.use_hub()` (a fresh eventlet hub: the
 *    process is eventlet monkey-patched by `nova.cmd`) and `_get_connect_info`:
 *    `ConsoleAuthToken.validate` (a SELECT by sha256 of the token) and
 *    `_check_console_port`: `Instance.get_by_uuid` (a SELECT joined with info_cache and
 *    security_groups) and `ComputeAPI.validate_console_port`, an RPC **call** (version 6.0:
 *    `[upgrade_levels] compute` is unset) to `compute.<instance.host>`, waiting for the reply.
 *    The parent never touches the database or the message bus before it forks, so every child
 *    starts from scratch: SQLAlchemy configures all of Nova's mappers (about 50 ms CPU), oslo.db
 *    starts an engine (about 13 ms), and oslo.messaging opens **two** AMQP connections to
 *    RabbitMQ (a reply listener with its `reply_<uuid>` queue, and a pooled one to publish);
 *    the RPC takes about 13 ms CPU in the child, the two queries about 30 ms;
 * 3. it connects to the VM's VNC server and always runs its RFB security proxy
 *    (`nova.console.securityproxy.rfb`, set by nova/cmd/novncproxy.py): version and security
 *    types with the server, None offered to the client, the server's scheme chosen from
 *    `[vnc] auth_schemes` (here none), about 1.5 ms; SecurityResult, ClientInit and ServerInit
 *    are relayed. bench/backend.ts's RFB 3.8 servers and bench/client.ts `rfbHandshake` pass
 *    through it unchanged;
 * 4. then websockify's `do_proxy` relays with `select(…, 1)` (green, through eventlet) until
 *    either side closes, and the child exits: its AMQP connections close with it.
 *
 * Measured on the dev machine (2 cores, load average 5–8 from other work at the time, so wall
 * times are inflated; CPU figures are not): about 120 ms CPU per connection in the
 * nova-novncproxy tree (75 user + 45 sys: fork and ~9 700 copy-on-write page faults, ~38 MiB),
 * plus ~5 ms in the stub compute and ~13 ms in RabbitMQ, which are outside the tree the
 * benchmark sums. So its handshake is not negligible next to a download: 0.12 s per connection
 * is ~0.5 CPU s/GiB at 256 MiB, ~1.9 at 64 MiB. `--smoke` (20 sequential handshakes; two runs
 * at load average 3–4): open → first RFB byte median 112 and 133 ms (range 105–248), open →
 * ServerInit median 155 and 178 ms (148–294); websockify's are ~4 and ~5 ms on the same
 * machine. Startup takes 5–10 s, mostly Python importing Nova. About 40 ms of the ServerInit time
 * is Nagle's algorithm meeting the client's delayed ACK, not work: after the security step
 * `TenantSock.finish_up()` sends an empty WebSocket frame and the relayed SecurityResult follows
 * it on a socket without TCP_NODELAY (websockify never sets it), so the client sees
 * SecurityResult ~40 ms after it sent its security type. A 64 MiB download relayed at
 * 160–330 MiB/s (websockify: ~1300 on the same machine) at ~3.5 CPU s/GiB including the
 * handshake; do_proxy's `select` goes through eventlet.
 *
 * Idle sessions: each one is a whole forked Python process with about 36 MiB private dirty
 * memory (measured flat from 50 to 100 sessions: 3.6 GiB for 100) and two AMQP connections that
 * heartbeat; 100 idle sessions used ~0.03 CPU s/s together. Two limits end it long before
 * 10 000: this machine's RabbitMQ allows 832 sockets (`ulimit -n` 1024), so past ~410
 * concurrent sessions a new console hangs in the RPC step (oslo.messaging keeps retrying its AMQP
 * connection; with RabbitMQ's sockets filled by another client a console opened only 66 s later,
 * once sockets freed), and 24 GiB of RAM hold ~600 sessions at 36 MiB. Pids (`pid_max` 32768)
 * come after that. A benchmark of idle sessions through this path must stay at a few hundred.
 *
 * Usage: startNovaNovncproxy(backends) from a benchmark; or, to check the path alone,
 *   node --import tsx bench/nova-novncproxy.ts --smoke
 * which starts bench/backend.ts, nova-novncproxy and its stub compute, and times 20 RFB
 * handshakes through it.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { rfbHandshake, withConnection, type Path } from './client.ts';
import { descendants, firstLine, freePort, loadAverage, LOOPBACK, settle, startChild, stopAll, tempDirs, treeUsage, waitForPort, type Child } from './procs.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
/** Debian's nova-novncproxy (package nova-consoleproxy); `#!/usr/bin/python3` */
export const NOVA_NOVNCPROXY = '/usr/bin/nova-novncproxy';
/** Debian's own Python, whose dist-packages hold python3-nova (not whatever python3 is first on PATH) */
const PYTHON = '/usr/bin/python3';
const PEER = join(HERE, 'nova_peer.py');
/** the machine's RabbitMQ; its default user, which RabbitMQ lets in from loopback only */
const RABBITMQ_PORT = 5672;
const TRANSPORT_URL = `rabbit://guest:guest@${LOOPBACK}:${RABBITMQ_PORT}/`;
/** long enough for any run: Nova's tokens are reusable until they expire (default 600 s) */
const TOKEN_TTL = 86_400;

export interface NovaNovncproxy {
  /** nova-novncproxy; its process tree (one forked child per connection) is the proxy's cost */
  readonly child: Child;
  /** the stub nova-compute answering validate_console_port: outside the proxy's tree */
  readonly compute: Child;
  readonly port: number;
  /** one token per backend, in order: `ws://127.0.0.1:PORT/?token=T` */
  readonly tokens: string[];
  /** seconds spent by Nova's own code before the proxy started */
  readonly setup: { readonly import: number; readonly schema: number; readonly instances: number; readonly tokens: number };
}

/** The installed nova-consoleproxy's Debian version, or null if it is not installed. */
export function novaVersion(): string | null {
  try {
    const [status, version] = execFileSync('dpkg-query', ['-W', '-f', '${db:Status-Abbrev}\t${Version}', 'nova-consoleproxy'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().split('\t');
    return status?.startsWith('ii') && version ? version : null;
  } catch {
    return null;
  }
}

/** The URL the client opens for `token`. */
export function novaUrl(port: number, token: string): string {
  return `ws://${LOOPBACK}:${port}/?token=${token}`;
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: LOOPBACK, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function ini(sections: Record<string, Record<string, string | number>>): string {
  return Object.entries(sections).map(([s, opts]) => `[${s}]\n${Object.entries(opts).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`).join('\n');
}

/** Runs a child to completion; resolves with its first stdout line (a JSON object). */
async function runPeer(name: string, args: string[], ms: number): Promise<Record<string, unknown>> {
  const child = startChild(name, PYTHON, [PEER, ...args]);
  const exited = new Promise<void>((resolve) => child.proc.once('exit', () => resolve()));
  const line = await firstLine(child, ms);
  await exited;
  return JSON.parse(line) as Record<string, unknown>;
}

/**
 * Starts Debian's nova-novncproxy on a free loopback port with its own nova.conf and SQLite cell
 * database in a private temp dir, a stub nova-compute for its `validate_console_port` RPC on the
 * machine's RabbitMQ, and mints one console token per backend with Nova's own code.
 */
export async function startNovaNovncproxy(backends: readonly { host: string; port: number }[]): Promise<NovaNovncproxy> {
  if (!existsSync(NOVA_NOVNCPROXY)) throw new Error(`${NOVA_NOVNCPROXY} not found (Debian package nova-consoleproxy)`);
  if (!(await reachable(RABBITMQ_PORT))) throw new Error(`nova-novncproxy needs RabbitMQ on ${LOOPBACK}:${RABBITMQ_PORT} (its validate_console_port RPC to nova-compute), and nothing listens there`);
  for (const b of backends) if (b.host !== LOOPBACK) throw new Error(`backend ${b.host}:${b.port}: loopback only`);

  const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-nova-'));
  tempDirs.add(dir);
  // one name per run for the compute host (its queue compute.<host>) and the RPC exchange, so
  // that runs sharing the broker do not answer each other's calls
  const run = `porthole-bench-${randomUUID().slice(0, 8)}`;
  const port = await freePort();
  const conf = join(dir, 'nova.conf');
  const logging = join(dir, 'logging.conf');
  writeFileSync(logging, ini({
    loggers: { keys: 'root,rpc_client' },
    handlers: { keys: 'stderr' },
    formatters: { keys: 'plain' },
    logger_root: { level: 'WARNING', handlers: 'stderr' },
    // nova/rpc.py builds its RPCClient directly, and oslo.messaging 14 warns about it twice per
    // connection: the only per-connection lines left at WARNING
    logger_rpc_client: { level: 'ERROR', handlers: '', qualname: 'oslo_messaging.rpc.client' },
    handler_stderr: { class: 'StreamHandler', args: '(sys.stderr,)', formatter: 'plain' },
    formatter_plain: { format: '%(asctime)s %(process)d %(levelname)s %(name)s %(message)s' },
  }));
  writeFileSync(conf, ini({
    DEFAULT: {
      transport_url: TRANSPORT_URL,
      control_exchange: run,
      // WARNING and above, on stderr: websockify logs every connection at INFO
      log_config_append: logging,
    },
    database: { connection: `sqlite:///${join(dir, 'nova.sqlite')}` },
    vnc: {
      novncproxy_host: LOOPBACK,
      novncproxy_port: port,
      novncproxy_base_url: `http://${LOOPBACK}:${port}/vnc_lite.html`,
      auth_schemes: 'none',
    },
    consoleauth: { token_ttl: TOKEN_TTL },
    oslo_messaging_rabbit: {
      // the run's exchange and the stub's topic queues go with the run; its fanout queue and
      // the reply queues (one per connection) expire 60 s after their process, not 1800 s
      amqp_auto_delete: 'true',
      rabbit_transient_queues_ttl: 60,
    },
    oslo_concurrency: { lock_path: join(dir, 'lock') },
  }));

  const compute = startChild(`nova-compute stub (${run})`, PYTHON, [PEER, 'compute', conf, run]);
  const [ready, minted] = await Promise.all([
    firstLine(compute, 60_000),
    runPeer('nova mint', ['mint', conf, run, ...backends.map((b) => `${b.host}:${b.port}`)], 60_000),
  ]);
  if ((JSON.parse(ready) as { ready?: string }).ready !== run) throw new Error(`nova-compute stub: unexpected ${ready}`);
  compute.proc.stdout!.resume();

  const child = startChild('nova-novncproxy', NOVA_NOVNCPROXY, ['--config-file', conf]);
  child.proc.stdout!.resume();
  await waitForPort(child, port, 60_000);
  const tokens = minted['tokens'] as string[];
  if (tokens.length !== backends.length) throw new Error(`nova mint: ${tokens.length} tokens for ${backends.length} backends`);
  return { child, compute, port, tokens, setup: minted['seconds'] as NovaNovncproxy['setup'] };
}

// ---------------------------------------------------------------------------------------------
// smoke mode: node --import tsx bench/nova-novncproxy.ts --smoke

async function smoke(): Promise<void> {
  const version = novaVersion();
  if (!version) throw new Error('nova-consoleproxy is not installed (apt-get install nova-consoleproxy)');
  const backend = startChild('backend', process.execPath, ['--import', 'tsx', join(HERE, 'backend.ts'), '--bytes', String(1024 * 1024)]);
  const ports = JSON.parse(await firstLine(backend, 20_000)) as { sourcePort: number; closingPort: number; bannerPort: number };
  const t0 = performance.now();
  const nova = await startNovaNovncproxy([ports.sourcePort, ports.closingPort, ports.bannerPort].map((port) => ({ host: LOOPBACK, port })));
  process.stdout.write(`nova-novncproxy ${version} on port ${nova.port}, started in ${((performance.now() - t0) / 1000).toFixed(1)} s (Nova's own code: ${JSON.stringify(nova.setup)} s)\n`);
  const path: Path = { name: 'nova-novncproxy', pid: nova.child.pid, targets: { source: novaUrl(nova.port, nova.tokens[0]!), closing: novaUrl(nova.port, nova.tokens[1]!), banner: novaUrl(nova.port, nova.tokens[2]!), echo: novaUrl(nova.port, nova.tokens[2]!) } };
  const banner: number[] = [];
  const ready: number[] = [];
  const baseline = new Set(descendants(nova.child.pid));
  const proxyBefore = treeUsage(nova.child.pid);
  const computeBefore = treeUsage(nova.compute.pid);
  for (let i = 0; i < 20; i++) {
    const t = await withConnection(path, 'banner', 30_000, async (c) => {
      const times = await rfbHandshake(c);
      c.close();
      return times;
    });
    banner.push(Number(t.banner) / 1e6);
    ready.push(Number(t.ready) / 1e6);
    process.stdout.write(`  ${String(i + 1).padStart(2)}: open → first byte ${banner.at(-1)!.toFixed(1)} ms, open → ServerInit ${ready.at(-1)!.toFixed(1)} ms\n`);
  }
  const stats = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    const mid = s.length >> 1;
    const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
    return `min ${s[0]!.toFixed(1)} / median ${median.toFixed(1)} / max ${s.at(-1)!.toFixed(1)} ms`;
  };
  process.stdout.write(`open → first RFB byte: ${stats(banner)}\nopen → ServerInit:     ${stats(ready)}\n`);
  await settle(nova.child.pid, baseline);
  const proxy = treeUsage(nova.child.pid);
  const compute = treeUsage(nova.compute.pid);
  const perConnection = (after: number, before: number) => (((after - before) / banner.length) * 1000).toFixed(1);
  process.stdout.write(`CPU per connection: nova-novncproxy tree ${perConnection(proxy.user + proxy.sys, proxyBefore.user + proxyBefore.sys)} ms (${perConnection(proxy.user, proxyBefore.user)} user + ${perConnection(proxy.sys, proxyBefore.sys)} sys, ${Math.round((proxy.faults - proxyBefore.faults) / banner.length)} page faults), stub nova-compute ${perConnection(compute.user + compute.sys, computeBefore.user + computeBefore.sys)} ms; load average ${loadAverage()}\n`);
  const logged = nova.child.stderrTail().trim();
  if (logged) process.stdout.write(`nova-novncproxy logged (WARNING and above):\n${logged}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  try {
    if (args.length !== 1 || args[0] !== '--smoke') throw new Error('usage: node --import tsx bench/nova-novncproxy.ts --smoke');
    await smoke();
  } catch (err) {
    process.stderr.write(`bench/nova-novncproxy: ${(err as Error)?.stack ?? err}\n`);
    process.exitCode = 1;
  } finally {
    await stopAll();
  }
}
