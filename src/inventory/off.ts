/**
 * @module inventory/off
 * The inventory when Porthole has no database of its own: `[database] connection` is a Nova cell
 * database (where Porthole creates no table) and `[porthole] connection` is not set. No server is
 * known, so the proxy skips the console-port check of CVE-2013-0335 (Nova asks the compute host
 * instead; Porthole has no compute host to ask) and registering a server says why it cannot.
 */
import { GatewayError } from '../errors.ts';
import type { Inventory, Server } from './types.ts';

export const INVENTORY_OFF_MESSAGE = 'The inventory is off: [database] connection is a Nova database, where Porthole creates no tables. Set [porthole] connection to a database of Porthole\'s own to keep servers.';

export class InventoryOff implements Inventory {
  async put(_server: Server): Promise<void> {
    throw new GatewayError('CONFLICT', INVENTORY_OFF_MESSAGE, { status: 409 });
  }

  async get(_id: string): Promise<Server | undefined> {
    return undefined;
  }

  async list(): Promise<Server[]> {
    return [];
  }

  async remove(_id: string): Promise<boolean> {
    throw new GatewayError('CONFLICT', INVENTORY_OFF_MESSAGE, { status: 409 });
  }
}
