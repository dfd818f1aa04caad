/**
 * @module store/token-extras
 * What Porthole knows of a console token beyond Nova's row: who the viewer is (a label given at
 * mint, else the API user who minted it), whether its viewer takes control of a shared console on
 * joining, whether its session is recorded. Kept in Porthole's own store keyed by the token's
 * SHA-256 (never the token), so that a Nova cell database needs no change; a token with no
 * extras behaves as Nova's does.
 */

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
}
