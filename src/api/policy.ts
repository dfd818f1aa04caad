/**
 * @module api/policy
 * Nova's default policies for the routes Porthole serves: readers (or members, or admins) of a
 * server's project for its server records, members (or admins) for its consoles, admins for
 * console auth tokens and the admin API. Keystone's implied roles (admin → member → reader) are
 * spelled out, since static and JWT callers carry the roles they were given and no more.
 * A server of another project is reported as not found, as Nova does, so that its existence does
 * not leak.
 */
import { GatewayError } from '../errors.ts';
import type { Server } from '../inventory/types.ts';
import type { Caller } from './auth.ts';
import { notFound } from './errors.ts';

export function authorize(caller: Caller, rule: 'project_reader_or_admin' | 'project_member_or_admin' | 'admin', policyName: string): void {
  const member = caller.roles.includes('member') || caller.roles.includes('manager');
  const ok = caller.isAdmin || (rule === 'project_member_or_admin' && member) || (rule === 'project_reader_or_admin' && (member || caller.roles.includes('reader')));
  if (!ok) throw new GatewayError('FORBIDDEN', `Policy doesn't allow ${policyName} to be performed.`, { status: 403 });
}

/**
 * Porthole's own rule for a server's screenshot (`GET /porthole/v1/servers/{id}/screenshot`), by
 * default Nova's admin-or-owner as its current defaults spell it (PROJECT_MEMBER_OR_ADMIN, the
 * remote-consoles rule): a screenshot shows what a console shows, so whoever may open a console
 * of the server may see its screen; a reader may not.
 */
export const SCREENSHOT_POLICY = { name: 'porthole:servers:screenshot', rule: 'project_member_or_admin' } as const;

/** Servers without a project belong to no member: only admins see them. */
export function canSee(caller: Caller, server: Server): boolean {
  return caller.isAdmin || (server.projectId !== null && server.projectId === caller.project);
}

export function visibleServer(caller: Caller, server: Server | undefined, id: string): Server {
  if (!server || !canSee(caller, server)) throw notFound(`Instance ${id} could not be found.`);
  return server;
}
