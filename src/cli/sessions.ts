/**
 * @module cli/sessions
 * `porthole sessions list|kill`: the live console sessions of every proxy sharing the store,
 * read from and killed through the sessions registry.
 */
import { GatewayError } from '../errors.ts';
import type { Sessions } from '../sessions/service.ts';
import { onePositional, print, type CommandRun, type ParsedArgs } from './args.ts';
import type { AuditBy } from '../store/audit-events.ts';
import { withAudit, withSessions } from './stores.ts';

/** The code of `sessions list|kill`; their help is in commands.ts. */
export const sessionCommands: Record<string, CommandRun> = {
  'sessions list': (a, l) => withSessions(l(), (s) => sessionsList(a, s)),
  'sessions kill': (a, l) => {
    const loaded = l();
    return withSessions(loaded, (s, stores) => withAudit(loaded, stores, (by) => sessionsKill(a, s, by)));
  },
};

async function sessionsList(a: ParsedArgs, sessions: Sessions): Promise<number> {
  if (!sessions.shared) throw new GatewayError('CONFIG_INVALID', REGISTRY_OFF);
  const { listingJson, listingText } = await import('../sessions/format.ts');
  const listing = await sessions.list();
  print(a, listingJson(listing), listingText(listing));
  return 0;
}

async function sessionsKill(a: ParsedArgs, sessions: Sessions, by: AuditBy): Promise<number> {
  const id = onePositional(a, 'SESSION_ID');
  if (!sessions.shared) throw new GatewayError('CONFIG_INVALID', REGISTRY_OFF);
  const result = await sessions.kill(id, undefined, by);
  const text = result === 'closed' ? `closed session ${id}` : result === 'requested' ? `asked its proxy to close session ${id}; not seen closed yet (the proxy closes it at its next heartbeat at the latest)` : `no live session ${id}`;
  print(a, { session: id, result }, text);
  return result === 'unknown' ? 1 : 0;
}

const REGISTRY_OFF = 'the live-sessions registry is off: [database] connection is a Nova database and [porthole] connection is not set, so there is no store of Porthole\'s own to keep it in (each proxy\'s admin API still lists and kills its own sessions)';
