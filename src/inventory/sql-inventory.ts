/**
 * @module inventory/sql-inventory
 * The inventory in the `porthole_servers` table, beside the tokens.
 */
import type { Kysely } from 'kysely';
import { sqlTimestamp } from '../store/sql-tokens.ts';
import type { Inventory, Server } from './types.ts';

interface Row {
  id: string;
  name: string;
  project_id: string | null;
  status: string;
  vnc_host: string | null;
  vnc_port: number | null;
}

const TABLE = 'porthole_servers';

export class SqlInventory implements Inventory {
  constructor(private readonly db: Kysely<any>) {}

  async put(server: Server): Promise<void> {
    const now = sqlTimestamp(new Date());
    const values = {
      name: server.name,
      project_id: server.projectId,
      status: server.status,
      vnc_host: server.vnc?.host ?? null,
      vnc_port: server.vnc?.port ?? null,
    };
    await this.db.transaction().execute(async (tx) => {
      const r = await tx.updateTable(TABLE).set({ ...values, updated_at: now }).where('id', '=', server.id.toLowerCase()).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) {
        await tx.insertInto(TABLE).values({ id: server.id.toLowerCase(), ...values, created_at: now }).execute();
      }
    });
  }

  async get(id: string): Promise<Server | undefined> {
    const row = (await this.db.selectFrom(TABLE).selectAll().where('id', '=', id.toLowerCase()).executeTakeFirst()) as Row | undefined;
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

function toServer(row: Row): Server {
  return {
    id: row.id,
    name: row.name,
    projectId: row.project_id,
    status: row.status,
    vnc: row.vnc_host != null && row.vnc_port != null ? { host: row.vnc_host, port: Number(row.vnc_port) } : null,
  };
}
