/**
 * @module store/revoke
 * Revocation as the admin API and `porthole token revoke` / `server remove` do it, one function
 * for both: the token store deletes (and, through the sessions service's wrapper, tells every
 * proxy to close the live sessions opened with it), and the audit trail records `token.revoked`
 * with who asked. The token is looked up first for the line's server and console type, so the
 * events API finds a revocation by server too; a failed look-up leaves them out, never the
 * revocation.
 */
import type { AuditBy } from './audit-events.ts';
import { tokenLogId, type TokenStore } from './types.ts';

/** Revokes one token; whether it had a row. */
export async function revokeToken(tokens: TokenStore, token: string, by?: AuditBy): Promise<boolean> {
  const before = by ? await tokens.lookup(token).catch(() => undefined) : undefined;
  const found = await tokens.revoke(token);
  const t = before && before.status !== 'unknown' ? before.token : undefined;
  by?.recorder.record({
    event: 'token.revoked',
    token: tokenLogId(token),
    ...(t ? { server: t.instanceUuid, console_type: t.consoleType } : {}),
    actor: by.actor,
    count: found ? 1 : 0,
    // a token the sweep already deleted may still hold a live session: the revocation closes it
    reason: found ? 'token revoked' : 'no such token (live sessions opened with it are closed)',
  });
  return found;
}

/** Revokes every token of a server; how many there were. */
export async function revokeServerTokens(tokens: TokenStore, server: string, by?: AuditBy, reason = 'every token of the server revoked'): Promise<number> {
  const n = await tokens.revokeByInstance(server);
  by?.recorder.record({ event: 'token.revoked', server, actor: by.actor, count: n, reason });
  return n;
}
