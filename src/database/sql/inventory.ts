/**
 * @module database/sql/inventory
 * The inventory in the `porthole_servers` table of Porthole's own database (beside the tokens,
 * or `[porthole] connection`), on SQLite, PostgreSQL and MariaDB/MySQL: one row per server, its
 * VNC, serial and SPICE endpoints in nullable columns (`put` replaces them all). A server's VNC password
 * is a column of its row (see `BackendAuth` for why it cannot be hashed); the database is to be
 * protected as nova.conf is.
 */
import type { CompiledQuery } from 'kysely';
import type { Inventory, Server } from '../../inventory/types.ts';
import { sqlTimestamp } from './tokens.ts';
import type { Database } from './types.ts';

interface Row {
  id: string;
  name: string;
  project_id: string | null;
  status: string;
  vnc_host: string | null;
  vnc_port: number | null;
  auth_schemes: string | null;
  vnc_username: string | null;
  vnc_password: string | null;
  tls_server_name: string | null;
  serial_host: string | null;
  serial_port: number | null;
  spice_host: string | null;
  spice_port: number | null;
  spice_tls_port: number | null;
  shared_consoles?: number | boolean | null;
  record?: number | boolean | null;
}

const TABLE = 'porthole_servers';

export class SqlInventory implements Inventory {
  private readonly db: Database['db'];
  /** `get`'s SQL, compiled once: every console open asks for its server. */
  private getQuery: CompiledQuery<Row> | undefined;

  constructor(private readonly database: Database) {
    this.db = database.db;
  }

  async put(server: Server): Promise<void> {
    const now = sqlTimestamp(new Date());
    const values = {
      name: server.name,
      project_id: server.projectId,
      status: server.status,
      vnc_host: server.vnc?.host ?? null,
      vnc_port: server.vnc?.port ?? null,
      auth_schemes: server.backendAuth?.authSchemes ? server.backendAuth.authSchemes.join(',') : null,
      vnc_username: server.backendAuth?.vncUsername ?? null,
      vnc_password: server.backendAuth?.vncPassword ?? null,
      tls_server_name: server.backendAuth?.tlsServerName ?? null,
      serial_host: server.serial?.host ?? null,
      serial_port: server.serial?.port ?? null,
      spice_host: server.spice?.host ?? null,
      spice_port: server.spice?.port ?? null,
      spice_tls_port: server.spice?.tlsPort ?? null,
      shared_consoles: flagColumn(server.sharedConsoles),
      record: flagColumn(server.record),
    };
    // one upsert, so two proxies registering the same new server at once cannot collide
    const insert = this.db.insertInto(TABLE).values({ id: server.id.toLowerCase(), ...values, created_at: now });
    const update = { ...values, updated_at: now };
    await (this.database.dialect === 'mysql' ? insert.onDuplicateKeyUpdate(update) : insert.onConflict((oc) => oc.column('id').doUpdateSet(update))).execute();
  }

  async get(id: string): Promise<Server | undefined> {
    this.getQuery ??= this.db.selectFrom(TABLE).selectAll().where('id', '=', '').compile() as CompiledQuery<Row>;
    // the same text with this id as its one parameter
    const row = (await this.db.executeQuery<Row>({ ...this.getQuery, parameters: [id.toLowerCase()] })).rows[0];
    return row && toServer(row);
  }

  async list(): Promise<Server[]> {
    const rows = (await this.db.selectFrom(TABLE).selectAll().orderBy('name').orderBy('id').execute()) as Row[];
    return rows.map(toServer);
  }

  async remove(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom(TABLE).where('id', '=', id.toLowerCase()).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

/** A nullable boolean as its column holds it: 1, 0, or NULL (the config decides). */
function flagColumn(v: boolean | null | undefined): number | null {
  return v == null ? null : v ? 1 : 0;
}

function flagOf(v: number | boolean | null | undefined): boolean | null {
  return v == null ? null : Number(v) === 1;
}

/** A server's own shared-console and recording choices, those it has (null: the config's). */
function flags(sharedConsoles: boolean | null, record: boolean | null): Pick<Server, 'sharedConsoles' | 'record'> {
  return { ...(sharedConsoles !== null ? { sharedConsoles } : {}), ...(record !== null ? { record } : {}) };
}

function toServer(row: Row): Server {
  return {
    id: row.id,
    name: row.name,
    projectId: row.project_id,
    status: row.status,
    vnc: row.vnc_host != null && row.vnc_port != null ? { host: row.vnc_host, port: Number(row.vnc_port) } : null,
    serial: row.serial_host != null && row.serial_port != null ? { host: row.serial_host, port: Number(row.serial_port) } : null,
    spice:
      row.spice_host != null && row.spice_port != null
        ? { host: row.spice_host, port: Number(row.spice_port), tlsPort: row.spice_tls_port == null ? null : Number(row.spice_tls_port) }
        : null,
    backendAuth:
      row.auth_schemes == null && row.vnc_username == null && row.vnc_password == null && row.tls_server_name == null
        ? null
        : {
            authSchemes: row.auth_schemes == null ? null : row.auth_schemes.split(',').filter((x) => x !== ''),
            vncUsername: row.vnc_username,
            vncPassword: row.vnc_password,
            tlsServerName: row.tls_server_name,
          },
    // left to the config (NULL): absent, as a server put without them
    ...flags(flagOf(row.shared_consoles), flagOf(row.record)),
  };
}
