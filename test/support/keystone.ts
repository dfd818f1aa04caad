/**
 * @module test/support/keystone
 * A real OpenStack Keystone for a test (Debian's python3-keystone): its own keystone.conf in a
 * temporary directory (SQLite database, Fernet token and credential keys), served on loopback
 * and a free port by `keystone-wsgi-public` (the Python WSGI reference server, one request at a
 * time), stopped by the test, and startable again on the same port with the same keys (so
 * its tokens stay valid across an outage). `keystone-manage db_sync`, `fernet_setup`,
 * `credential_setup` and `bootstrap` take half a minute together, so their result (database
 * and keys) is built once per Keystone version in the system's temporary directory and copied
 * for each run; the copy's catalog entry for Keystone itself is then pointed at the running
 * port through Keystone's own API. The `openstack` client runs with the bootstrap admin's
 * credentials, many commands in one process (its interactive shell reading standard input),
 * since each start of the client costs seconds. The interactive shell does not honour quotes:
 * no argument of a batch may hold a space.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { run, type RunResult } from './process.ts';
import { freePort } from './xvnc.ts';

export const KEYSTONE_MANAGE = '/usr/bin/keystone-manage';
export const KEYSTONE_WSGI = '/usr/bin/keystone-wsgi-public';
export const OPENSTACK = '/usr/bin/openstack';
export const haveKeystone = existsSync(KEYSTONE_MANAGE) && existsSync(KEYSTONE_WSGI);
export const ADMIN_PASSWORD = 'bootstrap-admin-pw';

export interface KeystoneUser {
  readonly name: string;
  readonly password: string;
  /** The project the user's tokens are scoped to. */
  readonly project: string;
}

export interface TestKeystone {
  readonly port: number;
  /** `http://127.0.0.1:PORT/v3` */
  readonly url: string;
  readonly dir: string;
  /**
   * Runs `openstack` as `user` (default: the bootstrap admin on project admin; null: no user,
   * for credentials given in `args`), with an empty HOME and no inherited OS_* variables.
   */
  openstack(args: readonly string[], user?: KeystoneUser | null, extraEnv?: Record<string, string>): Promise<RunResult>;
  /** Runs many `openstack` commands as the admin in one client process; the outputs, one entry per command that printed something. */
  batch(commands: readonly string[]): Promise<string>;
  /** A token for `user` scoped to its project, straight from Keystone's API: `{ token, expiresAt }`. */
  issue(user: KeystoneUser): Promise<{ token: string; expiresAt: number }>;
  /** Stops the server; `start()` serves the same database and keys on the same port again. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Keystone's request log lines (the WSGI server's, one per request). */
  accessLog(): string[];
  close(): Promise<void>;
}

export interface KeystoneOptions {
  /** `[token] expiration`, seconds (Keystone's default 3600). */
  tokenExpiration?: number;
}

/** The Keystone version whose bootstrapped state is cached (its egg-info names it). */
function keystoneVersion(): string {
  const entry = readdirSync('/usr/lib/python3/dist-packages').find((n) => /^keystone-[\d.]+\.(egg|dist)-info$/.test(n));
  return entry ? entry.replace(/\.(egg|dist)-info$/, '') : 'keystone-unknown';
}

function keystoneConf(dir: string, expiration: number): string {
  return [
    '[DEFAULT]', 'use_stderr = true', '',
    '[database]', `connection = sqlite:///${join(dir, 'keystone.db')}`, '',
    '[fernet_tokens]', `key_repository = ${join(dir, 'fernet')}`, '',
    '[credential]', `key_repository = ${join(dir, 'credential')}`, '',
    '[token]', 'provider = fernet', `expiration = ${expiration}`, '',
  ].join('\n');
}

async function manage(conf: string, args: string[]): Promise<void> {
  const r = await run(KEYSTONE_MANAGE, ['--config-file', conf, ...args], { timeoutMs: 180_000 });
  if (r.code !== 0) throw new Error(`keystone-manage ${args[0]} exited ${r.code}: ${r.stderr.slice(-2000)}`);
}

/** The migrated, bootstrapped database and keys, built once per Keystone version (about 30 s) and reused. */
async function template(): Promise<string> {
  const final = join(tmpdir(), `porthole-${keystoneVersion()}-bootstrapped`);
  if (existsSync(join(final, 'ready'))) return final;
  const dir = mkdtempSync(join(tmpdir(), 'porthole-keystone-build-'));
  mkdirSync(join(dir, 'fernet'));
  mkdirSync(join(dir, 'credential'));
  const conf = join(dir, 'keystone.conf');
  writeFileSync(conf, keystoneConf(dir, 3600));
  try {
    await manage(conf, ['db_sync']);
    await manage(conf, ['fernet_setup', '--keystone-user', 'root', '--keystone-group', 'root']);
    await manage(conf, ['credential_setup', '--keystone-user', 'root', '--keystone-group', 'root']);
    // the public URL's port is each run's own: the copy's endpoint is updated once it runs
    await manage(conf, ['bootstrap', '--bootstrap-password', ADMIN_PASSWORD, '--bootstrap-public-url', 'http://127.0.0.1:1/v3', '--bootstrap-region-id', 'RegionOne']);
    // the WSGI server's pooled connections keep SQLite's rollback journal locked now and then
    // ("database is locked" on POST /v3/roles); with write-ahead logging readers never block a writer
    const db = new Database(join(dir, 'keystone.db'));
    db.pragma('journal_mode = WAL');
    db.close();
    writeFileSync(join(dir, 'ready'), '');
    try {
      renameSync(dir, final);
    } catch {
      // another run built it at the same time: use theirs
      rmSync(dir, { recursive: true, force: true });
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return final;
}

export async function startKeystone(opts: KeystoneOptions = {}): Promise<TestKeystone> {
  const source = await template();
  const dir = mkdtempSync(join(tmpdir(), 'porthole-keystone-'));
  for (const part of ['keystone.db', 'fernet', 'credential']) cpSync(join(source, part), join(dir, part), { recursive: true });
  const conf = join(dir, 'keystone.conf');
  writeFileSync(conf, keystoneConf(dir, opts.tokenExpiration ?? 3600));
  const home = join(dir, 'home');
  mkdirSync(home);
  const logFile = join(dir, 'keystone.log');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/v3`;
  let child: ChildProcess | undefined;

  const start = async () => {
    const fd = openSync(logFile, 'a');
    child = spawn(KEYSTONE_WSGI, ['--host', '127.0.0.1', '--port', String(port)], { env: { PATH: '/usr/bin:/bin', HOME: home, OS_KEYSTONE_CONFIG_FILES: conf }, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const started = child;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (started.exitCode !== null) throw new Error(`keystone-wsgi-public exited ${started.exitCode}: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`Keystone did not answer on ${url} within 60 s: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const admin: KeystoneUser = { name: 'admin', password: ADMIN_PASSWORD, project: 'admin' };
  const env = (user: KeystoneUser | null, extra: Record<string, string> = {}) => ({
    PATH: '/usr/bin:/bin', HOME: home, LC_ALL: 'C.UTF-8', OS_AUTH_URL: url, OS_IDENTITY_API_VERSION: '3', OS_REGION_NAME: 'RegionOne',
    ...(user ? { OS_USERNAME: user.name, OS_PASSWORD: user.password, OS_PROJECT_NAME: user.project, OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default' } : {}),
    ...extra,
  });

  const issue = async (user: KeystoneUser) => {
    // not ?nocatalog: Porthole's own authentications use it, so a test can tell them apart in the access log
    const r = await fetch(`${url}/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: user.name, domain: { name: 'Default' }, password: user.password } } }, scope: { project: { name: user.project, domain: { name: 'Default' } } } } }),
      signal: AbortSignal.timeout(30_000),
    });
    if (r.status !== 201) throw new Error(`Keystone refused ${user.name}: ${r.status} ${await r.text()}`);
    const body = (await r.json()) as { token: { expires_at: string } };
    return { token: r.headers.get('x-subject-token')!, expiresAt: Date.parse(body.token.expires_at) };
  };

  try {
    await start();
    // point the copied catalog's identity endpoint at this run's port, through Keystone's API
    const { token } = await issue(admin);
    const endpoints = (await (await fetch(`${url}/endpoints`, { headers: { 'X-Auth-Token': token } })).json()) as { endpoints: { id: string; url: string }[] };
    for (const e of endpoints.endpoints.filter((x) => x.url === 'http://127.0.0.1:1/v3')) {
      const r = await fetch(`${url}/endpoints/${e.id}`, { method: 'PATCH', headers: { 'X-Auth-Token': token, 'Content-Type': 'application/json' }, body: JSON.stringify({ endpoint: { url } }) });
      if (!r.ok) throw new Error(`PATCH endpoint: ${r.status} ${await r.text()}`);
    }
  } catch (err) {
    await stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    port,
    url,
    dir,
    openstack: (args, user = admin, extra) => run(OPENSTACK, args, { env: env(user, extra), timeoutMs: 90_000 }),
    async batch(commands) {
      return new Promise((resolve, reject) => {
        const c = spawn(OPENSTACK, [], { env: env(admin), stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        const timer = setTimeout(() => c.kill('SIGKILL'), 120_000);
        c.on('error', reject);
        c.on('close', (code) => {
          clearTimeout(timer);
          // the shell goes on after a failed command: its error on stderr is the failure
          if (code !== 0 || /\b(Exception|Error)\b|^(No|Could not)/m.test(err)) reject(new Error(`openstack batch exited ${code}: ${err}\n${out}`));
          else resolve(out);
        });
        c.stdin.end(`${commands.join('\n')}\n`);
      });
    },
    issue,
    stop,
    start,
    accessLog: () => readFileSync(logFile, 'utf8').split('\n').filter((l) => /"(GET|POST|DELETE|PATCH|HEAD) \//.test(l)),
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
