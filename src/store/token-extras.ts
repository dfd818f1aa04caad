/**
 * @module store/token-extras
 * What Porthole knows of a console token beyond Nova's row: who the viewer is (a label given at
 * mint, else the API user who minted it), whether its viewer takes control of a shared console on
 * joining, whether its session is recorded. Kept in Porthole's own store keyed by the token's
 * SHA-256 (never the token), so that a Nova cell database needs no change; a token with no
 * extras behaves as Nova's does.
 */
import { GatewayError } from '../errors.ts';

export interface ConsoleTokenExtras {
  /** Shown to the other viewers of a shared console and in the sessions list. At most 64 characters. */
  readonly label: string | null;
  /** The API user (or `cli:<user>`) who minted the token. */
  readonly mintedBy: string | null;
  /** On a shared console: this viewer takes control when it joins. */
  readonly control: boolean;
  /** This token's session is recorded. */
  readonly record: boolean;
}

export interface TokenExtrasStore {
  /** Keeps `extras` for the token whose SHA-256 is `tokenHash` until `expires` (epoch seconds). */
  put(tokenHash: string, extras: ConsoleTokenExtras, expires: number): Promise<void>;
  get(tokenHash: string): Promise<ConsoleTokenExtras | null>;
  /** Forgets the extras of tokens that have expired; returns how many. */
  sweepExpired(): Promise<number>;
  /**
   * Whether any token not expired yet has the `record` flag: a proxy with no recording
   * configured asks this now and then (`proxy/extras-gate.ts`) instead of reading every
   * console's extras.
   */
  anyRecorded(): Promise<boolean>;
}

/** Most characters of a token's label. */
export const TOKEN_LABEL_MAX = 64;

/**
 * A label as given at mint (the CLI's `--label`): trimmed, 1 to `TOKEN_LABEL_MAX` characters,
 * printable (no control character: it is shown to other viewers and in listings); undefined when
 * it is not one.
 */
export function parseTokenLabel(text: string): string | undefined {
  const label = text.trim();
  if (label.length === 0 || [...label].length > TOKEN_LABEL_MAX) return undefined;
  // C0, DEL, C1, and the line and paragraph separators
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(label)) return undefined;
  return label;
}

/** The error of asking for a token's extras where Porthole has no store of its own (a Nova database alone), as single-use tokens say it. */
export function tokenExtrasUnavailable(): GatewayError {
  return new GatewayError('CONFIG_INVALID', "token labels and the control and record flags need a store of Porthole's own: [database] connection is a Nova database and [porthole] connection is not set", { status: 503, clientMessage: 'console token store unavailable' });
}
