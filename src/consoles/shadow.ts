/**
 * @module consoles/shadow
 * An admin's shadow of a live console session: a short-lived view-only noVNC token
 * (`novnc-view-only`) for the session's server, labelled with the admin's name, whose URL joins
 * the server's shared console as a watcher. The admin API (`POST /porthole/v1/sessions/{id}/shadow`)
 * and the CLI (`porthole sessions shadow`) both call `shadowSession`.
 *
 * Only a shared console can be shadowed: a view-only token on a server without shared consoles is
 * refused by the proxy (it fails closed, since a plain relay cannot hold a viewer's input back), so
 * it is not minted at all; the 409 says what to turn on. The token is short-lived because a shadow
 * link is meant to be opened at once; the session it opens runs on after the token expires unless
 * `[consoleauth] enforce_session_timeout` says otherwise, as every console does.
 */
import { GatewayError } from '../errors.ts';
import type { Inventory } from '../inventory/types.ts';
import type { RegistryListing } from '../sessions/types.ts';
import type { AuditBy } from '../store/audit-events.ts';
import { TOKEN_LABEL_MAX, type TokenExtrasStore } from '../store/token-extras.ts';
import type { TokenStore } from '../store/types.ts';
import { NOVNC_VIEW_ONLY } from '../store/view-only.ts';
import { mintConsoleToken } from './mint.ts';
import { novnc } from './novnc.ts';

/** Seconds a shadow link stays valid: long enough to open it, short enough not to be passed around. */
export const SHADOW_TTL = 120;

export interface ShadowDeps {
  readonly tokens: TokenStore;
  readonly inventory: Inventory;
  /** Where the admin's label is kept; null: none (a Nova database alone): the others see `viewer N`. */
  readonly tokenExtras: TokenExtrasStore | null | undefined;
  /** The live-sessions registry (every proxy's). */
  readonly sessions: { list(): Promise<RegistryListing> };
  /** `[porthole] shared_consoles`: a server's own setting wins. */
  readonly sharedConsoles: boolean;
  /** Base of noVNC console URLs (`[vnc] novncproxy_base_url`, or the running proxy's). */
  readonly base: string;
}

export interface ShadowRequest {
  readonly sessionId: string;
  /** Who shadows (the API user, or the operating-system user of the CLI): the others see `admin <who>`. */
  readonly admin: string;
  /** Who minted the token, as the extras keep it (`cli:<user>` for the CLI); `admin` when absent. */
  readonly mintedBy?: string;
  /** For the audit trail's `token.minted`; absent: not recorded. */
  readonly audit?: AuditBy;
}

export interface Shadow {
  readonly url: string;
  /** Epoch seconds. */
  readonly expires: number;
  readonly instanceUuid: string;
  readonly label: string;
}

export async function shadowSession(deps: ShadowDeps, r: ShadowRequest): Promise<Shadow> {
  const listing = await deps.sessions.list();
  const session = listing.sessions.find((s) => s.id === r.sessionId);
  if (!session) throw new GatewayError('NOT_FOUND', `Session ${r.sessionId} could not be found.`, { status: 404 });
  if (!novnc.consoleTypes.includes(session.consoleType) && session.consoleType !== NOVNC_VIEW_ONLY) {
    throw new GatewayError('CONFLICT', `Session ${r.sessionId} is a ${session.consoleType} console: only noVNC consoles can be shadowed.`, { status: 409 });
  }
  const server = await deps.inventory.get(session.instanceUuid);
  if (!server) {
    throw new GatewayError('CONFLICT', `Server ${session.instanceUuid} is not in the inventory: shadowing needs shared consoles on for that server (porthole server add --shared-consoles).`, { status: 409 });
  }
  if (!(server.sharedConsoles ?? deps.sharedConsoles)) {
    throw new GatewayError('CONFLICT', `Shadowing needs shared consoles on for server ${server.id}: its console is a private relay, where a view-only viewer is refused. Turn them on with porthole server add --shared-consoles (or [porthole] shared_consoles = true).`, { status: 409 });
  }
  const label = `admin ${r.admin}`.slice(0, TOKEN_LABEL_MAX).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
  const minted = await mintConsoleToken(deps, { kind: novnc, consoleType: NOVNC_VIEW_ONLY, instanceUuid: server.id, server, base: deps.base, ttl: SHADOW_TTL, audit: r.audit });
  if (deps.tokenExtras) await deps.tokenExtras.put(minted.record.tokenHash, { label, mintedBy: r.mintedBy ?? r.admin, control: false, record: false }, minted.record.expires);
  return { url: minted.url, expires: minted.record.expires, instanceUuid: server.id, label };
}
