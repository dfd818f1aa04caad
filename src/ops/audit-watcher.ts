/**
 * @module ops/audit-watcher
 * The audit trail's ear on the console listeners (`proxy/events.ts`): a session that starts is
 * `token.used` and `session.opened`; one that ends is `session.closed` (why, bytes each way,
 * duration); a single-use token's consumption is `token.consumed`; a refusal is `token.refused`
 * with its code.
 *
 * Which refusals are security events: those of a connection that named a token (whatever the
 * code, except the client's own leaving), and those that refuse a browser's Origin (a page of
 * another site trying a console: the token is not read before the Origin is checked). A request
 * without a token, a wrong path, a malformed upgrade, or a client that left say nothing about a
 * token and would let a port scanner fill the trail. A client over its failed-lookup budget
 * (`TOO_MANY_FAILED_LOOKUPS`, refused without a lookup) is recorded once per client per
 * `OVER_BUDGET_EVERY_MS`: its attempts before that were recorded one by one.
 */
import type { ConnectionFacts, ConsoleEvents } from '../proxy/events.ts';
import type { AuditInput, AuditRecorder } from '../store/audit-events.ts';

const OVER_BUDGET_EVERY_MS = 60_000;
/** Clients remembered for the rule above at most (memory bounded under a flood of addresses). */
const MAX_OVER_BUDGET_CLIENTS = 10_000;

/** What every line of a connection says. */
function base(f: ConnectionFacts): Pick<AuditInput, 'token' | 'server' | 'client'> {
  return { ...(f.tokenLogId ? { token: f.tokenLogId } : {}), ...(f.instance ? { server: f.instance } : {}), client: f.client.display };
}

export function auditWatcher(audit: AuditRecorder): ConsoleEvents {
  const overBudget = new Map<string, number>();
  return {
    lookup() {},
    backendConnected() {},
    sessionStarted(f, s) {
      const i = s.info;
      const facts = { token: i.tokenLogId, server: i.instanceUuid, console_type: i.consoleType, client: f.client.display, session: i.id };
      audit.record({ event: 'token.used', ...facts });
      audit.record({ event: 'session.opened', ...facts });
    },
    sessionEnded(f, s, end) {
      const i = s.info;
      audit.record({
        event: 'session.closed',
        token: i.tokenLogId,
        server: i.instanceUuid,
        console_type: i.consoleType,
        client: f.client.display,
        session: i.id,
        reason: end.reason,
        bytes_from_client: end.bytesFromClient,
        bytes_from_backend: end.bytesFromBackend,
        duration_ms: Math.round(end.durationMs),
      });
    },
    refused(f, e) {
      if (e.code === 'CLIENT_CLOSED') return;
      const origin = e.code.startsWith('ORIGIN_');
      if (!f.tokenLogId && !origin) return;
      if (e.code === 'TOO_MANY_FAILED_LOOKUPS') {
        const now = Date.now();
        const last = overBudget.get(f.client.host);
        if (last !== undefined && now - last < OVER_BUDGET_EVERY_MS) return;
        if (overBudget.size >= MAX_OVER_BUDGET_CLIENTS) overBudget.clear();
        overBudget.set(f.client.host, now);
      }
      audit.record({ event: 'token.refused', ...base(f), code: e.code, reason: e.message });
    },
    consumed(f, use) {
      audit.record({ event: 'token.consumed', ...base(f), reason: use === 'first' ? 'first use' : 'reconnection within the grace' });
    },
  };
}
