/**
 * @module cli/stores
 * Opens what a short-lived command acts on: the stores of `[database] connection` (and
 * `[porthole] connection`), and for revocations and kills the live-sessions registry in them.
 * Each is closed when the command is done, whatever it returns or throws. Commands that mint,
 * revoke or kill also record it in the audit trail (`withAudit`).
 */
import { existsSync } from 'node:fs';
import type { LoadedConfig } from '../config/load.ts';
import type { Sessions } from '../sessions/service.ts';
import type { AuditBy } from '../store/audit-events.ts';
import { openStores, storeSettings, type OpenedStores as Stores } from '../database/index.ts';

export type { Stores };

export async function withStores(loaded: LoadedConfig, fn: (s: Stores, l: LoadedConfig) => Promise<number>, autoMigrate = loaded.config.porthole.auto_migrate): Promise<number> {
  // a typo in the config (unknown option or section): on stderr, so --json output stays clean
  for (const warning of loaded.warnings) process.stderr.write(`porthole: warning: ${warning}\n`);
  const stores = await openStores(loaded.config.database.connection, { migrate: autoMigrate, ...storeSettings(loaded.config) });
  try {
    return await fn(stores, loaded);
  } finally {
    await stores.close();
  }
}

/** The stores, and the sessions registry in them: revocations through it close live sessions on every proxy. */
export async function withSessions(loaded: LoadedConfig, fn: (s: Sessions, stores: Stores) => Promise<number>): Promise<number> {
  return withStores(loaded, async (stores) => {
    const { openSessions, sessionsOptions } = await import('../sessions/service.ts');
    const sessions = await openSessions(stores, sessionsOptions(loaded.config));
    try {
      return await fn(sessions, stores);
    } finally {
      await sessions.close();
    }
  });
}

/**
 * The audit trail of a command that mints, revokes or kills: `[porthole] audit_log` and the
 * store's events, the actor being the operating-system user who ran it. An audit file this user
 * cannot open, or that does not exist yet, is a warning, not a failure (the store still
 * records); the events are written to the store before the command returns.
 */
export async function withAudit(loaded: LoadedConfig, stores: Stores, fn: (by: AuditBy) => Promise<number>): Promise<number> {
  const { AuditTrail, cliActor, cliSource } = await import('../ops/audit.ts');
  const say = (level: string) => (_fields: Record<string, unknown>, message: string) => void process.stderr.write(`porthole: ${level}: ${message}\n`);
  const log = { info() {}, warn: say('warning'), error: say('error') };
  const p = loaded.config.porthole;
  const options = { target: p.audit_log, store: stores.auditEvents ?? null, log, retentionDays: p.audit_retention_days, proxy: cliSource() };
  let trail: InstanceType<typeof AuditTrail>;
  // a command (often run as root) never creates the audit file: one it created would be root's,
  // 0600, and the daemon could not open it at its next start. The daemon creates it
  const file = p.audit_log && p.audit_log !== 'syslog' && p.audit_log !== 'journal' ? p.audit_log : null;
  if (file && !existsSync(file)) {
    log.warn({}, `the audit file ${file} does not exist yet (the daemon creates it at its start); recording in the store only`);
    trail = new AuditTrail({ ...options, target: null });
  } else {
    try {
      trail = new AuditTrail(options);
    } catch (err) {
      log.warn({}, `cannot write the audit trail to ${p.audit_log}: ${(err as Error).message}; recording in the store only`);
      trail = new AuditTrail({ ...options, target: null });
    }
  }
  try {
    return await fn({ recorder: trail, actor: cliActor() });
  } finally {
    await trail.close();
  }
}
