/**
 * @module test/support/stores
 * Fresh, private places in the real database servers of this machine (and of CI) for one test
 * run: a new PostgreSQL database on 127.0.0.1:5432 (trust), a new MariaDB database on
 * 127.0.0.1:3306 (root, no password), a new key prefix in Redis on 127.0.0.1:6379; each removed
 * by `drop()`. A server that is not there fails the test with a message that says which and how
 * the tests expect it, never a silent skip. Also a private PostgreSQL cluster on a port of its
 * own (initdb + pg_ctl from Debian's postgresql package) that a test may stop and start.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';
import { openStores, type OpenedStores } from '../../src/database/index.ts';
import { freePort } from './xvnc.ts';

export const POSTGRES = { host: '127.0.0.1', port: 5432, user: 'postgres' } as const;
export const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root' } as const;
export const REDIS = { host: '127.0.0.1', port: 6379 } as const;

export interface FreshStore {
  /** A `[database] connection` URL for it. */
  readonly url: string;
  /** Runs SQL on it (not for Redis). */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

function unique(): string {
  return `porthole_test_${randomBytes(6).toString('hex')}`;
}

function unreachable(what: string, how: string, err: unknown): Error {
  return new Error(`${what} is not reachable (${(err as Error).message}). The store tests use the machine's own server: ${how}.`);
}

export async function freshPostgres(): Promise<FreshStore> {
  const name = unique();
  const admin = new pg.Client({ ...POSTGRES, database: 'postgres', connectionTimeoutMillis: 5000 });
  try {
    await admin.connect();
  } catch (err) {
    throw unreachable(`PostgreSQL on ${POSTGRES.host}:${POSTGRES.port}`, 'user postgres with trust authentication from 127.0.0.1 (Debian\'s postgresql package)', err);
  }
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const client = new pg.Client({ ...POSTGRES, database: name });
  await client.connect();
  return {
    url: `postgresql://${POSTGRES.user}@${POSTGRES.host}:${POSTGRES.port}/${name}`,
    async query<T>(text: string, params?: unknown[]) {
      return (await client.query(text, params)).rows as T[];
    },
    async drop() {
      await client.end();
      const a = new pg.Client({ ...POSTGRES, database: 'postgres' });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

export async function freshMariadb(opts: { charset?: string } = {}): Promise<FreshStore & { readonly name: string }> {
  const name = unique();
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection({ ...MARIADB, connectTimeout: 5000 });
  } catch (err) {
    throw unreachable(`MariaDB on ${MARIADB.host}:${MARIADB.port}`, 'user root without a password from 127.0.0.1 (Debian\'s mariadb-server)', err);
  }
  await conn.query(`CREATE DATABASE ${name}${opts.charset ? ` CHARACTER SET ${opts.charset}` : ''}`);
  await conn.changeUser({ database: name });
  return {
    name,
    url: `mysql+pymysql://${MARIADB.user}@${MARIADB.host}:${MARIADB.port}/${name}`,
    async query<T>(text: string, params?: unknown[]) {
      const [rows] = await conn.query(text, params);
      return rows as T[];
    },
    async drop() {
      await conn.query(`DROP DATABASE IF EXISTS ${name}`);
      await conn.end();
    },
  };
}

export interface FreshRedis {
  readonly url: string;
  readonly prefix: string;
  readonly redis: Redis;
  drop(): Promise<void>;
}

export async function freshRedis(): Promise<FreshRedis> {
  const prefix = `${unique()}:`;
  const redis = new Redis({ ...REDIS, lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
  } catch (err) {
    throw unreachable(`Redis on ${REDIS.host}:${REDIS.port}`, 'no password, database 0 (Debian\'s redis-server)', err);
  }
  return {
    url: `redis://${REDIS.host}:${REDIS.port}/0`,
    prefix,
    redis,
    async drop() {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}

/** A PostgreSQL cluster of the test's own, on its own port, that the test may stop and start. */
export interface PrivatePostgres {
  readonly port: number;
  readonly url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  remove(): Promise<void>;
}

function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions[0]) throw new Error('no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (Debian\'s postgresql package): the store outage test starts a cluster of its own');
  return join(root, versions[0], 'bin');
}

export async function privatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBin();
  const dir = mkdtempSync(join(tmpdir(), 'porthole-pg-'));
  const data = join(dir, 'data');
  // initdb refuses to run as root: as root, the cluster belongs to the postgres user
  const asRoot = process.getuid?.() === 0;
  const exec = (cmd: string, args: string[]) => {
    const r = asRoot ? spawnSync('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { encoding: 'utf8', timeout: 60_000 }) : spawnSync(join(bin, cmd), args, { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? ''}${r.stderr}${r.stdout}`);
  };
  if (asRoot) {
    const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const uid = Number(pw.stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  exec('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  // asynchronous, so that a test's traffic keeps flowing while the server stops and starts
  const pgCtl = (action: 'start' | 'stop') => {
    const args = action === 'start'
      ? ['-D', data, '-w', '-t', '30', '-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']
      : ['-D', data, '-w', '-t', '30', '-m', 'fast', 'stop'];
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...args]] as const : [join(bin, 'pg_ctl'), args] as const;
    return new Promise<void>((resolve, reject) => {
      execFile(cmd, argv, { timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`pg_ctl ${action} failed: ${err.message}${stderr}${stdout}`)) : resolve()));
    });
  };
  await pgCtl('start');
  let running = true;
  return {
    port,
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      await pgCtl('start');
      running = true;
    },
    async stop() {
      await pgCtl('stop');
      running = false;
    },
    async remove() {
      if (running) await pgCtl('stop').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Opens the SQL store at `url` migrated up to `last` and no further, as a proxy of that version
 * left it (for the tests of a later migration on a database of the previous version).
 */
export async function openStoresAt(url: string, last: string): Promise<OpenedStores> {
  const { Migrator } = await import('kysely');
  const { migrationsFor, MIGRATION_TABLE, MIGRATION_LOCK_TABLE } = await import('../../src/database/sql/migrations.ts');
  const stores = await openStores(url, { migrate: false });
  const migrations = migrationsFor('all', stores.database!.dialect);
  const migrator = new Migrator({ db: stores.database!.db, provider: { getMigrations: async () => migrations }, migrationTableName: MIGRATION_TABLE, migrationLockTableName: MIGRATION_LOCK_TABLE, allowUnorderedMigrations: true });
  const r = await migrator.migrateTo(last);
  if (r.error) {
    await stores.close();
    throw r.error;
  }
  return stores;
}
