/**
 * @module consoles/mint
 * Minting a console token, the one place the API, the CLI and the start-up summary do it: the
 * endpoint is the server's own console endpoint of that kind in the inventory, or the one given,
 * which must then be the server's current one (CVE-2013-0335: a token for a port the server no
 * longer owns would be refused by the proxy, so it is never minted). What Porthole keeps beside
 * the token (who minted it, a label, the control and record flags: `store/token-extras.ts`) is
 * written here too, in Porthole's own store where there is one.
 */
import { GatewayError } from '../errors.ts';
import { formatEndpoint, type Inventory, type Server, type SpiceEndpoint } from '../inventory/types.ts';
import type { AuditBy } from '../store/audit-events.ts';
import { tokenExtrasUnavailable, type ConsoleTokenExtras, type TokenExtrasStore } from '../store/token-extras.ts';
import { tokenLogId, type ConsoleToken, type TokenStore } from '../store/types.ts';
import type { ConsoleKind } from './types.ts';

export interface MintRequest {
  readonly kind: ConsoleKind;
  /** The token's console type; the kind's first when not given. */
  readonly consoleType?: string;
  readonly instanceUuid: string;
  /** The server, when the caller looked it up already (the API does, for its policy). */
  readonly server?: Server | null;
  /** An endpoint given by the caller; else the server's. */
  readonly endpoint?: Partial<SpiceEndpoint>;
  readonly base: string;
  readonly ttl: number;
  readonly internalAccessPath?: string | null;
  /** Who mints it, for the audit trail's `token.minted`; absent: not recorded. */
  readonly audit?: AuditBy;
  /** What to keep beside the token (its minter, a label, control, record); absent: nothing. */
  readonly extras?: ConsoleTokenExtras;
  /**
   * The caller asked for them (a label, a flag): without a store for them nothing is minted, and
   * a token whose extras cannot be written is revoked and the mint fails. Otherwise (the minter's
   * name alone) a store that fails is told to `warn` and the token stands.
   */
  readonly extrasRequired?: boolean;
  readonly warn?: (message: string) => void;
}

export interface Minted {
  readonly token: string;
  readonly url: string;
  readonly record: ConsoleToken;
}

export async function mintConsoleToken(deps: { readonly tokens: TokenStore; readonly inventory: Inventory; readonly tokenExtras?: TokenExtrasStore | null }, r: MintRequest): Promise<Minted> {
  if (r.extras && r.extrasRequired && !deps.tokenExtras) throw tokenExtrasUnavailable();
  const consoleType = r.consoleType ?? r.kind.consoleTypes[0]!;
  if (!r.kind.consoleTypes.includes(consoleType)) throw new GatewayError('BAD_REQUEST', `console type ${consoleType} is not a ${r.kind.name} console`, { status: 400 });
  const server = r.server !== undefined ? r.server : await deps.inventory.get(r.instanceUuid);
  // a kind's endpoint may carry a TLS port (SPICE's): every endpoint reads as a SpiceEndpoint
  const own: SpiceEndpoint | null = server ? r.kind.endpoint(server) : null;
  const what = `${r.kind.protocol.toUpperCase()} console`;
  const given = r.endpoint ?? {};
  const host = given.host ?? own?.host;
  const port = given.port ?? own?.port;
  if (host === undefined && port === undefined) throw new GatewayError('ENDPOINT_MISSING', `a host and port are needed: server ${r.instanceUuid} has no ${what} endpoint in the inventory`, { status: 400 });
  if (host === undefined) throw new GatewayError('ENDPOINT_MISSING', 'a host is needed', { status: 400 });
  if (port === undefined) throw new GatewayError('ENDPOINT_MISSING', 'a port is needed', { status: 400 });
  if (own && (own.host !== host || own.port !== port)) {
    throw new GatewayError('CONSOLE_PORT_MISMATCH', `server ${r.instanceUuid} has its ${what} at ${formatEndpoint(own)}, not ${formatEndpoint({ host, port })}; the proxy would refuse this token`, { status: 400 });
  }
  // the row's tls_port, as Nova's get_spice_console writes it for spice-html5 tokens too
  // (`tls_port=console.tlsPort`); os-console-auth-tokens shows it from 2.99
  const tlsPort = given.tlsPort ?? own?.tlsPort ?? null;
  const { token, record } = await deps.tokens.create({ consoleType, host, port, tlsPort, instanceUuid: r.instanceUuid, accessUrlBase: r.base, ttl: r.ttl, internalAccessPath: r.internalAccessPath ?? null });
  if (r.extras && deps.tokenExtras) {
    try {
      await deps.tokenExtras.put(record.tokenHash, r.extras, record.expires);
    } catch (err) {
      if (r.extrasRequired) {
        await deps.tokens.revoke(token).catch(() => {});
        throw err;
      }
      r.warn?.(`token ${tokenLogId(record.tokenHash, true)} minted without its minter's name (viewer lists show none): ${(err as Error).message}`);
    }
  }
  r.audit?.recorder.record({ event: 'token.minted', token: tokenLogId(record.tokenHash, true), server: r.instanceUuid, console_type: consoleType, actor: r.audit.actor, expires_at: new Date(record.expires * 1000).toISOString() });
  return { token, record, url: r.kind.accessUrl(r.base, token) };
}
