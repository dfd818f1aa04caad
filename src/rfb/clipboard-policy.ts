/**
 * @module rfb/clipboard-policy
 * `[porthole] clipboard`, enforced on the RFB stream rather than only hidden in the page: a client
 * that is not Porthole's page (or a page changed in the browser) gets no further.
 * - `both` (the default): nothing is framed; the relay stays byte for byte.
 * - `to-vm` blocks the VM's clipboard reaching the browser, `from-vm` the browser's reaching the
 *   VM, `off` both.
 * Whenever the policy is not `both`, the client's messages are framed (`client-messages.ts`) and
 * its SetEncodings loses the Extended Clipboard pseudo-encoding, so the server sends the plain
 * cut-text messages (the extended ones carry the same text, compressed, and could request it);
 * ClientCutText in either form is left out where the policy blocks it. Where the VM's clipboard
 * is blocked the server's messages are framed too (`server-messages.ts`) and the client may ask
 * only for encodings that framer can delimit; ServerCutText in either form is left out.
 */
import { ClientMessages } from './client-messages.ts';
import { FRAMED_ENCODINGS, isLevelPseudoEncoding, ServerMessages } from './server-messages.ts';

export const CLIPBOARD_POLICIES = ['both', 'to-vm', 'from-vm', 'off'] as const;
export type ClipboardPolicy = (typeof CLIPBOARD_POLICIES)[number];

/** The Extended Clipboard pseudo-encoding (0xC0A1E5CE as a signed 32-bit number). */
export const EXTENDED_CLIPBOARD = 0xc0a1e5ce | 0;

export interface CutTextFilters {
  readonly toBackend: ClientMessages;
  /** Absent when the VM's clipboard may reach the browser: the server's stream is not framed. */
  readonly fromBackend?: ServerMessages;
}

export function allowsToVm(policy: ClipboardPolicy): boolean {
  return policy === 'both' || policy === 'to-vm';
}

export function allowsFromVm(policy: ClipboardPolicy): boolean {
  return policy === 'both' || policy === 'from-vm';
}

/**
 * The framers of one session for `policy`, or undefined for `both`. `serverInit`: the ServerInit
 * the browser was given (its pixel format is the updates' until the client sets another).
 */
export function cutTextFilters(policy: ClipboardPolicy, serverInit: Buffer): CutTextFilters | undefined {
  if (policy === 'both') return undefined;
  const fromBackend = allowsFromVm(policy) ? undefined : new ServerMessages({ dropCutText: true }, serverInit.subarray(4, 20));
  const toBackend = new ClientMessages({
    dropCutText: !allowsToVm(policy),
    encodings: fromBackend
      ? (requested) => requested.filter((e) => FRAMED_ENCODINGS.has(e) || isLevelPseudoEncoding(e))
      : (requested) => requested.filter((e) => e !== EXTENDED_CLIPBOARD),
    onPixelFormat: fromBackend && ((format) => fromBackend.setPixelFormat(format)),
  });
  return { toBackend, fromBackend };
}
