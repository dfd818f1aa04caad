/**
 * @module database/redis/inventory
 * The inventory in Redis: one hash per server (`<prefix>server:<uuid>`, the columns of
 * `porthole_servers`) and the set of all server ids (`<prefix>servers`). Replacing a server is
 * one Lua script, so a reader never sees half of it. The VNC password is a field of the hash, in
 * clear, as in the SQL inventory: protect the Redis server as nova.conf is.
 */
import type { Inventory, Server } from '../../inventory/types.ts';
import type { RedisConnection } from './connection.ts';

// KEYS: server, index; ARGV: id, now, field, value, ...
const PUT = `
local created = redis.call('HGET', KEYS[1], 'created_at') or ARGV[2]
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'created_at', created, unpack(ARGV, 3))
if created ~= ARGV[2] then redis.call('HSET', KEYS[1], 'updated_at', ARGV[2]) end
redis.call('SADD', KEYS[2], ARGV[1])
return 1`;

type Script = (...args: Array<string | number>) => Promise<unknown>;

export class RedisInventory implements Inventory {
  private readonly put_: Script;

  constructor(private readonly connection: RedisConnection) {
    connection.redis.defineCommand('portholeServerPut', { numberOfKeys: 2, lua: PUT });
    this.put_ = (connection.redis as unknown as Record<string, Script>)['portholeServerPut']!.bind(connection.redis);
  }

  private key(id: string): string {
    return `${this.connection.prefix}server:${id.toLowerCase()}`;
  }

  async put(server: Server): Promise<void> {
    const auth = server.backendAuth;
    const fields: Array<[string, string | number | null | undefined]> = [
      ['name', server.name],
      ['project_id', server.projectId],
      ['status', server.status],
      ['vnc_host', server.vnc?.host],
      ['vnc_port', server.vnc?.port],
      ['auth_schemes', auth?.authSchemes ? auth.authSchemes.join(',') : null],
      ['vnc_username', auth?.vncUsername],
      ['vnc_password', auth?.vncPassword],
      ['tls_server_name', auth?.tlsServerName],
      ['serial_host', server.serial?.host],
      ['serial_port', server.serial?.port],
      ['spice_host', server.spice?.host],
      ['spice_port', server.spice?.port],
      ['spice_tls_port', server.spice?.tlsPort],
      ['shared_consoles', server.sharedConsoles == null ? null : server.sharedConsoles ? 1 : 0],
      ['record', server.record == null ? null : server.record ? 1 : 0],
    ];
    const args = fields.flatMap(([k, v]) => (v == null ? [] : [k, v]));
    await this.put_(this.key(server.id), `${this.connection.prefix}servers`, server.id.toLowerCase(), new Date().toISOString(), ...args);
  }

  async get(id: string): Promise<Server | undefined> {
    const h = await this.connection.redis.hgetall(this.key(id));
    return h['id'] === undefined ? undefined : toServer(h);
  }

  async list(): Promise<Server[]> {
    const { redis, prefix } = this.connection;
    const ids = await redis.smembers(`${prefix}servers`);
    if (ids.length === 0) return [];
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.key(id));
    const replies = (await pipeline.exec()) ?? [];
    const servers: Server[] = [];
    for (const [err, h] of replies) {
      if (err) throw err;
      const hash = h as Record<string, string>;
      if (hash['id'] !== undefined) servers.push(toServer(hash));
    }
    // as the SQL inventory's ORDER BY name, id (binary order)
    return servers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async remove(id: string): Promise<boolean> {
    const { redis, prefix } = this.connection;
    const replies = await redis.multi().del(this.key(id)).srem(`${prefix}servers`, id.toLowerCase()).exec();
    return Number(replies?.[0]?.[1] ?? 0) > 0;
  }
}

function toServer(h: Record<string, string>): Server {
  const auth = {
    authSchemes: h['auth_schemes'] === undefined ? null : h['auth_schemes'].split(',').filter((x) => x !== ''),
    vncUsername: h['vnc_username'] ?? null,
    vncPassword: h['vnc_password'] ?? null,
    tlsServerName: h['tls_server_name'] ?? null,
  };
  return {
    id: h['id']!,
    name: h['name'] ?? '',
    projectId: h['project_id'] ?? null,
    status: h['status'] ?? 'ACTIVE',
    vnc: h['vnc_host'] !== undefined && h['vnc_port'] !== undefined ? { host: h['vnc_host'], port: Number(h['vnc_port']) } : null,
    serial: h['serial_host'] !== undefined && h['serial_port'] !== undefined ? { host: h['serial_host'], port: Number(h['serial_port']) } : null,
    spice:
      h['spice_host'] !== undefined && h['spice_port'] !== undefined
        ? { host: h['spice_host'], port: Number(h['spice_port']), tlsPort: h['spice_tls_port'] === undefined ? null : Number(h['spice_tls_port']) }
        : null,
    backendAuth: Object.values(auth).every((v) => v === null) ? null : auth,
    // left to the config: absent, as a server put without them
    ...(h['shared_consoles'] !== undefined ? { sharedConsoles: h['shared_consoles'] === '1' } : {}),
    ...(h['record'] !== undefined ? { record: h['record'] === '1' } : {}),
  };
}
