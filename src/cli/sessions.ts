/**
 * @module cli/sessions
 * `porthole sessions list|kill|shadow`: the live console sessions of every proxy sharing the
 * store, read from and killed through the sessions registry; `shadow` mints an admin's view-only
 * URL onto a session's shared console (`consoles/shadow.ts`, as the admin API does).
 */
import { GatewayError } from '../errors.ts';
import type { Sessions } from '../sessions/service.ts';
import { onePositional, print, type CommandRun, type ParsedArgs } from './args.ts';
import type { AuditBy } from '../store/audit-events.ts';
import { withAudit, withSessions, type Stores } from './stores.ts';
import type { LoadedConfig } from '../config/load.ts';

/** The code of `sessions list|kill`; their help is in commands.ts. */
export const sessionCommands: Record<string, CommandRun> = {
  'sessions list': (a, l) => withSessions(l(), (s) => sessionsList(a, s)),
  'sessions kill': (a, l) => {
    const loaded = l();
    return withSessions(loaded, (s, stores) => withAudit(loaded, stores, (by) => sessionsKill(a, s, by)));
  },
  'sessions shadow': (a, l) => {
    const loaded = l();
    return withSessions(loaded, (s, stores) => withAudit(loaded, stores, (by) => sessionsShadow(a, loaded, s, stores, by)));
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

async function sessionsShadow(a: ParsedArgs, loaded: LoadedConfig, sessions: Sessions, stores: Stores, by: AuditBy): Promise<number> {
  const id = onePositional(a, 'SESSION_ID');
  if (!sessions.shared) throw new GatewayError('CONFIG_INVALID', REGISTRY_OFF);
  const { shadowSession } = await import('../consoles/shadow.ts');
  const { novnc } = await import('../consoles/novnc.ts');
  const admin = 'cli' in by.actor && typeof by.actor.cli === 'string' ? by.actor.cli : 'cli';
  const shadow = await shadowSession(
    { tokens: stores.tokens, inventory: stores.inventory, tokenExtras: stores.tokenExtras, sessions, sharedConsoles: loaded.config.porthole.shared_consoles, base: novnc.baseUrl(loaded) },
    { sessionId: id, admin, mintedBy: `cli:${admin}`, audit: by },
  );
  const out = { url: shadow.url, expires_at: new Date(shadow.expires * 1000).toISOString(), instance_uuid: shadow.instanceUuid, label: shadow.label };
  print(a, out, `url:        ${out.url}\nexpires at: ${out.expires_at}\nshown as:   ${out.label} (view only)`);
  return 0;
}

const REGISTRY_OFF = 'the live-sessions registry is off: [database] connection is a Nova database and [porthole] connection is not set, so there is no store of Porthole\'s own to keep it in (each proxy\'s admin API still lists and kills its own sessions)';
