/**
 * @module api/server-view
 * An inventory server as Nova's detailed server view (nova/api/openstack/compute/views/
 * servers.py, `ViewBuilder.show`) at the request's microversion, with what the inventory knows
 * and Nova's answer for what it does not: `image` is `""` (Nova's answer for a server booted from
 * volume, which clients show as "N/A (booted from volume)" without asking Glance), no addresses,
 * no availability zone, no key pair, no volumes. The flavor is the one field where Nova's own
 * answer for "unknown" (`{}`) makes openstackclient crash (`server list` reads `flavor['id']`
 * before 2.47 and `flavor['original_name']` from 2.47), so it is an empty flavor of the
 * microversion's shape instead. There are no `created`/`updated` times: the inventory does not
 * keep them. Admin-only extended attributes (`OS-EXT-SRV-ATTR:*`, `host_status`) are left out.
 */
import type { Server } from '../inventory/types.ts';
import { atLeast, type Microversion } from './microversion.ts';

export interface Link {
  readonly rel: string;
  readonly href: string;
}

/** Statuses whose view carries `progress` (Nova's `_progress_statuses`). */
const PROGRESS_STATUSES = new Set(['ACTIVE', 'BUILD', 'REBUILD', 'RESIZE', 'VERIFY_RESIZE', 'MIGRATING']);

/**
 * Nova derives a status from vm_state (and task_state); the inventory keeps only the status, so
 * the extended-status fields are the vm_state and power_state that give that status (power
 * states as nova.compute.power_state numbers: 0 NOSTATE, 1 RUNNING, 3 PAUSED, 4 SHUTDOWN,
 * 7 SUSPENDED). A status with no single origin gets null and NOSTATE.
 */
const STATES: Record<string, readonly [vmState: string, powerState: number]> = {
  ACTIVE: ['active', 1],
  BUILD: ['building', 0],
  SHUTOFF: ['stopped', 4],
  PAUSED: ['paused', 3],
  SUSPENDED: ['suspended', 7],
  RESCUE: ['rescued', 1],
  ERROR: ['error', 0],
  SHELVED: ['shelved', 4],
  SHELVED_OFFLOADED: ['shelved_offloaded', 0],
  SOFT_DELETED: ['soft-delete', 0],
  DELETED: ['deleted', 0],
};

/** A flavor the inventory cannot name, in the shape openstackclient reads at each microversion. */
function unknownFlavor(v: Microversion): Record<string, unknown> {
  if (atLeast(v, 47)) return { vcpus: 0, ram: 0, disk: 0, ephemeral: 0, swap: 0, original_name: '', extra_specs: {} };
  return { id: '', links: [] };
}

export function serverDetail(server: Server, v: Microversion, links: readonly Link[]): Record<string, unknown> {
  const [vmState, powerState] = STATES[server.status] ?? [null, 0];
  const view: Record<string, unknown> = {
    id: server.id,
    name: server.name,
    status: server.status,
    // Nova: `instance.get("project_id") or ""`
    tenant_id: server.projectId ?? '',
    user_id: '',
    metadata: {},
    hostId: '',
    image: '',
    flavor: unknownFlavor(v),
    addresses: {},
    accessIPv4: '',
    accessIPv6: '',
    links,
    'OS-DCF:diskConfig': 'MANUAL',
  };
  if (PROGRESS_STATUSES.has(server.status)) view.progress = 0;
  Object.assign(view, {
    'OS-EXT-AZ:availability_zone': '',
    config_drive: '',
    key_name: null,
    'OS-SRV-USG:launched_at': null,
    'OS-SRV-USG:terminated_at': null,
    'OS-EXT-STS:task_state': null,
    'OS-EXT-STS:vm_state': vmState,
    'OS-EXT-STS:power_state': powerState,
    'os-extended-volumes:volumes_attached': [],
  });
  if (atLeast(v, 9)) view.locked = false;
  if (atLeast(v, 73)) view.locked_reason = null;
  if (atLeast(v, 19)) view.description = null;
  if (atLeast(v, 26)) view.tags = [];
  if (atLeast(v, 63)) view.trusted_image_certificates = null;
  if (atLeast(v, 96)) view.pinned_availability_zone = null;
  return view;
}
