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

/** Servers without a project belong to no member: only admins see them. */
export function canSee(caller: Caller, server: Server): boolean {
  return caller.isAdmin || (server.projectId !== null && server.projectId === caller.project);
}

export function visibleServer(caller: Caller, server: Server | undefined, id: string): Server {
  if (!server || !canSee(caller, server)) throw notFound(`Instance ${id} could not be found.`);
  return server;
}
